//! Accounts and access end to end: the real heroku CLI's `login -i` (driven through a pty),
//! `auth:*`, `authorizations*` and `logout` against a real server, `slipway login`/`logout`
//! sharing the same `~/.netrc` login, passwords kept only as argon2 hashes, and `slipway
//! tunnel` carrying the heroku CLI and git to the HTTPS API.

mod support;

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{text, Server};

const PASSWORD: &str = "correct horse battery staple";

fn succeeded(what: &str, output: &Output, server: &Server) -> String {
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n--- server log ---\n{}",
        text(output),
        server.log()
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The `slipway` CLI with `home` as HOME and no API key in the environment: it finds its key
/// in `~/.netrc` or nowhere (the data directory fallback points at an empty directory).
fn slipway(server: &Server, home: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(args)
        .env("HOME", home)
        .env("SLIPWAY_API_URL", &server.api_url)
        .env("SLIPWAY_DATA_DIR", home.join("no-data"))
        .env_remove("SLIPWAY_API_KEY")
        .env_remove("SLIPWAY_APP")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run slipway");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(stdin) = stdin {
        input.write_all(stdin.as_bytes()).expect("write stdin");
    }
    drop(input);
    child.wait_with_output().expect("slipway output")
}

/// The environment that points the real heroku CLI at the plain API
/// (`HEROKU_HOST=http://127.0.0.1:<port>`, the URL the slipway CLI uses too), logged in by
/// `~/.netrc` alone; `program` is the CLI or what runs it.
fn heroku_with(server: &Server, home: &Path, program: &OsStr) -> Command {
    let mut command = server.heroku_command(program, home, home);
    command
        .env("HEROKU_HOST", &server.api_url)
        .env("HEROKU_PARTICLEBOARD_URL", &server.api_url)
        .env("HEROKU_NETRC_WRITE", "true")
        .env_remove("HEROKU_API_KEY");
    command
}

fn heroku(server: &Server, home: &Path) -> Command {
    heroku_with(server, home, support::heroku_cli().as_os_str())
}

fn heroku_ok(server: &Server, home: &Path, args: &[&str]) -> String {
    let output = heroku(server, home).args(args).output().unwrap();
    succeeded(&format!("heroku {args:?}"), &output, server)
}

fn netrc(home: &Path) -> String {
    std::fs::read_to_string(home.join(".netrc")).unwrap_or_default()
}

/// The password of the netrc entry for `machine`.
fn netrc_token(home: &Path, machine: &str) -> Option<String> {
    let text = netrc(home);
    let mut tokens = text.split_whitespace();
    while let Some(token) = tokens.next() {
        if token == "machine" && tokens.next() == Some(machine) {
            for token in tokens.by_ref() {
                if token == "machine" {
                    return None;
                }
                if token == "password" {
                    return tokens.next().map(str::to_owned);
                }
            }
        }
    }
    None
}

fn machine(server: &Server) -> String {
    server.api_url.trim_start_matches("http://").to_owned()
}

