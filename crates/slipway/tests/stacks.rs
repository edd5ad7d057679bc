//! End to end: a stack built with debootstrap (`slipway stacks:build`), an app pushed onto it
//! with the real git client, its build and its dyno running on the stack's images (read
//! through the router), a release that keeps its stack build when the stack is rebuilt, and
//! the `host` stack unchanged as the default.
//!
//! The stack is a small one of the test's own (Debian minbase plus python3: heroku-24's build
//! image would take too long here). Its build is cached under
//! `/var/cache/slipway-test-stacks/<manifest hash>` so a re-run on the same machine skips
//! debootstrap (it says so); the downloaded packages are cached beside it, so a build from
//! nothing downloads only once per machine.

mod support;

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{repo, text, Server};

const STACK: &str = "slipway-test";

const MANIFEST: &str =
    "# The end-to-end tests' stack: Debian's minbase and the web app's interpreter.
suite bookworm
[run]
python3
";

/// Serves `/stack`: the stack marker file and the boot time of this process (a restart is seen
/// as a new one).
const STACK_APP: &str = r#"import http.server, json, os, time
BOOT = str(time.time())
def marker():
    try:
        return open("/etc/slipway-stack").read()
    except OSError:
        return None
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = json.dumps({"marker": marker(), "boot": BOOT, "stack_env": os.environ.get("STACK")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
"#;

const CACHE_ROOT: &str = "/var/cache/slipway-test-stacks";

fn debootstrap_available() -> bool {
    Command::new("debootstrap")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn cached_stack() -> PathBuf {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    MANIFEST.hash(&mut hasher);
    Path::new(CACHE_ROOT).join(format!("{:016x}", hasher.finish()))
}

fn cp(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(
        status.success(),
        "cp -a {} {}",
        from.display(),
        to.display()
    );
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn stack_facts(server: &Server, app: &str) -> serde_json::Value {
    let body = server.wait_for_200(app, "/stack").await;
    serde_json::from_str(&body).expect("JSON from the app")
}

/// Restarts the app's dynos and returns how long until a new process answered, and its facts.
async fn restart(server: &Server, app: &str) -> (Duration, serde_json::Value) {
    let before = stack_facts(server, app).await;
    let started = Instant::now();
    server.cli_ok(&["ps:restart", "-a", app]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = server
            .request(reqwest::Method::GET, app, "/stack")
            .send()
            .await
        {
            if response.status() == 200 {
                let facts: serde_json::Value =
                    serde_json::from_str(&response.text().await.unwrap_or_default())
                        .unwrap_or_default();
                if facts["boot"] != before["boot"] && !facts["boot"].is_null() {
                    return (started.elapsed(), facts);
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "{app} never came back after ps:restart:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn current_id(server: &Server) -> String {
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            server
                .data_dir
                .join("stacks")
                .join(STACK)
                .join("current.json"),
        )
        .expect("current.json"),
    )
    .expect("json");
    record["id"].as_str().expect("id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_builds_and_runs_on_a_debootstrapped_stack_and_keeps_its_stack_build() {
    require_runc!();
    if !debootstrap_available() {
        eprintln!("SKIPPED: this end-to-end test needs debootstrap (apt-get install debootstrap)");
        return;
    }
    let manifests = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(manifests.path().join(STACK)).expect("mkdir");
    std::fs::write(manifests.path().join(STACK).join("packages.txt"), MANIFEST).expect("write");
    let packages = Path::new(CACHE_ROOT).join("packages");
    std::fs::create_dir_all(&packages).expect("package cache");
    let server = Server::start_with(&[
        "--stack-manifests",
        &manifests.path().display().to_string(),
        "--stack-package-cache",
        &packages.display().to_string(),
    ]);

    // Before any build: only host, the default.
    let stacks = server.api_json("/stacks").await;
    let names: Vec<&str> = stacks
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["host"], "{stacks}");
    assert_eq!(stacks[0]["default"], true);

    // The host app: the default stack, unchanged.
    server.cli_ok(&["apps:create", "onhost"]);
    let host_app = repo(&[("Procfile", "web: python3 app.py\n"), ("app.py", STACK_APP)]);
    let push = server.push("onhost", host_app.path());
    assert!(push.status.success(), "{}", text(&push));
    assert!(
        text(&push)
            .contains("-----> Building on the host stack (this server's own system directories)"),
        "{}",
        text(&push)
    );
    let facts = stack_facts(&server, "onhost").await;
    assert_eq!(facts["marker"], serde_json::Value::Null, "{facts}");
    assert_eq!(facts["stack_env"], "host");

    // An app on the stack before it is built: created, but its push says what to do.
    let created = server.cli_ok(&["apps:create", "onstack", "--stack", STACK]);
    assert!(created.contains("onstack"), "{created}");
    let app = server.api_json("/apps/onstack").await;
    assert_eq!(app["build_stack"]["name"], STACK, "{app}");
    let stack_app = repo(&[("Procfile", "web: python3 app.py\n"), ("app.py", STACK_APP)]);
    let push = server.push("onstack", stack_app.path());
    assert!(!push.status.success(), "{}", text(&push));
    assert!(
        text(&push).contains("the slipway-test stack is not built")
            && text(&push).contains("slipway stacks:build slipway-test"),
        "{}",
        text(&push)
    );
    // An unknown stack is refused with what there is, and no app is created.
    let refused = server.cli(&["apps:create", "nostack", "--stack", "cedar-14"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("Available stacks: host, heroku-24, slipway-test"),
        "{}",
        stderr(&refused)
    );
    assert!(!server.cli(&["apps:info", "-a", "nostack"]).status.success());

    // Building: what cannot be built is refused at once.
    let refused = server.cli(&["stacks:build", "host"]);
    assert!(
        !refused.status.success() && stderr(&refused).contains("nothing to build"),
        "{}",
        stderr(&refused)
    );
    let refused = server.cli(&["stacks:build", "no-such-stack"]);
    assert!(
        !refused.status.success() && stderr(&refused).contains("no manifest"),
        "{}",
        stderr(&refused)
    );

    let cache = cached_stack();
    let stacks_dir = server.data_dir.join("stacks");
    if cache.join(STACK).join("current.json").is_file() {
        eprintln!(
            "stacks: using the stack built by a previous run, cached at {} (remove it to time a build)",
            cache.display()
        );
        std::fs::create_dir_all(&stacks_dir).expect("mkdir");
        cp(&cache.join(STACK), &stacks_dir);
    } else {
        let started = Instant::now();
        let built = server.cli(&["stacks:build", STACK]);
        let output = String::from_utf8_lossy(&built.stdout).into_owned();
        assert!(
            built.status.success(),
            "stacks:build failed:\n{output}\n{}",
            stderr(&built)
        );
        eprintln!(
            "stacks: built the {STACK} stack with debootstrap in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        for expected in [
            "-----> Building the slipway-test stack (Debian bookworm, 1 run packages)",
            "-----> Run image",
            "I: Base system installed successfully.",
            "-----> Built the slipway-test stack: id ",
        ] {
            assert!(output.contains(expected), "lacks {expected:?}:\n{output}");
        }
        // Nothing of the build is left in the temporary directory.
        let leftovers: Vec<_> = std::fs::read_dir(stacks_dir.join(".tmp"))
            .expect("tmp")
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        std::fs::create_dir_all(CACHE_ROOT).expect("cache");
        let partial = Path::new(CACHE_ROOT).join(format!(".partial-{}", std::process::id()));
        std::fs::create_dir_all(&partial).expect("mkdir");
        cp(&stacks_dir.join(STACK), &partial);
        let _ = std::fs::rename(&partial, &cache);
    }
    let first_id = current_id(&server);

    // Listed, with its build's id.
    let stacks = server.api_json("/stacks").await;
    let listed = stacks
        .as_array()
        .expect("list")
        .iter()
        .find(|s| s["name"] == STACK)
        .unwrap_or_else(|| panic!("{stacks}"));
    assert_eq!(listed["id"], first_id.as_str());
    let by_id = server.api_json(&format!("/stacks/{first_id}")).await;
    assert_eq!(by_id["name"], STACK);

    // The push builds on the stack's image and the dyno runs on it.
    support::git(
        stack_app.path(),
        &["commit", "--allow-empty", "-m", "again"],
    );
    let push = server.push("onstack", stack_app.path());
    assert!(push.status.success(), "{}\n{}", text(&push), server.log());
    assert!(
        text(&push).contains("-----> Building on the Slipway-test stack"),
        "{}",
        text(&push)
    );
    let facts = stack_facts(&server, "onstack").await;
    assert_eq!(
        facts["marker"],
        format!("STACK={STACK}\nVARIANT=run\nSTACK_ID={first_id}\n"),
        "{facts}"
    );
    assert_eq!(facts["stack_env"], STACK);
    // The release's slug records the stack build, in the Platform API's shape.
    let releases = server.api_json("/apps/onstack/releases").await;
    let slug_id = releases
        .as_array()
        .expect("list")
        .iter()
        .rev()
        .find_map(|r| r["slug"]["id"].as_str())
        .expect("a release with a slug")
        .to_owned();
    let slug = server
        .api_json(&format!("/apps/onstack/slugs/{slug_id}"))
        .await;
    assert_eq!(slug["stack"]["id"], first_id.as_str(), "{slug}");
    assert_eq!(slug["stack"]["name"], STACK, "{slug}");

    // Dyno start on the stack against the host stack: measured, never asserted.
    let (on_stack, facts) = restart(&server, "onstack").await;
    assert!(
        facts["marker"]
            .as_str()
            .is_some_and(|m| m.contains(&first_id)),
        "{facts}"
    );
    let (on_host, facts) = restart(&server, "onhost").await;
    assert_eq!(facts["marker"], serde_json::Value::Null);
    eprintln!(
        "stacks: ps:restart to a new web dyno answering: {:.0} ms on the {STACK} stack, {:.0} ms on the host stack",
        on_stack.as_secs_f64() * 1000.0,
        on_host.as_secs_f64() * 1000.0
    );

    // A rebuild (made here the way a build finishes: a new build directory, then
    // current.json replaced) changes the next build, never the running release.
    let second_id = uuid::Uuid::new_v4().to_string();
    let stack_dir = stacks_dir.join(STACK);
    let status = Command::new("cp")
        .arg("-al")
        .arg(stack_dir.join(&first_id))
        .arg(stack_dir.join(&second_id))
        .status()
        .expect("cp");
    assert!(status.success());
    let marker = stack_dir.join(&second_id).join("run/etc/slipway-stack");
    // A new file, not a write through the hard link into the first build's.
    std::fs::remove_file(&marker).expect("unlink");
    std::fs::write(
        &marker,
        format!("STACK={STACK}\nVARIANT=run\nSTACK_ID={second_id}\n"),
    )
    .expect("marker");
    let record = std::fs::read_to_string(stack_dir.join(&first_id).join("stack.json"))
        .expect("record")
        .replace(&first_id, &second_id);
    std::fs::remove_file(stack_dir.join(&second_id).join("stack.json")).expect("unlink");
    std::fs::write(stack_dir.join(&second_id).join("stack.json"), &record).expect("record");
    std::fs::write(stack_dir.join("current.json"), &record).expect("current");

    let (_, facts) = restart(&server, "onstack").await;
    assert!(
        facts["marker"]
            .as_str()
            .is_some_and(|m| m.contains(&first_id)),
        "a restarted dyno of the old release stays on its stack build: {facts}"
    );
    // The old build is still found by its id.
    let old = server.api_json(&format!("/stacks/{first_id}")).await;
    assert_eq!(old["name"], STACK);
    support::git(
        stack_app.path(),
        &["commit", "--allow-empty", "-m", "rebuilt"],
    );
    let push = server.push("onstack", stack_app.path());
    assert!(push.status.success(), "{}", text(&push));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let facts = stack_facts(&server, "onstack").await;
        if facts["marker"]
            .as_str()
            .is_some_and(|m| m.contains(&second_id))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new release never ran on the new build: {facts}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // stack:set back to host: the next build is on the host again.
    let set = server.cli_ok(&["stack:set", "host", "-a", "onstack"]);
    assert!(set.contains("Setting stack to host"), "{set}");
    let listed = server.cli_ok(&["stack", "-a", "onstack"]);
    assert!(
        listed.contains("* host") && listed.contains(&format!("  {STACK}")),
        "{listed}"
    );
}
