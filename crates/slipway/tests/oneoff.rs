//! End to end: one-off dynos through the Platform API with a real pushed app and runc.
//! A detached run's output and its start and exit lines in the log stream; `ps` listing a
//! running one-off with its command; `ps:stop run.N`; a time to live ending a `sleep 600`;
//! a formation change leaving a one-off alone; the cap; bad requests refused with Heroku's
//! error bodies and no stray container or record; a server restart ending one-offs; the
//! router-wide 404/405 bodies. Attached runs are claimed through the rendezvous listener,
//! which lands separately; here only their creation is checked.

mod support;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use support::{expect_api_error, Server};

/// `POST /apps/{app}/dynos` with `body`, which must answer 201; returns the dyno.
async fn run(server: &Server, app: &str, body: Value) -> Value {
    let response = server
        .api(Method::POST, &format!("/apps/{app}/dynos"))
        .json(&body)
        .send()
        .await
        .expect("API request");
    let status = response.status();
    let dyno: Value = response.json().await.expect("JSON");
    assert_eq!(status, 201, "{dyno}\n{}", server.log());
    dyno
}

/// The app's dynos named `run.*`.
async fn one_offs(server: &Server, app: &str) -> Vec<Value> {
    let dynos = server.api_json(&format!("/apps/{app}/dynos")).await;
    dynos
        .as_array()
        .expect("a list of dynos")
        .iter()
        .filter(|d| d["name"].as_str().is_some_and(|n| n.starts_with("run.")))
        .cloned()
        .collect()
}

