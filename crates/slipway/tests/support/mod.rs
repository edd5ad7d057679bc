//! The end-to-end harness: starts the real `slipway` binary on free loopback ports with its
//! own data directory, and drives it the way a user does: the `slipway` CLI, the real `git`
//! client, and HTTP requests through the router.

#![allow(dead_code, unreachable_pub)]

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// True when this machine can run real dynos (root and runc). Tests that need them call
/// [`require_runc`] and skip loudly otherwise.
pub fn runc_available() -> bool {
    nix::unistd::geteuid().is_root()
        && Command::new("runc")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

#[macro_export]
macro_rules! require_runc {
    () => {
        if !support::runc_available() {
            eprintln!("SKIPPED: this end-to-end test needs root and the runc binary (apt-get install runc)");
            return;
        }
    };
}

/// A free port for a server to listen on, picked below the kernel's ephemeral range
/// (32768–60999): dynos and client connections take their ports from that range, so a port
/// picked here cannot be taken by them between this check and the server's bind.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    // Spread test binaries apart (they run one after another, tests within one in parallel).
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = (std::process::id() % 1000) * 17;
    for _ in 0..2000 {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (12000 + (seed + offset * 7) % 18000) as u16;
        if TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).is_ok() {
            return port;
        }
    }
    panic!("no free port between 12000 and 30000");
}

/// A /24 of 10.212.0.0/16 for a test server's dyno network, spread by process so that test
/// binaries (and servers within one) do not collide; a collision is retried (see
/// [`Server::start_with`]).
fn next_dyno_subnet() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = (std::process::id() * 13 + NEXT.fetch_add(1, Ordering::Relaxed)) % 256;
    format!("10.212.{n}.0/24")
}

