//! The client's error type.
//!
//! One enum for the whole crate, with a variant per situation a caller can act
//! on: reconnect and retry ([`Error::is_retriable`]), fix a topic name, seek
//! elsewhere after [`Error::OffsetOutOfRange`], skip a corrupt batch. The error
//! is `Clone` (its non-`Clone` sources sit behind an `Arc`) because one failed
//! produce request fails every record of every batch it carried, and each
//! record's [`DeliveryFuture`](crate::DeliveryFuture) gets its own copy.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use warren_protocol::ErrorCode;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the client can report.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The TCP connection to the broker could not be made (refused, no route,
    /// DNS failure). Retriable: the broker may come back.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address as configured (`bootstrap`).
        addr: String,
        /// What the connect or the name lookup reported.
        #[source]
        source: Arc<io::Error>,
    },
    /// TLS could not be set up with the broker: the CA file is unusable, the
    /// broker's certificate is not trusted or does not name the server, or
    /// the handshake failed on a protocol error. Not retriable: fix the TLS
    /// settings ([`ConnectionConfig::tls`](crate::ConnectionConfig::tls)).
    #[error("TLS with {addr}: {reason}")]
    Tls {
        /// The address as configured (`bootstrap`).
        addr: String,
        /// What went wrong, naming the file or certificate.
        reason: String,
    },
    /// An established connection failed (reset, EOF, write error, a response
    /// that never came) while this request was in flight or queued. The request
    /// may or may not have been applied by the broker. Retriable.
    #[error("connection to {addr} lost: {reason}")]
    ConnectionLost {
        /// The broker's address.
        addr: SocketAddr,
        /// What ended the connection.
        reason: String,
    },
    /// The broker does not speak a version of an api this client needs
    /// (learned from ApiVersions when connecting).
    #[error("broker at {addr} does not support {api} version {version}")]
    UnsupportedApi {
        /// The broker's address.
        addr: SocketAddr,
        /// The api's name (`"Produce"`).
        api: &'static str,
        /// The version the client speaks.
        version: u16,
    },
    /// The broker refused the whole request: the response header's error code
    /// and the message of its error body.
    #[error("broker error {code:?}: {message}")]
    Broker {
        /// The header's error code.
        code: ErrorCode,
        /// The broker's explanation.
        message: String,
    },
    /// The broker refused one partition's part of a request with `code`.
    #[error("{topic}/{partition}: {code}")]
    Partition {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The partition's error code.
        code: ErrorCode,
    },
    /// The topic does not exist.
    #[error("unknown topic {0:?}")]
    UnknownTopic(String),
    /// A record for a `direct` or `topic` topic that no binding routes
    /// (`UNROUTABLE`): its key matched no binding, and the topic has no
    /// alternate topic that took it. Also raised before sending for a key
    /// that cannot be a routing key (not UTF-8). Not retriable: bind the key
    /// (or set an alternate topic) first.
    #[error("UNROUTABLE: {message}")]
    Unroutable {
        /// The topic.
        topic: String,
        /// The record's routing key (`None`: no key).
        routing_key: Option<String>,
        /// Why, as the broker (or the producer) put it; it names the topic.
        message: String,
    },
    /// A fetch asked for an offset outside the partition's log. The consumer
    /// does not reset by itself: seek to a valid offset (for example
    /// [`SeekTo::Earliest`](crate::SeekTo::Earliest)) and poll again.
    #[error(
        "offset {offset} of {topic}/{partition} is out of range: the log holds [{log_start}, {high_watermark})"
    )]
    OffsetOutOfRange {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The offset fetched from (the consumer's position).
        offset: u64,
        /// The oldest offset the partition still holds.
        log_start: u64,
        /// The offset after the last readable record.
        high_watermark: u64,
    },
    /// A fetched batch fails its CRC or does not decode. `offset` is the
    /// position the consumer fetched from; it stays there until the caller
    /// seeks past the batch.
    #[error("corrupt batch in {topic}/{partition} at offset {offset}: {source}")]
    Corrupt {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The consumer's position, where the bad batch starts.
        offset: u64,
        /// What is wrong with the batch (`ChecksumMismatch`, `Truncated`, ...).
        #[source]
        source: Arc<warren_protocol::Error>,
    },
    /// A record or batch is larger than a limit: the topic's
    /// `max.message.bytes` (refused by the broker) or one of the producer's own
    /// (`buffer_bytes`, the frame limit), as `limit` says.
    #[error("message of {bytes} bytes for {topic} is too large: {limit}")]
    MessageTooLarge {
        /// The topic.
        topic: String,
        /// The partition, when the broker refused the batch; `None` when the
        /// producer refused the record before sending it.
        partition: Option<u32>,
        /// Size of the refused batch (broker) or record (producer), in bytes.
        bytes: usize,
        /// Which limit was exceeded.
        limit: String,
    },
    /// An operation did not finish in time: `what` is `"delivery"`
    /// (`delivery_timeout`), `"request"` (`request_timeout`) or `"connect"`.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// `"delivery"`, `"request"` or `"connect"`.
        what: &'static str,
        /// The limit that passed.
        after: Duration,
    },
    /// The producer (or its connection) is closed; nothing more is accepted.
    #[error("the client is closed")]
    Closed,
    /// Bytes from the broker did not decode (a malformed frame or body). The
    /// connection that carried them is closed.
    #[error("protocol error: {0}")]
    Protocol(#[source] Arc<warren_protocol::Error>),
    /// A configuration value or argument is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The broker refused a share consumer's acknowledgements for one
    /// partition: `INVALID_RECORD_STATE` means some records were no longer
    /// locked for this member (the lock expired, so they were or will be
    /// delivered again); the records it still held were acknowledged.
    #[error("acknowledging records of {topic}/{partition}: {code}")]
    Ack {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The partition's error code.
        code: ErrorCode,
    },
    /// A share consumer was asked to acknowledge a record it does not hold
    /// (not delivered by its polls, or acknowledged already).
    #[error("{topic}/{partition} offset {offset} is not held by this share consumer")]
    NotHeld {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The record's offset.
        offset: u64,
    },
    /// Authentication failed: wrong user name or password, a mechanism the
    /// broker refuses (PLAIN without TLS), or a broker that could not prove
    /// it holds the user's credential. Not retriable.
    #[error("authentication as {user:?} to {addr} failed: {message}")]
    AuthenticationFailed {
        /// The broker's address.
        addr: SocketAddr,
        /// The user name configured.
        user: String,
        /// Why.
        message: String,
    },
    /// The broker has users and this client is not authenticated
    /// (`AUTHENTICATION_REQUIRED`): configure
    /// [`ConnectionConfig::credentials`](crate::ConnectionConfig::credentials).
    #[error("the broker requires authentication: {message}")]
    AuthenticationRequired {
        /// The broker's explanation.
        message: String,
    },
    /// The user lacks a permission (`TOPIC_AUTHORIZATION_FAILED`,
    /// `GROUP_AUTHORIZATION_FAILED` or `CLUSTER_AUTHORIZATION_FAILED`).
    #[error("not authorized ({code:?}): {message}")]
    NotAuthorized {
        /// Which kind of resource was refused.
        code: ErrorCode,
        /// The broker's explanation, or the topic and partition refused.
        message: String,
    },
    /// A consumer was asked about a partition it is not assigned.
    #[error("{topic}/{partition} is not assigned to this consumer")]
    NotAssigned {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
    },
}

