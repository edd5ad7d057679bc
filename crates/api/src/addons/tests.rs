//! The add-on requests' parsers, as tables.

use super::*;

fn create(body: &str) -> Result<Command, String> {
    parse_create("demo".into(), body.as_bytes()).map_err(|e| format!("{e:?}"))
}

#[test]
fn plan_is_a_string_or_an_object() {
    let want = |plan: &str, attachment: Option<&str>, name: Option<&str>| Command::CreateAddon {
        app: "demo".into(),
        plan: plan.into(),
        attachment: attachment.map(str::to_owned),
        name: name.map(str::to_owned),
    };
    assert_eq!(
        create(r#"{"plan":"heroku-postgresql"}"#),
        Ok(want("heroku-postgresql", None, None))
    );
    assert_eq!(
        create(
            r#"{"attachment":{"name":"X"},"config":{"k":"v"},"name":"y","plan":{"name":"heroku-redis:mini"}}"#
        ),
        Ok(want("heroku-redis:mini", Some("X"), Some("y")))
    );
    for bad in [r#"{}"#, r#"{"plan": 3}"#, r#"{"plan": {}}"#, "not json"] {
        assert!(create(bad).is_err(), "{bad}");
    }
    assert!(parse_create("../x".into(), br#"{"plan":"heroku-redis"}"#).is_err());
}

#[test]
fn updates_and_attachments() {
    assert_eq!(
        parse_update("db".into(), br#"{"plan":{"name":"essential-1"}}"#).ok(),
        Some(Command::ChangeAddonPlan {
            addon: "db".into(),
            plan: "essential-1".into()
        })
    );
    assert!(parse_update("db".into(), b"{}").is_err());
    assert_eq!(
        parse_attach(br#"{"addon":"postgresql-x-1","app":"other","name":"ANALYTICS_DB"}"#).ok(),
        Some(Command::AttachAddon {
            app: "other".into(),
            addon: "postgresql-x-1".into(),
            name: Some("ANALYTICS_DB".into()),
        })
    );
    assert!(parse_attach(br#"{"addon":"x"}"#).is_err());
}