pub struct Server {
    child: Child,
    /// `--dyno-subnet` of this server; its bridge and firewall table are removed on drop.
    pub dyno_subnet: String,
    pub api_url: String,
    pub router_port: u16,
    /// The router's HTTPS port (`--router-tls-addr`).
    pub router_tls_port: u16,
    /// The HTTPS port of the API and git (`--api-tls-addr`).
    pub api_tls_port: u16,
    /// The rendezvous listener's port (`--rendezvous-addr`).
    pub rendezvous_port: u16,
    pub data_dir: PathBuf,
    pub key: String,
    _temp: tempfile::TempDir,
    log_path: PathBuf,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    pub fn start_with(extra_args: &[&str]) -> Server {
        let temp = tempfile::Builder::new()
            .prefix("slipway-e2e-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let data_dir = temp.path().join("data");
        let api_port = free_port();
        let router_port = free_port();
        let router_tls_port = free_port();
        let api_tls_port = free_port();
        let rendezvous_port = free_port();
        let log_path = temp.path().join("server.log");
        let log = std::fs::File::create(&log_path).expect("server log");
        let dyno_subnet = next_dyno_subnet();
        let child = Command::new(env!("CARGO_BIN_EXE_slipway"))
            .arg("server")
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--api-addr")
            .arg(format!("127.0.0.1:{api_port}"))
            .arg("--router-addr")
            .arg(format!("127.0.0.1:{router_port}"))
            .arg("--router-tls-addr")
            .arg(format!("127.0.0.1:{router_tls_port}"))
            .arg("--api-tls-addr")
            .arg(format!("127.0.0.1:{api_tls_port}"))
            .arg("--rendezvous-addr")
            .arg(format!("127.0.0.1:{rendezvous_port}"))
            .arg("--dyno-subnet")
            .arg(&dyno_subnet)
            .args(extra_args)
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start slipway server");
        let mut server = Server {
            child,
            dyno_subnet,
            api_url: format!("http://127.0.0.1:{api_port}"),
            router_port,
            router_tls_port,
            api_tls_port,
            rendezvous_port,
            data_dir: data_dir.clone(),
            key: String::new(),
            _temp: temp,
            log_path,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(key) = std::fs::read_to_string(data_dir.join("admin.key")) {
                if std::net::TcpStream::connect(("127.0.0.1", api_port)).is_ok() {
                    server.key = key.trim().to_owned();
                    break;
                }
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                let log = server.log();
                if log.contains("overlaps the host's route") {
                    // Another server (or a leftover of a killed test) holds this subnet.
                    server.dyno_subnet = next_dyno_subnet();
                    server.restart_with(extra_args);
                    continue;
                }
                panic!("the server exited with {status}:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "the server did not start:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Runs the `slipway` CLI against this server.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_slipway"))
            // Outside any git repository: `apps:create` adds a `slipway` remote to the one it
            // runs in, which must never be Slipway's own.
            .current_dir(std::env::temp_dir())
            .args(args)
            .env("SLIPWAY_API_URL", &self.api_url)
            .env("SLIPWAY_API_KEY", &self.key)
            .env_remove("SLIPWAY_APP")
            .output()
            .expect("run slipway")
    }

    /// Runs the CLI and requires success; returns stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let output = self.cli(args);
        assert!(
            output.status.success(),
            "slipway {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub fn git_url(&self, app: &str) -> String {
        format!("{}/{app}.git", self.api_url)
    }

    /// `git push` of `dir`'s `main` branch with the API key as the password.
    pub fn push(&self, app: &str, dir: &Path) -> Output {
        self.push_with_key(app, dir, &self.key)
    }

    pub fn push_with_key(&self, app: &str, dir: &Path, key: &str) -> Output {
        let url = self
            .git_url(app)
            .replacen("http://", &format!("http://heroku:{key}@"), 1);
        git(dir, &["push", &url, "main"])
    }

    /// `git push <url> <refspec>`, e.g. `+main` to force a push of unrelated history.
    pub fn push_ref(&self, app: &str, dir: &Path, refspec: &str) -> Output {
        let key = &self.key;
        let url = self
            .git_url(app)
            .replacen("http://", &format!("http://heroku:{key}@"), 1);
        git(dir, &["push", &url, refspec])
    }

    /// `git push` of `dir` to `app`, which must succeed.
    pub fn push_ok(&self, app: &str, dir: &Path) {
        let push = self.push(app, dir);
        assert!(push.status.success(), "{}\n{}", text(&push), self.log());
    }

    /// Creates `app`, deploys [`ECHO_APP`] to it and waits until it serves; returns the
    /// app's repository.
    pub async fn deploy_echo_app(&self, app: &str) -> tempfile::TempDir {
        self.cli_ok(&["apps:create", app]);
        let dir = echo_app_repo();
        self.push_ok(app, dir.path());
        self.wait_for_200(app, "/").await;
        dir
    }

    /// A Platform API request with a JSON body, its answer decoded as JSON whatever its status.
    pub async fn api_send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        self.api(method, path)
            .json(&body)
            .send()
            .await
            .expect("API request")
            .json()
            .await
            .expect("JSON from the API")
    }

    /// An HTTP GET through the router with `Host: <app>.localhost`.
    pub async fn get(&self, app: &str, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, app, path)
            .send()
            .await
            .expect("request through the router")
    }

    pub fn request(
        &self,
        method: reqwest::Method,
        app: &str,
        path: &str,
    ) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(
                method,
                format!("http://127.0.0.1:{}{path}", self.router_port),
            )
            .header("host", format!("{app}.localhost"))
    }

    /// A Platform API request with the v3 Accept header and the admin key.
    pub fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(method, format!("{}{path}", self.api_url))
            .header("accept", "application/vnd.heroku+json; version=3")
            .bearer_auth(&self.key)
    }

