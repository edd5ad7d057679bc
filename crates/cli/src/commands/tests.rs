//! Tests of the command grammar (as the `slipway` binary will embed it) and of the pure
//! helpers behind `ps:restart`/`ps:stop` and `rollback`.

use clap::{CommandFactory, Parser};
use slipway_api_types::{Release, ReleaseStatus, ResourceRef, UserRef};
use uuid::Uuid;

use super::*;

/// How the binary embeds the commands: flattened next to its own (`server`).
#[derive(Debug, Parser)]
#[command(name = "slipway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

fn parse(argv: &str) -> Result<Command, String> {
    Cli::try_parse_from(argv.split_whitespace())
        .map(|cli| cli.command)
        .map_err(|e| e.kind().to_string())
}

#[test]
fn grammar_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn colon_grammar_parses() {
    let ok = [
        "slipway apps",
        "slipway apps:create demo",
        "slipway apps:create",
        "slipway create demo --region us",
        "slipway apps:info -a demo",
        "slipway apps:destroy -a demo --confirm demo",
        "slipway releases -a demo -n 3",
        "slipway releases:info v2 -a demo",
        "slipway releases:rollback -a demo",
        "slipway rollback v1 -a demo",
        "slipway config -a demo --shell",
        "slipway config:set FOO=bar BAZ=qux -a demo",
        "slipway config:unset FOO -a demo",
        "slipway config:get FOO -a demo",
        "slipway ps -a demo",
        "slipway ps:scale web=2 worker-1 -a demo",
        "slipway ps:restart web.1 -a demo",
        "slipway ps:restart -a demo",
        "slipway ps:stop -p web -a demo",
        "slipway ps:stop web.1 -a demo",
        "slipway stop -d web.1 -a demo",
        "slipway ps:restart -p web -a demo",
        "slipway logs -a demo -n 10 --tail --source app --ps web",
        "slipway logs -a demo -t -d web.1",
    ];
    for argv in ok {
        assert!(parse(argv).is_ok(), "{argv}: {:?}", parse(argv));
    }
    let bad = [
        "slipway ps:stop -a demo",
        "slipway config --json --shell -a demo",
        "slipway ps:restart web -d web.1 -a demo",
        "slipway ps:stop web -p web -a demo",
        "slipway config:get -a demo",
    ];
    for argv in bad {
        assert!(parse(argv).is_err(), "{argv} should be rejected");
    }
}

#[test]
fn parsed_values() {
    match parse("slipway logs -a demo -n 10 -t -s app -p web").unwrap() {
        Command::Logs {
            app,
            num,
            tail,
            source,
            ps,
            dyno,
        } => {
            assert_eq!(app.app.as_deref(), Some("demo"));
            assert_eq!((num, tail), (10, true));
            assert_eq!(source.as_deref(), Some("app"));
            assert_eq!((ps.as_deref(), dyno), (Some("web"), None));
        }
        other => panic!("parsed as {other:?}"),
    }
    match parse("slipway ps:scale web=2 worker-1 -a demo").unwrap() {
        Command::PsScale { changes, .. } => assert_eq!(changes, ["web=2", "worker-1"]),
        other => panic!("parsed as {other:?}"),
    }
}

