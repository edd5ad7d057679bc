//! The heroku CLI's own smoke list (`packages/cli/test/acceptance/smoke.acceptance.test.ts`
//! in the CLI's repository), command by command, with the real CLI (v11) against the real
//! server and a real dyno, each checked by what it prints and, where it has one, by its
//! effect; and `apps:transfer` between two users with both CLIs.
//!
//! Three commands of the list talk only to hosts hard-coded in the CLI, which a self-hosted
//! platform cannot be: `status` (Salesforce's trust API), `container:login` (a Docker
//! registry, through a local Docker daemon) and, unless pointed here, `buildpacks:search`
//! (pointed here with `HEROKU_BUILDPACK_REGISTRY_URL`, it searches Slipway's built-in
//! buildpacks). For the first two the test asserts that the CLI fails with its own clear
//! message, not a crash. `pg:backups` reads Heroku Data's API, whose host
//! `HEROKU_DATA_HOST` moves: pointed at Slipway, it lists the app's backups. `ci` and
//! `ci:config` need a pipeline, which Slipway does not have: they say so.

#[macro_use]
mod support;

use std::path::Path;
use std::process::{Command, Output};

use support::{text, Server};

/// The account the server creates at first start (the CLI's `HEROKU_API_KEY` is its key).
const ADMIN: &str = "admin@slipway.local";

/// The real CLI with the server as its Heroku Data host and buildpack registry too.
fn heroku_command(server: &Server, home: &Path, dir: &Path) -> Command {
    let mut command = server.heroku_command(support::heroku_cli().as_os_str(), home, dir);
    command
        .env("HEROKU_DATA_HOST", "127.0.0.1")
        .env("HEROKU_BUILDPACK_REGISTRY_URL", server.api_tls_url());
    command
}

fn heroku(server: &Server, home: &Path, dir: &Path, args: &[&str]) -> Output {
    heroku_command(server, home, dir)
        .args(args)
        .output()
        .expect("run the heroku CLI")
}

