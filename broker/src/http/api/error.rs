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
