//! The pure parsers of the admin and callback endpoints.

use super::*;

#[test]
fn register_takes_the_manifest_and_an_optional_timeout() {
    let command =
        parse_register(br#"{"manifest": {"id": "fast-db"}, "timeout_ms": 1500}"#).expect("parsed");
    let Command::RegisterAddonService {
        manifest,
        timeout_ms,
    } = command
    else {
        panic!("wrong command: {command:?}");
    };
    assert_eq!(manifest, br#"{"id":"fast-db"}"#);
    assert_eq!(timeout_ms, Some(1500));
    assert!(parse_register(b"[]").is_err());
    assert!(parse_register(&vec![b' '; 2 * MAX_MANIFEST_BYTES + 1]).is_err());
}

#[test]
fn config_updates_are_wrapped_or_bare_and_never_unset() {
    let wrapped =
        parse_config_update(br#"{"config": [{"name": "A_URL", "value": "x"}]}"#).expect("wrapped");
    let bare = parse_config_update(br#"[{"name": "A_URL", "value": "x"}]"#).expect("bare");
    assert_eq!(wrapped, bare);
    assert_eq!(wrapped.get("A_URL").map(String::as_str), Some("x"));
    let unset =
        parse_config_update(br#"[{"name": "A_URL", "value": null}]"#).expect_err("unset refused");
    assert_eq!(unset.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(parse_config_update(b"{\"config\": 3}").is_err());
}

#[test]
fn only_administrators_manage_services() {
    let mut user = slipway_core::model::User {
        id: uuid::Uuid::nil(),
        email: "dev@example.com".into(),
        created_at: chrono::Utc::now(),
        admin: false,
    };
    let refused = forbidden_unless_admin(&user).expect_err("not an admin");
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.message.contains("Only an administrator"));
    user.admin = true;
    assert!(forbidden_unless_admin(&user).is_ok());
}
