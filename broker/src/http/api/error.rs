//! The admin API's error: an HTTP status and the JSON body
//! `{"error": "CODE", "message": "..."}`, where CODE is a stable
//! UPPER_SNAKE string a script can match on (`TOPIC_NOT_FOUND`,
//! `TOPIC_ALREADY_EXISTS`, `INVALID_REQUEST`, `OFFSET_OUT_OF_RANGE`,
//! `NOT_FOUND`, `INTERNAL`, ...) and the message says what to fix.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use warren_protocol::ErrorCode;

use crate::error::{ErrorKind, ServiceError};

/// A failed admin request; see the module docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

/// Result alias for the handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 `INVALID_REQUEST`: bad JSON, a bad parameter, a refused setting.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message)
    }

    /// 404 `TOPIC_NOT_FOUND`.
    pub fn no_topic(name: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "TOPIC_NOT_FOUND",
            format!("no topic named {name:?}"),
        )
    }

    /// 500 `INTERNAL`: something the caller cannot fix (the broker log says more).
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", message)
    }

    /// The same error with another code (a more precise one for scripts).
    pub fn with_code(self, code: &'static str) -> ApiError {
        ApiError { code, ..self }
    }

    /// The HTTP form of a protocol refusal: the same check, the same message,
    /// the status a script expects.
    pub fn from_code(code: ErrorCode, message: String) -> ApiError {
        let (status, name) = match code {
            ErrorCode::UNKNOWN_TOPIC => (StatusCode::NOT_FOUND, "TOPIC_NOT_FOUND"),
            ErrorCode::UNKNOWN_PARTITION => (StatusCode::NOT_FOUND, "PARTITION_NOT_FOUND"),
            ErrorCode::TOPIC_ALREADY_EXISTS => (StatusCode::CONFLICT, "TOPIC_ALREADY_EXISTS"),
            ErrorCode::INVALID_REQUEST
            | ErrorCode::INVALID_PARTITIONS
            | ErrorCode::INVALID_CONFIG
            | ErrorCode::INVALID_TOPIC_NAME
            | ErrorCode::INVALID_BINDING
            | ErrorCode::INVALID_GROUP_ID => (StatusCode::BAD_REQUEST, "INVALID_REQUEST"),
            ErrorCode::OFFSET_OUT_OF_RANGE => {
                (StatusCode::RANGE_NOT_SATISFIABLE, "OFFSET_OUT_OF_RANGE")
            }
            ErrorCode::DISK_FULL => (StatusCode::INSUFFICIENT_STORAGE, "DISK_FULL"),
            ErrorCode::TOPIC_AUTHORIZATION_FAILED
            | ErrorCode::GROUP_AUTHORIZATION_FAILED
            | ErrorCode::CLUSTER_AUTHORIZATION_FAILED => (StatusCode::FORBIDDEN, "FORBIDDEN"),
            ErrorCode::BROKER_SHUTTING_DOWN => (StatusCode::SERVICE_UNAVAILABLE, "SHUTTING_DOWN"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        };
        ApiError::new(status, name, message)
    }
}

