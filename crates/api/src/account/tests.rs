//! Table tests of what `POST /oauth/authorizations` accepts.

use axum::http::StatusCode;
use slipway_core::NewAuthorization;

use super::parse_create;
use crate::testing::check;

fn new(description: &str, expires_in: Option<i64>) -> NewAuthorization {
    NewAuthorization {
        description: description.into(),
        scope: vec!["global".into()],
        expires_in,
        default: false,
    }
}

#[test]
fn parses_what_the_heroku_cli_sends() {
    check(
        parse_create(
            br#"{"description":"Heroku CLI login from box","expires_in":2592000,"scope":["global"]}"#,
        ),
        Ok(new("Heroku CLI login from box", Some(2_592_000))),
    );
    // `authorizations:create -e 60` sends the number as a string.
    check(
        parse_create(br#"{"description":"ci","expires_in":"60","scope":["global"]}"#),
        Ok(new("ci", Some(60))),
    );
    check(
        parse_create(b""),
        Ok(NewAuthorization {
            scope: Vec::new(),
            ..new("", None)
        }),
    );
}

#[test]
fn refuses_what_slipway_cannot_honour() {
    check(
        parse_create(br#"{"scope":["read"]}"#),
        Err((StatusCode::UNPROCESSABLE_ENTITY, "not supported")),
    );
    check(
        parse_create(br#"{"expires_in":"soon"}"#),
        Err((StatusCode::UNPROCESSABLE_ENTITY, "whole number")),
    );
    check(
        parse_create(br#"{"expires_in":-5}"#),
        Err((StatusCode::UNPROCESSABLE_ENTITY, "expires_in")),
    );
    check(
        parse_create(b"{not json"),
        Err((StatusCode::BAD_REQUEST, "Invalid JSON")),
    );
}
