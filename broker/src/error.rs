//! The broker's errors: [`Error`] for starting and running it, and
//! [`ServiceError`] / [`ErrorKind`] for a request that is refused or fails
//! (the services' error, which every front-end maps to its own codes).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use warren_protocol::ErrorCode;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors starting or running the broker. Per-request failures are not errors
/// of the broker: they are [`ServiceError`]s, which become error codes in
/// responses.
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

/// [`storage_error_code`], logging the error as the services do one the
/// client cannot explain ([`ServiceError::storage`]), naming `what` failed.
pub fn storage_code(e: &warren_storage::Error, what: &str) -> ErrorCode {
    ServiceError::storage(e, what);
    storage_error_code(e)
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

// ---------------------------------------------------------------------------
// Per-request errors: the services' error.
//
// What went wrong in the broker's own terms ([`ErrorKind`]) with a message
// for the client. Each front-end maps the kind to its own codes
// (`native::error` to the native protocol's `ErrorCode`, the HTTP API to a
// status and a stable name; a Kafka listener would map it to Kafka's codes),
// so no service knows any wire format. It lives here, in a module that
// imports no other, so the domain modules below the services (routing,
// topics, groups, share groups, auth) can return it without an import cycle.

/// What went wrong. Front-ends match on it exhaustively, so a new kind makes
/// every mapping say what it means there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is not valid as a whole (too many topics, a bad value).
    InvalidRequest,
    /// A produce's acks is not 0, 1 or -1.
    InvalidRequiredAcks,
    /// No such topic.
    UnknownTopic,
    /// The topic has no such partition.
    UnknownPartition,
    /// A topic of that name exists.
    TopicAlreadyExists,
    /// Not a valid topic name.
    InvalidTopicName,
    /// Not a valid partition count.
    InvalidPartitions,
    /// A topic config key or value is not valid.
    InvalidConfig,
    /// A binding that does not fit its topic.
    InvalidBinding,
    /// A routed batch matched no binding (and no alternate topic took it).
    Unroutable,
    /// The record batch is malformed.
    CorruptMessage,
    /// The batch, or what it decompresses to, is over a limit.
    MessageTooLarge,
    /// The offset is outside the partition's log.
    OffsetOutOfRange,
    /// The operation needs an authenticated caller.
    AuthenticationRequired,
    /// The caller may not use this topic.
    TopicAuthorizationFailed,
    /// The caller may not use this group.
    GroupAuthorizationFailed,
    /// The caller may not do this cluster operation.
    ClusterAuthorizationFailed,
    /// A group name is not valid.
    InvalidGroupId,
    /// A member id is empty or too long.
    InvalidMemberId,
    /// A record is not acquired by this member (its lock expired?).
    InvalidRecordState,
    /// A broker limit is reached (the message names it).
    LimitReached,
    /// A user of that name exists.
    UserAlreadyExists,
    /// No such user.
    UserNotFound,
    /// The user name or credential is not valid.
    InvalidUser,
    /// The ACL entry is not valid.
    InvalidAcl,
    /// The change would leave no superuser to manage users.
    SuperuserRequired,
    /// A SASL message out of turn (already authenticated, or a mechanism
    /// switched mid-exchange).
    IllegalSaslState,
    /// Wrong credentials, or a malformed or refused SASL message.
    SaslAuthenticationFailed,
    /// A SASL mechanism the broker does not offer.
    UnsupportedSaslMechanism,
    /// The disk is full; nothing was written.
    DiskFull,
    /// The partition's storage failed (an fsync error fenced it) or an I/O
    /// error the client cannot explain.
    StorageFailed,
    /// The broker is shutting down.
    ShuttingDown,
    /// The request's timeout passed first.
    TimedOut,
    /// A bug or an unexpected failure (the broker log says more).
    Internal,
}

