//! The agents' requests, parsed without a server.

use super::*;

#[test]
fn bearer_tokens() {
    let check = |value: Option<&str>, expected: Option<&str>| {
        let mut headers = HeaderMap::new();
        if let Some(value) = value {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        assert_eq!(parse_bearer(&headers), expected, "{value:?}");
    };
    check(Some("Bearer abc"), Some("abc"));
    check(Some("Basic abc"), None);
    check(Some("bearer abc"), None);
    check(None, None);
}

#[test]
fn host_names_in_paths() {
    assert_eq!(parse_host("host-1").unwrap().as_str(), "host-1");
    for bad in ["", "Host", "../x", "a b", &"a".repeat(64)] {
        let error = parse_host(bad).unwrap_err();
        assert_eq!(error.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}");
        assert_eq!(error.id, "invalid_params");
    }
}

#[test]
fn sync_bodies() {
    let body = br#"{"session":"00000000-0000-0000-0000-000000000000","host":{"memory_mb":1024,"dyno_subnet":"10.1.0.0/24","address":"10.0.0.2"},"containers":[{"id":"c1","state":{"state":"running","pid":3,"address":null}}],"wait_ms":1000}"#;
    let (host, request) = parse_sync("a", body).unwrap();
    assert_eq!(host.as_str(), "a");
    assert_eq!(request.containers.len(), 1);
    assert_eq!(request.host.memory_mb, 1024);
    let error = parse_sync("a", b"{").unwrap_err();
    assert_eq!(error.status, StatusCode::BAD_REQUEST);
    assert!(
        error.message.starts_with("The sync request is not valid"),
        "{}",
        error.message
    );
    let error = parse_sync("a", br#"{"session":"x"}"#).unwrap_err();
    assert_eq!(error.id, "bad_request");
}

#[test]
fn log_bodies() {
    let (_, batch) = parse_logs(
        "a",
        br#"{"lines":[{"container":"c1","line":"hi"}],"dropped":{"c1":3}}"#,
    )
    .unwrap();
    assert_eq!(batch.lines[0].line, "hi");
    assert_eq!(batch.dropped.get("c1"), Some(&3));
    assert_eq!(
        parse_logs("a", b"[]").unwrap_err().status,
        StatusCode::BAD_REQUEST
    );
}