/// What the CLI printed with its error box and line wrapping undone.
fn flat(printed: &str) -> String {
    printed
        .replace('›', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs the CLI, asserts it succeeded, and returns its stdout.
fn heroku_ok(server: &Server, home: &Path, dir: &Path, args: &[&str]) -> String {
    let output = heroku(server, home, dir, args);
    assert!(
        output.status.success(),
        "heroku {args:?} failed:\n{}\n--- server log ---\n{}",
        text(&output),
        server.log()
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs the CLI, asserts it failed cleanly (exit status 1, or 2 for an API error, and none of
/// Node's crash markers), and returns what it printed, flattened.
fn heroku_fails(server: &Server, home: &Path, dir: &Path, args: &[&str]) -> String {
    fails_cleanly(args, heroku(server, home, dir, args))
}

fn fails_cleanly(args: &[&str], output: Output) -> String {
    let printed = text(&output);
    assert!(
        matches!(output.status.code(), Some(1 | 2)),
        "heroku {args:?} should have failed with status 1 or 2:\n{printed}"
    );
    for crash in ["TypeError", "ReferenceError", "Unhandled", "    at "] {
        assert!(
            !printed.contains(crash),
            "heroku {args:?} crashed:\n{printed}"
        );
    }
    flat(&printed)
}

/// Adds an account as the admin and returns its API key.
fn add_user(server: &Server, email: &str) -> String {
    let added = server.cli_ok(&["users:add", email]);
    added
        .split("API key (shown once): ")
        .nth(1)
        .unwrap_or_else(|| panic!("no key in {added}"))
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heroku_clis_smoke_list_runs_against_slipway() {
    require_runc!();
    support::heroku_cli();
    let server = Server::start();
    let repo = server.deploy_echo_app("smoke").await;
    let dir = repo.path();
    let home = tempfile::tempdir().unwrap();
    let home = home.path();

    // The two commands that wait on unreachable hosts run meanwhile.
    let status = heroku_command(&server, home, dir)
        .arg("status")
        .spawn_output();
    let docker = heroku_command(&server, home, dir)
        .arg("container:login")
        .spawn_output();

    // `version` and `help` print the CLI's own.
    let version = heroku_ok(&server, home, dir, &["version"]);
    assert!(version.starts_with("heroku/11."), "{version}");
    let help = heroku_ok(&server, home, dir, &["help"]);
    assert!(help.contains("$ heroku [COMMAND]"), "{help}");

    // `apps`: a new account has none; the admin's lists the app.
    let newbie_key = add_user(&server, "newbie@example.com");
    let newbie_home = tempfile::tempdir().unwrap();
    let none = heroku_command(&server, newbie_home.path(), dir)
        .env("HEROKU_API_KEY", &newbie_key)
        .arg("apps")
        .output()
        .unwrap();
    assert!(none.status.success(), "{}", text(&none));
    assert!(
        String::from_utf8_lossy(&none.stdout).contains("You have no apps."),
        "{}",
        text(&none)
    );
    let apps = heroku_ok(&server, home, dir, &["apps"]);
    assert!(apps.contains("smoke"), "{apps}");

    // `info` (apps:info) names the app and where its git repository is.
    let info = heroku_ok(&server, home, dir, &["info", "-a", "smoke"]);
    assert!(info.contains("=== smoke"), "{info}");
    assert!(info.contains("/smoke.git"), "{info}");

    // `run --exit-code`: the command's output comes back from a real one-off dyno.
    let run = heroku_ok(
        &server,
        home,
        dir,
        &["run", "--exit-code", "-a", "smoke", "echo", "it works!"],
    );
    assert!(run.contains("it works!"), "{run}");

    // `access` lists the owner; after `access:add` the collaborator too, who then sees the app.
    let access = heroku_ok(&server, home, dir, &["access", "-a", "smoke"]);
    assert!(access.contains(ADMIN), "{access}");
    assert!(access.contains("owner"), "{access}");
    heroku_ok(
        &server,
        home,
        dir,
        &["access:add", "newbie@example.com", "-a", "smoke"],
    );
    let access = heroku_ok(&server, home, dir, &["access", "-a", "smoke"]);
    assert!(access.contains("newbie@example.com"), "{access}");
    let theirs = heroku_command(&server, newbie_home.path(), dir)
        .env("HEROKU_API_KEY", &newbie_key)
        .arg("apps")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&theirs.stdout).contains("smoke"),
        "{}",
        text(&theirs)
    );

    // `pg:backups`: Heroku Data's transfers, served by Slipway (`HEROKU_DATA_HOST`); the app
    // has no database, so every section is empty.
    let backups = heroku_ok(&server, home, dir, &["pg:backups", "-a", "smoke"]);
    for header in ["=== Backups", "=== Restores", "=== Copies"] {
        assert!(backups.contains(header), "{header}:\n{backups}");
    }
    assert!(backups.contains("No backups."), "{backups}");

    // `pipelines` and `webhooks`: Slipway has neither, and says so the way Heroku does.
    let pipelines = heroku_ok(&server, home, dir, &["pipelines"]);
    assert!(pipelines.contains("=== My Pipelines"), "{pipelines}");
    let webhooks = heroku_ok(&server, home, dir, &["webhooks", "-a", "smoke"]);
    assert!(webhooks.contains("smoke has no webhooks"), "{webhooks}");

    // `auth:whoami` is the key's account.
    let whoami = heroku_ok(&server, home, dir, &["auth:whoami"]);
    assert!(whoami.contains(ADMIN), "{whoami}");

    // `autocomplete bash` prints its set-up and builds its cache from the API.
    let autocomplete = heroku(&server, home, dir, &["autocomplete", "bash"]);
    assert!(autocomplete.status.success(), "{}", text(&autocomplete));
    let printed = text(&autocomplete);
    assert!(printed.contains("Setup Instructions"), "{printed}");
    assert!(!printed.contains("Error"), "{printed}");

    // `buildpacks:search`: the registry search over the built-ins. Scala is not one.
    let scala = heroku_ok(&server, home, dir, &["buildpacks:search", "scala"]);
    assert!(scala.contains("No buildpacks found"), "{scala}");
    let java = heroku_ok(&server, home, dir, &["buildpacks:search", "java"]);
    assert!(java.contains("heroku/java"), "{java}");
    let ruby = heroku_ok(&server, home, dir, &["buildpacks:search", "ruby"]);
    assert!(ruby.contains("heroku/ruby"), "{ruby}");
    let python = heroku_ok(&server, home, dir, &["buildpacks:search", "python"]);
    assert!(python.contains("heroku/python"), "{python}");
    assert!(python.contains("1 buildpack found"), "{python}");

    // `config`: the app's vars, as the dyno sees them once set.
    heroku_ok(
        &server,
        home,
        dir,
        &["config:set", "SMOKE_GREETING=hello-smoke", "-a", "smoke"],
    );
    let config = heroku_ok(&server, home, dir, &["config", "-a", "smoke"]);
    assert!(config.contains("=== smoke Config Vars"), "{config}");
    assert!(config.contains("SMOKE_GREETING"), "{config}");
    let seen = heroku_ok(
        &server,
        home,
        dir,
        &[
            "run",
            "--exit-code",
            "-a",
            "smoke",
            "printenv",
            "SMOKE_GREETING",
        ],
    );
    assert!(seen.contains("hello-smoke"), "{seen}");

    // `git:clone` clones the pushed commit over HTTPS with the CLI's credential helper.
    let clones = tempfile::tempdir().unwrap();
    let clone = heroku(
        &server,
        home,
        clones.path(),
        &["git:clone", "temp", "-a", "smoke"],
    );
    assert!(clone.status.success(), "{}", text(&clone));
    assert!(
        text(&clone).contains("Cloning into 'temp'"),
        "{}",
        text(&clone)
    );
    let cloned = support::git(&clones.path().join("temp"), &["rev-parse", "HEAD"]);
    let pushed = support::git(dir, &["rev-parse", "HEAD"]);
    assert_eq!(
        String::from_utf8_lossy(&cloned.stdout),
        String::from_utf8_lossy(&pushed.stdout)
    );
    assert!(clones.path().join("temp/Procfile").exists());

    // `certs`: none yet.
    let certs = heroku_ok(&server, home, dir, &["certs", "-a", "smoke"]);
    assert!(certs.contains("smoke has no SSL certificates"), "{certs}");

    // `ci` and `ci:config` run a pipeline's tests; Slipway has no pipelines, and the CLI says
    // which app has none.
    for command in ["ci", "ci:config"] {
        let printed = heroku_fails(&server, home, dir, &[command, "-a", "smoke"]);
        assert!(printed.contains("pipeline"), "{command}: {printed}");
    }

    // `status` asks Salesforce's status API, hard-coded in the CLI: unreachable from a
    // self-hosted platform, it fails with the CLI's own message.
    let status = fails_cleanly(&["status"], status.wait());
    assert!(
        status.contains("Heroku platform status is unavailable"),
        "{status}"
    );
    // `container:login` runs `docker login registry.<host>`: Slipway runs no container
    // registry, and without a Docker daemon the login fails with the CLI's own message.
    let docker = fails_cleanly(&["container:login"], docker.wait());
    assert!(docker.contains("Login failed"), "{docker}");
}

/// A CLI run in the background, its output collected when asked for.
struct Pending(std::thread::JoinHandle<Output>);

impl Pending {
    fn wait(self) -> Output {
        self.0.join().expect("the CLI's thread")
    }
}

trait SpawnOutput {
    fn spawn_output(self) -> Pending;
}

impl SpawnOutput for &mut Command {
    fn spawn_output(self) -> Pending {
        let child = self
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start the heroku CLI");
        Pending(std::thread::spawn(move || {
            child.wait_with_output().expect("the CLI's output")
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_transfer_gives_an_app_to_another_user_and_only_its_owner_may() {
    support::heroku_cli();
    let server = Server::start();
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let alice = add_user(&server, "alice@example.com");
    let bob = add_user(&server, "bob@example.com");
    let as_user = |key: &str, args: &[&str]| {
        heroku_command(&server, home, dir)
            .env("HEROKU_API_KEY", key)
            .args(args)
            .output()
            .unwrap()
    };
    let owner_of = |app: &str| {
        let output = as_user(&server.key, &["apps:info", "--json", "-a", app]);
        assert!(output.status.success(), "{}", text(&output));
        let info: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        info["app"]["owner"]["email"].as_str().unwrap().to_owned()
    };

    let created = as_user(&alice, &["apps:create", "gift"]);
    assert!(created.status.success(), "{}", text(&created));
    assert_eq!(owner_of("gift"), "alice@example.com");

    // Bob may not take it, nor may a collaborator give it away.
    let refused = fails_cleanly(
        &["apps:transfer"],
        as_user(&bob, &["apps:transfer", "bob@example.com", "-a", "gift"]),
    );
    assert!(refused.contains("gift"), "{refused}");
    assert_eq!(owner_of("gift"), "alice@example.com");
    let added = as_user(&alice, &["access:add", "bob@example.com", "-a", "gift"]);
    assert!(added.status.success(), "{}", text(&added));
    let refused = fails_cleanly(
        &["apps:transfer"],
        as_user(&bob, &["apps:transfer", "bob@example.com", "-a", "gift"]),
    );
    assert!(refused.contains("manage"), "{refused}");
    // Nobody by that email: refused, and nothing changes.
    let unknown = fails_cleanly(
        &["apps:transfer"],
        as_user(
            &alice,
            &["apps:transfer", "carol@example.com", "-a", "gift"],
        ),
    );
    assert!(unknown.contains("carol@example.com"), "{unknown}");
    assert_eq!(owner_of("gift"), "alice@example.com");

    // The owner transfers it with the heroku CLI: Bob owns it, Alice stays a collaborator.
    let transferred = as_user(&alice, &["apps:transfer", "bob@example.com", "-a", "gift"]);
    assert!(transferred.status.success(), "{}", text(&transferred));
    assert!(
        flat(&text(&transferred))
            .contains("Initiating transfer of gift to bob@example.com... done"),
        "{}",
        text(&transferred)
    );
    assert_eq!(owner_of("gift"), "bob@example.com");
    let access = as_user(&bob, &["access", "-a", "gift"]);
    let listed = String::from_utf8_lossy(&access.stdout).into_owned();
    assert!(listed.contains("alice@example.com"), "{listed}");
    assert!(
        listed
            .lines()
            .any(|l| l.contains("bob@example.com") && l.contains("owner")),
        "{listed}"
    );
    // Alice, now a collaborator, can no longer destroy it.
    let destroy = fails_cleanly(
        &["apps:destroy"],
        as_user(&alice, &["apps:destroy", "-a", "gift", "--confirm", "gift"]),
    );
    assert!(destroy.contains("manage"), "{destroy}");

    // Back with the slipway CLI.
    let back = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(["apps:transfer", "alice@example.com", "-a", "gift"])
        .env("SLIPWAY_API_URL", &server.api_url)
        .env("SLIPWAY_API_KEY", &bob)
        .env("HOME", home)
        .output()
        .unwrap();
    assert!(back.status.success(), "{}", text(&back));
    assert!(
        text(&back).contains("Initiating transfer of gift to alice@example.com... done"),
        "{}",
        text(&back)
    );
    assert_eq!(owner_of("gift"), "alice@example.com");
}