impl ErrorKind {
    /// Every kind, for the front-ends' mapping tests.
    pub const ALL: &'static [ErrorKind] = &[
        ErrorKind::InvalidRequest,
        ErrorKind::InvalidRequiredAcks,
        ErrorKind::UnknownTopic,
        ErrorKind::UnknownPartition,
        ErrorKind::TopicAlreadyExists,
        ErrorKind::InvalidTopicName,
        ErrorKind::InvalidPartitions,
        ErrorKind::InvalidConfig,
        ErrorKind::InvalidBinding,
        ErrorKind::Unroutable,
        ErrorKind::CorruptMessage,
        ErrorKind::MessageTooLarge,
        ErrorKind::OffsetOutOfRange,
        ErrorKind::AuthenticationRequired,
        ErrorKind::TopicAuthorizationFailed,
        ErrorKind::GroupAuthorizationFailed,
        ErrorKind::ClusterAuthorizationFailed,
        ErrorKind::InvalidGroupId,
        ErrorKind::InvalidMemberId,
        ErrorKind::InvalidRecordState,
        ErrorKind::LimitReached,
        ErrorKind::UserAlreadyExists,
        ErrorKind::UserNotFound,
        ErrorKind::InvalidUser,
        ErrorKind::InvalidAcl,
        ErrorKind::SuperuserRequired,
        ErrorKind::IllegalSaslState,
        ErrorKind::SaslAuthenticationFailed,
        ErrorKind::UnsupportedSaslMechanism,
        ErrorKind::DiskFull,
        ErrorKind::StorageFailed,
        ErrorKind::ShuttingDown,
        ErrorKind::TimedOut,
        ErrorKind::Internal,
    ];

    /// The kind's stable UPPER_SNAKE name, the one the native protocol's
    /// code of the same meaning has (messages quote it).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "INVALID_REQUEST",
            ErrorKind::InvalidRequiredAcks => "INVALID_REQUIRED_ACKS",
            ErrorKind::UnknownTopic => "UNKNOWN_TOPIC",
            ErrorKind::UnknownPartition => "UNKNOWN_PARTITION",
            ErrorKind::TopicAlreadyExists => "TOPIC_ALREADY_EXISTS",
            ErrorKind::InvalidTopicName => "INVALID_TOPIC_NAME",
            ErrorKind::InvalidPartitions => "INVALID_PARTITIONS",
            ErrorKind::InvalidConfig => "INVALID_CONFIG",
            ErrorKind::InvalidBinding => "INVALID_BINDING",
            ErrorKind::Unroutable => "UNROUTABLE",
            ErrorKind::CorruptMessage => "CORRUPT_MESSAGE",
            ErrorKind::MessageTooLarge => "MESSAGE_TOO_LARGE",
            ErrorKind::OffsetOutOfRange => "OFFSET_OUT_OF_RANGE",
            ErrorKind::AuthenticationRequired => "AUTHENTICATION_REQUIRED",
            ErrorKind::TopicAuthorizationFailed => "TOPIC_AUTHORIZATION_FAILED",
            ErrorKind::GroupAuthorizationFailed => "GROUP_AUTHORIZATION_FAILED",
            ErrorKind::ClusterAuthorizationFailed => "CLUSTER_AUTHORIZATION_FAILED",
            ErrorKind::InvalidGroupId => "INVALID_GROUP_ID",
            ErrorKind::InvalidMemberId => "INVALID_MEMBER_ID",
            ErrorKind::InvalidRecordState => "INVALID_RECORD_STATE",
            ErrorKind::LimitReached => "LIMIT_REACHED",
            ErrorKind::UserAlreadyExists => "USER_ALREADY_EXISTS",
            ErrorKind::UserNotFound => "USER_NOT_FOUND",
            ErrorKind::InvalidUser => "INVALID_USER",
            ErrorKind::InvalidAcl => "INVALID_ACL",
            ErrorKind::SuperuserRequired => "SUPERUSER_REQUIRED",
            ErrorKind::IllegalSaslState => "ILLEGAL_SASL_STATE",
            ErrorKind::SaslAuthenticationFailed => "SASL_AUTHENTICATION_FAILED",
            ErrorKind::UnsupportedSaslMechanism => "UNSUPPORTED_SASL_MECHANISM",
            ErrorKind::DiskFull => "DISK_FULL",
            ErrorKind::StorageFailed => "STORAGE_ERROR",
            ErrorKind::ShuttingDown => "BROKER_SHUTTING_DOWN",
            ErrorKind::TimedOut => "REQUEST_TIMED_OUT",
            ErrorKind::Internal => "UNKNOWN_SERVER_ERROR",
        }
    }

    /// The kind of a storage error.
    pub fn of_storage(e: &warren_storage::Error) -> ErrorKind {
        use warren_storage::Error as S;
        match e {
            S::InvalidBatch(_) => ErrorKind::CorruptMessage,
            S::BatchTooLarge { .. } => ErrorKind::MessageTooLarge,
            S::DiskFull { .. } => ErrorKind::DiskFull,
            S::OffsetOutOfRange { .. } => ErrorKind::OffsetOutOfRange,
            S::Failed(_) => ErrorKind::StorageFailed,
            S::Closed(_) => ErrorKind::ShuttingDown,
            S::Config(_) => ErrorKind::InvalidConfig,
            S::InvalidTopicName(_) => ErrorKind::InvalidTopicName,
            S::TopicExists(_) => ErrorKind::TopicAlreadyExists,
            S::UnknownTopic(_) => ErrorKind::UnknownTopic,
            _ => ErrorKind::Internal,
        }
    }
}

/// A refused or failed operation: its kind and, where there is more to say
/// than the kind does, a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    pub kind: ErrorKind,
    pub message: Option<String>,
}

impl ServiceError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ServiceError {
        ServiceError {
            kind,
            message: Some(message.into()),
        }
    }

    /// An error of `kind` with nothing more to say.
    pub fn bare(kind: ErrorKind) -> ServiceError {
        ServiceError {
            kind,
            message: None,
        }
    }

    /// A storage error, logged the way the broker logs what a client cannot
    /// explain: an I/O failure or corruption as an error naming `what`. A
    /// log fenced by an fsync failure refuses every request from then on;
    /// its failure was logged once, when it happened, so the refusals are
    /// logged at debug only (one error line per produce would flood the log
    /// while the partition waits for a restart).
    pub fn storage(e: &warren_storage::Error, what: &str) -> ServiceError {
        let kind = ErrorKind::of_storage(e);
        if matches!(e, warren_storage::Error::Failed(_)) {
            tracing::debug!(error = %e, "{what} refused");
        } else if matches!(kind, ErrorKind::Internal | ErrorKind::StorageFailed) {
            tracing::error!(error = %e, "{what} failed");
        }
        ServiceError::new(kind, e.to_string())
    }

    /// The message, or an empty string.
    pub fn message(&self) -> &str {
        self.message.as_deref().unwrap_or_default()
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(m) => f.write_str(m),
            None => write!(f, "{:?}", self.kind),
        }
    }
}

impl std::error::Error for ServiceError {}

/// Result alias for the services.
pub type ServiceResult<T> = Result<T, ServiceError>;
