//! Round-trips every wire type through the example JSON of the Heroku platform API schema.
//!
//! The fixtures in `tests/fixtures/` were generated from the `example` values of
//! `/work/shared/heroku-platform-api-schema.json` (one object per resource or request
//! schema). Each must deserialize into its type and serialize back to the same JSON, which
//! proves that field names, nesting and nullability match the schema.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use slipway_api_types::*;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {path}: {e}"))
}

fn round_trip<T: Serialize + DeserializeOwned>(name: &str) -> T {
    let original = fixture(name);
    let typed: T = serde_json::from_value(original.clone())
        .unwrap_or_else(|e| panic!("fixture {name} does not deserialize: {e}"));
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(back, original, "fixture {name} changed in the round trip");
    typed
}

#[test]
fn resources_round_trip() {
    let app: App = round_trip("app");
    assert_eq!(app.name, "example");
    let release: Release = round_trip("release");
    assert_eq!(release.status, ReleaseStatus::Succeeded);
    let formation: Formation = round_trip("formation");
    assert_eq!(formation.process_type, "web");
    let dyno: Dyno = round_trip("dyno");
    assert_eq!(dyno.state, DynoState::Up);
    round_trip::<LogSession>("log-session");
    round_trip::<Account>("account");
    let build: Build = round_trip("build");
    assert_eq!(build.status, BuildStatus::Succeeded);
    round_trip::<Slug>("slug");
    round_trip::<LogDrain>("log-drain");
    let domain: Domain = round_trip("domain");
    assert_eq!(domain.kind, DomainKind::Custom);
}

#[test]
fn requests_round_trip() {
    round_trip::<AppCreate>("app-create");
    round_trip::<ReleaseCreate>("release-create");
    let rollback: ReleaseCreate = round_trip("release-rollback");
    assert!(rollback.release.is_some() && rollback.slug.is_none());
    let batch: FormationBatchUpdate = round_trip("formation-batch-update");
    assert_eq!(
        batch.updates[0].quantity,
        Some(FormationQuantity::Absolute(1))
    );
    round_trip::<FormationUpdate>("formation-update");
    round_trip::<LogSessionCreate>("log-session-create");
    round_trip::<BuildCreate>("build-create");
    round_trip::<ConfigVars>("config-vars-update");
}

#[test]
fn nullable_response_fields_serialize_as_null() {
    let mut app: App = serde_json::from_value(fixture("app")).unwrap();
    app.team = None;
    app.organization = None;
    app.space = None;
    app.repo_size = None;
    app.slug_size = None;
    app.released_at = None;
    let json = serde_json::to_value(&app).unwrap();
    for key in [
        "team",
        "organization",
        "space",
        "repo_size",
        "slug_size",
        "released_at",
    ] {
        assert_eq!(json.get(key), Some(&Value::Null), "app.{key}");
    }
    let mut release: Release = serde_json::from_value(fixture("release")).unwrap();
    release.slug = None;
    release.output_stream_url = None;
    let json = serde_json::to_value(&release).unwrap();
    assert_eq!(json.get("slug"), Some(&Value::Null));
    assert_eq!(json.get("output_stream_url"), Some(&Value::Null));
}

/// Request bodies as the real heroku CLI sends them (heroku-cli.md §b).
#[test]
fn heroku_cli_request_bodies() {
    let create: AppCreate = serde_json::from_str("{}").unwrap();
    assert_eq!(create, AppCreate::default());
    assert_eq!(serde_json::to_string(&create).unwrap(), "{}");

    let scale: FormationBatchUpdate = serde_json::from_str(
        r#"{"updates":[{"quantity":"2","type":"web"},{"quantity":"+1","size":"Standard-2X","type":"worker"}]}"#,
    )
    .unwrap();
    assert_eq!(
        scale.updates[0].quantity,
        Some(FormationQuantity::Absolute(2))
    );
    assert_eq!(
        scale.updates[1].quantity,
        Some(FormationQuantity::Relative(1))
    );
    assert_eq!(scale.updates[1].requested_size(), Some("Standard-2X"));

    let logs: LogSessionCreate =
        serde_json::from_str(r#"{"lines":100,"tail":true,"dyno":"web.1","source":"app"}"#).unwrap();
    assert_eq!(logs.dyno_name.as_deref(), Some("web.1"));
    assert_eq!(logs.tail, Some(true));
    assert_eq!(logs.lines, Some(100));

    let unset: ConfigVarsUpdate = serde_json::from_str(r#"{"FOO":null,"BAR":"baz"}"#).unwrap();
    assert_eq!(unset.get("FOO"), Some(&None));
    assert_eq!(unset.get("BAR"), Some(&Some("baz".to_owned())));

    let rollback: ReleaseCreate =
        serde_json::from_str(r#"{"release":"01234567-89ab-cdef-0123-456789abcdef"}"#).unwrap();
    assert_eq!(
        serde_json::to_string(&rollback).unwrap(),
        r#"{"release":"01234567-89ab-cdef-0123-456789abcdef"}"#
    );
}

#[test]
fn error_body_shape() {
    let body = ErrorBody::new("not_found", "Couldn't find that app.");
    assert_eq!(
        serde_json::to_string(&body).unwrap(),
        r#"{"id":"not_found","message":"Couldn't find that app."}"#
    );
    let parsed: ErrorBody =
        serde_json::from_str(r#"{"id":"x","message":"y","url":"https://devcenter"}"#).unwrap();
    assert_eq!(parsed.url.as_deref(), Some("https://devcenter"));
}

/// Parses `json` as a `T`, checks it serializes back to exactly `json`, and returns it.
fn exact<T: Serialize + DeserializeOwned>(json: Value) -> T {
    let typed: T = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(serde_json::to_value(&typed).unwrap(), json);
    typed
}

#[test]
fn optional_request_fields_may_be_left_out_and_are_not_written_when_absent() {
    use serde_json::json;
    assert_eq!(
        exact::<FormationUpdate>(json!({})),
        FormationUpdate::default()
    );
    let item: FormationUpdateItem = exact(json!({"type": "web"}));
    assert!(item.quantity.is_none() && item.size.is_none() && item.dyno_size.is_none());
    assert_eq!(
        exact::<FormationUpdate>(json!({"dyno_size": {"name": "basic"}})).requested_size(),
        Some("basic")
    );
    assert_eq!(
        exact::<LogSessionCreate>(json!({})),
        LogSessionCreate::default()
    );
    assert_eq!(exact::<ReleaseCreate>(json!({})), ReleaseCreate::default());
    let slug: SlugCreate = exact(json!({"process_types": {}}));
    assert_eq!(slug, SlugCreate::default());
    let dyno: DynoCreate = exact(json!({"command": "bash"}));
    assert!(dyno.attach.is_none() && dyno.env.is_none() && dyno.process_type.is_none());
    let build: BuildCreate = exact(json!({"source_blob": {
        "checksum": null, "url": "https://example.com/s.tgz", "version": null,
        "version_description": null
    }}));
    assert!(build.buildpacks.is_none());
    // The CLI's spelling of the dyno filter is still read, and written back as the schema's.
    let logs: LogSessionCreate = serde_json::from_value(json!({"dyno": "web.1"})).unwrap();
    assert_eq!(
        serde_json::to_value(&logs).unwrap(),
        json!({"dyno_name": "web.1"})
    );
    // Required fields stay required.
    assert!(serde_json::from_value::<FormationUpdateItem>(json!({"quantity": 1})).is_err());
    assert!(serde_json::from_value::<SlugCreate>(json!({})).is_err());
}
