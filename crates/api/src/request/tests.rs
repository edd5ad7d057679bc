//! What handlers read from requests alike: app names in paths, JSON bodies, SSE headers.

use axum::http::{HeaderMap, HeaderValue, StatusCode};

use super::*;

#[derive(Debug, PartialEq, serde::Deserialize)]
struct Example {
    #[serde(default)]
    name: Option<String>,
}

#[test]
fn apps_are_named_by_name_or_id() {
    for (app, found) in [
        ("my-app", true),
        ("5f2b8d3e-0c3a-4b8e-9d6c-2a1f0e7b9c41", true),
        ("My App", false),
        ("../etc", false),
        ("", false),
    ] {
        let result = parse_app(app.to_owned());
        assert_eq!(result.is_ok(), found, "{app:?}");
        if let Err(error) = result {
            assert_eq!(error.status, StatusCode::NOT_FOUND, "{app:?}");
        }
    }
}

#[test]
fn an_empty_body_takes_the_defaults() {
    for body in ["", "  \n"] {
        let parsed: Example = parse_body(body.as_bytes()).expect("defaults");
        assert_eq!(parsed, Example { name: None }, "{body:?}");
    }
    let parsed: Example = parse_body(br#"{"name": "web"}"#).expect("a body");
    assert_eq!(parsed.name.as_deref(), Some("web"));
    let error = parse_body::<Example>(b"{").expect_err("not JSON");
    assert_eq!(error.status, StatusCode::BAD_REQUEST);
    assert!(error
        .message
        .starts_with("Invalid JSON in the request body: "));
}

#[test]
fn a_bad_required_body_is_answered_with_an_example() {
    let example = r#"{"hostname": "www.example.com"}"#;
    for body in ["", "{}", "[1]"] {
        let error = parse_body_like::<slipway_api_types::DomainCreate>(body.as_bytes(), example)
            .expect_err(body);
        assert_eq!(error.status, StatusCode::BAD_REQUEST, "{body:?}");
        assert!(
            error
                .message
                .starts_with(r#"Expected a body like {"hostname": "www.example.com"}: "#),
            "{body:?}: {}",
            error.message
        );
        assert!(error.message.ends_with('.'), "{}", error.message);
    }
}

#[test]
fn streaming_clients_say_what_they_want() {
    let mut headers = HeaderMap::new();
    assert!(!wants_event_stream(&headers));
    assert_eq!(last_event_id(&headers), None);
    headers.insert("accept", HeaderValue::from_static("text/event-stream"));
    headers.insert("last-event-id", HeaderValue::from_static(" 41 "));
    assert!(wants_event_stream(&headers));
    assert_eq!(last_event_id(&headers), Some(41));
    headers.insert("last-event-id", HeaderValue::from_static("yesterday"));
    assert_eq!(last_event_id(&headers), None);
}

#[test]
fn find_named_takes_the_first_match_or_answers_heroku_s_404() {
    let items = ["web.1", "web.2", "worker.1"];
    assert_eq!(
        find_named(items, "dyno", |d| d.starts_with("web")).ok(),
        Some("web.1")
    );
    let missing = find_named(items, "dyno", |d| *d == "web.3").unwrap_err();
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.id, "not_found");
    assert_eq!(missing.message, "Couldn't find that dyno.");
}
