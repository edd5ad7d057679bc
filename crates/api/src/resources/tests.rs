//! Table tests of the apps, releases, config vars and formation parsers: a request's path
//! parameters and body in, the command or the Heroku error (status, id, message) out.

use axum::http::StatusCode;
use slipway_core::{Command, FormationChange, Quantity};

use super::*;

/// What a parser should answer: a command, or an error with its status, id and a part of its
/// message.
enum Expect {
    Command(Command),
    Error(StatusCode, &'static str, &'static str),
}

fn check(parsed: ApiResult<Command>, expected: Expect) {
    match (parsed, expected) {
        (Ok(command), Expect::Command(expected)) => assert_eq!(command, expected),
        (Err(error), Expect::Error(status, id, message)) => {
            assert_eq!((error.status, error.id), (status, id), "{}", error.message);
            assert!(
                error.message.contains(message),
                "{:?} does not say {message:?}",
                error.message
            );
        }
        (Ok(command), _) => panic!("expected an error, parsed {command:?}"),
        (Err(error), _) => panic!("expected a command, got {error:?}"),
    }
}

fn invalid(message: &'static str) -> Expect {
    Expect::Error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_params", message)
}

fn bad_request(message: &'static str) -> Expect {
    Expect::Error(StatusCode::BAD_REQUEST, "bad_request", message)
}

fn not_found(message: &'static str) -> Expect {
    Expect::Error(StatusCode::NOT_FOUND, "not_found", message)
}

fn scale(app: &str, changes: &[(&str, Option<Quantity>, Option<&str>)]) -> Expect {
    Expect::Command(Command::Scale {
        app: app.into(),
        changes: changes
            .iter()
            .map(|(process_type, quantity, size)| FormationChange {
                process_type: process_type.parse().unwrap(),
                quantity: *quantity,
                size: size.map(|size| size.parse().unwrap()),
            })
            .collect(),
    })
}

