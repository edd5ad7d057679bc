//! The Platform API's conventions, applied to every route as middleware so that no handler
//! has to remember them: the `Accept` gate (406), `Request-Id`, `ETag`/`If-None-Match`
//! (304), `Range`/`Next-Range` pagination of JSON lists (206, 416), the per-account rate
//! limit (`RateLimit-Remaining`, 429) and Heroku's `{"id", "message"}` body on every error.
//!
//! Each convention is a pure function tested without a server (`conventions/tests.rs`), and a
//! thin middleware around it. [`layer_platform_api`] wraps the Platform API's routes (what the
//! heroku CLI calls); [`layer_all`] wraps everything, git's smart-HTTP routes and the streams
//! included, which keep their own media types.
//!
//! A layer below the router: it imports only `error` and `auth` (to read a request's
//! credential).

use axum::middleware::{from_fn, from_fn_with_state};
use axum::Router;

mod accept;
mod errors;
mod lists;
mod rate_limit;
mod request_id;

pub(crate) use rate_limit::{rate_limits, RateLimit, RateLimiter, RATE_LIMITS_PATH};

/// What every Platform API route answers the same way: 406 for another version of the API,
/// JSON error bodies, pagination of lists and ETags.
pub(crate) fn layer_platform_api<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    max_page_size: usize,
) -> Router<S> {
    router
        .layer(from_fn_with_state(
            lists::PageLimit(max_page_size.max(1)),
            lists::paginate_and_tag,
        ))
        .layer(from_fn(errors::json_errors))
        .layer(from_fn(accept::require_v3))
}

/// What every response carries, whatever the route: a `Request-Id`, the rate limit's
/// `RateLimit-Remaining`, and a JSON body on any error that had none.
pub(crate) fn layer_all<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    limiter: RateLimiter,
) -> Router<S> {
    router
        .layer(from_fn(errors::fill_empty_errors))
        .layer(from_fn_with_state(limiter, rate_limit::rate_limit))
        .layer(from_fn(request_id::request_id))
}

#[cfg(test)]
mod tests;
