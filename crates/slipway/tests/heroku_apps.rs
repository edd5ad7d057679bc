//! The real heroku CLI (v11) on the app endpoints beyond the app itself, each checked by its
//! effect: `apps`, `apps:info --json`, `buildpacks*` then a push built with the buildpack set,
//! `stack`/`stack:set`, `regions`, `features`, `teams`, `domains:update`, and `apps:rename`
//! carrying the app's routing, git remote, config, releases, domains, drains and log history
//! to the new name. Bad input (taken or invalid names, unknown stacks, regions and buildpacks)
//! is refused with Heroku's 422 and changes nothing.

#[macro_use]
mod support;

use std::path::Path;
use std::process::Output;

use support::{text, Server};

/// Runs the real CLI with the server as its buildpack registry too (the README's set-up).
fn heroku(server: &Server, home: &Path, dir: &Path, args: &[&str]) -> Output {
    server
        .heroku_command(support::heroku_cli().as_os_str(), home, dir)
        .env("HEROKU_BUILDPACK_REGISTRY_URL", server.api_tls_url())
        .args(args)
        .output()
        .expect("run the heroku CLI")
}

/// Runs the real CLI and asserts it succeeded; returns stdout and stderr together.
fn heroku_ok(server: &Server, home: &Path, dir: &Path, args: &[&str]) -> String {
    let output = heroku(server, home, dir, args);
    assert!(
        output.status.success(),
        "heroku {args:?} failed:\n{}\n--- server log ---\n{}",
        text(&output),
        server.log()
    );
    text(&output)
}

