//! Table tests of the build parser: only http(s) source URLs, buildpacks by name or URL.

use axum::http::StatusCode;
use slipway_core::{Command, SourceBlob};

use super::*;
use crate::testing::check;

#[test]
fn create_build() {
    let build = |url: &str, checksum: Option<&str>, version: Option<&str>, buildpacks: &[&str]| {
        Ok(Command::CreateBuild {
            app: "demo".into(),
            source: SourceBlob {
                url: url.into(),
                checksum: checksum.map(str::to_owned),
                version: version.map(str::to_owned),
            },
            buildpacks: buildpacks.iter().map(|b| (*b).to_owned()).collect(),
        })
    };
    for (body, expected) in [
        (
            r#"{"source_blob": {"url": "https://example.com/app.tgz"}}"#,
            build("https://example.com/app.tgz", None, None, &[]),
        ),
        (
            r#"{"source_blob": {"url": "http://example.com/a.tgz", "checksum": "SHA256:ab", "version": "v1"},
                "buildpacks": [{"url": "heroku/python"}, {"url": "https://x", "name": "heroku/nodejs"}, {"url": "heroku/procfile", "name": ""}]}"#,
            build(
                "http://example.com/a.tgz",
                Some("SHA256:ab"),
                Some("v1"),
                &["heroku/python", "heroku/nodejs", "heroku/procfile"],
            ),
        ),
        (
            r#"{"source_blob": {"url": "file:///etc/passwd"}}"#,
            Err((
                StatusCode::UNPROCESSABLE_ENTITY,
                "source_blob.url \"file:///etc/passwd\" is not an http:// or https:// URL",
            )),
        ),
        (
            r#"{"source_blob": {"url": "not a url"}}"#,
            Err((
                StatusCode::UNPROCESSABLE_ENTITY,
                "is not an http:// or https:// URL",
            )),
        ),
        (
            r#"{"source_blob": {}}"#,
            Err((StatusCode::BAD_REQUEST, "Invalid JSON in the request body")),
        ),
        (
            "",
            Err((StatusCode::BAD_REQUEST, "missing field `source_blob`")),
        ),
    ] {
        check(parse_create("demo".into(), body.as_bytes()), expected);
    }
}
