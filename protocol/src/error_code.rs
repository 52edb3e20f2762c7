//! Error codes sent to clients: in a response header (the whole request failed;
//! the body is then a `message: string`) or per partition inside a body.
//!
//! Codes are stable: a retired code is never reused, a gap in the numbers is a
//! retired code, not free space. [`ErrorCode::is_retriable`] tells a client
//! whether the same request may succeed later unchanged.

use std::fmt;

/// A numeric error code; see the module docs and docs/PROTOCOL.md.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorCode(pub u16);

macro_rules! codes {
    ($( $(#[$doc:meta])* $name:ident = $value:literal, retriable: $retriable:literal, $text:literal; )*) => {
        impl ErrorCode {
            $( $(#[$doc])* pub const $name: ErrorCode = ErrorCode($value); )*

            /// Every code this version knows, in numeric order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name),*];

            /// The code's name (`"DISK_FULL"`), or `"UNKNOWN_CODE"` for one this
            /// version does not know.
            pub fn name(self) -> &'static str {
                match self {
                    $(ErrorCode::$name => stringify!($name),)*
                    _ => "UNKNOWN_CODE",
                }
            }

            /// True when retrying the same request later may succeed.
            pub fn is_retriable(self) -> bool {
                match self {
                    $(ErrorCode::$name => $retriable,)*
                    _ => false,
                }
            }

            /// One line saying what the code means.
            pub fn description(self) -> &'static str {
                match self {
                    $(ErrorCode::$name => $text,)*
                    _ => "an error code this client does not know",
                }
            }
        }
    };
}

codes! {
    /// Success.
    NONE = 0, retriable: false, "no error";
    /// An unexpected error in the broker; its log says more.
    UNKNOWN_SERVER_ERROR = 1, retriable: false, "unexpected broker error (see the broker log)";
    /// A RecordBatch failed its CRC or is malformed; nothing was written.
    CORRUPT_MESSAGE = 2, retriable: false, "the record batch is malformed or fails its CRC";
    /// No topic of that name.
    UNKNOWN_TOPIC = 3, retriable: false, "the topic does not exist";
    /// The topic has no partition of that number.
    UNKNOWN_PARTITION = 4, retriable: false, "the topic has no such partition";
    /// The offset is outside `[log_start_offset, high_watermark]`.
    OFFSET_OUT_OF_RANGE = 5, retriable: false, "the offset is outside the partition's log";
    /// The batch exceeds the topic's `max.message.bytes`.
    MESSAGE_TOO_LARGE = 6, retriable: false, "the batch exceeds the topic's max.message.bytes";
    /// The disk is full; nothing was written. Retry after space is freed.
    DISK_FULL = 7, retriable: true, "the broker's disk is full; nothing was written";
    /// The api key is known but not at the requested version.
    UNSUPPORTED_VERSION = 8, retriable: false, "the broker does not support this api version";
    /// The api key is not known to the broker.
    UNKNOWN_API_KEY = 9, retriable: false, "the broker does not know this api key";
    /// The request body is malformed.
    INVALID_REQUEST = 10, retriable: false, "the request body is malformed";
    /// CreateTopic for a name that exists.
    TOPIC_ALREADY_EXISTS = 11, retriable: false, "a topic of that name already exists";
    /// The topic name is empty, too long or has characters outside `[A-Za-z0-9._-]`.
    INVALID_TOPIC_NAME = 12, retriable: false, "the topic name is not valid";
    /// A topic config key is unknown or its value out of range.
    INVALID_CONFIG = 13, retriable: false, "a topic config key or value is not valid";
    /// A partition count outside `1..=10000`.
    INVALID_PARTITIONS = 14, retriable: false, "the partition count is not valid";
    /// The broker is shutting down; retry against it once it is back.
    BROKER_SHUTTING_DOWN = 15, retriable: true, "the broker is shutting down";
    /// The partition's storage failed (e.g. an fsync error) and refuses writes
    /// until the broker restarts and recovers it.
    STORAGE_ERROR = 16, retriable: false, "the partition's storage failed; restart the broker";
    /// `acks` is not 0, 1 or -1.
    INVALID_REQUIRED_ACKS = 17, retriable: false, "acks must be 0, 1 or -1";
    /// The request could not finish in its timeout.
    REQUEST_TIMED_OUT = 18, retriable: true, "the request timed out in the broker";
    /// A batch routed by key on a `direct` or `topic` topic matched no binding,
    /// and no alternate topic took it; nothing was written.
    UNROUTABLE = 19, retriable: false, "no binding matches the routing key";
    /// The group has no member of that id (it left, or missed its session
    /// timeout): join again with an empty member id.
    UNKNOWN_MEMBER = 20, retriable: false, "the group has no such member (join again)";
    /// A commit carried a generation that is not the member's current one.
    STALE_GENERATION = 21, retriable: false, "the generation is not the member's current one";
    /// A group name that is empty, too long or has characters outside `[A-Za-z0-9._-]`.
    INVALID_GROUP_ID = 22, retriable: false, "the group name is invalid";
    /// A session timeout outside the broker's allowed range.
    INVALID_SESSION_TIMEOUT = 23, retriable: false, "the session timeout is outside the broker's range";
    /// An operator's change (offset reset) refused while the group has members.
    GROUP_NOT_EMPTY = 24, retriable: false, "the group has members";
    /// A member committed an offset for a partition it does not own.
    PARTITION_NOT_ASSIGNED = 25, retriable: false, "the partition is not assigned to this member";
    /// A Bind or Unbind the topic cannot take: the topic routes by `hash`, no
    /// partitions were given, a partition the topic does not have, or a key
    /// over 255 bytes.
    INVALID_BINDING = 26, retriable: false, "the binding is not valid for this topic";
    /// A share-group acknowledgement names an offset that is not acquired by
    /// this member (its lock expired, another member holds it, or it is
    /// already acknowledged); nothing changed for that offset.
    INVALID_RECORD_STATE = 30, retriable: false, "the record is not acquired by this member (its lock expired?)";
    /// A share-group member id that is empty or longer than 255 bytes.
    INVALID_MEMBER_ID = 31, retriable: false, "the member id is empty or too long";
    /// Authenticate failed: wrong user name or password, a malformed SASL
    /// message, or PLAIN on a connection without TLS.
    SASL_AUTHENTICATION_FAILED = 32, retriable: false, "authentication failed (wrong user name or password?)";
    /// The broker has users and this connection has not authenticated (or its
    /// user was deleted): only ApiVersions and Authenticate are answered.
    AUTHENTICATION_REQUIRED = 33, retriable: false, "the broker requires authentication";
    /// Authenticate named a mechanism the broker does not offer.
    UNSUPPORTED_SASL_MECHANISM = 34, retriable: false, "unsupported SASL mechanism (SCRAM-SHA-256, PLAIN)";
    /// The user lacks the permission on the topic.
    TOPIC_AUTHORIZATION_FAILED = 35, retriable: false, "not authorized for this topic";
    /// The user lacks the permission on the group.
    GROUP_AUTHORIZATION_FAILED = 36, retriable: false, "not authorized for this group";
    /// The user lacks the permission on the cluster (user and ACL management).
    CLUSTER_AUTHORIZATION_FAILED = 37, retriable: false, "not authorized for this cluster operation";
    /// No user of that name.
    USER_NOT_FOUND = 38, retriable: false, "the user does not exist";
    /// CreateUser for a name that exists.
    USER_ALREADY_EXISTS = 39, retriable: false, "a user of that name already exists";
    /// A user name outside `[A-Za-z0-9._@-]{1,255}` or a credential out of range.
    INVALID_USER = 40, retriable: false, "the user name or credential is not valid";
    /// An ACL entry with an invalid resource pattern.
    INVALID_ACL = 41, retriable: false, "the ACL entry is not valid";
    /// The change would leave users without a superuser: the first user must
    /// be one, and the last one cannot be deleted while other users exist.
    SUPERUSER_REQUIRED = 42, retriable: false, "the change would leave no superuser to manage users";
    /// An Authenticate message out of turn: any after a successful login on
    /// the connection, or PLAIN in the middle of a SCRAM exchange.
    ILLEGAL_SASL_STATE = 43, retriable: false, "SASL message out of turn";
    /// A broker limit on state one client can create is reached (members of
    /// a group, consumer groups, share groups); the message names the limit
    /// and its config key. Nothing was changed.
    LIMIT_REACHED = 44, retriable: false, "a broker limit is reached (the message names it)";
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.description())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_ascending_named_and_unknown_codes_are_safe() {
        // Dense up to 26; 27..=29 are reserved (see docs/PROTOCOL.md), then dense again.
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            if i <= 25 {
                assert_eq!(usize::from(code.0), i, "{code:?}");
            }
            assert_ne!(code.name(), "UNKNOWN_CODE");
        }
        assert!(
            ErrorCode::ALL
                .windows(2)
                .all(|w| matches!(w, [a, b] if a < b))
        );
        assert_eq!(ErrorCode(9999).name(), "UNKNOWN_CODE");
        assert!(!ErrorCode(9999).is_retriable());
        assert!(ErrorCode::DISK_FULL.is_retriable());
    }
}
