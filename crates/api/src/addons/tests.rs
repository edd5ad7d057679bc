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
        options: serde_json::Map::new(),
    };
    assert_eq!(
        create(r#"{"plan":"heroku-postgresql"}"#),
        Ok(want("heroku-postgresql", None, None))
    );
    assert_eq!(
        create(
            r#"{"attachment":{"name":"X"},"config":{"k":"v"},"name":"y","plan":{"name":"heroku-redis:mini"}}"#
        ),
        Ok(Command::CreateAddon {
            app: "demo".into(),
            plan: "heroku-redis:mini".into(),
            attachment: Some("X".into()),
            name: Some("y".into()),
            options: serde_json::json!({"k": "v"}).as_object().cloned().unwrap(),
        })
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

/// `config`, as the heroku CLI sends `-- --key value --flag`: checked before any provider
/// sees it.
#[test]
fn options_are_strings_or_true_and_bounded() {
    let options =
        |config: &str| match create(&format!(r#"{{"plan":"fast-db:test","config":{config}}}"#)) {
            Ok(Command::CreateAddon { options, .. }) => Ok(serde_json::Value::Object(options)),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
    let ok = |config: &str| options(config).unwrap_or_else(|e| panic!("{config}: {e}"));
    assert_eq!(ok("null"), serde_json::json!({}));
    assert_eq!(
        ok(r#"{"region":"eu","fork":true,"db.version":"15"}"#),
        serde_json::json!({"region":"eu","fork":true,"db.version":"15"})
    );
    let many: Vec<String> = (0..33).map(|i| format!(r#""k{i}":"v""#)).collect();
    let long_value = format!(r#"{{"k":"{}"}}"#, "v".repeat(1025));
    let long_name = format!(r#"{{"{}":"v"}}"#, "k".repeat(65));
    for bad in [
        r#""region=eu""#.to_owned(),
        r#"["eu"]"#.to_owned(),
        r#"{"k":false}"#.to_owned(),
        r#"{"k":3}"#.to_owned(),
        r#"{"k":{"nested":"x"}}"#.to_owned(),
        r#"{"k":"line\nbreak"}"#.to_owned(),
        r#"{"":"v"}"#.to_owned(),
        r#"{"a b":"v"}"#.to_owned(),
        r#"{"../x":"v"}"#.to_owned(),
        format!("{{{}}}", many.join(",")),
        long_value,
        long_name,
    ] {
        let error = options(&bad).expect_err(&bad);
        assert!(error.contains("Invalid add-on options"), "{bad}: {error}");
    }
}