    /// Polls until the app answers `path` with 200 through the router; returns the body.
    pub async fn wait_for_200(&self, app: &str, path: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Ok(response) = self.request(reqwest::Method::GET, app, path).send().await {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                if status == 200 {
                    return body;
                }
                last = format!("{status}: {body}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{app}{path} never answered 200 (last: {last})\nserver log:\n{}\napp log:\n{}",
            self.log(),
            self.logs(app)
        );
    }

    /// The app's recent log, through the CLI.
    pub fn logs(&self, app: &str) -> String {
        String::from_utf8_lossy(&self.cli(&["logs", "-a", app, "-n", "1500"]).stdout).into_owned()
    }

    /// Polls the app's log until `predicate` holds; returns the log.
    pub async fn wait_for_log(&self, app: &str, predicate: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let log = self.logs(app);
            if predicate(&log) {
                return log;
            }
            assert!(Instant::now() < deadline, "the log never matched:\n{log}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ids of the containers runc has for this server.
    pub fn containers(&self) -> Vec<String> {
        let output = Command::new("runc")
            .arg("--root")
            .arg(self.data_dir.join("runtime/runc"))
            .args(["list", "-q"])
            .output()
            .expect("runc list");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// Polls until runc has exactly `count` containers whose id contains `part`.
    pub async fn wait_for_containers(&self, part: &str, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let found: Vec<String> = self
                .containers()
                .into_iter()
                .filter(|c| c.contains(part))
                .collect();
            if found.len() == count {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "expected {count} containers matching {part}, found {found:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Server {
    /// Kills the server with SIGKILL (dynos keep running) and starts a new server process on
    /// the same data directory and ports, as after a crash or an upgrade.
    pub fn kill9_and_restart(&mut self, extra_args: &[&str]) {
        self.kill9();
        self.restart_with(extra_args);
    }

    /// The host pid of a container's first process, from `runc state`.
    pub fn container_pid(&self, id: &str) -> Option<u64> {
        let output = Command::new("runc")
            .arg("--root")
            .arg(self.data_dir.join("runtime/runc"))
            .args(["state", id])
            .output()
            .ok()?;
        let state: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
        state["pid"].as_u64().filter(|pid| *pid > 0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Dynos outlive the server by design (a restarted server adopts them); tests clean up.
        // A `runc run` the server started just before it died may create its container only
        // after a first listing: repeat until no container is listed and no `runc` of this
        // data dir runs any more (at most 10 s).
        let root = self.data_dir.join("runtime/runc");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ids = self.containers();
            for id in &ids {
                let _ = Command::new("runc")
                    .arg("--root")
                    .arg(&root)
                    .args(["kill", "--all", id, "KILL"])
                    .output();
                let _ = Command::new("runc")
                    .arg("--root")
                    .arg(&root)
                    .args(["delete", "--force", id])
                    .output();
            }
            if (ids.is_empty() && !runc_running_under(&root)) || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Each dyno's disk is a mount in its bundle (and the pool's, if the server died
        // without cleaning up): unmount them, deepest first, so the data dir can be removed.
        if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
            let mut points: Vec<&str> = info
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|p| Path::new(p).starts_with(&self.data_dir))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for point in points {
                let _ = nix::mount::umount2(point, nix::mount::MntFlags::MNT_DETACH);
            }
        }
        // The dyno network's bridge and firewall table (named after the data directory).
        if let (Ok(subnet), Ok(data_dir)) = (
            self.dyno_subnet.parse::<slipway_runtime::Ipv4Subnet>(),
            self.data_dir.canonicalize(),
        ) {
            // The killed dynos' network namespaces are still mounted in their bundles.
            slipway_runtime::unmount_leftovers(&data_dir);
            let network = slipway_runtime::NetworkConfig::for_key(subnet, &data_dir);
            slipway_runtime::remove_network(&network.bridge);
        }
    }
}

/// Runs git in `dir`, with no credential helper or prompt, as a user would in CI.
pub fn git(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .args([
            "-c",
            "credential.helper=",
            "-c",
            "user.email=dev@example.com",
            "-c",
            "user.name=Dev",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_ASKPASS")
        .env_remove("SSH_ASKPASS")
        .output()
        .expect("run git")
}

/// A git repository with the given files committed on `main`.
pub fn repo(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("slipway-app-")
        .tempdir_in("/tmp")
        .expect("temp dir");
    for (path, contents) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, contents).expect("write file");
    }
    assert!(git(dir.path(), &["init", "-q", "-b", "main"])
        .status
        .success());
    commit_all(dir.path(), "initial");
    dir
}

pub fn commit_all(dir: &Path, message: &str) {
    assert!(git(dir, &["add", "-A"]).status.success());
    let output = git(dir, &["commit", "-q", "--allow-empty", "-m", message]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Serves HTTP/1.1 on a loopback port until the test ends: reads each request's head, writes
/// what `respond` returns for its path (status line, headers and body), and closes the
/// connection. Returns the base URL (`http://127.0.0.1:<port>`).
pub fn serve_http(respond: impl Fn(&str) -> Vec<u8> + Send + 'static) -> String {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let base = format!(
        "http://{}",
        listener.local_addr().expect("the listener's address")
    );
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buffer = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buffer[..n]),
                }
            }
            let request = String::from_utf8_lossy(&request);
            let path = request.split_whitespace().nth(1).unwrap_or("/");
            let _ = stream.write_all(&respond(path));
        }
    });
    base
}

/// A repository holding [`ECHO_APP`] as its `web` process, committed on `main`.
pub fn echo_app_repo() -> tempfile::TempDir {
    repo(&[
        ("Procfile", "web: python3 server.py\n"),
        ("server.py", ECHO_APP),
    ])
}

/// Asserts that a Platform API `response` is an error with `status` and Heroku's error `id`;
/// returns its message.
pub async fn expect_api_error(response: reqwest::Response, status: u16, id: &str) -> String {
    assert_eq!(response.status(), status);
    let body: serde_json::Value = response.json().await.expect("an error body in JSON");
    assert_eq!(body["id"], id, "{body}");
    body["message"]
        .as_str()
        .expect("an error message")
        .to_owned()
}

