//! The native protocol's side of the services' errors: each [`ErrorKind`]
//! as the protocol's [`ErrorCode`] of the same meaning, and the error
//! response for a [`ServiceError`].

use warren_protocol::ErrorCode;

use super::response;
use crate::error::{ErrorKind, ServiceError};
use crate::transport::response::Response;

/// The native code of `kind`.
pub fn code(kind: ErrorKind) -> ErrorCode {
    match kind {
        ErrorKind::InvalidRequest => ErrorCode::INVALID_REQUEST,
        ErrorKind::InvalidRequiredAcks => ErrorCode::INVALID_REQUIRED_ACKS,
        ErrorKind::UnknownTopic => ErrorCode::UNKNOWN_TOPIC,
        ErrorKind::UnknownPartition => ErrorCode::UNKNOWN_PARTITION,
        ErrorKind::TopicAlreadyExists => ErrorCode::TOPIC_ALREADY_EXISTS,
        ErrorKind::InvalidTopicName => ErrorCode::INVALID_TOPIC_NAME,
        ErrorKind::InvalidPartitions => ErrorCode::INVALID_PARTITIONS,
        ErrorKind::InvalidConfig => ErrorCode::INVALID_CONFIG,
        ErrorKind::InvalidBinding => ErrorCode::INVALID_BINDING,
        ErrorKind::Unroutable => ErrorCode::UNROUTABLE,
        ErrorKind::CorruptMessage => ErrorCode::CORRUPT_MESSAGE,
        ErrorKind::MessageTooLarge => ErrorCode::MESSAGE_TOO_LARGE,
        ErrorKind::OffsetOutOfRange => ErrorCode::OFFSET_OUT_OF_RANGE,
        ErrorKind::AuthenticationRequired => ErrorCode::AUTHENTICATION_REQUIRED,
        ErrorKind::TopicAuthorizationFailed => ErrorCode::TOPIC_AUTHORIZATION_FAILED,
        ErrorKind::GroupAuthorizationFailed => ErrorCode::GROUP_AUTHORIZATION_FAILED,
        ErrorKind::ClusterAuthorizationFailed => ErrorCode::CLUSTER_AUTHORIZATION_FAILED,
        ErrorKind::InvalidGroupId => ErrorCode::INVALID_GROUP_ID,
        ErrorKind::InvalidMemberId => ErrorCode::INVALID_MEMBER_ID,
        ErrorKind::InvalidRecordState => ErrorCode::INVALID_RECORD_STATE,
        ErrorKind::LimitReached => ErrorCode::LIMIT_REACHED,
        ErrorKind::UserAlreadyExists => ErrorCode::USER_ALREADY_EXISTS,
        ErrorKind::UserNotFound => ErrorCode::USER_NOT_FOUND,
        ErrorKind::InvalidUser => ErrorCode::INVALID_USER,
        ErrorKind::InvalidAcl => ErrorCode::INVALID_ACL,
        ErrorKind::SuperuserRequired => ErrorCode::SUPERUSER_REQUIRED,
        ErrorKind::IllegalSaslState => ErrorCode::ILLEGAL_SASL_STATE,
        ErrorKind::SaslAuthenticationFailed => ErrorCode::SASL_AUTHENTICATION_FAILED,
        ErrorKind::UnsupportedSaslMechanism => ErrorCode::UNSUPPORTED_SASL_MECHANISM,
        ErrorKind::DiskFull => ErrorCode::DISK_FULL,
        ErrorKind::StorageFailed => ErrorCode::STORAGE_ERROR,
        ErrorKind::ShuttingDown => ErrorCode::BROKER_SHUTTING_DOWN,
        ErrorKind::TimedOut => ErrorCode::REQUEST_TIMED_OUT,
        ErrorKind::Internal => ErrorCode::UNKNOWN_SERVER_ERROR,
    }
}

/// The native code of an optional error (`NONE` for none).
pub fn code_of(error: Option<&ServiceError>) -> ErrorCode {
    error.map_or(ErrorCode::NONE, |e| code(e.kind))
}

/// The error response (header code and message) for `e`.
pub fn response(correlation_id: u32, e: &ServiceError) -> Response {
    response::error(correlation_id, code(e.kind), e.message())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_kind_has_its_own_code_named_as_the_kind() {
        let mut seen = HashSet::new();
        for &kind in ErrorKind::ALL {
            let c = code(kind);
            assert_ne!(c, ErrorCode::NONE, "{kind:?}");
            assert!(seen.insert(c), "{kind:?} shares {c:?}");
            assert_eq!(c.name(), kind.name(), "{kind:?}");
        }
    }

    #[test]
    fn storage_errors_keep_their_codes() {
        let cases = [
            (
                warren_storage::Error::Failed("t-0".into()),
                ErrorCode::STORAGE_ERROR,
            ),
            (
                warren_storage::Error::Closed("t-0".into()),
                ErrorCode::BROKER_SHUTTING_DOWN,
            ),
            (
                warren_storage::Error::TopicExists("t".into()),
                ErrorCode::TOPIC_ALREADY_EXISTS,
            ),
            (
                warren_storage::Error::UnknownTopic("t".into()),
                ErrorCode::UNKNOWN_TOPIC,
            ),
        ];
        for (e, expected) in cases {
            assert_eq!(code(ErrorKind::of_storage(&e)), expected, "{e}");
            assert_eq!(crate::error::storage_error_code(&e), expected, "{e}");
        }
    }
}
