//! `Request-Id`: every response carries one, the client's own when it sent a sane one (the
//! heroku CLI sends `<uuid>[,<ids of earlier responses>]`; the first is its own), a new UUID
//! otherwise; the server's log lines for the request carry it too.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The longest request id echoed back; longer ones are replaced, not cut, so that two
/// different ids never become one.
const MAX_REQUEST_ID: usize = 200;

/// The id of a request: the first of the client's ids when it is short and plain, otherwise a
/// new UUID.
pub(super) fn request_id_for(headers: &HeaderMap) -> String {
    headers
        .get("request-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next())
        .map(str::trim)
        .filter(|id| {
            !id.is_empty()
                && id.len() <= MAX_REQUEST_ID
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Every response carries a `Request-Id`, and every log line of its request the same id.
pub(super) async fn request_id(request: Request, next: Next) -> Response {
    let id = request_id_for(request.headers());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("request-id", value);
    }
    response
}
