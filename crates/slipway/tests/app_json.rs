//! End to end: an app.json at the root of the pushed source sets the initial formation,
//! config var defaults and generated secrets (seen by the running dynos), runs its postdeploy
//! script once after the first deploy only, and rejects pushes it cannot honour (a required
//! config var unset, invalid JSON) before anything is built.

mod support;

use serde_json::Value;
use support::{commit_all, repo, text, Server, ECHO_APP};

const MANIFEST: &str = r#"{
  "name": "echo",
  "description": "keys Slipway does not know are ignored",
  "addons": [],
  "formation": {"web": {"quantity": 2}, "worker": {"quantity": 1}},
  "env": {
    "GREETING": {"description": "what to say", "value": "hello"},
    "PLAIN": "plain-default",
    "SECRET_KEY_BASE": {"generator": "secret"},
    "OPTIONAL": {"required": false}
  },
  "scripts": {"postdeploy": "echo postdeploy ran with $GREETING"},
  "buildpacks": [{"url": "heroku/procfile"}]
}
"#;

async fn wait_for_web_dynos_up(server: &Server, app: &str, count: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let dynos = server.api_json(&format!("/apps/{app}/dynos")).await;
        let web: Vec<Value> = dynos
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["type"] == "web" && d["state"] == "up")
            .cloned()
            .collect();
        if web.len() == count {
            return web;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never {count} web dynos up: {dynos}\n{}",
            server.logs(app)
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn app_json_sets_formation_env_and_runs_postdeploy_once() {
    require_runc!();
    let server = Server::start();
    server.cli_ok(&["apps:create", "manifest"]);
    let dir = repo(&[
        ("Procfile", "web: python3 server.py\n"),
        ("server.py", ECHO_APP),
        ("app.json", MANIFEST),
    ]);
    let push = server.push("manifest", dir.path());
    let output = text(&push);
    assert!(push.status.success(), "{output}\n{}", server.log());
    assert!(
        output.contains("Setting config vars from app.json"),
        "{output}"
    );
    assert!(output.contains("Running postdeploy script"), "{output}");
    assert!(output.contains("postdeploy ran with hello"), "{output}");
    assert!(
        output.contains("formation names process type worker"),
        "the unknown process type is warned about: {output}"
    );

    // Formation: two web dynos from the first push.
    let formation = server.api_json("/apps/manifest/formation/web").await;
    assert_eq!(formation["quantity"], 2, "{formation}");
    wait_for_web_dynos_up(&server, "manifest", 2).await;

    // Env: defaults and a generated secret, as the dynos see them.
    let env = server
        .wait_for_env("manifest", |env| env.get("GREETING").is_some())
        .await;
    assert_eq!(env["GREETING"], "hello");
    assert_eq!(env["PLAIN"], "plain-default");
    assert!(env.get("OPTIONAL").is_none(), "{env}");
    let secret = env["SECRET_KEY_BASE"]
        .as_str()
        .expect("a generated secret")
        .to_owned();
    assert_eq!(secret.len(), 64, "{secret}");
    assert!(secret.chars().all(|c| c.is_ascii_hexdigit()), "{secret}");

    // The postdeploy script ran once, in its own one-off dyno.
    let log = server
        .wait_for_log("manifest", |log| {
            log.contains("app[postdeploy.1]: postdeploy ran with hello")
        })
        .await;
    assert_eq!(count(&log, "app[postdeploy.1]: postdeploy ran"), 1, "{log}");

    // A later deploy: no postdeploy, the secret and a user's value are kept, and the formation
    // the user scaled is not reset.
    server.cli_ok(&["config:set", "GREETING=bonjour", "-a", "manifest"]);
    server.cli_ok(&["ps:scale", "web=1", "-a", "manifest"]);
    std::fs::write(dir.path().join("extra.txt"), "second").unwrap();
    commit_all(dir.path(), "second");
    let push = server.push("manifest", dir.path());
    let output = text(&push);
    assert!(push.status.success(), "{output}\n{}", server.log());
    assert!(!output.contains("postdeploy"), "{output}");
    assert!(
        !output.contains("Setting config vars from app.json"),
        "{output}"
    );
    let config = server.api_json("/apps/manifest/config-vars").await;
    assert_eq!(config["GREETING"], "bonjour");
    assert_eq!(config["SECRET_KEY_BASE"], secret.as_str());
    let formation = server.api_json("/apps/manifest/formation/web").await;
    assert_eq!(formation["quantity"], 1, "{formation}");
    let releases = server.api_json("/apps/manifest/releases").await;
    let last = releases.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["status"], "succeeded", "{last}");
    let log = server.logs("manifest");
    assert_eq!(count(&log, "app[postdeploy.1]: postdeploy ran"), 1, "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_required_config_var_that_is_unset_rejects_the_push() {
    require_runc!();
    let server = Server::start();
    server.cli_ok(&["apps:create", "needy"]);
    let manifest = r#"{"env": {"DATABASE_URL": {"description": "where the data lives"},
        "API_TOKEN": {"required": true}, "LOG_LEVEL": "info"}}"#;
    let dir = repo(&[
        ("Procfile", "web: python3 server.py\n"),
        ("server.py", ECHO_APP),
        ("app.json", manifest),
    ]);
    let push = server.push("needy", dir.path());
    let output = text(&push);
    assert!(!push.status.success(), "{output}");
    assert!(
        output.contains("app.json requires config vars that are not set: API_TOKEN, DATABASE_URL"),
        "{output}"
    );
    assert!(
        !output.contains("-----> Building"),
        "nothing is built: {output}"
    );
    let releases = server.api_json("/apps/needy/releases").await;
    assert_eq!(releases.as_array().unwrap().len(), 0, "{releases}");

    // Once they are set, the same push goes through, with the other default added.
    server.cli_ok(&[
        "config:set",
        "DATABASE_URL=postgres://db",
        "API_TOKEN=t0k3n",
        "-a",
        "needy",
    ]);
    let push = server.push("needy", dir.path());
    assert!(push.status.success(), "{}\n{}", text(&push), server.log());
    let env = server
        .wait_for_env("needy", |env| env.get("LOG_LEVEL").is_some())
        .await;
    assert_eq!(env["LOG_LEVEL"], "info");
    assert_eq!(env["DATABASE_URL"], "postgres://db");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_app_json_rejects_the_push_with_where_it_is_wrong() {
    require_runc!();
    let server = Server::start();
    server.cli_ok(&["apps:create", "broken"]);
    for (manifest, expected) in [
        (
            "{\n  \"formation\": {\"web\": {\"quantity\": \"two\"}}\n}\n",
            "invalid type: string \"two\", expected u32 at line 2 column",
        ),
        (
            "{\n  \"env\": {\n",
            "EOF while parsing an object at line 3 column 0",
        ),
        (
            "{\"buildpacks\": [{\"url\": \"heroku/scala\"}]}",
            "buildpack \"heroku/scala\" is not available on Slipway",
        ),
    ] {
        let dir = repo(&[
            ("Procfile", "web: python3 server.py\n"),
            ("server.py", ECHO_APP),
            ("app.json", manifest),
        ]);
        let push = server.push("broken", dir.path());
        let output = text(&push);
        assert!(!push.status.success(), "{output}");
        assert!(output.contains("app.json is not valid: "), "{output}");
        assert!(output.contains(expected), "{expected:?} in {output}");
        assert!(
            !output.contains("-----> Building"),
            "nothing is built: {output}"
        );
    }
    let releases = server.api_json("/apps/broken/releases").await;
    assert_eq!(releases.as_array().unwrap().len(), 0, "{releases}");
}