/// A web app using only Python's standard library: `/env` answers the dyno's environment,
/// request headers and a few facts about its sandbox as JSON; other paths say hello.
pub const ECHO_APP: &str = r#"import http.server, json, os
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path == "/env":
            facts = {
                "env": dict(os.environ),
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "uid": os.getuid(),
                "pids": len([p for p in os.listdir("/proc") if p.isdigit()]),
                "cwd": os.getcwd(),
            }
            try:
                open("/usr/slipway-escape", "w")
                facts["usr_writable"] = True
            except OSError:
                facts["usr_writable"] = False
            try:
                facts["memory_limit"] = int(open("/sys/fs/cgroup/memory/memory.limit_in_bytes").read())
            except OSError:
                facts["memory_limit"] = None
            try:
                facts["memory_quota"] = int(open("/sys/fs/cgroup/memory/memory.soft_limit_in_bytes").read())
            except OSError:
                facts["memory_quota"] = None
            body = json.dumps(facts).encode()
        else:
            body = ("hello from " + os.environ.get("DYNO", "?") + "\n").encode()
        print("handled " + self.path, flush=True)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
"#;

/// Whether a `runc` process with `--root <root>` (e.g. a `runc run` a dead server started)
/// still runs.
fn runc_running_under(root: &Path) -> bool {
    let root = root.to_string_lossy();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return false;
    };
    procs.flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline")).is_ok_and(|cmdline| {
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.windows(2)
                .any(|w| w[0] == b"--root" && w[1] == root.as_bytes())
                && !args
                    .iter()
                    .any(|a| *a == b"list" || *a == b"kill" || *a == b"delete")
        })
    })
}

