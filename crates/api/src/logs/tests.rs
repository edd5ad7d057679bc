//! Table tests of the log session parser: defaults, filters and the bounds on `lines`.

use axum::http::StatusCode;

use super::*;

fn check(body: &str, expected: Result<SessionRequest, (StatusCode, &str)>) {
    match (parse_create_session(body.as_bytes()), expected) {
        (Ok(request), Ok(expected)) => assert_eq!(request, expected, "{body}"),
        (Err(error), Err((status, message))) => {
            assert_eq!(error.status, status, "{body}: {}", error.message);
            assert!(error.message.contains(message), "{}", error.message);
        }
        (parsed, expected) => panic!("{body}: parsed {parsed:?}, expected {expected:?}"),
    }
}

fn session(
    source: Option<Source>,
    process: Option<&str>,
    lines: usize,
    tail: bool,
) -> SessionRequest {
    SessionRequest {
        filter: LogFilter {
            source,
            process: process.map(str::to_owned),
        },
        lines,
        tail,
    }
}

#[test]
fn log_sessions() {
    check("", Ok(session(None, None, DEFAULT_LINES, false)));
    check(
        r#"{"lines": 5, "tail": true, "source": "app", "dyno": "web.1"}"#,
        Ok(session(Source::parse("app"), Some("web.1"), 5, true)),
    );
    check(
        r#"{"source": "", "type": "worker", "lines": 0}"#,
        Ok(session(None, Some("worker"), 0, false)),
    );
    check(
        r#"{"lines": 1501}"#,
        Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            "lines must be between 0 and 1500",
        )),
    );
    check(
        r#"{"lines": -1}"#,
        Err((StatusCode::UNPROCESSABLE_ENTITY, "lines must be between")),
    );
    check(
        r#"{"source": "router"}"#,
        Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            "Unknown log source \"router\"",
        )),
    );
    check("{", Err((StatusCode::BAD_REQUEST, "Invalid JSON")));
}
