//! The API's own gate: version 3 of the Platform API, as Heroku asks for it.

use axum::http::{HeaderMap, HeaderValue};

use super::*;

#[test]
fn only_version_3_is_accepted() {
    for (accept, accepted) in [
        (Some("application/vnd.heroku+json; version=3"), true),
        (Some("application/vnd.heroku+json; version=3.sdk"), true),
        (
            Some("application/json, application/vnd.heroku+json; version=3"),
            true,
        ),
        (Some("application/json"), false),
        (Some("application/vnd.heroku+json; version=2"), false),
        (None, false),
    ] {
        let mut headers = HeaderMap::new();
        if let Some(accept) = accept {
            headers.insert(header::ACCEPT, HeaderValue::from_static(accept));
        }
        assert_eq!(accepts_v3(&headers), accepted, "{accept:?}");
    }
}
