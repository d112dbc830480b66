//! Errors: [`AppError`] is what a handler answers with (a JSON body and a status);
//! [`ServeError`] is what starting the service can fail with.

use axum::Json;
use axum::http::StatusCode;
use axum::http::header::{HeaderValue, WWW_AUTHENTICATE};
use axum::response::{IntoResponse, Response};
use newsrec_core::{ConfigError, RejectReason, Retryable};
use serde::Serialize;

impl From<crate::store_gate::Unavailable> for AppError {
    fn from(e: crate::store_gate::Unavailable) -> Self {
        AppError::Unavailable(e.to_string())
    }
}

/// A request that could not be answered. Client errors carry a stable `code` and a
/// message that helps the caller fix the request; server errors are logged once here and
/// answered with a generic message.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A query parameter is missing or malformed.
    #[error("{message}")]
    BadRequest {
        /// Stable machine-readable code, e.g. `invalid_k`.
        code: &'static str,
        /// Human-readable explanation.
        message: String,
    },
    /// A click event failed validation.
    #[error("invalid event: {0}")]
    InvalidEvent(RejectReason),
    /// The thing asked about does not exist (unknown page, route, no evaluation yet).
    #[error("{message}")]
    NotFound {
        /// Stable machine-readable code.
        code: &'static str,
        /// Human-readable explanation.
        message: String,
    },
    /// The method is not served on this route.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Missing or wrong bearer token.
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// The body exceeds the configured limit.
    #[error("request body exceeds {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body is not of the expected media type.
    #[error("expected content-type application/json")]
    UnsupportedMediaType,
    /// A dependency needed for this request is not available right now.
    #[error("{0}")]
    Unavailable(String),
    /// The request took longer than the configured limit.
    #[error("request timed out")]
    Timeout,
    /// A bug or an unexpected failure; the detail is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// A 400 with a code and message.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        AppError::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// A 404 with a code and message.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        AppError::NotFound {
            code,
            message: message.into(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest { .. } | AppError::InvalidEvent(_) => StatusCode::BAD_REQUEST,
            AppError::NotFound { .. } => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Unavailable(_) | AppError::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code in the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest { code, .. } | AppError::NotFound { code, .. } => code,
            AppError::InvalidEvent(r) => r.code(),
            AppError::MethodNotAllowed => "method_not_allowed",
            AppError::Unauthorized => "unauthorized",
            AppError::PayloadTooLarge { .. } => "payload_too_large",
            AppError::UnsupportedMediaType => "unsupported_media_type",
            AppError::Unavailable(_) => "unavailable",
            AppError::Timeout => "timeout",
            AppError::Internal(_) => "internal",
        }
    }
}

/// The JSON error body: `{"error": {"code": …, "message": …}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Inside [`ErrorBody`].
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            AppError::Internal(detail) => {
                tracing::error!(%detail, "request failed");
                "internal error".to_string()
            }
            AppError::Unavailable(detail) => {
                tracing::warn!(%detail, "dependency unavailable");
                self.to_string()
            }
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message,
            },
        };
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// Why the service could not start (or stopped abnormally).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listener could not be bound or the server failed.
    #[error("server I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The models could not be loaded at start-up.
    #[error("loading models: {0}")]
    Model(String),
    /// The feature store could not be set up.
    #[error("feature store: {0}")]
    Store(String),
    /// A metric could not be registered (a duplicate name: a bug).
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

impl Retryable for ServeError {
    fn is_retryable(&self) -> bool {
        matches!(self, ServeError::Io(_) | ServeError::Store(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body(e: AppError) -> (StatusCode, serde_json::Value) {
        let resp = e.into_response();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        (status, serde_json::from_slice(&bytes).expect("json"))
    }

    #[tokio::test]
    async fn client_errors_explain_and_server_errors_do_not() {
        let (s, b) = body(AppError::bad_request("invalid_k", "k must be in 1..=100")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(b["error"]["code"], "invalid_k");
        assert_eq!(b["error"]["message"], "k must be in 1..=100");
        let (s, b) = body(AppError::Internal("db password is hunter2".into())).await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(b["error"]["message"], "internal error");
        let (s, b) = body(AppError::InvalidEvent(RejectReason::MissingField("page"))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(b["error"]["code"], "missing_field");
    }
}