/// Crash and restart, for durability tests.
impl Server {
    /// Kills the server with SIGKILL (its dynos keep running, as after a real crash).
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same data directory and ports, after [`Server::kill9`].
    pub fn restart_with(&mut self, extra_args: &[&str]) {
        let api_addr = self.api_url.trim_start_matches("http://").to_owned();
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.log_path)
            .expect("server log");
        self.child = Command::new(env!("CARGO_BIN_EXE_slipway"))
            .arg("server")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--api-addr")
            .arg(&api_addr)
            .arg("--router-addr")
            .arg(format!("127.0.0.1:{}", self.router_port))
            .arg("--router-tls-addr")
            .arg(format!("127.0.0.1:{}", self.router_tls_port))
            .arg("--api-tls-addr")
            .arg(format!("127.0.0.1:{}", self.api_tls_port))
            .arg("--rendezvous-addr")
            .arg(format!("127.0.0.1:{}", self.rendezvous_port))
            .arg("--dyno-subnet")
            .arg(&self.dyno_subnet)
            .args(extra_args)
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("restart slipway server");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&api_addr).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the restarted server exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "the server did not restart:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A Platform API GET, decoded as JSON; panics unless it answers 2xx.
    pub async fn api_json(&self, path: &str) -> serde_json::Value {
        let response = self
            .api(reqwest::Method::GET, path)
            .send()
            .await
            .expect("API request");
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "GET {path}: {status}: {body}");
        serde_json::from_str(&body).expect("JSON from the API")
    }

    /// A Platform API GET decoded as `T`; panics unless it answers 2xx.
    pub async fn api_get<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        serde_json::from_value(self.api_json(path).await)
            .expect("the API's JSON has the expected shape")
    }

    /// Polls the app's `/env` (see [`ECHO_APP`]) until `predicate` holds for the dyno's
    /// environment; returns it.
    pub async fn wait_for_env(
        &self,
        app: &str,
        predicate: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = serde_json::Value::Null;
        while Instant::now() < deadline {
            if let Ok(response) = self.request(reqwest::Method::GET, app, "/env").send().await {
                if response.status() == 200 {
                    if let Ok(facts) = response.json::<serde_json::Value>().await {
                        if predicate(&facts["env"]) {
                            return facts["env"].clone();
                        }
                        last = facts["env"].clone();
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the dyno's environment never matched; last: {last}\nserver log:\n{}\napp log:\n{}",
            self.log(),
            self.logs(app)
        );
    }
}

/// Where `.ci/run` installs the real heroku CLI (`npm install heroku@11`).
pub const HEROKU_CLI_DIR: &str = "/opt/herokucli";

/// The real heroku CLI: `$SLIPWAY_HEROKU_CLI`, else the one `.ci/run` installs. CI installs
/// it, so a missing CLI fails the test rather than skipping it.
pub fn heroku_cli() -> PathBuf {
    if let Some(path) = std::env::var_os("SLIPWAY_HEROKU_CLI").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let installed = Path::new(HEROKU_CLI_DIR).join("node_modules/.bin/heroku");
    assert!(
        installed.exists(),
        "the real heroku CLI is not installed: install it with `mkdir -p {HEROKU_CLI_DIR} && cd {HEROKU_CLI_DIR} && npm install heroku@11` (as .ci/run does), or set SLIPWAY_HEROKU_CLI to its path"
    );
    installed
}

impl Server {
    /// The HTTPS URL of the API and git (`HEROKU_HOST`).
    pub fn api_tls_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.api_tls_port)
    }

    /// The platform CA's certificate file (`slipway ca --data-dir`).
    pub fn ca_path(&self) -> PathBuf {
        self.data_dir.join("tls/router-ca.pem")
    }

    /// A command with the environment that points the real heroku CLI and git at this
    /// server over HTTPS, trusting the platform CA alone for git, with `home` as a throwaway
    /// `HOME` (the CLI writes `~/.gitconfig` on every command) and the variables that stop it
    /// from phoning home (heroku-cli.md §a).
    pub fn heroku_command(&self, program: &std::ffi::OsStr, home: &Path, dir: &Path) -> Command {
        let cli = heroku_cli();
        let bin = cli.parent().expect("the CLI's directory").to_owned();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![bin];
        paths.extend(std::env::split_paths(&path));
        let mut command = Command::new(program);
        command
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::join_paths(paths).expect("PATH"))
            .env("HOME", home)
            .env("HEROKU_HOST", self.api_tls_url())
            .env("HEROKU_PARTICLEBOARD_URL", self.api_tls_url())
            .env("HEROKU_API_KEY", &self.key)
            .env("NODE_EXTRA_CA_CERTS", self.ca_path())
            .env("GIT_SSL_CAINFO", self.ca_path())
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("DISABLE_TELEMETRY", "true")
            .env("HEROKU_SKIP_NEW_VERSION_CHECK", "true")
            .env("HEROKU_DISABLE_AUTOUPDATE", "true")
            .env("HEROKU_NOTIFICATIONS", "0")
            .env("NO_COLOR", "1")
            .env("GIT_AUTHOR_NAME", "Dev")
            .env("GIT_AUTHOR_EMAIL", "dev@example.com")
            .env("GIT_COMMITTER_NAME", "Dev")
            .env("GIT_COMMITTER_EMAIL", "dev@example.com");
        command
    }

    /// Runs the real heroku CLI in `dir` (see [`Server::heroku_command`]).
    pub fn heroku(&self, home: &Path, dir: &Path, args: &[&str]) -> Output {
        self.heroku_command(heroku_cli().as_os_str(), home, dir)
            .args(args)
            .output()
            .expect("run the heroku CLI")
    }
}

impl Server {
    /// Starts another control plane of an existing platform (`--store` shared with a server
    /// that made the admin account): like [`Server::start_with`], but it waits for the API
    /// alone, since only the first server writes `admin.key`, and uses `key`, the first
    /// server's admin key. With `shared_slugs`, its `<data>/slugs` is that directory (the
    /// first server's), standing in for storage both hosts mount until control planes fetch
    /// slugs from each other.
    pub fn start_joining(extra_args: &[&str], key: &str, shared_slugs: Option<&Path>) -> Server {
        let temp = tempfile::Builder::new()
            .prefix("slipway-e2e-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let data_dir = temp.path().join("data");
        let log_path = temp.path().join("server.log");
        std::fs::File::create(&log_path).expect("server log");
        if let Some(slugs) = shared_slugs {
            std::fs::create_dir_all(&data_dir).expect("data dir");
            std::os::unix::fs::symlink(slugs, data_dir.join("slugs")).expect("link the slugs");
        }
        let mut server = Server {
            child: Command::new("true").spawn().expect("a placeholder process"),
            dyno_subnet: next_dyno_subnet(),
            api_url: format!("http://127.0.0.1:{}", free_port()),
            router_port: free_port(),
            router_tls_port: free_port(),
            api_tls_port: free_port(),
            rendezvous_port: free_port(),
            data_dir,
            key: key.to_owned(),
            _temp: temp,
            log_path,
        };
        let _ = server.child.wait();
        server.restart_with(extra_args);
        server
    }
}
