//! Manifest validation as a table of hostile cases, and the checks on what providers return.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use super::*;

fn manifest() -> Value {
    json!({
        "id": "fast-db",
        "name": "Fast DB",
        "api": {
            "config_vars": ["FAST_DB_URL", "FAST_DB_TOKEN"],
            "password": "s3cret-partner-password",
            "sso_salt": "salty",
            "production": {
                "base_url": "https://fast-db.example.com/heroku/resources",
                "sso_url": "https://fast-db.example.com/sso"
            },
            "requires": ["log_input"],
            "version": "3",
            "unknown_field": {"is": "accepted"}
        },
        "plans": [{"id": "test", "name": "Test"}, {"id": "pro", "price": {"cents": 900, "unit": "month"}, "default": true}]
    })
}

fn parse(value: &Value) -> Result<PartnerService, ManifestError> {
    parse_manifest(value.to_string().as_bytes(), false, None)
}

/// `edit` changes the good manifest; the result must be refused with a reason containing
/// `expected`.
fn check_refused(edit: impl FnOnce(&mut Value), expected: &str) {
    let mut value = manifest();
    edit(&mut value);
    match parse(&value) {
        Ok(service) => panic!("accepted {value}: {service:?}"),
        Err(error) => {
            let message = error.to_string();
            assert!(
                message.contains(expected),
                "{message:?} should contain {expected:?}"
            );
            assert!(
                !message.contains("s3cret-partner-password"),
                "the password leaked: {message}"
            );
        }
    }
}

#[test]
fn a_good_manifest_is_accepted_with_the_default_plan_first() {
    let service = parse(&manifest()).expect("valid");
    assert_eq!(service.name, "fast-db");
    assert_eq!(service.human_name, "Fast DB");
    assert_eq!(service.prefix, "FAST_DB");
    assert_eq!(service.config_vars, ["FAST_DB_URL", "FAST_DB_TOKEN"]);
    assert_eq!(
        service.base_url,
        "https://fast-db.example.com/heroku/resources"
    );
    let plans: Vec<&str> = service.plans.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(plans, ["pro", "test"]);
    assert_eq!(service.plans[0].price_cents, 900);
    assert_eq!(service.plan(None).map(|p| p.name.as_str()), Some("pro"));
    assert_eq!(service.timeout(), DEFAULT_TIMEOUT);
    assert_eq!(service.provision_wait(), DEFAULT_PROVISION_WAIT);
    assert!(!format!("{service:?}").contains("s3cret"));
}

#[test]
fn the_provision_wait_is_the_manifests_within_bounds() {
    let mut value = manifest();
    value["provision_wait_seconds"] = json!(7);
    assert_eq!(
        parse(&value).expect("valid").provision_wait(),
        Duration::from_secs(7)
    );
    check_refused(
        |m| m["provision_wait_seconds"] = json!(0),
        "provision_wait_seconds must be between 1 and 1800",
    );
    check_refused(
        |m| m["provision_wait_seconds"] = json!(1801),
        "provision_wait_seconds must be between 1 and 1800",
    );
    // A record stored before the field existed reads with the default.
    let service = parse(&manifest()).expect("valid");
    let mut stored = serde_json::to_value(&service).expect("JSON");
    stored
        .as_object_mut()
        .map(|o| o.remove("provision_wait_ms"));
    let read: PartnerService = serde_json::from_value(stored).expect("old record");
    assert_eq!(read.provision_wait(), DEFAULT_PROVISION_WAIT);
}

#[test]
fn hostile_manifests_are_refused_with_a_reason() {
    check_refused(
        |m| m["id"] = json!("Fast_DB"),
        "id \"Fast_DB\" must be lowercase",
    );
    check_refused(|m| m["id"] = json!("heroku-postgresql"), "built-in service");
    check_refused(|m| m["id"] = json!("a".repeat(51)), "at most 50");
    check_refused(
        |m| {
            m.as_object_mut().map(|o| o.remove("id"));
        },
        "id is missing",
    );
    check_refused(|m| m["name"] = json!("bad\u{7}name"), "printable");
    check_refused(|m| m["api"]["version"] = json!("1"), "version \"3\"");
    check_refused(|m| m["api"]["config_vars"] = json!([]), "between 1 and 32");
    check_refused(
        |m| m["api"]["config_vars"] = json!(["OTHER_URL"]),
        "starting with FAST_DB_",
    );
    check_refused(
        |m| m["api"]["config_vars"] = json!(["FAST_DB_URL", "FAST_DB_URL"]),
        "twice",
    );
    check_refused(
        |m| m["api"]["config_vars_prefix"] = json!("lower"),
        "config_vars_prefix",
    );
    check_refused(|m| m["api"]["password"] = json!("short"), "8 to 256");
    check_refused(
        |m| {
            m["api"].as_object_mut().map(|o| o.remove("password"));
        },
        "password is missing",
    );
    check_refused(
        |m| m["api"]["production"]["base_url"] = json!("http://fast-db.example.com/"),
        "https://",
    );
    check_refused(
        |m| m["api"]["production"]["base_url"] = json!("ftp://fast-db.example.com/"),
        "https://",
    );
    check_refused(
        |m| m["api"]["production"]["base_url"] = json!("https://u:p@fast-db.example.com/"),
        "credentials",
    );
    check_refused(
        |m| m["api"]["production"]["base_url"] = json!("not a url"),
        "not a valid URL",
    );
    check_refused(
        |m| {
            m["api"]["production"]["base_url"] =
                json!(format!("https://x.example.com/{}", "a".repeat(3000)))
        },
        "longer than 2048",
    );
    check_refused(
        |m| m["api"]["production"]["sso_url"] = json!("javascript:alert(1)"),
        "sso_url",
    );
    check_refused(|m| m["plans"] = json!([]), "between 1 and 32 plans");
    check_refused(
        |m| m["plans"] = json!([{"id": "a"}, {"id": "a"}]),
        "listed twice",
    );
    check_refused(
        |m| m["plans"] = json!([{"id": "a", "default": true}, {"id": "b", "default": true}]),
        "only one plan",
    );
    check_refused(|m| m["plans"] = json!([{"id": "../x"}]), "a plan's id");
    check_refused(
        |m| m["api"]["requires"] = json!(vec!["x"; 11]),
        "at most 10",
    );
}

