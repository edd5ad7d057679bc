//! What every handler reads from a request the same way: an app named in the path, a JSON
//! body, and what a streaming client asks for.
//!
//! A leaf below the handlers: it imports only the error type.

use axum::http::{header, HeaderMap};

use crate::error::ApiError;

/// Checks an app named in a path: a name or an id. Anything else cannot name an app.
pub(crate) fn parse_app(app: String) -> Result<String, ApiError> {
    if app.parse::<slipway_model::AppName>().is_ok() || app.parse::<uuid::Uuid>().is_ok() {
        Ok(app)
    } else {
        Err(ApiError::not_found("Couldn't find that app."))
    }
}

/// The first of `items` that `matches` what a path names, or Heroku's 404 "Couldn't find that
/// `what`."
pub(crate) fn find_named<T>(
    items: impl IntoIterator<Item = T>,
    what: &str,
    matches: impl FnMut(&T) -> bool,
) -> Result<T, ApiError> {
    items
        .into_iter()
        .find(matches)
        .ok_or_else(|| ApiError::not_found(format!("Couldn't find that {what}.")))
}

/// Parses a JSON body, answering 400 with a message that says what is wrong. An empty body is
/// `{}`: every field takes its default.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}" as &[u8]
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|error| {
        ApiError::bad_request(format!("Invalid JSON in the request body: {error}."))
    })
}

/// Parses a JSON body whose fields are required, answering 400 with an example of a good one.
pub(crate) fn parse_body_like<T: serde::de::DeserializeOwned>(
    body: &[u8],
    example: &str,
) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_request(format!("Expected a body like {example}: {error}.")))
}

/// Whether the client asked for Server-Sent Events (what `heroku logs` reads).
pub(crate) fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

/// The id of the last event a reconnecting SSE client saw.
pub(crate) fn last_event_id(headers: &HeaderMap) -> Option<u64> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

#[cfg(test)]
mod tests;