#[test]
fn create_app() {
    for (body, expected) in [
        ("", Expect::Command(Command::CreateApp { name: None })),
        ("{}", Expect::Command(Command::CreateApp { name: None })),
        (
            r#"{"name": "demo", "region": "us", "stack": "heroku-24"}"#,
            Expect::Command(Command::CreateApp {
                name: Some("demo".parse().unwrap()),
            }),
        ),
        (r#"{"name": "Demo"}"#, invalid("Name \"Demo\" is invalid.")),
        (r#"{"name": "de"}"#, invalid("3 to 30 characters long")),
        (r#"{"name": "1demo"}"#, invalid("must start with a letter")),
        (
            r#"{"name": "demo-"}"#,
            invalid("end with a letter or digit"),
        ),
        (
            r#"{"name": 7}"#,
            bad_request("Invalid JSON in the request body"),
        ),
        ("{", bad_request("Invalid JSON in the request body")),
    ] {
        check(parse_create_app(body.as_bytes()), expected);
    }
}

#[test]
fn apps_in_paths_are_names_or_ids() {
    let id = "0b4c3a5e-4a6b-4ed8-9d8f-6d5b3c2a1f00";
    check(
        parse_delete_app("demo".into()),
        Expect::Command(Command::DeleteApp { app: "demo".into() }),
    );
    check(
        parse_delete_app(id.into()),
        Expect::Command(Command::DeleteApp { app: id.into() }),
    );
    for bad in ["Demo", "de", "../etc", "demo.git", ""] {
        check(
            parse_delete_app(bad.into()),
            not_found("Couldn't find that app."),
        );
    }
}

#[test]
fn create_release() {
    for (body, expected) in [
        (
            r#"{"release": "v3"}"#,
            Expect::Command(Command::Rollback {
                app: "demo".into(),
                release: "v3".into(),
            }),
        ),
        (
            r#"{"slug": "abc", "description": "Deploy abc"}"#,
            Expect::Command(Command::ReleaseSlug {
                app: "demo".into(),
                slug: "abc".into(),
                description: Some("Deploy abc".into()),
            }),
        ),
        ("{}", invalid("Pass either `release`")),
        (
            r#"{"release": "v3", "slug": "abc"}"#,
            invalid("Pass either"),
        ),
        (r#"{"release": 3}"#, bad_request("Invalid JSON")),
    ] {
        check(
            parse_create_release("demo".into(), body.as_bytes()),
            expected,
        );
    }
    check(
        parse_create_release("NOPE".into(), b"{}"),
        not_found("Couldn't find that app."),
    );
}

#[test]
fn update_config_vars() {
    let set = |pairs: &[(&str, Option<&str>)]| {
        Expect::Command(Command::SetConfig {
            app: "demo".into(),
            changes: pairs
                .iter()
                .map(|(k, v)| (k.parse().unwrap(), v.map(str::to_owned)))
                .collect(),
        })
    };
    for (body, expected) in [
        (
            r#"{"FOO": "bar", "GONE": null}"#,
            set(&[("FOO", Some("bar")), ("GONE", None)]),
        ),
        (r#"{"_x1": ""}"#, set(&[("_x1", Some(""))])),
        // The CLI sends `1A`; the core's rule refuses it, and so does the parser, with the
        // same words.
        (r#"{"1A": "x"}"#, invalid("Invalid config var key \"1A\"")),
        (
            r#"{"A-B": "x"}"#,
            invalid("keys must match ^[A-Za-z_][A-Za-z0-9_]*$"),
        ),
        (r#"{"": "x"}"#, invalid("Invalid config var key \"\"")),
        (r#"{"FOO": 1}"#, bad_request("Invalid JSON")),
        (r#"["FOO"]"#, bad_request("Invalid JSON")),
    ] {
        check(
            parse_update_config_vars("demo".into(), body.as_bytes()),
            expected,
        );
    }
}

#[test]
fn batch_formation_updates() {
    for (body, expected) in [
        // What `heroku ps:scale web=2 worker+1` sends: strings, signed when relative.
        (
            r#"{"updates": [{"type": "web", "quantity": "2"}, {"type": "worker", "quantity": "+1"}]}"#,
            scale(
                "demo",
                &[
                    ("web", Some(Quantity::Absolute(2)), None),
                    ("worker", Some(Quantity::Relative(1)), None),
                ],
            ),
        ),
        (
            r#"{"updates": [{"type": "web", "quantity": "-3", "size": "Standard-2X"}]}"#,
            scale(
                "demo",
                &[("web", Some(Quantity::Relative(-3)), Some("Standard-2X"))],
            ),
        ),
        (
            r#"{"updates": [{"type": "web", "quantity": 1, "dyno_size": {"name": "performance-m"}}]}"#,
            scale(
                "demo",
                &[("web", Some(Quantity::Absolute(1)), Some("performance-m"))],
            ),
        ),
        // A negative absolute quantity (only a JSON integer can say it) means none.
        (
            r#"{"updates": [{"type": "web", "quantity": -2}]}"#,
            scale("demo", &[("web", Some(Quantity::Absolute(0)), None)]),
        ),
        (
            r#"{"updates": [{"type": "web", "size": "eco"}]}"#,
            scale("demo", &[("web", None, Some("eco"))]),
        ),
        (
            r#"{"updates": [{"type": "web", "size": "huge"}]}"#,
            invalid("Unknown dyno size huge. Use one of: eco, basic, standard-1x"),
        ),
        (
            r#"{"updates": [{"type": "web", "quantity": 4294967296}]}"#,
            invalid("Dyno quantity is too large."),
        ),
        (
            r#"{"updates": [{"type": "web", "quantity": "+4294967296"}]}"#,
            invalid("Dyno quantity is too large."),
        ),
        (
            r#"{"updates": [{"type": "", "quantity": 1}]}"#,
            invalid("The process type is empty."),
        ),
        (
            r#"{"updates": [{"type": "web.x", "quantity": 1}]}"#,
            invalid("Invalid process type \"web.x\""),
        ),
        (
            r#"{"updates": [{"type": "web", "quantity": "two"}]}"#,
            bad_request("invalid dyno quantity \"two\""),
        ),
        (r#"{"updates": {}}"#, bad_request("Invalid JSON")),
    ] {
        check(
            parse_batch_update_formation("demo".into(), body.as_bytes()),
            expected,
        );
    }
}

#[test]
fn single_formation_updates() {
    for (process_type, body, expected) in [
        (
            "web",
            r#"{"quantity": "+1"}"#,
            scale("demo", &[("web", Some(Quantity::Relative(1)), None)]),
        ),
        (
            "worker",
            r#"{"quantity": 0, "size": "basic"}"#,
            scale(
                "demo",
                &[("worker", Some(Quantity::Absolute(0)), Some("basic"))],
            ),
        ),
        ("web", "", scale("demo", &[("web", None, None)])),
        (
            "web",
            r#"{"size": "standard-3x"}"#,
            invalid("Unknown dyno size standard-3x."),
        ),
        (
            "web",
            r#"{"quantity": "1A"}"#,
            bad_request("invalid dyno quantity"),
        ),
    ] {
        check(
            parse_update_formation("demo".into(), process_type.into(), body.as_bytes()),
            expected,
        );
    }
}
