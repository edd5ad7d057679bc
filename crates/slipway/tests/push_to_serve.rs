//! End to end: `git push` → buildpack → slug → release → dyno in a runc container → router →
//! logs, for each built-in buildpack, driven with the real git client, the slipway CLI and
//! HTTP requests through the router.

mod support;

use support::{repo, text, Server, ECHO_APP};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn procfile_app_is_built_released_run_routed_and_logged() {
    require_runc!();
    let server = Server::start();

    let created = server.cli_ok(&["apps:create", "demo"]);
    assert!(created.contains("Creating ⬢ demo... done"), "{created}");
    assert!(
        created.contains(&format!("http://demo.localhost:{}/", server.router_port))
            && created.contains(&server.git_url("demo")),
        "apps:create prints the web and git URLs: {created}"
    );
    server.cli_ok(&["config:set", "GREETING=hello world", "-a", "demo"]);

    let app = repo(&[
        ("Procfile", "web: python3 server.py\n"),
        ("server.py", ECHO_APP),
        (
            ".profile.d/greet.sh",
            "export FROM_PROFILE_D=\"sourced ${GREETING:-}\"\n",
        ),
    ]);
    let push = server.push("demo", app.path());
    let output = text(&push);
    assert!(
        push.status.success(),
        "push failed:\n{output}\n{}",
        server.log()
    );
    for expected in [
        "remote: -----> Building on the host stack (this server's own system directories)",
        "remote: -----> Procfile app detected",
        "remote:        Procfile declares types -> web",
        "remote: -----> Launching...",
        "remote:        Released v2",
        "deployed to Slipway",
    ] {
        assert!(
            output.contains(expected),
            "push output lacks {expected:?}:\n{output}"
        );
    }

    // The page through the router, with Heroku's headers, from an isolated dyno.
    let body = server.wait_for_200("demo", "/env").await;
    let facts: serde_json::Value = serde_json::from_str(&body).expect("JSON from the app");
    let env = &facts["env"];
    assert_eq!(env["DYNO"], "web.1");
    assert_eq!(env["HOME"], "/app");
    assert_eq!(env["GREETING"], "hello world", "config vars reach the dyno");
    assert_eq!(
        env["FROM_PROFILE_D"], "sourced hello world",
        ".profile.d runs after config vars are set"
    );
    assert!(env["PORT"]
        .as_str()
        .is_some_and(|p| p.parse::<u16>().is_ok()));
    assert!(env["PATH"].as_str().is_some_and(|p| p.contains("/usr/bin")));
    assert!(
        env.get("SLIPWAY_HOOK_TOKEN").is_none() && env.get("RUST_LOG").is_none(),
        "no platform secrets or server environment in the dyno: {env}"
    );
    assert_eq!(facts["cwd"], "/app");
    assert_ne!(facts["uid"], 0, "dynos run unprivileged");
    assert_eq!(facts["usr_writable"], false, "the stack is read-only");
    assert!(
        facts["pids"].as_u64().is_some_and(|n| n < 10),
        "own PID namespace: {}",
        facts["pids"]
    );
    // The quota is the soft limit; the kernel kills at twice it (R15), as on Heroku.
    assert_eq!(
        facts["memory_quota"],
        512 * 1024 * 1024,
        "standard-1x memory quota"
    );
    assert_eq!(
        facts["memory_limit"],
        2 * 512 * 1024 * 1024,
        "standard-1x hard memory limit: twice the quota"
    );
    let headers = &facts["headers"];
    assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-port"], server.router_port.to_string());
    assert!(headers["x-request-id"]
        .as_str()
        .is_some_and(|id| id.len() >= 20));
    assert!(headers["x-request-start"]
        .as_str()
        .is_some_and(|t| t.parse::<u64>().is_ok()));

    // A second request on the same client keeps working, and says which dyno answered.
    let hello = server.get("demo", "/").await;
    assert_eq!(hello.status(), 200);
    assert_eq!(hello.text().await.unwrap(), "hello from web.1\n");

    // One collated log: build output, the dyno's lifecycle and output, the router.
    let log = server
        .wait_for_log("demo", |log| {
            log.contains("app[web.1]: handled /") && log.contains("path=\"/\"")
        })
        .await;
    for expected in [
        "app[build]: -----> Procfile app detected",
        "app[api]: Set GREETING config vars by admin@slipway.local",
        "app[api]: Release v2 created by admin@slipway.local",
        "app[api]: Deploy ",
        "heroku[web.1]: Starting process with command `python3 server.py`",
        "heroku[web.1]: State changed from starting to up",
        "app[web.1]: handled /env",
        "heroku[router]: at=info method=GET path=\"/env\" host=demo.localhost request_id=",
        "fwd=\"127.0.0.1\" dyno=web.1 connect=",
        "status=200 bytes=",
    ] {
        assert!(log.contains(expected), "log lacks {expected:?}:\n{log}");
    }
    let first = log.lines().next().unwrap_or_default();
    let timestamp = first.split(' ').next().unwrap_or_default();
    assert!(
        chrono::DateTime::parse_from_rfc3339(timestamp).is_ok()
            && timestamp.ends_with("+00:00")
            && timestamp.len() == 32,
        "Heroku timestamps with microseconds: {first}"
    );

    // ps, releases and the API agree.
    let ps = server.cli_ok(&["ps", "-a", "demo"]);
    assert!(
        ps.contains("=== web (Standard-1X): python3 server.py (1)") && ps.contains("web.1: up"),
        "{ps}"
    );
    let releases = server.cli_ok(&["releases", "-a", "demo"]);
    assert!(
        releases.contains("Current: v2")
            && releases.contains("Deploy ")
            && releases.contains("Set GREETING config vars"),
        "{releases}"
    );
    assert_eq!(server.wait_for_containers("demo.web.1", 1).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_app_installs_requirements_into_the_slug() {
    require_runc!();
    let server = Server::start();
    server.cli_ok(&["apps:create", "pyapp"]);
    // The package comes from a wheel vendored in the repository, so the test needs no network.
    server.cli_ok(&[
        "config:set",
        "PIP_NO_INDEX=1",
        "PIP_FIND_LINKS=/app/vendor",
        "-a",
        "pyapp",
    ]);
    let wheel_dir = tempfile::tempdir().unwrap();
    make_wheel(wheel_dir.path());
    let app = repo(&[
        ("requirements.txt", "slipwaydemo==1.0\n"),
        ("Procfile", "web: python app.py\n"),
        (
            "app.py",
            "import http.server, os, slipwaydemo\n\
             class H(http.server.BaseHTTPRequestHandler):\n\
             \x20   def do_GET(self):\n\
             \x20       body = slipwaydemo.VALUE.encode()\n\
             \x20       self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)\n\
             http.server.HTTPServer(('0.0.0.0', int(os.environ['PORT'])), H).serve_forever()\n",
        ),
    ]);
    std::fs::create_dir_all(app.path().join("vendor")).unwrap();
    std::fs::copy(
        wheel_dir.path().join("slipwaydemo-1.0-py3-none-any.whl"),
        app.path().join("vendor/slipwaydemo-1.0-py3-none-any.whl"),
    )
    .unwrap();
    support::commit_all(app.path(), "vendor the wheel");
    let push = server.push("pyapp", app.path());
    let output = text(&push);
    assert!(push.status.success(), "push failed:\n{output}");
    assert!(
        output.contains("remote: -----> Python app detected"),
        "{output}"
    );
    assert!(
        output.contains("slipwaydemo"),
        "pip's output streams to git: {output}"
    );
    // `python` (not python3) resolves only through the venv that .profile.d puts on PATH.
    assert_eq!(
        server.wait_for_200("pyapp", "/").await,
        "hello from slipwaydemo"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodejs_app_runs_npm_start() {
    require_runc!();
    let server = Server::start();
    server.cli_ok(&["apps:create", "nodeapp"]);
    let app = repo(&[
        (
            "package.json",
            r#"{"name": "nodeapp", "version": "1.0.0", "scripts": {"start": "node server.js"}, "dependencies": {}}"#,
        ),
        (
            "server.js",
            "require('http').createServer((req, res) => res.end('hello from node ' + process.env.DYNO)).listen(process.env.PORT);\n",
        ),
    ]);
    let push = server.push("nodeapp", app.path());
    let output = text(&push);
    assert!(push.status.success(), "push failed:\n{output}");
    assert!(
        output.contains("remote: -----> Node.js app detected"),
        "{output}"
    );
    assert_eq!(
        server.wait_for_200("nodeapp", "/").await,
        "hello from node web.1"
    );
    let ps = server.cli_ok(&["ps", "-a", "nodeapp"]);
    assert!(
        ps.contains("npm start"),
        "the default web process comes from bin/release: {ps}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_tail_follows_new_lines() {
    require_runc!();
    let server = Server::start();
    let _app = server.deploy_echo_app("tailed").await;

    let mut tail = tokio::process::Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(["logs", "--tail", "-a", "tailed", "-n", "0"])
        .env("SLIPWAY_API_URL", &server.api_url)
        .env("SLIPWAY_API_KEY", &server.key)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("slipway logs --tail");
    let stdout = tail.stdout.take().unwrap();
    // Give the tail a moment to connect, then make a request it must see.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(server.get("tailed", "/after-tail").await.status(), 200);
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let found = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        let mut seen = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("path=\"/after-tail\"") {
                return Ok(line);
            }
            seen.push(line);
        }
        Err(seen)
    })
    .await
    .expect("the tail shows the new router line within 20 s");
    let line = found.expect("the tail ended early");
    assert!(
        line.contains("heroku[router]: at=info method=GET"),
        "{line}"
    );
}

/// Builds a wheel by hand (a zip with the package and its dist-info), so pip installs it with
/// no index and no build backend.
fn make_wheel(dir: &std::path::Path) {
    let script = r#"
import sys, zipfile
path = sys.argv[1] + "/slipwaydemo-1.0-py3-none-any.whl"
files = {
    "slipwaydemo/__init__.py": "VALUE = 'hello from slipwaydemo'\n",
    "slipwaydemo-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: slipwaydemo\nVersion: 1.0\n",
    "slipwaydemo-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
files["slipwaydemo-1.0.dist-info/RECORD"] = "\n".join([n + ",," for n in files] + ["slipwaydemo-1.0.dist-info/RECORD,,"]) + "\n"
with zipfile.ZipFile(path, "w") as z:
    for name, text in files.items():
        z.writestr(name, text)
"#;
    let status = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(dir)
        .status()
        .expect("python3");
    assert!(status.success());
}
