//! Table tests of the log drain parsers.

use axum::http::StatusCode;
use slipway_core::Command;

use super::*;
use crate::testing::check;

#[test]
fn adding_and_removing_drains() {
    check(
        parse_create(
            "demo".into(),
            br#"{"url": "syslog+tls://logs.example.com:6514"}"#,
        ),
        Ok(Command::AddDrain {
            app: "demo".into(),
            url: "syslog+tls://logs.example.com:6514".into(),
        }),
    );
    check(
        parse_create("demo".into(), br#"{"uri": "x"}"#),
        Err((StatusCode::BAD_REQUEST, "Expected a body like {\"url\"")),
    );
    check(
        parse_create("NO".into(), br#"{"url": "https://x.example"}"#),
        Err((StatusCode::NOT_FOUND, "Couldn't find that app.")),
    );
    check(
        parse_delete("demo".into(), "d.1234".into()),
        Ok(Command::RemoveDrain {
            app: "demo".into(),
            drain: "d.1234".into(),
        }),
    );
}
