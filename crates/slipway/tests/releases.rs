//! End to end: config vars, the release ledger and rollback, checked against what the running
//! dynos actually see (the echo app answers its environment), plus concurrent config changes
//! and concurrent pushes.

mod support;

use std::collections::BTreeMap;

use serde_json::Value;
use support::{echo_app_repo, repo, text, Server, ECHO_APP};

const APP: &str = "ledger";

/// Deploys the echo app and waits until it serves.
async fn deployed(server: &Server, app: &str) -> tempfile::TempDir {
    let dir = echo_app_repo();
    server.push_ok(app, dir.path());
    server.wait_for_200(app, "/").await;
    dir
}

/// All releases, oldest first.
async fn releases(server: &Server, app: &str) -> Vec<Value> {
    let list = server.api_json(&format!("/apps/{app}/releases")).await;
    list.as_array().expect("a list of releases").clone()
}

async fn config(server: &Server, app: &str) -> BTreeMap<String, String> {
    serde_json::from_value(server.api_json(&format!("/apps/{app}/config-vars")).await).unwrap()
}

/// Waits until every dyno of the app runs `version` and is up.
async fn wait_for_dynos_on(server: &Server, app: &str, version: i64) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let dynos = server.api_json(&format!("/apps/{app}/dynos")).await;
        let dynos = dynos.as_array().unwrap().clone();
        if !dynos.is_empty()
            && dynos
                .iter()
                .all(|d| d["release"]["version"] == version && d["state"] == "up")
        {
            return dynos;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "dynos never all ran v{version}: {dynos:?}\n{}",
            server.logs(app)
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn strings(env: &Value, keys: &[&str]) -> Vec<Option<String>> {
    keys.iter()
        .map(|k| env.get(*k).and_then(Value::as_str).map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_changes_and_rollbacks_reach_the_running_dynos() {
    require_runc!();
    let server = Server::start();
    server.cli_ok(&["apps:create", APP]);

    // v1: config before the first deploy; a release without a slug.
    let set = server.cli_ok(&["config:set", "A=1", "-a", APP]);
    assert!(set.contains("done, v1"), "{set}");
    // v2: the deploy.
    let _dir = deployed(&server, APP).await;
    let env = server.wait_for_env(APP, |env| env["A"] == "1").await;
    assert_eq!(env["DYNO"], "web.1");

    // v3: two keys at once, one release, every dyno restarted onto it.
    server.cli_ok(&["ps:scale", "web=2", "-a", APP]);
    wait_for_dynos_on(&server, APP, 2).await;
    let set = server.cli_ok(&["config:set", "B=two words", "C=3", "-a", APP]);
    assert!(set.contains("done, v3"), "{set}");
    wait_for_dynos_on(&server, APP, 3).await;
    let env = server
        .wait_for_env(APP, |env| env["B"] == "two words")
        .await;
    assert_eq!(
        strings(&env, &["A", "B", "C"]),
        [Some("1".into()), Some("two words".into()), Some("3".into())]
    );

    // v4: unset.
    let unset = server.cli_ok(&["config:unset", "A", "-a", APP]);
    assert!(unset.contains("done, v4"), "{unset}");
    let env = server.wait_for_env(APP, |env| env.get("A").is_none()).await;
    assert_eq!(env["C"], "3");

    // v5: setting a key to its current value still records who did it, and every dyno moves
    // onto the new release (none is left behind on v4).
    let same = server.cli_ok(&["config:set", "C=3", "-a", APP]);
    assert!(same.contains("done, v5"), "{same}");
    let dynos = wait_for_dynos_on(&server, APP, 5).await;
    assert_eq!(dynos.len(), 2);

    // Output formats.
    let json: Value = serde_json::from_str(&server.cli_ok(&["config", "--json", "-a", APP]))
        .expect("config --json is JSON");
    assert_eq!(json, serde_json::json!({"B": "two words", "C": "3"}));
    let shell = server.cli_ok(&["config", "--shell", "-a", APP]);
    assert!(
        shell.contains("B='two words'") && shell.contains("C=3"),
        "{shell}"
    );
    assert_eq!(
        server.cli_ok(&["config:get", "B", "-a", APP]),
        "two words\n"
    );

    // Refusals name the key and change nothing.
    let bad = server.cli(&["config:set", "9LIVES=x", "-a", APP]);
    assert!(!bad.status.success());
    assert!(text(&bad).contains("9LIVES"), "{}", text(&bad));
    let bad = server
        .api(reqwest::Method::PATCH, &format!("/apps/{APP}/config-vars"))
        .json(&serde_json::json!({"bad-key": "x", "GOOD": "y"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let message = bad.text().await.unwrap();
    assert!(message.contains("bad-key"), "{message}");
    let big = server
        .api(reqwest::Method::PATCH, &format!("/apps/{APP}/config-vars"))
        .json(&serde_json::json!({"HUGE": "x".repeat(33 * 1024)}))
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 422);
    let message = big.text().await.unwrap();
    assert!(
        message.contains("HUGE") && message.contains("32768"),
        "{message}"
    );
    assert_eq!(
        releases(&server, APP).await.len(),
        5,
        "refusals add no release"
    );
    assert_eq!(config(&server, APP).await.len(), 2);
    // A null in the PATCH deletes.
    let patched = server
        .api_send(
            reqwest::Method::PATCH,
            &format!("/apps/{APP}/config-vars"),
            serde_json::json!({"C": null, "D": "4"}),
        )
        .await;
    assert_eq!(patched, serde_json::json!({"B": "two words", "D": "4"}));
    server
        .wait_for_env(APP, |env| env.get("C").is_none() && env["D"] == "4")
        .await;

    // The ledger: newest first, descriptions, users, slugs, snapshots.
    let listed = server.cli_ok(&["releases", "-n", "3", "-a", APP]);
    let lines: Vec<&str> = listed.lines().filter(|l| l.starts_with('v')).collect();
    assert_eq!(lines.len(), 3, "{listed}");
    assert!(lines[0].starts_with("v6") && lines[0].contains("Set D and remove C config vars"));
    assert!(lines[1].starts_with("v5") && lines[1].contains("Set C config vars"));
    assert!(lines[2].starts_with("v4") && lines[2].contains("Remove A config vars"));
    let all = releases(&server, APP).await;
    let versions: Vec<i64> = all.iter().map(|r| r["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6]);
    assert!(all[0]["slug"].is_null() && !all[1]["slug"].is_null());
    assert!(all[1]["description"]
        .as_str()
        .unwrap()
        .starts_with("Deploy "));
    assert_eq!(all[2]["description"], "Set B, C config vars");
    assert!(all
        .iter()
        .all(|r| r["user"]["email"] == "admin@slipway.local" && r["status"] == "succeeded"));
    assert_eq!(
        all.iter().filter(|r| r["current"] == true).count(),
        1,
        "one current release"
    );
    assert_eq!(all[5]["current"], true);
    let info = server.cli_ok(&["releases:info", "v3", "-a", APP]);
    assert!(
        info.contains("Release v3") && info.contains("Set B, C config vars"),
        "{info}"
    );
    let by_id = server
        .api_json(&format!(
            "/apps/{APP}/releases/{}",
            all[2]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(by_id["version"], 3);
    let snapshot = server
        .api_json(&format!("/apps/{APP}/releases/3/config-vars"))
        .await;
    assert_eq!(
        snapshot,
        serde_json::json!({"A": "1", "B": "two words", "C": "3"})
    );

    // Rollback to v3: a new release with v3's slug and config, on every dyno.
    let rolled = server.cli_ok(&["releases:rollback", "v3", "-a", APP]);
    assert!(
        rolled.contains("Rolling back") && rolled.contains("done, v7"),
        "{rolled}"
    );
    let env = server
        .wait_for_env(APP, |env| env["A"] == "1" && env.get("D").is_none())
        .await;
    assert_eq!(
        strings(&env, &["A", "B", "C"]),
        [Some("1".into()), Some("two words".into()), Some("3".into())]
    );
    wait_for_dynos_on(&server, APP, 7).await;
    assert_eq!(
        config(&server, APP).await,
        serde_json::from_value::<BTreeMap<String, String>>(snapshot).unwrap(),
        "the app's config is the rolled-back snapshot"
    );
    let v7 = server.api_json(&format!("/apps/{APP}/releases/7")).await;
    assert_eq!(v7["description"], "Rollback to v3");
    assert_eq!(v7["slug"], all[2]["slug"]);

    // A bare rollback goes to the release before the current one (v6) through the API too.
    let rolled = server.cli_ok(&["rollback", "-a", APP]);
    assert!(
        rolled.contains("to v6") && rolled.contains("done, v8"),
        "{rolled}"
    );
    server.wait_for_env(APP, |env| env["D"] == "4").await;

    // Rolling back to the slug-less v1 is refused and changes nothing.
    let before = config(&server, APP).await;
    let refused = server.cli(&["releases:rollback", "v1", "-a", APP]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("Cannot roll back to v1: it has no slug"),
        "{}",
        text(&refused)
    );
    let api_refused = server
        .api(reqwest::Method::POST, &format!("/apps/{APP}/releases"))
        .json(&serde_json::json!({"release": all[0]["id"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(api_refused.status(), 422);
    assert_eq!(releases(&server, APP).await.len(), 8);
    assert_eq!(config(&server, APP).await, before);

    // A release whose slug archive is gone cannot be rolled back to either.
    for entry in std::fs::read_dir(server.data_dir.join("slugs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "tgz") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let gone = server.cli(&["releases:rollback", "v2", "-a", APP]);
    assert!(!gone.status.success());
    assert!(
        text(&gone).contains("is gone from the slug store"),
        "{}",
        text(&gone)
    );
    assert_eq!(releases(&server, APP).await.len(), 8);
    // The app keeps serving its current release.
    server.wait_for_env(APP, |env| env["D"] == "4").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_config_sets_get_distinct_versions_and_keep_every_key() {
    require_runc!();
    let server = Server::start();
    server.cli_ok(&["apps:create", APP]);
    let _dir = deployed(&server, APP).await;
    assert_eq!(releases(&server, APP).await.len(), 1);

    let outputs: Vec<std::process::Output> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..10)
            .map(|i| {
                let server = &server;
                scope.spawn(move || {
                    server.cli(&["config:set", &format!("KEY_{i}=value {i}"), "-a", APP])
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for output in &outputs {
        assert!(output.status.success(), "{}", text(output));
    }
    let all = releases(&server, APP).await;
    let versions: Vec<i64> = all.iter().map(|r| r["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, (1..=11).collect::<Vec<i64>>());
    let config = config(&server, APP).await;
    for i in 0..10 {
        assert_eq!(config[&format!("KEY_{i}")], format!("value {i}"));
    }
    // Each release's snapshot grows by exactly one key: no change was lost or interleaved.
    for version in 2..=11 {
        let snapshot = server
            .api_json(&format!("/apps/{APP}/releases/{version}/config-vars"))
            .await;
        assert_eq!(snapshot.as_object().unwrap().len(), version as usize - 1);
    }
    // The dynos run the last release with every key.
    let env = server
        .wait_for_env(APP, |env| {
            (0..10).all(|i| env.get(format!("KEY_{i}")).is_some())
        })
        .await;
    assert_eq!(env["KEY_7"], "value 7");
    wait_for_dynos_on(&server, APP, 11).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_push_while_building_is_refused_and_builds_nothing() {
    require_runc!();
    let server = Server::start();
    server.cli_ok(&["apps:create", APP]);
    // A Python app: creating its virtualenv keeps the build busy for a while.
    let slow = repo(&[
        ("requirements.txt", "\n"),
        ("Procfile", "web: python server.py\n"),
        ("server.py", ECHO_APP),
    ]);
    let other = repo(&[
        ("Procfile", "web: python3 server.py\n"),
        ("server.py", ECHO_APP),
        ("OTHER", "the second push\n"),
    ]);
    std::thread::scope(|scope| {
        let first = scope.spawn(|| server.push(APP, slow.path()));
        // Push the second only once the first build is running.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !server.logs(APP).contains("app[build]:") {
            assert!(
                std::time::Instant::now() < deadline,
                "the first build never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let second = server.push_ref(APP, other.path(), "+main");
        let first = first.join().unwrap();
        assert!(first.status.success(), "{}", text(&first));
        assert!(!second.status.success(), "{}", text(&second));
        assert!(
            text(&second).contains("A build is already running for ledger"),
            "{}",
            text(&second)
        );
    });
    let all = releases(&server, APP).await;
    assert_eq!(all.len(), 1, "only the first push released: {all:?}");
    server.wait_for_200(APP, "/").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_release_phase_gates_every_release() {
    require_runc!();
    let server = Server::start_with(&["--release-phase-timeout", "3"]);
    server.cli_ok(&["apps:create", APP]);
    server.cli_ok(&["config:set", "FAIL=0", "-a", APP]);
    let release_command = "release: echo \"release phase on $DYNO with FAIL=$FAIL\"; if [ \"$SLOW\" = 1 ]; then sleep 60; fi; exit $FAIL\n";
    let dir = repo(&[
        (
            "Procfile",
            &format!("web: python3 server.py\n{release_command}"),
        ),
        ("server.py", ECHO_APP),
    ]);

    // v2: the phase succeeds; its output streams to git; then the dynos start.
    let push = server.push(APP, dir.path());
    let output = text(&push);
    assert!(push.status.success(), "{output}\n{}", server.log());
    for expected in [
        "remote: -----> Running release command...",
        "remote: release phase on release.1 with FAIL=0",
        "remote:        The release command succeeded.",
        "remote:        Released v2",
    ] {
        assert!(
            output.contains(expected),
            "push output lacks {expected:?}:\n{output}"
        );
    }
    server.wait_for_env(APP, |env| env["FAIL"] == "0").await;
    wait_for_dynos_on(&server, APP, 2).await;

    // v3: a config change whose phase fails: refused, and v2 keeps running.
    let failed = server.cli(&["config:set", "FAIL=1", "-a", APP]);
    assert!(
        !failed.status.success(),
        "{}\n{}",
        text(&failed),
        server.log()
    );
    assert!(
        text(&failed).contains("Release v3 failed: the release command exited with status 1"),
        "{}",
        text(&failed)
    );
    let v3 = server.api_json(&format!("/apps/{APP}/releases/3")).await;
    assert_eq!(v3["status"], "failed");
    assert_eq!(v3["current"], false);
    let v2 = server.api_json(&format!("/apps/{APP}/releases/2")).await;
    assert_eq!(v2["current"], true);

    // v4: a deploy whose phase fails: the push fails with the phase's output; v2 serves.
    std::fs::write(dir.path().join("VERSION"), "2\n").unwrap();
    support::commit_all(dir.path(), "second");
    let push = server.push(APP, dir.path());
    let output = text(&push);
    assert!(!push.status.success(), "{output}");
    assert!(
        output.contains("remote: release phase on release.1 with FAIL=1")
            && output.contains("Release v4 failed"),
        "{output}"
    );
    let v4 = server.api_json(&format!("/apps/{APP}/releases/4")).await;
    assert_eq!(v4["status"], "failed");
    let dynos = wait_for_dynos_on(&server, APP, 2).await;
    assert_eq!(dynos.len(), 1);
    let env = server.wait_for_env(APP, |_| true).await;
    assert_eq!(env["FAIL"], "0", "the previous release keeps running");
    let log = server
        .wait_for_log(APP, |log| log.contains("app[api]: Release v4 failed"))
        .await;
    assert!(
        log.contains("app[release.1]: release phase on release.1 with FAIL=1"),
        "{log}"
    );

    // The timeout: the phase is killed and the release failed.
    server.cli_ok(&["config:set", "FAIL=0", "-a", APP]);
    server.wait_for_env(APP, |env| env["FAIL"] == "0").await;
    let slow = server.cli(&["config:set", "SLOW=1", "-a", APP]);
    assert!(!slow.status.success());
    assert!(
        text(&slow).contains("timed out after 3 seconds"),
        "{}",
        text(&slow)
    );
    let releases = releases(&server, APP).await;
    let statuses: Vec<&str> = releases
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "succeeded",
            "succeeded",
            "failed",
            "failed",
            "succeeded",
            "failed"
        ]
    );
    assert_eq!(releases[4]["current"], true);
    wait_for_dynos_on(&server, APP, 5).await;
}