impl Error {
    /// True when the same operation may succeed if tried again later:
    /// connection failures, timeouts and retriable broker error codes
    /// ([`ErrorCode::is_retriable`]).
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Connect { .. } | Error::ConnectionLost { .. } | Error::Timeout { .. } => true,
            Error::Broker { code, .. }
            | Error::Partition { code, .. }
            | Error::Ack { code, .. } => code.is_retriable(),
            _ => false,
        }
    }

    /// The broker's error code, for [`Error::Broker`], [`Error::Partition`]
    /// and the variants that stand for one code (`UnknownTopic`,
    /// `OffsetOutOfRange`, a broker-side `MessageTooLarge`).
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Broker { code, .. }
            | Error::Partition { code, .. }
            | Error::Ack { code, .. }
            | Error::NotAuthorized { code, .. } => Some(*code),
            Error::AuthenticationRequired { .. } => Some(ErrorCode::AUTHENTICATION_REQUIRED),
            Error::UnknownTopic(_) => Some(ErrorCode::UNKNOWN_TOPIC),
            Error::Unroutable { .. } => Some(ErrorCode::UNROUTABLE),
            Error::OffsetOutOfRange { .. } => Some(ErrorCode::OFFSET_OUT_OF_RANGE),
            Error::MessageTooLarge {
                partition: Some(_), ..
            } => Some(ErrorCode::MESSAGE_TOO_LARGE),
            _ => None,
        }
    }

    /// The error for a per-partition `code` (not `NONE`) in a response about
    /// `topic`.
    pub(crate) fn from_partition_code(topic: &str, partition: u32, code: ErrorCode) -> Error {
        match code {
            ErrorCode::UNKNOWN_TOPIC => Error::UnknownTopic(topic.to_owned()),
            ErrorCode::TOPIC_AUTHORIZATION_FAILED => Error::NotAuthorized {
                code,
                message: format!("{topic}/{partition}: the user may not use this topic"),
            },
            _ => Error::Partition {
                topic: topic.to_owned(),
                partition,
                code,
            },
        }
    }
}

/// The error for a response header's `code` (not `NONE`) and message: the
/// auth codes get their typed variants, everything else is [`Error::Broker`].
pub(crate) fn from_header_code(code: ErrorCode, message: String) -> Error {
    match code {
        ErrorCode::AUTHENTICATION_REQUIRED => Error::AuthenticationRequired { message },
        ErrorCode::TOPIC_AUTHORIZATION_FAILED
        | ErrorCode::GROUP_AUTHORIZATION_FAILED
        | ErrorCode::CLUSTER_AUTHORIZATION_FAILED => Error::NotAuthorized { code, message },
        _ => Error::Broker { code, message },
    }
}

impl From<warren_protocol::Error> for Error {
    fn from(e: warren_protocol::Error) -> Self {
        Error::Protocol(Arc::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retriable_follows_the_error_code() {
        let lost = Error::ConnectionLost {
            addr: SocketAddr::from(([127, 0, 0, 1], 1)),
            reason: "eof".into(),
        };
        assert!(lost.is_retriable());
        assert!(
            Error::Broker {
                code: ErrorCode::BROKER_SHUTTING_DOWN,
                message: String::new()
            }
            .is_retriable()
        );
        assert!(
            !Error::Partition {
                topic: "t".into(),
                partition: 0,
                code: ErrorCode::CORRUPT_MESSAGE
            }
            .is_retriable()
        );
        assert!(!Error::UnknownTopic("t".into()).is_retriable());
        assert!(!Error::Closed.is_retriable());
        assert_eq!(
            Error::from_partition_code("t", 1, ErrorCode::UNKNOWN_TOPIC).code(),
            Some(ErrorCode::UNKNOWN_TOPIC)
        );
    }
}
