//! Heroku's `{"id", "message"}` body on every error, whoever answered: a handler, an
//! extractor's rejection (a JSON body that does not parse, a wrong content type, a bad path
//! parameter) or a layer.

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The longest text of a rejection kept as the error's message.
const MAX_MESSAGE: usize = 4096;

/// Whether a response's content type is JSON (`application/json` or any `+json`).
pub(super) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|media| media.trim().to_ascii_lowercase())
        .is_some_and(|media| media == "application/json" || media.ends_with("+json"))
}

/// The error `status` answers with when the rejection said `text`: Heroku's id for the
/// status, and the rejection's own words when it had some.
pub(super) fn error_for(status: StatusCode, text: &str) -> ApiError {
    let mut error = ApiError::for_status(status);
    let text = text.trim();
    if !text.is_empty() {
        let mut message = text.chars().take(MAX_MESSAGE).collect::<String>();
        if !message.ends_with('.') {
            message.push('.');
        }
        error.message = message;
    }
    error
}

/// Replaces `response` by `error`'s, keeping its headers but the body's own.
fn replace_body(response: Response, error: ApiError) -> Response {
    let (parts, _) = response.into_parts();
    let mut filled = error.into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            filled.headers_mut().insert(name.clone(), value.clone());
        }
    }
    filled
}

fn is_error(status: StatusCode) -> bool {
    status.is_client_error() || status.is_server_error()
}

/// No error goes out with an empty body: whatever answered with one (an extractor's
/// rejection, a layer) gets Heroku's `{"id", "message"}` for its status instead.
pub(super) async fn fill_empty_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if is_error(status) && response.body().size_hint().exact() == Some(0) {
        return replace_body(response, ApiError::for_status(status));
    }
    response
}

/// On the Platform API an error is always JSON: a plain-text rejection (axum's own, for a body
/// that is not JSON or a path parameter that does not parse) becomes `{"id", "message"}` with
/// its text as the message.
pub(super) async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !is_error(status) || is_json(response.headers()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_MESSAGE * 4).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    };
    replace_body(
        Response::from_parts(parts, Body::empty()),
        error_for(status, &text),
    )
}
