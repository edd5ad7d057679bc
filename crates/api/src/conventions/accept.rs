//! The `Accept` gate: version 3 of the Platform API (any variant such as `version=3.sdk`),
//! plain JSON, `*/*` or no `Accept` at all; another version of Heroku's media type gets 406.

use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Whether a request's `Accept` lets it have version 3 of the API's JSON.
pub(super) fn acceptable(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::ACCEPT).iter().peekable();
    if values.peek().is_none() {
        return true;
    }
    values.any(|value| {
        // A header that is not text cannot name a media type we answer with.
        let Ok(value) = value.to_str() else {
            return false;
        };
        value.trim().is_empty() || value.split(',').any(acceptable_range)
    })
}

/// Whether one media range of an `Accept` header (`type/subtype; params`) is one we serve.
fn acceptable_range(range: &str) -> bool {
    let mut parts = range.split(';').map(str::trim);
    let media = parts.next().unwrap_or_default().to_ascii_lowercase();
    match media.as_str() {
        "*/*" | "application/*" | "application/json" => true,
        "application/vnd.heroku+json" => parts.any(|param| {
            let Some((name, value)) = param.split_once('=') else {
                return false;
            };
            let value = value.trim().trim_matches('"');
            name.trim().eq_ignore_ascii_case("version") && (value == "3" || value.starts_with("3."))
        }),
        _ => false,
    }
}

/// Heroku answers 406 to a client that asks for something other than version 3's JSON.
pub(super) async fn require_v3(request: Request, next: Next) -> Response {
    if !acceptable(request.headers()) {
        return ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            "Please specify a version along with Heroku's API MIME type. For example, `Accept: application/vnd.heroku+json; version=3`.",
        )
        .into_response();
    }
    next.run(request).await
}
