//! API errors as Heroku writes them: an HTTP status and `{"id": ..., "message": ...}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use slipway_api_types::ErrorBody;
use slipway_core::CoreError;

#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) id: &'static str,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        id: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            id,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub(crate) fn invalid_params(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_params", message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// The core answered a command with an outcome of another command: a bug, never the
    /// caller's fault.
    pub(crate) fn unexpected_outcome() -> ApiError {
        tracing::error!("the core answered a command with an unexpected outcome");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_server_error",
            "The platform answered unexpectedly; the server's log has the details.",
        )
    }

    pub(crate) fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Invalid credentials provided. Pass your API key as `Authorization: Bearer <key>`.",
        )
    }
}

impl From<CoreError> for ApiError {
    fn from(error: CoreError) -> ApiError {
        let (status, id) = match &error {
            CoreError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
            CoreError::NameTaken { .. } | CoreError::Invalid { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_params")
            }
            CoreError::Conflict { .. } => (StatusCode::CONFLICT, "conflict"),
            CoreError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            CoreError::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden"),
            CoreError::Build(_) => (StatusCode::UNPROCESSABLE_ENTITY, "build_failed"),
            CoreError::Store(_)
            | CoreError::Runtime(_)
            | CoreError::Io { .. }
            | CoreError::Git { .. } => {
                tracing::error!(%error, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal_server_error")
            }
        };
        ApiError::new(status, id, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody::new(self.id, self.message);
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"Slipway\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests;
