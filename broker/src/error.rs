//! The broker's error type, and how storage errors map to protocol error codes.

use std::net::SocketAddr;
use std::path::PathBuf;

use warren_protocol::ErrorCode;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors starting or running the broker. Per-request failures are not errors
/// of the broker: they become [`ErrorCode`]s in responses.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid.
    #[error("config: {0}")]
    Config(String),
    /// A listener could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The data directory could not be opened.
    #[error("opening data dir {path}: {source}")]
    Storage {
        path: PathBuf,
        #[source]
        source: warren_storage::Error,
    },
    /// Closing the logs at shutdown failed (the next start recovers them).
    #[error("closing logs: {0}")]
    Close(#[source] warren_storage::Error),
    /// The TLS certificate or key (`tls_cert`, `tls_key`) is unusable: the
    /// file named cannot be read, holds no certificate or key, or the key does
    /// not match the certificate.
    #[error("TLS: {path}: {reason}")]
    Tls { path: PathBuf, reason: String },
    /// No user exists and a listener is not on loopback: anyone who can reach
    /// it would have full access. One line, naming both ways out.
    #[error(
        "refusing to start: no users are defined and {addr} is not a loopback address, so anyone \
         who can reach it would have full access; create a superuser first (start on 127.0.0.1, \
         then `warren user add NAME --superuser`) or pass --allow-anonymous \
         (allow_anonymous = true) to serve anonymously on purpose"
    )]
    AnonymousNotLoopback { addr: SocketAddr },
    /// Other I/O failure.
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// The error code a client gets for a storage error, and whether the broker
/// should log it as unexpected.
pub fn storage_error_code(e: &warren_storage::Error) -> ErrorCode {
    use warren_storage::Error as S;
    match e {
        S::InvalidBatch(_) => ErrorCode::CORRUPT_MESSAGE,
        S::BatchTooLarge { .. } => ErrorCode::MESSAGE_TOO_LARGE,
        S::DiskFull { .. } => ErrorCode::DISK_FULL,
        S::OffsetOutOfRange { .. } => ErrorCode::OFFSET_OUT_OF_RANGE,
        S::Failed(_) => ErrorCode::STORAGE_ERROR,
        S::Closed(_) => ErrorCode::BROKER_SHUTTING_DOWN,
        S::Config(_) => ErrorCode::INVALID_CONFIG,
        S::InvalidTopicName(_) => ErrorCode::INVALID_TOPIC_NAME,
        S::TopicExists(_) => ErrorCode::TOPIC_ALREADY_EXISTS,
        S::UnknownTopic(_) => ErrorCode::UNKNOWN_TOPIC,
        _ => ErrorCode::UNKNOWN_SERVER_ERROR,
    }
}