/// Polls until `app` has no dyno named `name` and runc no container for it.
async fn wait_until_gone(server: &Server, app: &str, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let part = format!(".{name}.");
    loop {
        let listed = one_offs(server, app)
            .await
            .iter()
            .any(|d| d["name"] == name);
        let running = server.containers().iter().any(|c| c.contains(&part));
        if !listed && !running {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} is still there (listed: {listed}, container: {running})\n{}",
            server.logs(app)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn name_of(dyno: &Value) -> String {
    dyno["name"].as_str().expect("a dyno name").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detached_runs_log_show_in_ps_stop_and_time_out() {
    require_runc!();
    let server = Server::start_with(&["--stop-grace", "3"]);
    let _repo = server.deploy_echo_app("oneoff").await;

    // A detached run: output in the log stream as app[run.N], with its lifecycle lines.
    let dyno = run(
        &server,
        "oneoff",
        json!({"command": "echo hello-from-oneoff; echo \"$DYNO $FOO\"", "attach": false, "env": {"FOO": "bar"}}),
    )
    .await;
    let name = name_of(&dyno);
    assert!(name.starts_with("run."), "{dyno}");
    assert_eq!(dyno["type"], "run");
    assert_eq!(dyno["attach_url"], Value::Null);
    assert!(dyno["created_at"].is_string(), "{dyno}");
    let log = server
        .wait_for_log("oneoff", |log| {
            log.contains(&format!(
                "heroku[{name}]: State changed from up to complete"
            ))
        })
        .await;
    for line in [
        format!("heroku[{name}]: Starting process with command `echo hello-from-oneoff; echo \"$DYNO $FOO\"`"),
        format!("heroku[{name}]: State changed from starting to up"),
        format!("app[{name}]: hello-from-oneoff"),
        format!("app[{name}]: {name} bar"),
        format!("heroku[{name}]: Process exited with status 0"),
    ] {
        assert!(log.contains(&line), "{line} is missing from\n{log}");
    }
    wait_until_gone(&server, "oneoff", &name).await;

    // A running one-off is listed with its command, a formation change leaves it alone, and
    // ps:stop ends it.
    let sleeper = name_of(&run(&server, "oneoff", json!({"command": "sleep 600"})).await);
    let listed = one_offs(&server, "oneoff").await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["command"], "sleep 600");
    assert_eq!(listed[0]["type"], "run");
    assert_eq!(listed[0]["state"], "up");
    assert_eq!(
        listed[0]["attach_url"],
        Value::Null,
        "only the create response has it"
    );
    server.wait_for_containers(&format!(".{sleeper}."), 1).await;
    server.cli_ok(&["ps:scale", "web=2", "-a", "oneoff"]);
    server.wait_for_containers("oneoff.web.", 2).await;
    let restart = server
        .api(Method::DELETE, "/apps/oneoff/dynos")
        .send()
        .await
        .expect("restart all");
    assert_eq!(restart.status(), 202);
    assert_eq!(
        one_offs(&server, "oneoff").await.len(),
        1,
        "scaling and restarting the formation leave the one-off alone"
    );
    server.wait_for_containers(&format!(".{sleeper}."), 1).await;
    let stop = server
        .api(
            Method::POST,
            &format!("/apps/oneoff/dynos/{sleeper}/actions/stop"),
        )
        .send()
        .await
        .expect("stop");
    assert_eq!(stop.status(), 202);
    wait_until_gone(&server, "oneoff", &sleeper).await;
    server
        .wait_for_log("oneoff", |log| {
            log.contains(&format!(
                "heroku[{sleeper}]: Stopping all processes with SIGTERM"
            ))
        })
        .await;

    // Its time to live ends a one-off.
    let timed = name_of(
        &run(
            &server,
            "oneoff",
            json!({"command": "sleep 600", "time_to_live": 2}),
        )
        .await,
    );
    wait_until_gone(&server, "oneoff", &timed).await;
    server
        .wait_for_log("oneoff", |log| {
            log.contains(&format!("heroku[{timed}]: Process exited with status"))
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_runs_leave_nothing_the_cap_holds_and_a_restart_ends_one_offs() {
    require_runc!();
    let mut server = Server::start();
    let _repo = server.deploy_echo_app("capped").await;
    server.cli_ok(&["apps:create", "empty"]);
    let containers_before = server.containers();

    // Bad requests: Heroku's error bodies, no record, no container.
    for (app, body, status, id, says) in [
        (
            "empty",
            json!({"command": "bash"}),
            422,
            "invalid_params",
            "empty has no release yet",
        ),
        (
            "capped",
            json!({"command": "bash", "size": "huge"}),
            422,
            "invalid_params",
            "Unknown dyno size huge",
        ),
        (
            "capped",
            json!({"command": "bash", "time_to_live": 86401}),
            422,
            "invalid_params",
            "time_to_live must be between 1 and 86400 seconds",
        ),
        (
            "capped",
            json!({"command": " "}),
            422,
            "invalid_params",
            "Command can't be empty",
        ),
        (
            "capped",
            json!({"command": "bash", "type": "clock"}),
            422,
            "invalid_params",
            "Unknown process type clock",
        ),
        (
            "capped",
            json!({"attach": true}),
            400,
            "bad_request",
            "command",
        ),
        (
            "nosuchapp",
            json!({"command": "bash"}),
            404,
            "not_found",
            "Couldn't find that app.",
        ),
    ] {
        let response = server
            .api(Method::POST, &format!("/apps/{app}/dynos"))
            .json(&body)
            .send()
            .await
            .expect("API request");
        let message = expect_api_error(response, status, id).await;
        assert!(message.contains(says), "{body}: {message}");
    }
    for app in ["empty", "capped"] {
        assert!(one_offs(&server, app).await.is_empty());
    }
    assert_eq!(server.containers(), containers_before, "no stray container");

    // Attached: an attach URL for the rendezvous listener; the dyno waits, `starting`.
    let attached = run(
        &server,
        "capped",
        json!({"command": "bash", "attach": true}),
    )
    .await;
    let url = attached["attach_url"].as_str().expect("an attach_url");
    assert!(url.starts_with("rendezvous://"), "{url}");
    assert_eq!(attached["state"], "starting");

    // The cap: 50 one-off dynos at once (49 more waiting attached ones), then a clear refusal.
    for _ in 0..49 {
        run(
            &server,
            "capped",
            json!({"command": "bash", "attach": true}),
        )
        .await;
    }
    let refused = server
        .api(Method::POST, "/apps/capped/dynos")
        .json(&json!({"command": "bash", "attach": true}))
        .send()
        .await
        .expect("API request");
    let message = expect_api_error(refused, 422, "invalid_params").await;
    assert!(
        message.contains("capped already runs 50 one-off dynos"),
        "{message}"
    );
    assert_eq!(one_offs(&server, "capped").await.len(), 50);

    // No empty bodies: unknown routes and methods are Heroku-shaped.
    for (method, path, status, id) in [
        (Method::PUT, "/apps/capped/dynos", 405, "method_not_allowed"),
        (
            Method::POST,
            "/apps/capped/releases/1",
            405,
            "method_not_allowed",
        ),
        (Method::GET, "/no/such/route/here", 404, "not_found"),
    ] {
        let response = server
            .api(method.clone(), path)
            .send()
            .await
            .expect("request");
        expect_api_error(response, status, id).await;
    }

    // A server restart ends one-off dynos: no stray container, no stale `ps` row.
    for _ in 0..50 {
        let first = one_offs(&server, "capped").await;
        let Some(dyno) = first.first() else { break };
        server
            .api(
                Method::POST,
                &format!("/apps/capped/dynos/{}/actions/stop", name_of(dyno)),
            )
            .send()
            .await
            .expect("stop");
    }
    assert!(one_offs(&server, "capped").await.is_empty());
    let sleeper = name_of(&run(&server, "capped", json!({"command": "sleep 600"})).await);
    server.wait_for_containers(&format!(".{sleeper}."), 1).await;
    server.kill9_and_restart(&[]);
    wait_until_gone(&server, "capped", &sleeper).await;
    server.wait_for_200("capped", "/").await;
}
