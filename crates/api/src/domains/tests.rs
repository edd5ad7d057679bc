//! Table tests of the domain and app-update parsers.

use axum::http::StatusCode;
use slipway_core::{AppChanges, Command};

use super::*;
use crate::testing::check;

#[test]
fn adding_and_removing_domains() {
    check(
        parse_create("demo".into(), br#"{"hostname": "www.example.com"}"#),
        Ok(Command::AddDomain {
            app: "demo".into(),
            hostname: "www.example.com".into(),
        }),
    );
    check(
        parse_create("demo".into(), b"{}"),
        Err((
            StatusCode::BAD_REQUEST,
            "Expected a body like {\"hostname\"",
        )),
    );
    check(
        parse_create("demo".into(), b""),
        Err((StatusCode::BAD_REQUEST, "Expected a body like")),
    );
    check(
        parse_create("-demo".into(), br#"{"hostname": "www.example.com"}"#),
        Err((StatusCode::NOT_FOUND, "Couldn't find that app.")),
    );
    check(
        parse_delete("demo".into(), "www.example.com".into()),
        Ok(Command::RemoveDomain {
            app: "demo".into(),
            domain: "www.example.com".into(),
        }),
    );
}

#[test]
fn app_updates() {
    let update = |changes| {
        Ok(Command::UpdateApp {
            app: "demo".into(),
            changes,
        })
    };
    for (body, expected) in [
        (
            r#"{"maintenance": true}"#,
            update(AppChanges {
                maintenance: Some(true),
                ..AppChanges::default()
            }),
        ),
        // The core refuses another name or stack: it knows the app's own.
        (
            r#"{"name": "other", "build_stack": "heroku-22", "maintenance": false}"#,
            update(AppChanges {
                maintenance: Some(false),
                name: Some("other".into()),
                stack: Some("heroku-22".into()),
            }),
        ),
        ("{}", update(AppChanges::default())),
        (
            r#"{"maintenance": "yes"}"#,
            Err((
                StatusCode::BAD_REQUEST,
                "Expected a body like {\"maintenance\": true}",
            )),
        ),
    ] {
        check(parse_update_app("demo".into(), body.as_bytes()), expected);
    }
}
