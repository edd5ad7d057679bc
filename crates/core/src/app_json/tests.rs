//! Tests of parsing and applying `app.json`.

use super::*;

fn env(value: Option<&str>, required: bool, secret: bool) -> EnvVar {
    EnvVar {
        value: value.map(str::to_owned),
        required,
        generate_secret: secret,
    }
}

#[test]
fn valid_manifests_parse_into_what_slipway_honours() {
    let cases: Vec<(&str, AppJson)> = vec![
        ("{}", AppJson::default()),
        (
            r#"{"name": "x", "addons": ["heroku-postgresql"], "stack": "heroku-24", "unknown": {"a": 1}}"#,
            AppJson {
                addons: vec![ManifestAddon {
                    plan: "heroku-postgresql:essential-0".to_owned(),
                    attachment: None,
                    options: Default::default(),
                }],
                ..AppJson::default()
            },
        ),
        (
            r#"{"addons": ["postgresql:essential-1",
                   {"plan": "heroku-redis", "as": "CACHE", "options": {"version": "7"}}], "addons_x": 1}"#,
            AppJson {
                addons: vec![
                    ManifestAddon {
                        plan: "heroku-postgresql:essential-1".to_owned(),
                        attachment: None,
                        options: Default::default(),
                    },
                    ManifestAddon {
                        plan: "heroku-redis:mini".to_owned(),
                        attachment: Some("CACHE".to_owned()),
                        options: serde_json::json!({"version": "7"})
                            .as_object()
                            .cloned()
                            .unwrap_or_default(),
                    },
                ],
                ..AppJson::default()
            },
        ),
        (r#"{"addons": null}"#, AppJson::default()),
        (
            r#"{"env": null, "formation": null, "scripts": null, "buildpacks": null}"#,
            AppJson::default(),
        ),
        (
            r#"{"env": {"A": "1", "B": {"value": "2", "description": "b"}, "C": {"required": false},
                   "D": {"generator": "secret"}, "E": {"description": "needed"}}}"#,
            AppJson {
                env: [
                    ("A", env(Some("1"), true, false)),
                    ("B", env(Some("2"), true, false)),
                    ("C", env(None, false, false)),
                    ("D", env(None, true, true)),
                    ("E", env(None, true, false)),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
                ..AppJson::default()
            },
        ),
        (
            r#"{"formation": {"web": {"quantity": 2}, "worker": {"quantity": 0, "size": "Standard-2X"}, "clock": {}}}"#,
            AppJson {
                formation: [
                    ("web", Some(2), None),
                    ("worker", Some(0), Some("standard-2x")),
                    ("clock", None, None),
                ]
                .into_iter()
                .map(|(t, quantity, size)| {
                    (
                        t.to_owned(),
                        InitialFormation {
                            quantity,
                            size: size.map(str::to_owned),
                        },
                    )
                })
                .collect(),
                ..AppJson::default()
            },
        ),
        (
            r#"{"scripts": {"postdeploy": "python3 seed.py", "pr-predestroy": "x"}}"#,
            AppJson {
                postdeploy: Some("python3 seed.py".into()),
                ..AppJson::default()
            },
        ),
        (
            r#"{"scripts": {"postdeploy": {"command": "./seed", "size": "basic"}}}"#,
            AppJson {
                postdeploy: Some("./seed".into()),
                ..AppJson::default()
            },
        ),
        (r#"{"scripts": {"postdeploy": "  "}}"#, AppJson::default()),
        (
            r#"{"buildpacks": [{"url": "heroku/python"}, {"url": "https://github.com/heroku/heroku-buildpack-nodejs.git"}, {"url": "procfile"}]}"#,
            AppJson {
                buildpacks: vec!["python".into(), "nodejs".into(), "procfile".into()],
                ..AppJson::default()
            },
        ),
    ];
    for (text, expected) in cases {
        let parsed =
            AppJson::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text} should parse: {e}"));
        assert_eq!(parsed, expected, "{text}");
    }
}

