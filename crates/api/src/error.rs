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

    pub(crate) fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// The error for a bare status (a route without the method asked for, a response that
    /// had no body): Heroku's id for it and a message that says what to do.
    pub(crate) fn for_status(status: StatusCode) -> ApiError {
        let (id, message) = match status {
            StatusCode::NOT_FOUND => (
                "not_found",
                "The requested API endpoint was not found. Are you using the right HTTP verb?",
            ),
            StatusCode::METHOD_NOT_ALLOWED => (
                "method_not_allowed",
                "The requested API endpoint does not support this HTTP method. Are you using the right HTTP verb?",
            ),
            StatusCode::UNAUTHORIZED => return ApiError::unauthorized(),
            StatusCode::FORBIDDEN => ("forbidden", "You do not have access to this resource."),
            StatusCode::PAYLOAD_TOO_LARGE => ("request_too_large", "The request body is too large."),
            StatusCode::BAD_REQUEST => ("bad_request", "The request could not be understood."),
            StatusCode::NOT_ACCEPTABLE => (
                "not_acceptable",
                "Please specify a version along with Heroku's API MIME type. For example, `Accept: application/vnd.heroku+json; version=3`.",
            ),
            StatusCode::CONFLICT => ("conflict", "The request conflicts with the resource's current state."),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "bad_request",
                "Send the request body as JSON, with `Content-Type: application/json`.",
            ),
            StatusCode::RANGE_NOT_SATISFIABLE => (
                "requested_range_not_satisfiable",
                "The Range header is not one this list can serve.",
            ),
            StatusCode::UNPROCESSABLE_ENTITY => ("invalid_params", "The request's parameters are invalid."),
            StatusCode::TOO_MANY_REQUESTS => (
                "rate_limit",
                "Your account reached the API rate limit. Please wait a few minutes before making new requests.",
            ),
            status if status.is_server_error() => (
                "internal_server_error",
                "The platform failed to answer; the server's log has the details.",
            ),
            _ => ("bad_request", "The request could not be served."),
        };
        ApiError::new(status, id, message)
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
            "Invalid credentials provided. Log in with `slipway login` (or `heroku login -i`), or set SLIPWAY_API_KEY to a valid API key.",
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
            CoreError::Forbidden { .. } | CoreError::PermissionDenied { .. } => {
                (StatusCode::FORBIDDEN, "forbidden")
            }
            CoreError::Build(_) => (StatusCode::UNPROCESSABLE_ENTITY, "build_failed"),
            CoreError::Store(_)
            | CoreError::Runtime(_)
            | CoreError::Io { .. }
            | CoreError::SlugStore(_)
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
