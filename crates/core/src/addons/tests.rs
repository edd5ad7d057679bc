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