impl From<ServiceError> for ApiError {
    /// The HTTP form of a service's refusal: its message (or the kind's
    /// name), the status a script expects, a stable code.
    fn from(e: ServiceError) -> ApiError {
        let (status, name) = match e.kind {
            ErrorKind::UnknownTopic => (StatusCode::NOT_FOUND, "TOPIC_NOT_FOUND"),
            ErrorKind::UnknownPartition => (StatusCode::NOT_FOUND, "PARTITION_NOT_FOUND"),
            ErrorKind::TopicAlreadyExists => (StatusCode::CONFLICT, "TOPIC_ALREADY_EXISTS"),
            ErrorKind::InvalidRequest
            | ErrorKind::InvalidRequiredAcks
            | ErrorKind::InvalidPartitions
            | ErrorKind::InvalidConfig
            | ErrorKind::InvalidTopicName
            | ErrorKind::InvalidBinding
            | ErrorKind::Unroutable
            | ErrorKind::CorruptMessage
            | ErrorKind::MessageTooLarge => (StatusCode::BAD_REQUEST, "INVALID_REQUEST"),
            ErrorKind::UserNotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            ErrorKind::UserAlreadyExists => (StatusCode::CONFLICT, "ALREADY_EXISTS"),
            ErrorKind::InvalidGroupId
            | ErrorKind::InvalidMemberId
            | ErrorKind::InvalidRecordState
            | ErrorKind::InvalidUser
            | ErrorKind::InvalidAcl
            | ErrorKind::SuperuserRequired => (StatusCode::BAD_REQUEST, "INVALID_REQUEST"),
            ErrorKind::OffsetOutOfRange => {
                (StatusCode::RANGE_NOT_SATISFIABLE, "OFFSET_OUT_OF_RANGE")
            }
            ErrorKind::DiskFull => (StatusCode::INSUFFICIENT_STORAGE, "DISK_FULL"),
            ErrorKind::LimitReached => (StatusCode::TOO_MANY_REQUESTS, "LIMIT_REACHED"),
            ErrorKind::AuthenticationRequired
            | ErrorKind::IllegalSaslState
            | ErrorKind::SaslAuthenticationFailed
            | ErrorKind::UnsupportedSaslMechanism => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            ErrorKind::TopicAuthorizationFailed
            | ErrorKind::GroupAuthorizationFailed
            | ErrorKind::ClusterAuthorizationFailed => (StatusCode::FORBIDDEN, "FORBIDDEN"),
            ErrorKind::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "SHUTTING_DOWN"),
            ErrorKind::TimedOut => (StatusCode::GATEWAY_TIMEOUT, "TIMED_OUT"),
            ErrorKind::StorageFailed | ErrorKind::Internal => {
                (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL")
            }
        };
        let message = e.message.unwrap_or_else(|| e.kind.name().to_owned());
        ApiError::new(status, name, message)
    }
}

impl From<(ErrorCode, String)> for ApiError {
    fn from((code, message): (ErrorCode, String)) -> ApiError {
        ApiError::from_code(code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "error": self.code, "message": self.message })),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_refusals_map_to_statuses_and_stable_codes() {
        let cases = [
            (
                ErrorKind::UnknownTopic,
                StatusCode::NOT_FOUND,
                "TOPIC_NOT_FOUND",
            ),
            (
                ErrorKind::TopicAlreadyExists,
                StatusCode::CONFLICT,
                "TOPIC_ALREADY_EXISTS",
            ),
            (
                ErrorKind::InvalidPartitions,
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
            ),
            (
                ErrorKind::InvalidBinding,
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
            ),
            (
                ErrorKind::TopicAuthorizationFailed,
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
            ),
            (
                ErrorKind::DiskFull,
                StatusCode::INSUFFICIENT_STORAGE,
                "DISK_FULL",
            ),
            (
                ErrorKind::ShuttingDown,
                StatusCode::SERVICE_UNAVAILABLE,
                "SHUTTING_DOWN",
            ),
            (
                ErrorKind::StorageFailed,
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
            ),
        ];
        for (kind, status, code) in cases {
            let e = ApiError::from(ServiceError::new(kind, "why"));
            assert_eq!(
                (e.status, e.code, e.message.as_str()),
                (status, code, "why")
            );
        }
        // Without a message, the kind's name says what happened.
        let e = ApiError::from(ServiceError::bare(ErrorKind::UnknownPartition));
        assert_eq!(e.message, "UNKNOWN_PARTITION");
        // Every kind maps to a client or server error, none to a success.
        for &kind in ErrorKind::ALL {
            let e = ApiError::from(ServiceError::bare(kind));
            assert!(
                e.status.is_client_error() || e.status.is_server_error(),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn protocol_refusals_map_to_statuses_and_stable_codes() {
        let e = ApiError::from_code(ErrorCode::TOPIC_ALREADY_EXISTS, "x".into());
        assert_eq!(
            (e.status, e.code),
            (StatusCode::CONFLICT, "TOPIC_ALREADY_EXISTS")
        );
        let e = ApiError::from_code(ErrorCode::INVALID_PARTITIONS, "x".into());
        assert_eq!(
            (e.status, e.code),
            (StatusCode::BAD_REQUEST, "INVALID_REQUEST")
        );
        let e = ApiError::from_code(ErrorCode::UNKNOWN_TOPIC, "x".into());
        assert_eq!(
            (e.status, e.code),
            (StatusCode::NOT_FOUND, "TOPIC_NOT_FOUND")
        );
        let e = ApiError::from_code(ErrorCode::STORAGE_ERROR, "x".into());
        assert_eq!(
            (e.status, e.code),
            (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL")
        );
    }
}
