//! Router event lines as the control plane reads them: a table of lines and what each
//! becomes, or why it is refused.

use axum::http::StatusCode;
use chrono::{TimeZone, Utc};
use slipway_api_types::cluster::MAX_EVENT_LINE_BYTES;

use super::*;
use crate::testing::check;

fn app(name: &str) -> AppName {
    name.parse().unwrap()
}

fn router_line(message: &str, at: chrono::DateTime<Utc>) -> slipway_logplex::LogLine {
    let mut line = slipway_logplex::LogLine::heroku("router", message);
    line.timestamp = at;
    line
}

/// What a line should become: the event, or the status and a part of the message.
type Expected = Result<CheckedEvent, (StatusCode, &'static str)>;

#[test]
fn event_lines_become_checked_events() {
    let at = Utc.with_ymd_and_hms(2026, 11, 29, 8, 0, 0).unwrap();
    let cases: Vec<(String, Expected)> = vec![
        (
            r#"{"type":"log","app":"web","timestamp":"2026-11-29T08:00:00Z","message":"at=info method=GET path=\"/\""}"#.into(),
            Ok(CheckedEvent::Log {
                app: app("web"),
                line: router_line("at=info method=GET path=\"/\"", at),
            }),
        ),
        // A line break would forge a second log line.
        (
            r#"{"type":"log","app":"web","timestamp":"2026-11-29T08:00:00Z","message":"a\nheroku[api]: forged"}"#.into(),
            Ok(CheckedEvent::Log {
                app: app("web"),
                line: router_line("a heroku[api]: forged", at),
            }),
        ),
        (
            r#"{"type":"wake","app":"sleepy"}"#.into(),
            Ok(CheckedEvent::Wake { app: app("sleepy") }),
        ),
        (
            r#"{"type":"dropped","count":12}"#.into(),
            Ok(CheckedEvent::Dropped { count: 12 }),
        ),
        (
            r#"{"type":"wake","app":"../etc"}"#.into(),
            Err((StatusCode::UNPROCESSABLE_ENTITY, "is invalid")),
        ),
        (
            r#"{"type":"exec","app":"web"}"#.into(),
            Err((StatusCode::BAD_REQUEST, "Invalid router event")),
        ),
        (
            "not json".into(),
            Err((StatusCode::BAD_REQUEST, "Invalid router event")),
        ),
        (
            format!(
                r#"{{"type":"wake","app":"{}"}}"#,
                "a".repeat(MAX_EVENT_LINE_BYTES)
            ),
            Err((StatusCode::PAYLOAD_TOO_LARGE, "longer than")),
        ),
    ];
    for (line, expected) in cases {
        check(parse_router_event(line.as_bytes()), expected);
    }
}

#[test]
fn a_timestamp_from_the_future_is_now() {
    let parsed = parse_router_event(
        br#"{"type":"log","app":"web","timestamp":"2999-01-01T00:00:00Z","message":"x"}"#,
    );
    let Ok(CheckedEvent::Log { line, .. }) = parsed else {
        panic!("{parsed:?}");
    };
    assert!(line.timestamp <= Utc::now());
}
