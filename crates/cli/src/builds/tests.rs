//! How builds are shown.

use chrono::TimeZone;
use slipway_api_types::{Build, Buildpack, IdRef, SourceBlob, UserRef};
use uuid::Uuid;

use super::*;

fn build(n: u128, status: &str, version: Option<&str>, buildpacks: &[&str]) -> Build {
    Build {
        app: IdRef {
            id: Uuid::from_u128(1),
        },
        buildpacks: Some(
            buildpacks
                .iter()
                .map(|b| Buildpack {
                    url: b.to_string(),
                    name: Some(b.to_string()),
                })
                .collect(),
        ),
        created_at: chrono::Utc
            .with_ymd_and_hms(2026, 11, 29, 6, n as u32, 0)
            .unwrap(),
        generation: "cedar".into(),
        id: Uuid::from_u128(n),
        output_stream_url: format!("https://api.example/build-outputs/secret{n}"),
        source_blob: SourceBlob {
            checksum: None,
            url: "https://api.example/myapp.git".into(),
            version: version.map(str::to_owned),
            version_description: None,
        },
        release: None,
        slug: None,
        stack: "heroku-24".into(),
        status: serde_json::from_value(serde_json::Value::String(status.into())).unwrap(),
        updated_at: chrono::Utc
            .with_ymd_and_hms(2026, 11, 29, 6, n as u32, 30)
            .unwrap(),
        user: UserRef {
            id: Uuid::from_u128(9),
            email: "dev@example.com".into(),
        },
    }
}

#[test]
fn lists_show_one_line_per_build() {
    assert_eq!(format_list("myapp", &[]), "myapp has no builds.\n");
    assert_eq!(
        format_list(
            "myapp",
            &[
                build(2, "failed", None, &[]),
                build(1, "succeeded", Some("abc1234"), &[])
            ]
        ),
        "=== myapp Builds\n\n\
         00000000-0000-0000-0000-000000000002  2026-11-29T06:02:00Z  failed  dev@example.com  -\n\
         00000000-0000-0000-0000-000000000001  2026-11-29T06:01:00Z  succeeded  dev@example.com  abc1234\n"
    );
}

#[test]
fn info_shows_every_field_but_the_output_secret() {
    let shown = format_info(
        "myapp",
        &build(
            3,
            "succeeded",
            Some("abc1234"),
            &["heroku/nodejs", "https://example.com/bp.git#v1"],
        ),
    );
    assert_eq!(
        shown,
        "=== Build 00000000-0000-0000-0000-000000000003\n\n\
         App:            myapp\n\
         Status:         succeeded\n\
         Created At:     2026-11-29T06:03:00Z\n\
         User:           dev@example.com\n\
         Source Version: abc1234\n\
         Stack:          heroku-24\n\
         Buildpacks:     heroku/nodejs, https://example.com/bp.git#v1\n\
         Release:        -\n\
         Slug:           -\n"
    );
    assert!(!shown.contains("secret3"));
    assert!(format_info("myapp", &build(4, "pending", None, &[]))
        .contains("Buildpacks:     (detected)"));
}