#[test]
fn size_syntax_and_timeout_are_capped() {
    let huge = vec![b' '; MAX_MANIFEST_BYTES + 1];
    let error = parse_manifest(&huge, false, None).expect_err("too big");
    assert!(
        error.to_string().contains("most accepted is 65536"),
        "{error}"
    );
    let error = parse_manifest(
        b"{\"api\": {\"password\": \"s3cret-partner-password\"",
        false,
        None,
    )
    .expect_err("truncated");
    assert!(error.to_string().contains("not a JSON object"), "{error}");
    assert!(!error.to_string().contains("s3cret"), "{error}");
    let bytes = manifest().to_string();
    assert!(parse_manifest(bytes.as_bytes(), false, Some(Duration::from_secs(26))).is_err());
    assert!(parse_manifest(bytes.as_bytes(), false, Some(Duration::ZERO)).is_err());
    let service =
        parse_manifest(bytes.as_bytes(), false, Some(Duration::from_millis(1500))).expect("ok");
    assert_eq!(service.timeout(), Duration::from_millis(1500));
}

#[test]
fn http_provider_urls_only_when_private_urls_are_allowed() {
    let mut value = manifest();
    value["api"]["production"]["base_url"] = json!("http://127.0.0.1:9000/resources/");
    assert!(parse_manifest(value.to_string().as_bytes(), false, None).is_err());
    let service = parse_manifest(value.to_string().as_bytes(), true, None).expect("allowed");
    assert_eq!(service.base_url, "http://127.0.0.1:9000/resources");
}

#[tokio::test]
async fn provider_urls_go_through_the_outbound_policy() {
    let mut value = manifest();
    value["api"]["production"]["base_url"] = json!("https://127.0.0.1:9000/resources");
    let service = parse(&value).expect("syntactically fine");
    let refused = service
        .check_urls(&OutboundPolicy::new(false))
        .await
        .expect_err("loopback is refused");
    assert!(refused.to_string().contains("refused"), "{refused}");
    service
        .check_urls(&OutboundPolicy::new(true))
        .await
        .expect("allowed when private URLs are");
}

#[test]
fn returned_config_must_be_declared_and_prefixed() {
    let service = parse(&manifest()).expect("valid");
    let ok = BTreeMap::from([("FAST_DB_URL".to_owned(), "https://x".to_owned())]);
    service.check_config(&ok).expect("declared");
    for name in ["DATABASE_URL", "FAST_DB_OTHER", "PATH"] {
        let bad = BTreeMap::from([(name.to_owned(), "v".to_owned())]);
        let error = service.check_config(&bad).expect_err(name).to_string();
        assert!(
            error.contains(name) && error.contains("does not allow"),
            "{error}"
        );
        assert!(!error.contains("\"v\""), "{error}");
    }
    let long = BTreeMap::from([("FAST_DB_URL".to_owned(), "x".repeat(MAX_VALUE_BYTES + 1))]);
    assert!(service.check_config(&long).is_err());
}

#[test]
fn config_is_read_as_an_object_or_a_list() {
    let object = parse_config("s", &json!({"A_URL": "x"})).expect("object");
    let list = parse_config("s", &json!([{"name": "A_URL", "value": "x"}])).expect("list");
    assert_eq!(object, list);
    assert!(parse_config("s", &json!({"A_URL": 1})).is_err());
    assert!(parse_config("s", &json!("A_URL=x")).is_err());
}

#[test]
fn provider_messages_are_cleaned_and_capped() {
    assert_eq!(clean_message("bad\nplan\u{1b}[31m", 100), "bad plan [31m");
    let long = clean_message(&"x".repeat(2000), MAX_MESSAGE_CHARS);
    assert_eq!(long.chars().count(), MAX_MESSAGE_CHARS + 1);
}
