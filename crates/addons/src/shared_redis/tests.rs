//! Admin URLs parse, and the rules confine a user to its prefix with the escaping commands
//! denied.

use super::*;

#[test]
fn admin_urls() {
    let admin = RedisAdmin::parse("redis://admin:p%40ss@10.0.0.5:6380").unwrap();
    assert_eq!(admin.host, "10.0.0.5");
    assert_eq!(admin.port, 6380);
    assert_eq!(admin.user.as_deref(), Some("admin"));
    assert_eq!(admin.password.as_deref(), Some("p@ss"));
    assert!(!format!("{admin:?}").contains("p@ss"));
    let admin = RedisAdmin::parse("redis://:secret@localhost").unwrap();
    assert_eq!((admin.user, admin.port), (None, 6379));
    assert_eq!(
        RedisAdmin::parse("redis://[::1]:7000/0")
            .unwrap()
            .url("redis_a_1", "pw"),
        "redis://redis_a_1:pw@[::1]:7000"
    );
    for bad in ["rediss://h", "http://h", "redis://h/3", "not a url"] {
        let err = RedisAdmin::parse(bad).unwrap_err();
        assert!(matches!(err, AddonsError::BadAdminUrl(_)), "{bad}: {err}");
    }
}

#[test]
fn rules_confine_to_the_prefix() {
    let rules = acl_rules("redis_a_1");
    assert_eq!(rules[0], "reset", "rules must start from nothing");
    for needle in [
        "~redis_a_1:*",
        "&redis_a_1:*",
        "-@dangerous",
        "-@scripting",
        "-select",
        "-scan",
        "-client",
        "-reset",
    ] {
        assert!(rules.iter().any(|r| r == needle), "{needle} missing");
    }
    // No rule widens the key or channel patterns.
    assert!(!rules
        .iter()
        .any(|r| r == "~*" || r == "&*" || r == "allkeys"));
    assert!(!rules.iter().any(|r| r.starts_with('>') || r == "nopass"));
}
