//! Table tests of the restart and stop parsers: `web.2` names a dyno, `web` a process type,
//! and a name no dyno or process type can have is answered as one that does not exist.

use axum::http::StatusCode;
use slipway_core::{Command, RestartTarget};

use super::*;

fn check(parsed: ApiResult<Command>, expected: Result<Command, (StatusCode, &str)>) {
    match (parsed, expected) {
        (Ok(command), Ok(expected)) => assert_eq!(command, expected),
        (Err(error), Err((status, message))) => {
            assert_eq!(error.status, status, "{}", error.message);
            assert_eq!(error.message, message);
        }
        (parsed, expected) => panic!("parsed {parsed:?}, expected {expected:?}"),
    }
}

fn restart(target: RestartTarget) -> Result<Command, (StatusCode, &'static str)> {
    Ok(Command::Restart {
        app: "demo".into(),
        target,
    })
}

#[test]
fn restart_targets() {
    check(
        parse_restart_all("demo".into()),
        restart(RestartTarget::App),
    );
    for (target, expected) in [
        (
            "web",
            restart(RestartTarget::ProcessType("web".parse().unwrap())),
        ),
        (
            "web.2",
            restart(RestartTarget::Dyno("web.2".parse().unwrap())),
        ),
        (
            "my_worker-2",
            restart(RestartTarget::ProcessType("my_worker-2".parse().unwrap())),
        ),
        (
            "worker.10",
            restart(RestartTarget::Dyno("worker.10".parse().unwrap())),
        ),
        (
            "web.x",
            Err((StatusCode::NOT_FOUND, "Couldn't find that dyno.")),
        ),
        (
            "web.",
            Err((StatusCode::NOT_FOUND, "Couldn't find that dyno.")),
        ),
        (
            ".1",
            Err((StatusCode::NOT_FOUND, "Couldn't find that dyno.")),
        ),
        (
            "web.1.2",
            Err((StatusCode::NOT_FOUND, "Couldn't find that dyno.")),
        ),
        (
            "we b",
            Err((StatusCode::NOT_FOUND, "Couldn't find that process type.")),
        ),
        (
            "",
            Err((StatusCode::NOT_FOUND, "Couldn't find that process type.")),
        ),
    ] {
        check(parse_restart("demo".into(), target.into()), expected);
    }
    check(
        parse_restart("Bad App".into(), "web".into()),
        Err((StatusCode::NOT_FOUND, "Couldn't find that app.")),
    );
}

#[test]
fn stop_targets() {
    check(
        parse_stop("demo".into(), "web.1".into()),
        Ok(Command::Stop {
            app: "demo".into(),
            target: RestartTarget::Dyno("web.1".parse().unwrap()),
        }),
    );
    check(
        parse_stop("demo".into(), "worker".into()),
        Ok(Command::Stop {
            app: "demo".into(),
            target: RestartTarget::ProcessType("worker".parse().unwrap()),
        }),
    );
    check(
        parse_stop("demo".into(), "web.x".into()),
        Err((StatusCode::NOT_FOUND, "Couldn't find that dyno.")),
    );
}

/// `POST /apps/{app}/dynos` bodies, good and bad.
#[test]
fn run_dyno_bodies() {
    let run_for = |command: &str, seconds: Option<u64>| Command::RunDyno {
        app: "demo".into(),
        command: command.into(),
        attach: false,
        env: Default::default(),
        size: None,
        process_type: None,
        time_to_live: seconds.map(std::time::Duration::from_secs),
        force_no_tty: false,
    };
    let run = |command: &str| run_for(command, None);
    let full = Command::RunDyno {
        app: "demo".into(),
        command: "bash".into(),
        attach: true,
        env: [("TERM", "xterm"), ("COLUMNS", "132"), ("LINES", "43")]
            .into_iter()
            .map(|(k, v)| (k.parse().unwrap(), v.to_owned()))
            .collect(),
        size: Some(slipway_model::DynoSize::Standard2X),
        process_type: Some("worker".parse().unwrap()),
        time_to_live: Some(std::time::Duration::from_secs(60)),
        force_no_tty: true,
    };
    let ttl = "time_to_live must be between 1 and 86400 seconds.";
    let empty = "Command can't be empty. Say what to run, e.g. `slipway run bash`.";
    for (body, expected) in [
        (r#"{"command":"echo hi"}"#, Ok(run("echo hi"))),
        (
            r#"{"command":"bash","attach":true,"env":{"TERM":"xterm","COLUMNS":132,"LINES":43},"size":"Standard-2X","type":"worker","time_to_live":60,"force_no_tty":true}"#,
            Ok(full),
        ),
        (
            r#"{"command":"x","time_to_live":86400}"#,
            Ok(run_for("x", Some(86400))),
        ),
        (r#"{"command":"  "}"#, Err((StatusCode::UNPROCESSABLE_ENTITY, empty))),
        (r#"{"command":"x","time_to_live":86401}"#, Err((StatusCode::UNPROCESSABLE_ENTITY, ttl))),
        (r#"{"command":"x","time_to_live":0}"#, Err((StatusCode::UNPROCESSABLE_ENTITY, ttl))),
        (r#"{"command":"x","time_to_live":-5}"#, Err((StatusCode::UNPROCESSABLE_ENTITY, ttl))),
        (
            r#"{"command":"x","size":"huge"}"#,
            Err((
                StatusCode::UNPROCESSABLE_ENTITY,
                "Unknown dyno size huge. Use one of: eco, basic, standard-1x, standard-2x, performance-m, performance-l.",
            )),
        ),
    ] {
        check(parse_run_dyno("demo".into(), body.as_bytes()), expected);
    }
    // Bodies refused with a message of their own: what matters is the status and the subject.
    for (body, status, subject) in [
        ("", StatusCode::BAD_REQUEST, "Expected a body like"),
        ("{}", StatusCode::BAD_REQUEST, "command"),
        (
            r#"{"command":7}"#,
            StatusCode::BAD_REQUEST,
            "Expected a body like",
        ),
        (
            r#"{"command":"x","env":{"1A":"v"}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid env",
        ),
        (
            r#"{"command":"x","env":{"A":[1]}}"#,
            StatusCode::BAD_REQUEST,
            "Expected a body like",
        ),
        (
            r#"{"command":"x","type":"no way"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid type",
        ),
        (
            r#"{"command":"x","time_to_live":"1h"}"#,
            StatusCode::BAD_REQUEST,
            "Expected a body like",
        ),
    ] {
        let error = parse_run_dyno("demo".into(), body.as_bytes()).unwrap_err();
        assert_eq!(error.status, status, "{body}: {}", error.message);
        assert!(error.message.contains(subject), "{body}: {}", error.message);
    }
    let error = parse_run_dyno("Not An App".into(), br#"{"command":"x"}"#).unwrap_err();
    assert_eq!(error.status, StatusCode::NOT_FOUND);
}
