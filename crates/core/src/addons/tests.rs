//! The pure rules of add-on records: default attachment names and name checks.

use super::*;

#[test]
fn default_attachment_names_follow_herokus() {
    let mut config = ConfigVars::new();
    let check = |config: &ConfigVars, service, want: &str| {
        assert_eq!(default_attachment_name(service, config), want);
    };
    check(&config, Service::Postgres, "DATABASE");
    check(&config, Service::Redis, "REDIS");
    config.insert("DATABASE_URL".into(), "x".into());
    check(&config, Service::Postgres, "HEROKU_POSTGRESQL_AMBER");
    config.insert("HEROKU_POSTGRESQL_AMBER_URL".into(), "x".into());
    check(&config, Service::Postgres, "HEROKU_POSTGRESQL_AQUA");
    config.insert("REDIS_URL".into(), "x".into());
    check(&config, Service::Redis, "HEROKU_REDIS_AMBER");
}

#[test]
fn names_are_checked() {
    for ok in ["DATABASE", "ANALYTICS_DB", "D1"] {
        assert!(check_attachment_name(ok).is_ok(), "{ok}");
    }
    for bad in ["", "database", "1DB", "DB-1", "DB URL", &"A".repeat(61)] {
        assert!(check_attachment_name(bad).is_err(), "{bad}");
    }
    for ok in ["postgresql-curved-12345", "my-db"] {
        assert!(check_addon_name(ok).is_ok(), "{ok}");
    }
    for bad in ["", "My-db", "db-", "-db", "db_1", "a/../b", &"a".repeat(41)] {
        assert!(check_addon_name(bad).is_err(), "{bad}");
    }
}

#[test]
fn debug_hides_the_url() {
    let now = Utc::now();
    let addon = Addon {
        id: Uuid::nil(),
        name: "postgresql-x-1".into(),
        app_id: Uuid::nil(),
        app_name: "demo".into(),
        service: "heroku-postgresql".into(),
        plan: "essential-0".into(),
        resource: "postgresql_x_1".into(),
        url: "postgres://u:sekrit@h/d".into(),
        created_at: now,
        updated_at: now,
        partner: None,
    };
    assert!(!format!("{addon:?}").contains("sekrit"));
    assert_eq!(addon.plan().map(|p| p.name), Some("essential-0"));
}

/// Heroku's add-on SSO token: `sha1("<id>:<salt>:<timestamp>")`, as a provider recomputes it.
#[test]
fn sso_tokens_are_herokus() {
    // sha1("123:salt:1700000000"), computed independently (`printf %s ... | sha1sum`).
    assert_eq!(
        partner::sso_token("123", "salt", 1_700_000_000),
        "763cea5732d70f07b3b910fc891ad28747e46095"
    );
    let now = Utc::now();
    let addon = Addon {
        id: Uuid::nil(),
        name: "fast-db-x-1".into(),
        app_id: Uuid::nil(),
        app_name: "demo".into(),
        service: "fast-db".into(),
        plan: "test".into(),
        resource: "fast-123".into(),
        url: String::new(),
        created_at: now,
        updated_at: now,
        partner: None,
    };
    let form = partner::sso_form(
        "https://p.example/sso",
        "salt",
        &addon,
        "demo",
        "u@x",
        1_700_000_000,
    );
    assert_eq!(form.action, "https://p.example/sso");
    assert_eq!(form.method, "post");
    assert_eq!(form.params["id"], "fast-123");
    assert_eq!(
        form.params["token"],
        partner::sso_token("fast-123", "salt", 1_700_000_000)
    );
    assert_eq!(form.params["resource_id"], Uuid::nil().to_string());
    assert_eq!(form.params["timestamp"], "1700000000");
    assert_eq!(form.params["email"], "u@x");
    assert_eq!(form.params["app"], "demo");
    assert!(!form.params["nav-data"].is_empty());
}
