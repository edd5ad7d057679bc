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
