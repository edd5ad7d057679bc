//! Response shapes several handlers share: a Heroku list, and a stream of log-like lines.
//!
//! A leaf below the handlers: it imports no other module of the crate.

use std::convert::Infallible;

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::Stream;

/// A list. The conventions' middleware pages it by the request's `Range` and says which keys
/// it sorts by in `Accept-Ranges`, as it does for every JSON list a GET answers.
pub(crate) fn list_response<T: serde::Serialize>(items: Vec<T>) -> Response {
    Json(items).into_response()
}

/// A never-cached stream of lines, as Server-Sent Events when `sse` (the client asked for them)
/// and as plain text otherwise.
pub(crate) fn line_stream<S>(sse: bool, stream: S) -> Response
where
    S: Stream<Item = Result<bytes::Bytes, Infallible>> + Send + 'static,
{
    let content_type = if sse {
        "text/event-stream; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}
