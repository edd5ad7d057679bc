//! End to end: the server killed with SIGKILL during config changes and during a deploy
//! restarts with a whole ledger (every release complete or absent, no gaps, no duplicates) and
//! serves the app's last good release.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{commit_all, text, Server};

const APP: &str = "durable";

/// All releases, oldest first; checks that versions run 1..=N with no gap or duplicate and
/// that every release is complete.
async fn whole_ledger(server: &Server) -> Vec<Value> {
    let list = server.api_json(&format!("/apps/{APP}/releases")).await;
    let releases = list.as_array().expect("a list of releases").clone();
    let versions: Vec<i64> = releases
        .iter()
        .map(|r| r["version"].as_i64().unwrap())
        .collect();
    assert_eq!(
        versions,
        (1..=releases.len() as i64).collect::<Vec<_>>(),
        "the ledger has a gap or a duplicate"
    );
    for release in &releases {
        assert!(
            !release["slug"].is_null() && release["status"] == "succeeded",
            "an incomplete release: {release}"
        );
        assert!(release["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()));
    }
    releases
}

async fn snapshot(server: &Server, version: i64) -> BTreeMap<String, String> {
    serde_json::from_value(
        server
            .api_json(&format!("/apps/{APP}/releases/{version}/config-vars"))
            .await,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_config_changes_and_a_deploy_leaves_a_whole_ledger() {
    require_runc!();
    let mut server = Server::start();
    let dir = server.deploy_echo_app(APP).await;

    // Config changes, one after another, with the server killed in the middle of them.
    let (api_url, key) = (server.api_url.clone(), server.key.clone());
    let writer = std::thread::spawn(move || {
        for i in 0..200 {
            let output = std::process::Command::new(env!("CARGO_BIN_EXE_slipway"))
                .args(["config:set", &format!("K_{i:03}={i}"), "-a", APP])
                .env("SLIPWAY_API_URL", &api_url)
                .env("SLIPWAY_API_KEY", &key)
                .output()
                .unwrap();
            if !output.status.success() {
                return i;
            }
        }
        200
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while server
        .api_json(&format!("/apps/{APP}/releases"))
        .await
        .as_array()
        .unwrap()
        .len()
        < 6
    {
        assert!(Instant::now() < deadline, "config changes never landed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill9();
    let attempted = writer.join().unwrap();
    assert!(
        attempted < 200,
        "the server was killed before the writer finished"
    );
    server.restart_with(&[]);

    let releases = whole_ledger(&server).await;
    let last = releases.len() as i64;
    // Release v(n+1) is the n-th change: its snapshot holds exactly K_000..K_(n-1).
    for version in 2..=last {
        let config = snapshot(&server, version).await;
        let expected: BTreeMap<String, String> = (0..version - 1)
            .map(|i| (format!("K_{i:03}"), i.to_string()))
            .collect();
        assert_eq!(config, expected, "snapshot of v{version}");
    }
    let current: BTreeMap<String, String> =
        serde_json::from_value(server.api_json(&format!("/apps/{APP}/config-vars")).await).unwrap();
    assert_eq!(current, snapshot(&server, last).await);
    // The dynos run the last release's config again.
    let keys = current.len();
    let env = server
        .wait_for_env(APP, |env| {
            env.as_object()
                .is_some_and(|e| e.keys().filter(|k| k.starts_with("K_")).count() == keys)
        })
        .await;
    for (key, value) in &current {
        assert_eq!(env[key], *value.as_str());
    }

    // A deploy killed mid-build leaves no release behind.
    // A Python app: creating its virtualenv keeps the build busy long enough to kill it.
    std::fs::write(dir.path().join("VERSION"), "2\n").unwrap();
    std::fs::write(
        dir.path().join("requirements.txt"),
        "# nothing to install\n",
    )
    .unwrap();
    commit_all(dir.path(), "second");
    let pusher = {
        let dir = dir.path().to_owned();
        let url =
            server
                .git_url(APP)
                .replacen("http://", &format!("http://heroku:{}@", server.key), 1);
        std::thread::spawn(move || support::git(&dir, &["push", &url, "main"]))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server
        .logs(APP)
        .contains("app[build]: -----> Python app detected")
    {
        assert!(Instant::now() < deadline, "the build never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill9();
    let push = pusher.join().unwrap();
    assert!(!push.status.success(), "{}", text(&push));
    server.restart_with(&[]);
    let after = whole_ledger(&server).await;
    assert!(
        after.len() == releases.len()
            || (after.len() == releases.len() + 1
                && after.last().unwrap()["description"]
                    .as_str()
                    .unwrap()
                    .starts_with("Deploy ")),
        "the deploy is either whole or absent: {after:?}"
    );
    server.wait_for_env(APP, |env| env["K_000"] == "0").await;

    // A push after the crash is not refused as "already building", and releases. (A new
    // commit: if the killed deploy had finished, git would find the old one up to date.)
    std::fs::write(dir.path().join("VERSION"), "3\n").unwrap();
    commit_all(dir.path(), "third");
    let push = server.push(APP, dir.path());
    assert!(push.status.success(), "{}", text(&push));
    let finally = whole_ledger(&server).await;
    assert_eq!(finally.len(), after.len() + 1);
    assert_eq!(finally.last().unwrap()["current"], true);
    let env = server.wait_for_env(APP, |env| env["K_000"] == "0").await;
    assert_eq!(
        env.as_object()
            .unwrap()
            .keys()
            .filter(|k| k.starts_with("K_"))
            .count(),
        keys
    );
}
