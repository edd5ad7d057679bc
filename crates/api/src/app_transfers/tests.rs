//! `POST /account/app-transfers` bodies as the heroku CLI and others send them, and the bad
//! ones refused before anything runs.

use axum::http::StatusCode;
use slipway_core::Command;

use super::parse_create;
use crate::testing::check;

fn transfer(app: &str, recipient: &str) -> (String, Command) {
    (
        app.to_owned(),
        Command::TransferApp {
            app: app.into(),
            recipient: recipient.into(),
        },
    )
}

#[test]
fn parses_transfer_requests() {
    // What `heroku apps:transfer new@example.com -a demo` sends.
    check(
        parse_create(br#"{"app": "demo", "recipient": "new@example.com"}"#),
        Ok(transfer("demo", "new@example.com")),
    );
    check(
        parse_create(
            br#"{"app": {"name": "demo"}, "recipient": {"email": " new@example.com "}, "silent": true}"#,
        ),
        Ok(transfer("demo", "new@example.com")),
    );
    let cases: [(&[u8], StatusCode, &str); 5] = [
        (
            br#"{"app": "demo", "recipient": "  "}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "recipient",
        ),
        (br#"{"app": "demo"}"#, StatusCode::BAD_REQUEST, "recipient"),
        (
            br#"{"app": "../etc", "recipient": "a@b.c"}"#,
            StatusCode::NOT_FOUND,
            "Couldn't find that app",
        ),
        (
            br#"{"app": {}, "recipient": "a@b.c"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "app",
        ),
        (b"[1]", StatusCode::BAD_REQUEST, "new-owner@example.com"),
    ];
    for (body, status, message) in cases {
        check(parse_create(body), Err((status, message)));
    }
}
