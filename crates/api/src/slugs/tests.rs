//! Table tests of the slug declaration parser.

use axum::http::StatusCode;
use slipway_core::{Command, NewSlug};

use super::*;

#[test]
fn declaring_slugs() {
    let parsed = parse_create(
        "demo".into(),
        br#"{"process_types": {"web": "./serve"}, "commit": "abc", "checksum": "SHA256:00",
             "stack": "heroku-24", "buildpack_provided_description": "Go"}"#,
    )
    .unwrap();
    assert_eq!(
        parsed,
        Command::DeclareSlug {
            app: "demo".into(),
            slug: NewSlug {
                process_types: [("web".to_owned(), "./serve".to_owned())].into(),
                commit: Some("abc".into()),
                checksum: Some("SHA256:00".into()),
                stack: Some("heroku-24".into()),
                buildpack_description: Some("Go".into()),
            },
        }
    );
    for (app, body, status, message) in [
        (
            "demo",
            "{}",
            StatusCode::BAD_REQUEST,
            "missing field `process_types`",
        ),
        (
            "demo",
            r#"{"process_types": []}"#,
            StatusCode::BAD_REQUEST,
            "Invalid JSON",
        ),
        (
            "Demo",
            r#"{"process_types": {}}"#,
            StatusCode::NOT_FOUND,
            "Couldn't find that app.",
        ),
    ] {
        let error = parse_create(app.into(), body.as_bytes()).unwrap_err();
        assert_eq!(error.status, status, "{}", error.message);
        assert!(error.message.contains(message), "{}", error.message);
    }
}