#[test]
fn dyno_targets() {
    let s = |v: &str| Some(v.to_owned());
    let cases = [
        ((None, None, None), None),
        (
            (s("web"), None, None),
            Some(DynoTarget::ProcessType("web".parse().unwrap())),
        ),
        (
            (s("web.1"), None, None),
            Some(DynoTarget::Dyno("web.1".parse().unwrap())),
        ),
        (
            (None, s("worker.2"), None),
            Some(DynoTarget::Dyno("worker.2".parse().unwrap())),
        ),
        (
            (None, None, s("web")),
            Some(DynoTarget::ProcessType("web".parse().unwrap())),
        ),
    ];
    for ((target, dyno, process_type), expected) in cases {
        assert_eq!(
            DynoTarget::from_flags(target, dyno, process_type).unwrap(),
            expected
        );
    }
    // Refused locally, with the model's message, before any request is sent.
    for ((target, dyno, process_type), message) in [
        (
            (s("web.x"), None, None),
            "\"web.x\" is not a dyno name: the number after the dot must be a whole number without leading zeros, e.g. web.1.",
        ),
        (
            (None, s("web"), None),
            "\"web\" is not a dyno name: use <process type>.<number>, e.g. web.1.",
        ),
        (
            (None, None, s("web.1")),
            "Invalid process type \"web.1\": use only letters, digits, `_` and `-` (e.g. web, worker).",
        ),
        (
            (s("my web"), None, None),
            "Invalid process type \"my web\": use only letters, digits, `_` and `-` (e.g. web, worker).",
        ),
    ] {
        let error = DynoTarget::from_flags(target, dyno, process_type).unwrap_err();
        assert_eq!(error.to_string(), message);
    }
}

#[test]
fn rollback_target() {
    let release = |version: i64, current: bool, eligible: bool| Release {
        addon_plan_names: Vec::new(),
        artifacts: Vec::new(),
        app: ResourceRef {
            id: Uuid::nil(),
            name: "demo".into(),
        },
        created_at: chrono::DateTime::UNIX_EPOCH,
        description: String::new(),
        id: Uuid::from_u128(version as u128),
        updated_at: chrono::DateTime::UNIX_EPOCH,
        slug: None,
        status: ReleaseStatus::Succeeded,
        user: UserRef {
            id: Uuid::nil(),
            email: "a@b.c".into(),
        },
        version,
        current,
        output_stream_url: None,
        eligible_for_rollback: eligible,
    };
    let version = |releases: Vec<Release>| previous_release(releases).map(|r| r.version);
    assert_eq!(
        version(vec![release(3, true, true), release(2, false, true)]),
        Some(2)
    );
    assert_eq!(
        version(vec![
            release(3, true, true),
            release(2, false, false),
            release(1, false, true)
        ]),
        Some(1)
    );
    // A failed newer release is not current: roll back relative to the current one.
    assert_eq!(
        version(vec![
            release(4, false, false),
            release(3, true, true),
            release(2, false, true)
        ]),
        Some(2)
    );
    assert_eq!(version(vec![release(1, true, true)]), None);
    assert_eq!(version(vec![]), None);
}

#[test]
fn restart_and_stop_requests_read_like_herokus() {
    let dyno = DynoTarget::Dyno("web.1".parse().unwrap());
    let web = DynoTarget::ProcessType("web".parse().unwrap());
    let request = |label: &str, method: Method, path: &[&str]| DynoRequest {
        label: label.to_owned(),
        method,
        segments: path.iter().map(|s| (*s).to_owned()).collect(),
    };
    let cases = [
        (
            DynoRequest::restart("demo", None),
            request(
                &format!("Restarting all dynos on {APP_MARK} demo"),
                Method::DELETE,
                &["apps", "demo", "dynos"],
            ),
        ),
        (
            DynoRequest::restart("demo", Some(&dyno)),
            request(
                &format!("Restarting dyno web.1 on {APP_MARK} demo"),
                Method::DELETE,
                &["apps", "demo", "dynos", "web.1"],
            ),
        ),
        (
            DynoRequest::restart("demo", Some(&web)),
            request(
                &format!("Restarting web dynos on {APP_MARK} demo"),
                Method::DELETE,
                &["apps", "demo", "formations", "web"],
            ),
        ),
        (
            DynoRequest::stop("demo", &dyno),
            request(
                &format!("Stopping dyno web.1 on {APP_MARK} demo"),
                Method::POST,
                &["apps", "demo", "dynos", "web.1", "actions", "stop"],
            ),
        ),
        (
            DynoRequest::stop("demo", &web),
            request(
                &format!("Stopping web dynos on {APP_MARK} demo"),
                Method::POST,
                &["apps", "demo", "formations", "web", "actions", "stop"],
            ),
        ),
    ];
    for (built, expected) in cases {
        assert_eq!(built, expected);
    }
}
