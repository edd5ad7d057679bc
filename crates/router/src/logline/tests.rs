//! Tests of the router's log lines and H codes.

use super::*;

fn base() -> RequestLog {
    RequestLog {
        code: None,
        method: "GET".into(),
        path: "/".into(),
        host: "demo.localhost".into(),
        request_id: "5b7f9b3c-0000-4000-8000-000000000001".into(),
        fwd: "127.0.0.1".into(),
        dyno: Some("web.1".into()),
        connect: Some(Duration::from_micros(400)),
        service: Some(Duration::from_millis(3)),
        status: 200,
        bytes: 13,
        protocol: "http",
    }
}

#[test]
fn log_line_table() {
    let cases: Vec<(RequestLog, &str)> = vec![
        (
            base(),
            r#"at=info method=GET path="/" host=demo.localhost request_id=5b7f9b3c-0000-4000-8000-000000000001 fwd="127.0.0.1" dyno=web.1 connect=0ms service=3ms status=200 bytes=13 protocol=http"#,
        ),
        (
            RequestLog {
                code: Some(ErrorCode::H12),
                service: Some(Duration::from_millis(30_000)),
                status: 503,
                bytes: 0,
                ..base()
            },
            r#"at=error code=H12 desc="Request timeout" method=GET path="/" host=demo.localhost request_id=5b7f9b3c-0000-4000-8000-000000000001 fwd="127.0.0.1" dyno=web.1 connect=0ms service=30000ms status=503 bytes=0 protocol=http"#,
        ),
        (
            RequestLog {
                code: Some(ErrorCode::H10),
                method: "POST".into(),
                path: "/a?b=\"c\"".into(),
                fwd: "10.0.0.1, 127.0.0.1".into(),
                dyno: None,
                connect: None,
                service: None,
                status: 503,
                bytes: 0,
                ..base()
            },
            r#"at=error code=H10 desc="App crashed" method=POST path="/a?b=\"c\"" host=demo.localhost request_id=5b7f9b3c-0000-4000-8000-000000000001 fwd="10.0.0.1, 127.0.0.1" dyno= connect= service= status=503 bytes=0 protocol=http"#,
        ),
        (
            RequestLog {
                code: Some(ErrorCode::H80),
                dyno: None,
                connect: None,
                service: None,
                status: 503,
                bytes: 0,
                ..base()
            },
            r#"at=info code=H80 desc="Maintenance mode" method=GET path="/" host=demo.localhost request_id=5b7f9b3c-0000-4000-8000-000000000001 fwd="127.0.0.1" dyno= connect= service= status=503 bytes=0 protocol=http"#,
        ),
        (
            RequestLog {
                code: Some(ErrorCode::H18),
                bytes: 4096,
                ..base()
            },
            r#"at=error sock=backend code=H18 desc="Server Request Interrupted" method=GET path="/" host=demo.localhost request_id=5b7f9b3c-0000-4000-8000-000000000001 fwd="127.0.0.1" dyno=web.1 connect=0ms service=3ms status=200 bytes=4096 protocol=http"#,
        ),
        (
            RequestLog {
                method: "GE T".into(),
                host: "evil host".into(),
                path: "/\n".into(),
                ..base()
            },
            r#"at=info method=GE_T path="/\x0a" host=evil_host request_id=5b7f9b3c-0000-4000-8000-000000000001 fwd="127.0.0.1" dyno=web.1 connect=0ms service=3ms status=200 bytes=13 protocol=http"#,
        ),
    ];
    for (entry, expected) in cases {
        let https = RequestLog {
            protocol: "https",
            ..entry.clone()
        };
        assert_eq!(
            format_request_log(&https),
            expected.replace(" protocol=http", " protocol=https")
        );
        assert_eq!(format_request_log(&entry), expected);
    }
}

#[test]
fn every_code_has_a_desc_and_level() {
    let table = [
        (ErrorCode::H10, "at=error", "App crashed"),
        (ErrorCode::H12, "at=error", "Request timeout"),
        (
            ErrorCode::H13,
            "at=error",
            "Connection closed without response",
        ),
        (ErrorCode::H14, "at=error", "No web dynos running"),
        (ErrorCode::H15, "at=error", "Idle connection"),
        (ErrorCode::H18, "at=error", "Server Request Interrupted"),
        (ErrorCode::H27, "at=warning", "Client Request Interrupted"),
        (ErrorCode::H19, "at=error", "Backend connection timeout"),
        (ErrorCode::H21, "at=error", "Backend connection refused"),
        (ErrorCode::H80, "at=info", "Maintenance mode"),
        (ErrorCode::H81, "at=info", "Blank app"),
    ];
    for (code, at, desc) in table {
        let line = format_request_log(&RequestLog {
            code: Some(code),
            ..base()
        });
        assert!(line.starts_with(at), "{line}");
        assert!(line.contains(&format!("code={} desc=\"{desc}\"", code.as_str())));
    }
}