#[test]
fn invalid_manifests_are_refused_with_a_message_that_says_where() {
    let cases = [
        ("{", "EOF while parsing an object at line 1 column 1"),
        ("{\n  \"env\": {\"A\": 1}\n}", "at line 2 column"),
        ("[]", "its top level must be a JSON object"),
        ("\"x\"", "its top level must be a JSON object"),
        (
            "{\"formation\": {\"web\": {\"quantity\": -1}}}",
            "invalid value: integer `-1`, expected u32 at line 1",
        ),
        (
            "{\"formation\": {\"web\": {\"quantity\": \"2\"}}}",
            "invalid type: string \"2\", expected u32",
        ),
        (
            "{\"env\": {\"A\": {\"required\": \"yes\"}}}",
            "invalid type: string \"yes\", expected a boolean at line 1",
        ),
        ("{\"scripts\": {\"postdeploy\": 3}}", "a command string"),
        ("{\"buildpacks\": {\"url\": \"x\"}}", "expected a sequence"),
        (
            "{\"buildpacks\": [{\"name\": \"x\"}]}",
            "missing field `url`",
        ),
        (
            "{\"buildpacks\": [{\"url\": \"ftp://example.com/bp.tgz\"}]}",
            "buildpack \"ftp://example.com/bp.tgz\" is not available",
        ),
        (
            "{\"formation\": {\"web\": {\"size\": \"huge\"}}}",
            "formation.web.size \"huge\" is not a dyno size",
        ),
        (
            "{\"env\": {\"NOT-OK\": \"x\"}}",
            "env key \"NOT-OK\" is not a valid config var name",
        ),
        (
            "{\"env\": {\"K\": {\"generator\": \"uuid\"}}}",
            "the only generator is \"secret\"",
        ),
        // What no registered service could be named is refused at once; a name that could be
        // a registered service is checked when the deploy starts (`unknown_addon` below).
        ("{\"addons\": [\"My SQL\"]}", "addons[0]: Couldn't find"),
        (
            "{\"addons\": [\"acme-db:Basic\"]}",
            "addons[0]: Couldn't find",
        ),
        (
            "{\"addons\": [{\"plan\": \"acme-db\", \"options\": {\"k\": [1]}}]}",
            "addons[0].options: the value of k is not allowed",
        ),
        (
            "{\"addons\": [{\"plan\": \"acme-db\", \"options\": {\"a b\": \"x\"}}]}",
            "addons[0].options: the option name \"a b\" is not allowed",
        ),
        (
            "{\"addons\": [\"heroku-postgresql\", \"heroku-postgresql:gigantic-9\"]}",
            "addons[1]: Couldn't find the plan \"gigantic-9\"",
        ),
        ("{\"addons\": \"heroku-postgresql\"}", "expected a sequence"),
        ("{\"addons\": [3]}", "an add-on plan string"),
        ("{\"addons\": [{\"as\": \"DB\"}]}", "missing field `plan`"),
        (
            "{\"addons\": [{\"plan\": \"heroku-redis\", \"as\": \"cache-url\"}]}",
            "addons[0].as \"cache-url\" is not a valid attachment name",
        ),
        (
            "{\"addons\": [{\"plan\": \"heroku-redis\", \"options\": [1]}]}",
            "expected a map",
        ),
    ];
    for (text, expected) in cases {
        let error = AppJson::parse(text.as_bytes()).expect_err(text).to_string();
        assert!(
            error.contains(expected),
            "{text}: {error:?} should contain {expected:?}"
        );
        assert!(error.starts_with("app.json is not valid: "), "{error}");
        assert!(error.ends_with("Fix app.json and push again."), "{error}");
    }
}

#[test]
fn other_services_are_kept_for_the_deploy_to_check_against_the_registered_ones() {
    let manifest = AppJson::parse(
        br#"{"addons": ["mysql", {"plan": "acme-db:basic", "as": "ACME", "options": {"size": "s", "fast": true}}]}"#,
    )
    .expect("valid");
    let plans: Vec<&str> = manifest.addons.iter().map(|a| a.plan.as_str()).collect();
    assert_eq!(plans, ["mysql", "acme-db:basic"]);
    assert_eq!(manifest.addons[1].attachment.as_deref(), Some("ACME"));
    assert_eq!(
        serde_json::Value::Object(manifest.addons[1].options.clone()),
        serde_json::json!({"size": "s", "fast": true})
    );
    // What the deploy says when no registered service has the name.
    let error = unknown_addon(0, "mysql", &["acme-db".to_owned()]).to_string();
    assert!(
        error.contains("addons[0]: Couldn't find either the add-on service or the add-on plan of \"mysql\". Available services: heroku-postgresql, heroku-redis, acme-db"),
        "{error}"
    );
    assert!(error.ends_with("Fix app.json and push again."), "{error}");
}

#[test]
fn env_defaults_fill_only_what_is_unset_and_name_what_is_missing() {
    let manifest = AppJson::parse(
        br#"{"env": {"SET": "default", "NEW": "value", "SECRET": {"generator": "secret"},
                 "OPTIONAL": {"required": false}, "NEEDED": {"description": "x"},
                 "ALSO_NEEDED": {"required": true}, "OLD_SECRET": {"generator": "secret"}}}"#,
    )
    .unwrap();
    let current: ConfigVars = [("SET", "mine"), ("OLD_SECRET", "kept")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let defaults = manifest.env_defaults(&current);
    assert_eq!(defaults.missing, vec!["ALSO_NEEDED", "NEEDED"]);
    assert_eq!(
        defaults.set.keys().collect::<Vec<_>>(),
        vec!["NEW", "SECRET"]
    );
    assert_eq!(defaults.set["NEW"], "value");
    let secret = &defaults.set["SECRET"];
    assert_eq!(secret.len(), 64);
    assert!(secret
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert_ne!(manifest.env_defaults(&current).set["SECRET"], *secret);
}

#[test]
fn buildpack_urls_map_to_the_builtins() {
    for (url, expected) in [
        ("heroku/python", Some("python")),
        ("heroku/nodejs", Some("nodejs")),
        ("heroku/procfile", Some("procfile")),
        ("nodejs", Some("nodejs")),
        (
            "https://github.com/heroku/heroku-buildpack-python",
            Some("python"),
        ),
        (
            "https://github.com/heroku/heroku-buildpack-python.git#v1",
            Some("python"),
        ),
        (
            "https://github.com/heroku/buildpacks-nodejs/",
            Some("nodejs"),
        ),
        ("heroku/scala", None),
        ("https://example.com/python", None),
        ("", None),
    ] {
        assert_eq!(builtin_buildpack(url).as_deref(), expected, "{url}");
    }
}