/// What the CLI printed with its error box and line wrapping undone.
fn flat(printed: &str) -> String {
    printed
        .replace('›', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs the real CLI and asserts it failed; returns what it printed, flattened ([`flat`]).
fn heroku_fails(server: &Server, home: &Path, dir: &Path, args: &[&str]) -> String {
    let output: Output = heroku(server, home, dir, args);
    assert!(
        !output.status.success(),
        "heroku {args:?} should have failed:\n{}",
        text(&output)
    );
    flat(&text(&output))
}

/// The app's buildpack names, in order, as the API lists them.
async fn buildpacks(server: &Server, app: &str) -> Vec<String> {
    let list = server
        .api_json(&format!("/apps/{app}/buildpack-installations"))
        .await;
    list.as_array()
        .expect("a list")
        .iter()
        .map(|b| b["buildpack"]["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_heroku_cli_manages_buildpacks_stacks_regions_and_features() {
    require_runc!();
    let server = Server::start();
    let home = tempfile::tempdir().unwrap();
    let repo = support::echo_app_repo();
    let dir = repo.path();

    // `apps:create --buildpack` creates the app, stores the buildpack and adds the remote.
    let created = heroku_ok(
        &server,
        home.path(),
        dir,
        &["apps:create", "hkapps", "--buildpack", "heroku/procfile"],
    );
    assert!(created.contains("hkapps"), "{created}");
    let remote = support::git(dir, &["remote", "get-url", "heroku"]);
    assert!(text(&remote).contains("/hkapps.git"), "{}", text(&remote));
    assert_eq!(buildpacks(&server, "hkapps").await, ["heroku/procfile"]);

    // `heroku apps` lists it (GET /users/~/apps), and apps:info --json shows where it runs.
    let apps = heroku_ok(&server, home.path(), dir, &["apps"]);
    assert!(apps.contains("hkapps"), "{apps}");
    let info = server.heroku(home.path(), dir, &["apps:info", "--json", "-a", "hkapps"]);
    assert!(info.status.success(), "{}", text(&info));
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["app"]["region"]["name"], "local", "{info}");
    assert_eq!(info["app"]["stack"]["name"], "host", "{info}");
    assert_eq!(info["app"]["build_stack"]["name"], "host", "{info}");

    // The list is edited in place: add, add at an index, remove, clear, set.
    heroku_ok(
        &server,
        home.path(),
        dir,
        &["buildpacks:add", "heroku/python", "-a", "hkapps"],
    );
    assert_eq!(
        buildpacks(&server, "hkapps").await,
        ["heroku/procfile", "heroku/python"]
    );
    heroku_ok(
        &server,
        home.path(),
        dir,
        &["buildpacks:add", "-i", "1", "heroku/nodejs", "-a", "hkapps"],
    );
    assert_eq!(
        buildpacks(&server, "hkapps").await,
        ["heroku/nodejs", "heroku/procfile", "heroku/python"]
    );
    let listed = heroku_ok(&server, home.path(), dir, &["buildpacks", "-a", "hkapps"]);
    let nodejs = listed.find("heroku/nodejs").expect("nodejs listed");
    let python = listed.find("heroku/python").expect("python listed");
    assert!(nodejs < python, "{listed}");
    heroku_ok(
        &server,
        home.path(),
        dir,
        &["buildpacks:remove", "heroku/python", "-a", "hkapps"],
    );
    heroku_ok(
        &server,
        home.path(),
        dir,
        &["buildpacks:remove", "-i", "1", "-a", "hkapps"],
    );
    assert_eq!(buildpacks(&server, "hkapps").await, ["heroku/procfile"]);
    heroku_ok(
        &server,
        home.path(),
        dir,
        &["buildpacks:clear", "-a", "hkapps"],
    );
    assert!(buildpacks(&server, "hkapps").await.is_empty());
    heroku_ok(
        &server,
        home.path(),
        dir,
        &["buildpacks:set", "heroku/procfile", "-a", "hkapps"],
    );

    // An unknown buildpack is refused with the built-ins listed, and nothing changes: by the
    // API for a URL it cannot fetch (only http(s) git repositories and tarballs), by the
    // registry for a name.
    let refused = heroku_fails(
        &server,
        home.path(),
        dir,
        &["buildpacks:set", "ftp://example.com/bp.tgz", "-a", "hkapps"],
    );
    assert!(
        refused.contains("heroku/python, heroku/nodejs, heroku/ruby, heroku/php, heroku/go, heroku/java, heroku/rust, heroku/static, heroku/procfile"),
        "{refused}"
    );
    let refused = heroku_fails(
        &server,
        home.path(),
        dir,
        &["buildpacks:add", "heroku/scala", "-a", "hkapps"],
    );
    assert!(
        refused.contains("heroku/python, heroku/nodejs, heroku/ruby, heroku/php, heroku/go, heroku/java, heroku/rust, heroku/static, heroku/procfile"),
        "{refused}"
    );
    let response = server
        .api(reqwest::Method::PUT, "/apps/hkapps/buildpack-installations")
        .json(&serde_json::json!({"updates": [{"buildpack": "heroku/scala"}]}))
        .send()
        .await
        .unwrap();
    let message = support::expect_api_error(response, 422, "invalid_params").await;
    assert!(message.contains("heroku/procfile"), "{message}");
    assert_eq!(buildpacks(&server, "hkapps").await, ["heroku/procfile"]);

    // A push builds with the buildpack set on the app, and says so.
    let push = server.push("hkapps", dir);
    assert!(push.status.success(), "{}\n{}", text(&push), server.log());
    assert!(
        text(&push).contains("Using buildpack set on the app: heroku/procfile"),
        "{}",
        text(&push)
    );
    server.wait_for_200("hkapps", "/").await;
    // The python buildpack set instead refuses this app (no requirements.txt): the set list,
    // not detection, picks what runs.
    heroku_ok(
        &server,
        home.path(),
        dir,
        &["buildpacks:set", "heroku/python", "-a", "hkapps"],
    );
    support::git(dir, &["commit", "--allow-empty", "-m", "again"]);
    let push = server.push("hkapps", dir);
    assert!(!push.status.success(), "{}", text(&push));
    assert!(
        text(&push).contains("Using buildpack set on the app: heroku/python"),
        "{}",
        text(&push)
    );

    // Stacks: host, the default, marked; setting one with a manifest works (its build says
    // whether it is built), another is refused with the list.
    let stack = heroku_ok(&server, home.path(), dir, &["stack", "-a", "hkapps"]);
    assert!(stack.contains("* host"), "{stack}");
    heroku_ok(
        &server,
        home.path(),
        dir,
        &["stack:set", "heroku-24", "-a", "hkapps"],
    );
    let refused = heroku_fails(
        &server,
        home.path(),
        dir,
        &["stack:set", "cedar-14", "-a", "hkapps"],
    );
    assert!(
        refused.contains("Available stacks: host, heroku-24"),
        "{refused}"
    );
    let app = server.api_json("/apps/hkapps").await;
    assert_eq!(app["build_stack"]["name"], "heroku-24");

    // Regions: the configured one; another is refused and no app is created.
    let regions = heroku_ok(&server, home.path(), dir, &["regions"]);
    assert!(regions.contains("local"), "{regions}");
    let refused = heroku_fails(
        &server,
        home.path(),
        dir,
        &["apps:create", "hkregion", "--region", "us"],
    );
    assert!(refused.contains("The only region is local"), "{refused}");
    let missing = server
        .api(reqwest::Method::GET, "/apps/hkregion")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    heroku_ok(
        &server,
        home.path(),
        dir,
        &["apps:create", "hkregion", "--region", "local"],
    );

    // Features: the platform's preboot, general; teams: none.
    let features = heroku_ok(&server, home.path(), dir, &["features", "-a", "hkapps"]);
    assert!(features.contains("preboot"), "{features}");
    let teams = server.api_json("/teams").await;
    assert_eq!(teams, serde_json::json!([]));
    heroku_ok(&server, home.path(), dir, &["teams"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_heroku_cli_renames_an_app_and_everything_follows() {
    require_runc!();
    // The test's drain receiver is on loopback.
    let server = Server::start_with(&["--allow-private-urls"]);
    let home = tempfile::tempdir().unwrap();
    let repo = support::echo_app_repo();
    let dir = repo.path();
    heroku_ok(&server, home.path(), dir, &["apps:create", "hkold"]);
    server.push_ok("hkold", dir);
    server.wait_for_200("hkold", "/").await;
    heroku_ok(
        &server,
        home.path(),
        dir,
        &["config:set", "KEPT=yes", "-a", "hkold"],
    );
    heroku_ok(
        &server,
        home.path(),
        dir,
        &["domains:add", "www.renamed.test", "-a", "hkold"],
    );
    // A syslog drain on loopback collects everything it is sent, over any connection.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let drain_url = format!("syslog://{}", listener.local_addr().unwrap());
    let drained = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let sink = drained.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let sink = sink.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut buffer = [0u8; 4096];
                while let Ok(read) = stream.read(&mut buffer).await {
                    if read == 0 {
                        break;
                    }
                    sink.lock().unwrap().extend_from_slice(&buffer[..read]);
                }
            });
        }
    });
    heroku_ok(
        &server,
        home.path(),
        dir,
        &["drains:add", &drain_url, "-a", "hkold"],
    );
    let releases_before = server.api_json("/apps/hkold/releases").await;
    let id = server.api_json("/apps/hkold").await["id"].clone();

    // domains:update answers with the domain (no more 405); an unknown cert is a 404.
    let refused = heroku_fails(
        &server,
        home.path(),
        dir,
        &[
            "domains:update",
            "www.renamed.test",
            "--cert",
            "sni-00000000",
            "-a",
            "hkold",
        ],
    );
    assert!(
        refused.contains("Couldn't find that SNI endpoint"),
        "{refused}"
    );
    let updated = server
        .api(
            reqwest::Method::PATCH,
            "/apps/hkold/domains/www.renamed.test",
        )
        .json(&serde_json::json!({"sni_endpoint": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);

    // Bad renames change nothing: a taken name, an invalid one.
    heroku_ok(
        &server,
        home.path(),
        dir,
        &["apps:create", "hktaken", "--no-remote"],
    );
    let taken = heroku_fails(
        &server,
        home.path(),
        dir,
        &["apps:rename", "hktaken", "-a", "hkold"],
    );
    assert!(taken.contains("Name hktaken is already taken"), "{taken}");
    let invalid = heroku_fails(
        &server,
        home.path(),
        dir,
        &["apps:rename", "Bad_Name", "-a", "hkold"],
    );
    assert!(invalid.to_lowercase().contains("name"), "{invalid}");
    let response = server
        .api(reqwest::Method::PATCH, "/apps/hkold")
        .json(&serde_json::json!({"name": "hktaken"}))
        .send()
        .await
        .unwrap();
    support::expect_api_error(response, 422, "invalid_params").await;
    server.wait_for_200("hkold", "/").await;
    assert_eq!(server.api_json("/apps/hkold").await["id"], id);

    // The rename: Heroku's message, the new URLs, the local remote updated.
    let renamed = heroku_ok(
        &server,
        home.path(),
        dir,
        &["apps:rename", "hknew", "-a", "hkold"],
    );
    assert!(
        renamed.contains("Renaming hkold to hknew... done"),
        "{renamed}"
    );
    assert!(renamed.contains("hknew.localhost"), "{renamed}");
    let remote = support::git(dir, &["remote", "get-url", "heroku"]);
    assert!(text(&remote).contains("/hknew.git"), "{}", text(&remote));

    // The new hostname serves, the old one no longer does.
    server.wait_for_200("hknew", "/").await;
    assert_eq!(server.get("hkold", "/").await.status(), 404);
    let gone = server
        .api(reqwest::Method::GET, "/apps/hkold")
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);

    // Same app: id, config, releases, custom domain, drain, log history.
    let app = server.api_json("/apps/hknew").await;
    assert_eq!(app["id"], id);
    assert_eq!(
        server.api_json("/apps/hknew/config-vars").await["KEPT"],
        "yes"
    );
    let releases_after = server.api_json("/apps/hknew/releases").await;
    assert_eq!(
        releases_after.as_array().unwrap().len(),
        releases_before.as_array().unwrap().len()
    );
    let domains = heroku_ok(&server, home.path(), dir, &["domains", "-a", "hknew"]);
    assert!(domains.contains("www.renamed.test"), "{domains}");
    assert!(domains.contains("hknew.localhost"), "{domains}");
    assert!(!domains.contains("hkold.localhost"), "{domains}");
    let drains = heroku_ok(&server, home.path(), dir, &["drains", "-a", "hknew"]);
    assert!(drains.contains(&drain_url), "{drains}");
    let logs = heroku_ok(
        &server,
        home.path(),
        dir,
        &["logs", "-n", "1500", "-a", "hknew"],
    );
    assert!(logs.contains("Set KEPT config vars"), "{logs}");
    assert!(logs.contains("Rename hkold to hknew"), "{logs}");
    // The drain, restarted under the new name, goes on receiving the app's lines.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !String::from_utf8_lossy(&drained.lock().unwrap()).contains("Rename hkold to hknew") {
        assert!(
            std::time::Instant::now() < deadline,
            "the drain never got the rename: {}",
            String::from_utf8_lossy(&drained.lock().unwrap())
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // A push to the renamed remote deploys the renamed app.
    std::fs::write(dir.join("marker.txt"), "after rename").unwrap();
    support::commit_all(dir, "after rename");
    server.push_ok("hknew", dir);
    let releases = server.api_json("/apps/hknew/releases").await;
    assert!(
        releases.as_array().unwrap().len() > releases_after.as_array().unwrap().len(),
        "{releases}"
    );
    server.wait_for_200("hknew", "/").await;
    // The old name is free again.
    heroku_ok(
        &server,
        home.path(),
        dir,
        &["apps:create", "hkold", "--no-remote"],
    );
}

/// Runs the `slipway` CLI in `dir` against `server`, with `key` as its API key.
fn slipway(server: &Server, dir: &Path, key: &str, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_slipway"))
        .current_dir(dir)
        .args(args)
        .env("SLIPWAY_API_URL", &server.api_url)
        .env("SLIPWAY_API_KEY", key)
        .env_remove("SLIPWAY_APP")
        .output()
        .expect("run slipway")
}

/// A new user's first ten minutes with the `slipway` CLI: `apps:create` in a repository adds
/// the `slipway` remote, `git push slipway main` deploys, and the errors they meet say what to
/// do in Slipway's terms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_users_first_ten_minutes_with_the_slipway_cli() {
    require_runc!();
    let server = Server::start();
    let repo = support::echo_app_repo();
    let dir = repo.path();
    let key = server.key.clone();
    let ok = |args: &[&str]| {
        let output = slipway(&server, dir, &key, args);
        assert!(
            output.status.success(),
            "slipway {args:?}: {}",
            text(&output)
        );
        text(&output)
    };

    let created = ok(&["apps:create", "firstapp"]);
    assert!(created.contains("Git remote slipway added"), "{created}");
    let remote = text(&support::git(dir, &["remote", "get-url", "slipway"]));
    assert_eq!(remote.trim(), server.git_url("firstapp"));
    let helper = format!("!f() {{ echo username=slipway; echo password={key}; }}; f");
    let push = support::git(
        dir,
        &[
            "-c",
            &format!("credential.helper={helper}"),
            "push",
            "slipway",
            "main",
        ],
    );
    assert!(push.status.success(), "{}", text(&push));
    server.wait_for_200("firstapp", "/").await;

    // The remote names the app for later commands; buildpacks from the slipway CLI too.
    let set = ok(&["buildpacks:set", "heroku/procfile"]);
    assert!(
        set.contains("Next release on firstapp will use heroku/procfile"),
        "{set}"
    );
    assert_eq!(buildpacks(&server, "firstapp").await, ["heroku/procfile"]);
    assert!(ok(&["buildpacks"]).contains("heroku/procfile"));

    // A type the app does not declare: the ones it does.
    let scale = slipway(&server, dir, &key, &["ps:scale", "worker=1"]);
    assert!(!scale.status.success());
    assert!(
        text(&scale).contains("This app's process types are: web."),
        "{}",
        text(&scale)
    );
    // A mistyped command: the closest first.
    let typo = slipway(&server, dir, &key, &["aps"]);
    assert!(!typo.status.success());
    assert!(
        text(&typo).contains("Did you mean `apps`?"),
        "{}",
        text(&typo)
    );
    // A refused key: what to set, not an HTTP header.
    let refused = slipway(&server, dir, "not-a-key", &["apps"]);
    assert!(!refused.status.success());
    let message = text(&refused);
    assert!(
        message.contains("SLIPWAY_API_KEY") && message.contains("slipway login"),
        "{message}"
    );
    assert!(!message.contains("Authorization"), "{message}");

    // Rename from the slipway CLI: the remote follows.
    let renamed = ok(&["apps:rename", "secondapp"]);
    assert!(
        renamed.contains("Renaming firstapp to secondapp... done"),
        "{renamed}"
    );
    assert!(renamed.contains("Git remote slipway updated"), "{renamed}");
    let remote = text(&support::git(dir, &["remote", "get-url", "slipway"]));
    assert_eq!(remote.trim(), server.git_url("secondapp"));
    server.wait_for_200("secondapp", "/").await;

    // `apps:destroy NAME` as on Heroku.
    ok(&["apps:destroy", "secondapp", "--confirm", "secondapp"]);
    let gone = server
        .api(reqwest::Method::GET, "/apps/secondapp")
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}
