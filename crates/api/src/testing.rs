//! What the handlers' table tests share: checking a parser's answer against the expected
//! command or error.

use std::fmt::Debug;

use axum::http::StatusCode;

use crate::error::ApiError;

/// Checks a `parse_*` function's answer: the expected value, or an error with the expected
/// status whose message contains the expected text.
pub(crate) fn check<T: PartialEq + Debug>(
    parsed: Result<T, ApiError>,
    expected: Result<T, (StatusCode, &str)>,
) {
    match (parsed, expected) {
        (Ok(value), Ok(expected)) => assert_eq!(value, expected),
        (Err(error), Err((status, message))) => {
            assert_eq!(error.status, status, "{}", error.message);
            assert!(error.message.contains(message), "{}", error.message);
        }
        (parsed, expected) => panic!("parsed {parsed:?}, expected {expected:?}"),
    }
}