/// `GET /account` with `token`: its status.
async fn account_status(server: &Server, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{}/account", server.api_url))
        .header("Accept", "application/vnd.heroku+json; version=3")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Runs `heroku login -i` in a pseudo-terminal (`script`), answering its email and password
/// prompts as a person would.
fn heroku_login_interactive(server: &Server, home: &Path, email: &str, password: &str) -> String {
    let cli = support::heroku_cli();
    let mut child = heroku_with(server, home, OsStr::new("script"))
        .env("TERM", "dumb")
        .arg("-qfec")
        .arg(format!("{} login -i", cli.display()))
        .arg("/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run heroku login -i under script");
    let output = Arc::new(Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let seen = Arc::clone(&output);
    std::thread::spawn(move || {
        let mut buffer = [0u8; 1024];
        while let Ok(n) = stdout.read(&mut buffer) {
            if n == 0 {
                break;
            }
            seen.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    });
    let mut stdin = child.stdin.take().unwrap();
    let wait_for = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !output.lock().unwrap().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} prompt from heroku login -i:\n{}",
                output.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for("Email");
    stdin.write_all(format!("{email}\r").as_bytes()).unwrap();
    wait_for("Password");
    std::thread::sleep(Duration::from_millis(200));
    stdin.write_all(format!("{password}\r").as_bytes()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            std::thread::sleep(Duration::from_millis(100));
            let seen = output.lock().unwrap().clone();
            drop(stdin);
            return format!("{seen}\nexit: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "heroku login -i did not finish:\n{}",
            output.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every file of the data directory, as text, for looking for what must not be stored.
fn store_bytes(data_dir: &Path) -> String {
    let mut all = String::new();
    for name in ["slipway.db", "slipway.db-wal"] {
        if let Ok(bytes) = std::fs::read(data_dir.join(name)) {
            all.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heroku_login_and_slipway_login_share_one_netrc_login() {
    let server = Server::start();
    support::heroku_cli();
    let admin_home = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();

    // An admin creates the account; the password goes in on stdin and only its hash is kept.
    let added = server_cli_stdin(
        &server,
        &["users:add", "dev@example.com", "--password-stdin"],
        &format!("{PASSWORD}\n"),
    );
    let added_text = succeeded("slipway users:add", &added, &server);
    assert!(
        added_text.contains("API key (shown once): "),
        "{added_text}"
    );
    let stored = store_bytes(&server.data_dir);
    assert!(stored.contains("$argon2id$"), "no argon2 hash in the store");
    assert!(
        !stored.contains(PASSWORD),
        "the password itself is in the store"
    );
    let listed = server.cli_ok(&["users"]);
    assert!(listed.contains("admin@slipway.local  admin"), "{listed}");
    assert!(listed.contains("dev@example.com  user"), "{listed}");
    // Only an admin manages accounts.
    let dev_key = added_text
        .split("API key (shown once): ")
        .nth(1)
        .unwrap()
        .trim()
        .to_owned();
    let refused = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(["users:add", "eve@example.com"])
        .env("SLIPWAY_API_URL", &server.api_url)
        .env("SLIPWAY_API_KEY", &dev_key)
        .env("HOME", admin_home.path())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("Only an admin"),
        "{}",
        text(&refused)
    );

    // A wrong password: 401 with a message in Slipway's terms, and nothing written.
    let wrong = slipway(
        &server,
        home.path(),
        &["login", "--email", "dev@example.com", "--password-stdin"],
        Some("not the password\n"),
    );
    assert!(!wrong.status.success());
    assert!(text(&wrong).contains("slipway login"), "{}", text(&wrong));
    assert!(!home.path().join(".netrc").exists());
    let raw = reqwest::Client::new()
        .post(format!("{}/oauth/authorizations", server.api_url))
        .header("Accept", "application/vnd.heroku+json; version=3")
        .basic_auth("dev@example.com", Some("not the password"))
        .json(&serde_json::json!({"scope": ["global"]}))
        .send()
        .await
        .unwrap();
    support::expect_api_error(raw, 401, "unauthorized").await;

    // `heroku login -i` through a pty: a netrc entry for host:port with a working token.
    let session = heroku_login_interactive(&server, home.path(), "dev@example.com", PASSWORD);
    assert!(session.contains("exit: exit status: 0"), "{session}");
    let token = netrc_token(home.path(), &machine(&server))
        .unwrap_or_else(|| panic!("no netrc entry:\n{}\n{session}", netrc(home.path())));
    assert!(netrc(home.path()).contains("login dev@example.com"));
    assert_eq!(account_status(&server, &token).await, 200);
    let mode = std::fs::metadata(home.path().join(".netrc"))
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .unwrap();
    assert_eq!(mode, 0o600);

    // Both CLIs use it.
    assert_eq!(
        heroku_ok(&server, home.path(), &["auth:whoami"]).trim(),
        "dev@example.com"
    );
    let whoami = slipway(&server, home.path(), &["auth:whoami"], None);
    assert_eq!(
        succeeded("slipway auth:whoami", &whoami, &server).trim(),
        "dev@example.com"
    );
    assert_eq!(
        heroku_ok(&server, home.path(), &["auth:token"]).trim(),
        token
    );
    let listed = heroku_ok(&server, home.path(), &["authorizations"]);
    assert!(listed.contains("Heroku CLI login from"), "{listed}");
    assert!(listed.contains("API key"), "{listed}");

    // A new key, rotated: the old token stops working, the new one works.
    let created = heroku_ok(
        &server,
        home.path(),
        &["authorizations:create", "-d", "ci deploys", "-S"],
    );
    let ci_token = created.trim().to_owned();
    assert_eq!(account_status(&server, &ci_token).await, 200);
    let json = heroku_ok(&server, home.path(), &["authorizations", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&json).unwrap();
    let ci_id = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["description"] == "ci deploys")
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .unwrap();
    // Tokens are shown once: the list has only the caller's own.
    assert!(!json.contains(&ci_token), "{json}");
    assert!(!json.contains(&dev_key), "{json}");
    let rotated = heroku_ok(&server, home.path(), &["authorizations:rotate", &ci_id]);
    let new_token = rotated
        .lines()
        .find_map(|l| l.trim().strip_prefix("Token:"))
        .map(|t| t.trim().to_owned())
        .unwrap_or_else(|| panic!("no token in:\n{rotated}"));
    assert_ne!(new_token, ci_token);
    assert_eq!(account_status(&server, &ci_token).await, 401);
    assert_eq!(account_status(&server, &new_token).await, 200);
    let revoked = heroku_ok(&server, home.path(), &["authorizations:revoke", &ci_id]);
    assert!(
        revoked.contains("ci deploys") || revoked.is_empty(),
        "{revoked}"
    );
    assert_eq!(account_status(&server, &new_token).await, 401);

    // `heroku logout`: the login's token is revoked and its netrc entry is gone.
    heroku_ok(&server, home.path(), &["logout"]);
    assert_eq!(netrc_token(home.path(), &machine(&server)), None);
    assert_eq!(account_status(&server, &token).await, 401);
    // The account's own API key survives a logout, as on Heroku.
    assert_eq!(account_status(&server, &dev_key).await, 200);

    // `slipway login` writes the same entry the heroku CLI reads, next to unrelated ones.
    std::fs::write(
        home.path().join(".netrc"),
        "machine example.com\n  login me\n  password keep-me\n",
    )
    .unwrap();
    let login = slipway(
        &server,
        home.path(),
        &["login", "--email", "dev@example.com", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(succeeded("slipway login", &login, &server).contains("Logged in as dev@example.com"));
    let slipway_token = netrc_token(home.path(), &machine(&server)).unwrap();
    assert_eq!(
        heroku_ok(&server, home.path(), &["auth:whoami"]).trim(),
        "dev@example.com"
    );
    assert_eq!(
        heroku_ok(&server, home.path(), &["auth:token"]).trim(),
        slipway_token
    );
    let logout = slipway(&server, home.path(), &["logout"], None);
    succeeded("slipway logout", &logout, &server);
    assert_eq!(netrc_token(home.path(), &machine(&server)), None);
    assert!(netrc(home.path()).contains("machine example.com\n  login me\n  password keep-me\n"));
    assert_eq!(account_status(&server, &slipway_token).await, 401);
    let whoami = slipway(&server, home.path(), &["auth:whoami"], None);
    assert!(!whoami.status.success());
    assert!(text(&whoami).contains("slipway login"), "{}", text(&whoami));

    // `slipway login --api-key` stores a key it checked, under the account's email.
    let login = slipway(
        &server,
        home.path(),
        &["login", "--api-key"],
        Some(&format!("{dev_key}\n")),
    );
    succeeded("slipway login --api-key", &login, &server);
    assert_eq!(netrc_token(home.path(), &machine(&server)), Some(dev_key));
}

/// Runs the `slipway` CLI as the admin with `stdin`.
fn server_cli_stdin(server: &Server, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(args)
        .env("SLIPWAY_API_URL", &server.api_url)
        .env("SLIPWAY_API_KEY", &server.key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// A running `slipway tunnel`, stopped on drop.
struct Tunnel(std::process::Child);

impl Drop for Tunnel {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heroku_cli_and_git_reach_the_https_api_through_slipway_tunnel() {
    require_runc!();
    let server = Server::start();
    support::heroku_cli();
    let home = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _tunnel = Tunnel(
        Command::new(env!("CARGO_BIN_EXE_slipway"))
            .args(["tunnel", "--remote", &server.api_tls_url()])
            .args(["--port", &port.to_string()])
            .arg("--ca-cert")
            .arg(server.ca_path())
            .env_remove("SLIPWAY_API_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let local = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the tunnel did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let cli = |args: &[&str]| {
        let output = server
            .heroku_command(support::heroku_cli().as_os_str(), home.path(), home.path())
            .env("HEROKU_HOST", &local)
            .env("HEROKU_PARTICLEBOARD_URL", &local)
            .args(args)
            .output()
            .unwrap();
        succeeded(
            &format!("heroku {args:?} through the tunnel"),
            &output,
            &server,
        )
    };
    assert_eq!(cli(&["auth:whoami"]).trim(), "admin@slipway.local");
    cli(&["apps:create", "tunneled"]);
    cli(&[
        "config:set",
        "GREETING=through-the-tunnel",
        "-a",
        "tunneled",
    ]);
    let config: serde_json::Value = server.api_json("/apps/tunneled/config-vars").await;
    assert_eq!(config["GREETING"], "through-the-tunnel");

    // Git's smart HTTP goes through the same tunnel, build output streaming back.
    let repo = support::echo_app_repo();
    let push = server
        .heroku_command(OsStr::new("git"), home.path(), repo.path())
        .args(["-c", "credential.helper="])
        .arg("push")
        .arg(format!(
            "http://heroku:{}@127.0.0.1:{port}/tunneled.git",
            server.key
        ))
        .arg("main")
        .output()
        .unwrap();
    succeeded("git push through the tunnel", &push, &server);
    assert!(text(&push).contains("remote:"), "{}", text(&push));
    server.wait_for_200("tunneled", "/").await;
    server
        .wait_for_env("tunneled", |env| env["GREETING"] == "through-the-tunnel")
        .await;
    let releases = cli(&["releases", "-a", "tunneled"]);
    assert!(
        releases.contains("v2") || releases.contains("v3"),
        "{releases}"
    );

    // A tunnel that does not trust the remote's certificate passes nothing through.
    let other = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let wrong_ca = home.path().join("wrong-ca.pem");
    std::fs::write(
        &wrong_ca,
        rcgen::generate_simple_self_signed(vec!["example.com".into()])
            .unwrap()
            .cert
            .pem(),
    )
    .unwrap();
    let _untrusted = Tunnel(
        Command::new(env!("CARGO_BIN_EXE_slipway"))
            .args(["tunnel", "--remote", &server.api_tls_url()])
            .args(["--port", &other.to_string()])
            .arg("--ca-cert")
            .arg(&wrong_ca)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", other)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the second tunnel did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let refused = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{other}/account"))
        .header("Accept", "application/vnd.heroku+json; version=3")
        .bearer_auth(&server.key)
        .send()
        .await;
    assert!(refused.is_err(), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_routes_need_a_key_and_answer_herokus_shapes() {
    let server = Server::start();
    let client = reqwest::Client::new();
    let v3 = "application/vnd.heroku+json; version=3";
    for (method, path) in [
        (reqwest::Method::GET, "/account"),
        (reqwest::Method::PATCH, "/account"),
        (reqwest::Method::GET, "/account/keys"),
        (reqwest::Method::GET, "/account/features"),
        (reqwest::Method::GET, "/account/rate-limits"),
        (reqwest::Method::GET, "/oauth/authorizations"),
        (reqwest::Method::POST, "/oauth/authorizations"),
        (reqwest::Method::GET, "/oauth/authorizations/~"),
        (reqwest::Method::DELETE, "/oauth/sessions/~"),
        (reqwest::Method::GET, "/slipway/users"),
        (reqwest::Method::POST, "/slipway/users"),
        (
            reqwest::Method::DELETE,
            "/slipway/users/admin@slipway.local",
        ),
    ] {
        for key in [None, Some("wrong-key")] {
            let mut request = client
                .request(method.clone(), format!("{}{path}", server.api_url))
                .header("accept", v3);
            if let Some(key) = key {
                request = request.bearer_auth(key);
            }
            let response = request.send().await.unwrap();
            let message = support::expect_api_error(response, 401, "unauthorized").await;
            assert!(
                message.contains("slipway login"),
                "{method} {path}: {message}"
            );
            assert!(
                message.contains("SLIPWAY_API_KEY"),
                "{method} {path}: {message}"
            );
        }
    }
    // What the heroku CLI reads, with the admin's key.
    let keys: serde_json::Value = server.api_json("/account/keys").await;
    assert_eq!(keys, serde_json::json!([]));
    let limits: serde_json::Value = server.api_json("/account/rate-limits").await;
    assert!(limits["remaining"].as_i64().unwrap() > 0, "{limits}");
    let named: serde_json::Value = server
        .api(reqwest::Method::PATCH, "/account")
        .json(&serde_json::json!({"name": "The Admin"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(named["name"], "The Admin");
    let account: serde_json::Value = server.api_json("/account").await;
    assert_eq!(account["name"], "The Admin");
    assert_eq!(account["email"], "admin@slipway.local");
    let own: serde_json::Value = server.api_json("/oauth/authorizations/~").await;
    assert_eq!(own["description"], "API key");
    // The caller's own token is echoed (the heroku CLI's auth:token and logout match on it).
    assert_eq!(own["access_token"]["token"], server.key.as_str());

    // A user sets their own password and logs in with it; a short one is refused.
    let added = server_cli_stdin(&server, &["users:add", "pat@example.com"], "");
    let added = succeeded("slipway users:add", &added, &server);
    let key = added
        .split("API key (shown once): ")
        .nth(1)
        .unwrap()
        .trim()
        .to_owned();
    let passwd = |password: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_slipway"))
            .args(["passwd", "--password-stdin"])
            .env("SLIPWAY_API_URL", &server.api_url)
            .env("SLIPWAY_API_KEY", &key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let short = passwd("short");
    assert!(!short.status.success());
    assert!(
        text(&short).contains("8 to 1024 characters"),
        "{}",
        text(&short)
    );
    succeeded("slipway passwd", &passwd(PASSWORD), &server);
    let home = tempfile::tempdir().unwrap();
    let login = slipway(
        &server,
        home.path(),
        &["login", "--email", "pat@example.com", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    succeeded("slipway login", &login, &server);
    // Removing the account revokes every key it had.
    let token = netrc_token(home.path(), &machine(&server)).unwrap();
    assert_eq!(account_status(&server, &token).await, 200);
    server.cli_ok(&[
        "users:remove",
        "pat@example.com",
        "--confirm",
        "pat@example.com",
    ]);
    assert_eq!(account_status(&server, &token).await, 401);
    assert_eq!(account_status(&server, &key).await, 401);
}
