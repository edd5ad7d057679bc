//! End to end: `slipway run` and `slipway run:detached` under a real pseudo-terminal and
//! with pipes.
//!
//! The first group points the real `slipway` binary at a tiny fake Platform API (answering
//! `POST /apps/{app}/dynos` and `GET /slipway/ca.pem`) and the real rendezvous listener over
//! TLS, whose one-off "dynos" are local processes on a real pty or real pipes
//! ([`LocalSessions`]): the CLI's whole path, terminal handling included, without a platform.
//! The second group runs the same checks against the real server and real dynos; it needs
//! the core's one-off dynos and is ignored until they are merged.

mod support;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Json;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{json, Value};
use slipway_rendezvous::testing::LocalSessions;
use slipway_runtime::Attach;
use support::Server;

/// A fake Platform API in front of a real rendezvous listener.
struct Fake {
    api_url: String,
    ca_path: tempfile::NamedTempFile,
    bodies: Arc<Mutex<Vec<Value>>>,
    _stop: tokio::sync::watch::Sender<bool>,
}

#[derive(Clone)]
struct FakeState {
    sessions: Arc<LocalSessions>,
    rendezvous: SocketAddr,
    ca_pem: String,
    bodies: Arc<Mutex<Vec<Value>>>,
    count: Arc<AtomicUsize>,
}

async fn fake() -> Fake {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::default();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rendezvous = listener.local_addr().unwrap();
    let sessions = LocalSessions::new(Duration::from_secs(60));
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(slipway_rendezvous::serve(
        listener,
        Arc::new(tls),
        sessions.clone(),
        stop_rx,
    ));
    let ca_path = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca_path.path(), ca.pem()).unwrap();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let state = FakeState {
        sessions,
        rendezvous,
        ca_pem: ca.pem(),
        bodies: bodies.clone(),
        count: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/apps/{app}/dynos", post(create_dyno))
        .route(
            "/slipway/ca.pem",
            get(|State(state): State<FakeState>| async move { state.ca_pem }),
        )
        .with_state(state);
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_url = format!("http://{}", api.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(api, app).await });
    Fake {
        api_url,
        ca_path,
        bodies,
        _stop: stop,
    }
}

/// Starts the posted command as a local process waiting for a fresh secret, attached as a
/// real platform would attach it: a terminal of the client's size unless `force_no_tty`.
/// The command `refused` gets an attach URL whose secret nobody waits for.
async fn create_dyno(
    State(state): State<FakeState>,
    Path(app): Path<String>,
    Json(body): Json<Value>,
) -> (axum::http::StatusCode, Json<Value>) {
    state.bodies.lock().unwrap().push(body.clone());
    let n = state.count.fetch_add(1, Ordering::SeqCst) + 1;
    let command = body["command"].as_str().unwrap_or_default().to_owned();
    let secret = format!("secret{n}");
    let size = |name: &str, default: u16| {
        body["env"][name]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let attach = if body["force_no_tty"] == json!(true) {
        Attach::Pipes
    } else {
        Attach::Tty {
            cols: size("COLUMNS", 80),
            rows: size("LINES", 24),
        }
    };
    if command != "refused" && body["attach"] == json!(true) {
        state.sessions.add(&secret, &command, attach);
    }
    let dyno = json!({
        "app": {"id": "8f1a0b4e-49a1-4d6c-9d5c-3f0c8d9e2a11", "name": app},
        "attach_url": format!("rendezvous://{}/{secret}", state.rendezvous),
        "command": command,
        "created_at": "2026-01-01T00:00:00Z",
        "id": "0d1c7c6e-36a3-4f2d-9f8e-1c2b3a4d5e6f",
        "name": "run.1",
        "release": {"id": "5b0e6c9a-2f4d-4e8b-a1c3-7d9f0e2b4c6a", "version": 1},
        "size": "Basic",
        "state": "up",
        "type": "run",
        "updated_at": "2026-01-01T00:00:00Z",
    });
    (axum::http::StatusCode::CREATED, Json(dyno))
}

/// The `slipway` binary on a real pseudo-terminal (its controlling terminal), as a person
/// at a terminal runs it.
struct Pty {
    child: Child,
    master: std::fs::File,
    /// The terminal's own end, kept to read its mode (raw or cooked) from the outside.
    slave: OwnedFd,
    output: Arc<Mutex<Vec<u8>>>,
}

fn spawn_in_pty(args: &[&str], env: &[(&str, &str)], cols: u16, rows: u16) -> Pty {
    let mut command = Command::new(env!("CARGO_BIN_EXE_slipway"));
    command
        .args(args)
        .env_remove("SLIPWAY_APP")
        .env_remove("SLIPWAY_CA_CERT");
    for (key, value) in env {
        command.env(key, value);
    }
    spawn_command_in_pty(command, cols, rows)
}

/// Runs `command` (any program: `slipway`, the real `heroku` CLI) on a new pseudo-terminal.
#[allow(unsafe_code)]
fn spawn_command_in_pty(mut command: Command, cols: u16, rows: u16) -> Pty {
    let size = nix::pty::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).unwrap();
    command
        .env("TERM", "xterm")
        .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
        .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(Stdio::from(pty.slave.try_clone().unwrap()));
    // SAFETY: only async-signal-safe system calls: a new session whose controlling
    // terminal is the pty on descriptor 0, so Ctrl-C and SIGWINCH behave as on a laptop.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            nix::unistd::setsid()?;
            if nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn().unwrap();
    drop(command);
    let master = std::fs::File::from(pty.master);
    let output = Arc::new(Mutex::new(Vec::new()));
    let mut reader = master.try_clone().unwrap();
    let sink = output.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    Pty {
        child,
        master,
        slave: pty.slave,
        output,
    }
}

impl Pty {
    fn output(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    fn type_in(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).unwrap();
    }

    /// Waits until the output contains `needle` `times` times.
    async fn wait_for(&self, needle: &str, times: usize) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.output().matches(needle).count() < times {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} (x{times}) in {:?}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Resizes the window: the kernel sends SIGWINCH to `slipway run`.
    #[allow(unsafe_code)]
    fn resize(&self, cols: u16, rows: u16) {
        let size = nix::pty::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one `winsize`, which `size` is, for the call's duration.
        let rc = unsafe { nix::libc::ioctl(self.master.as_raw_fd(), nix::libc::TIOCSWINSZ, &size) };
        assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    }

    /// Whether the terminal is in canonical (cooked) mode with echo, as a shell leaves it.
    fn cooked(&self) -> bool {
        let mode = nix::sys::termios::tcgetattr(&self.slave).unwrap();
        let flags = nix::sys::termios::LocalFlags::ICANON | nix::sys::termios::LocalFlags::ECHO;
        mode.local_flags.contains(flags)
    }

    async fn exit_status(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "slipway run did not exit: {:?}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `slipway` with piped stdin and stdout; returns (status, stdout, stderr).
async fn run_piped(
    env: &[(&str, &str)],
    args: &[&str],
    stdin: &[u8],
) -> (ExitStatus, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_slipway"));
    command
        .args(args)
        .env_remove("SLIPWAY_APP")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    let output = tokio::task::spawn_blocking(move || {
        input.write_all(&stdin).unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    });
    let output = tokio::time::timeout(Duration::from_secs(20), output)
        .await
        .expect("slipway run did not exit")
        .unwrap();
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn api_env(fake: &Fake) -> Vec<(&'static str, String)> {
    vec![
        ("SLIPWAY_API_URL", fake.api_url.clone()),
        ("SLIPWAY_API_KEY", "test-key".to_owned()),
    ]
}

fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_session_types_resizes_and_returns_the_exit_status() {
    let fake = fake().await;
    let env = api_env(&fake);
    let mut pty = spawn_in_pty(&["run", "-a", "demo", "--", "sh"], &borrowed(&env), 100, 30);
    assert!(pty.cooked());
    pty.wait_for("up, run.1", 1).await;
    assert!(
        pty.output().contains("Running `sh` on ⬢ demo... up, run.1"),
        "{}",
        pty.output()
    );
    // While attached the local terminal is raw: keys go to the dyno as typed.
    assert!(!pty.cooked(), "the local terminal is not in raw mode");
    pty.type_in(b"stty size\r");
    pty.wait_for("30 100", 1).await;
    pty.resize(132, 43);
    // The window change travels as a frame; give it a moment before asking again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    pty.type_in(b"stty size\r");
    pty.wait_for("43 132", 1).await;
    pty.type_in(b"exit 3\r");
    let status = pty.exit_status().await;
    assert_eq!(status.code(), Some(3), "{}", pty.output());
    assert!(pty.cooked(), "the local terminal was left in raw mode");

    let body = fake.bodies.lock().unwrap()[0].clone();
    assert_eq!(body["attach"], json!(true));
    assert_eq!(body["command"], json!("sh"));
    assert_eq!(
        body["env"],
        json!({"TERM": "xterm", "COLUMNS": "100", "LINES": "30"})
    );
    assert!(body.get("force_no_tty").is_none(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_reaches_the_remote_process_not_the_cli() {
    let fake = fake().await;
    let env = api_env(&fake);
    let mut pty = spawn_in_pty(
        &[
            "run",
            "-a",
            "demo",
            "--",
            "trap 'echo got-int; exit 7' INT; echo ready; sleep 30; echo not-interrupted",
        ],
        &borrowed(&env),
        80,
        24,
    );
    pty.wait_for("up, run.1", 1).await;
    // Once in the "Running `…`" line, once from the dyno.
    pty.wait_for("ready", 2).await;
    let started = Instant::now();
    pty.type_in(&[0x03]);
    let status = pty.exit_status().await;
    // 7 is the remote trap's status: a local SIGINT would have made it 130.
    assert_eq!(status.code(), Some(7), "{}", pty.output());
    assert!(pty.output().contains("got-int\r\n"), "{}", pty.output());
    assert!(!pty.output().contains("not-interrupted\r\n"));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(pty.cooked());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piped_runs_stream_stdin_end_it_and_return_the_status() {
    let fake = fake().await;
    let mut env = api_env(&fake);
    // The CA from a file this time (the terminal tests fetch /slipway/ca.pem).
    env.push(("SLIPWAY_CA_CERT", fake.ca_path.path().display().to_string()));
    let env = borrowed(&env);
    let (status, stdout, stderr) = run_piped(
        &env,
        &["run", "-a", "demo", "--", "wc", "-c"],
        b"hello world\n",
    )
    .await;
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout.trim(), "12");
    assert!(
        stderr.contains("Running `wc -c` on ⬢ demo... up, run.1"),
        "{stderr}"
    );

    let (status, stdout, _) = run_piped(
        &env,
        &["run", "-a", "demo", "-x", "--", "sh", "-c", "cat; exit 4"],
        b"line one\nline two\n",
    )
    .await;
    assert_eq!(status.code(), Some(4));
    assert_eq!(stdout, "line one\nline two\n");

    let bodies = fake.bodies.lock().unwrap().clone();
    assert_eq!(bodies[0]["force_no_tty"], json!(true));
    assert!(bodies[0]["env"].get("COLUMNS").is_none(), "{}", bodies[0]);
    assert_eq!(bodies[1]["command"], json!(r#"sh -c "cat; exit 4""#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_rendezvous_is_a_clear_error() {
    let fake = fake().await;
    let env = api_env(&fake);
    let (status, _, stderr) = run_piped(
        &borrowed(&env),
        &["run", "-a", "demo", "--", "refused"],
        b"",
    )
    .await;
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains("run.1: no one-off dyno is waiting for this secret"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret1"), "{stderr}");

    // Nothing listening where the platform CA should come from.
    let env = [
        ("SLIPWAY_API_URL", fake.api_url.as_str()),
        ("SLIPWAY_API_KEY", "k"),
        ("SLIPWAY_CA_CERT", "/nonexistent/ca.pem"),
    ];
    let (status, _, stderr) = run_piped(&env, &["run", "-a", "demo", "--", "true"], b"").await;
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains("Could not read the platform CA from /nonexistent/ca.pem"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detached_runs_print_the_dyno_and_the_logs_hint() {
    let fake = fake().await;
    let env = api_env(&fake);
    let (status, stdout, stderr) = run_piped(
        &borrowed(&env),
        &[
            "run:detached",
            "-a",
            "demo",
            "-e",
            "A=1;B=2",
            "--",
            "echo",
            "hi",
        ],
        b"",
    )
    .await;
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("Running `echo hi` on ⬢ demo... done, run.1"),
        "{stderr}"
    );
    assert_eq!(
        stdout,
        "Run slipway logs --app demo --dyno run.1 to view the output.\n"
    );
    let body = fake.bodies.lock().unwrap()[0].clone();
    assert_eq!(body["attach"], json!(false));
    assert_eq!(body["env"]["A"], json!("1"));
    assert_eq!(body["env"]["B"], json!("2"));
}

// --- Against the real server and real dynos -------------------------------------------

fn server_env(server: &Server) -> Vec<(&'static str, String)> {
    vec![
        ("SLIPWAY_API_URL", server.api_url.clone()),
        ("SLIPWAY_API_KEY", server.key.clone()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_dyno_terminal_resize_ctrl_c_and_exit_status() {
    require_runc!();
    let server = Server::start();
    let _repo = server.deploy_echo_app("runapp").await;
    let env = server_env(&server);

    let mut pty = spawn_in_pty(
        &["run", "-a", "runapp", "--", "bash"],
        &borrowed(&env),
        100,
        30,
    );
    pty.wait_for("up, run.", 1).await;
    pty.type_in(b"stty size\r");
    pty.wait_for("30 100", 1).await;
    pty.resize(132, 43);
    tokio::time::sleep(Duration::from_millis(300)).await;
    pty.type_in(b"stty size\r");
    pty.wait_for("43 132", 1).await;
    // Quoted so that the echo of the typed line does not look like the output.
    pty.type_in(b"sleep 30; echo n\"\"ot-interrupted\r");
    tokio::time::sleep(Duration::from_millis(300)).await;
    pty.type_in(&[0x03]);
    pty.type_in(b"echo back-at-prompt\r");
    pty.wait_for("back-at-prompt", 2).await;
    pty.type_in(b"exit 3\r");
    assert_eq!(pty.exit_status().await.code(), Some(3), "{}", pty.output());
    assert!(!pty.output().contains("not-interrupted\r\n"));
    assert!(pty.cooked());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_dyno_piped_stdin_and_detached_logs() {
    require_runc!();
    let server = Server::start();
    let _repo = server.deploy_echo_app("runpipe").await;
    let env = server_env(&server);
    let env = borrowed(&env);
    let (status, stdout, stderr) = run_piped(
        &env,
        &["run", "-a", "runpipe", "--", "wc", "-c"],
        b"hello world\n",
    )
    .await;
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout.trim(), "12");
    let (status, _, _) = run_piped(
        &env,
        &["run", "-a", "runpipe", "--", "sh", "-c", "exit 5"],
        b"",
    )
    .await;
    assert_eq!(status.code(), Some(5));

    let (status, stdout, stderr) = run_piped(
        &env,
        &[
            "run:detached",
            "-a",
            "runpipe",
            "--",
            "echo",
            "detached-output",
        ],
        b"",
    )
    .await;
    assert!(status.success(), "{stderr}");
    assert!(
        stdout.contains("Run slipway logs --app runpipe --dyno run."),
        "{stdout}"
    );
    server
        .wait_for_log("runpipe", |logs| {
            logs.contains("app[run.") && logs.contains("detached-output")
        })
        .await;
}

/// The real `heroku` CLI (v11) against the real server: its rendezvous client (TLS trusting
/// only the platform CA through `NODE_EXTRA_CA_CERTS`, the greeting it throws away, its
/// `--exit-code` marker), `run:detached`, and `heroku run bash` at a real terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_heroku_cli_runs_one_off_dynos() {
    require_runc!();
    let cli = support::heroku_cli();
    let server = Server::start();
    let repo = server.deploy_echo_app("herokurun").await;
    let home = tempfile::tempdir().unwrap();

    let exit = server.heroku(
        home.path(),
        repo.path(),
        &[
            "run",
            "--exit-code",
            "-a",
            "herokurun",
            "--",
            "sh",
            "-c",
            "echo before-exit; exit 3",
        ],
    );
    assert_eq!(exit.status.code(), Some(3), "{}", support::text(&exit));
    assert!(
        String::from_utf8_lossy(&exit.stdout).contains("before-exit"),
        "{}",
        support::text(&exit)
    );

    let echo = server.heroku(
        home.path(),
        repo.path(),
        &["run", "-a", "herokurun", "--", "echo", "from-heroku-run"],
    );
    assert!(echo.status.success(), "{}", support::text(&echo));
    assert!(
        String::from_utf8_lossy(&echo.stdout).contains("from-heroku-run"),
        "{}",
        support::text(&echo)
    );

    let detached = server.heroku(
        home.path(),
        repo.path(),
        &[
            "run:detached",
            "-a",
            "herokurun",
            "--",
            "echo",
            "detached-from-heroku",
        ],
    );
    assert!(detached.status.success(), "{}", support::text(&detached));
    assert!(
        support::text(&detached).contains("run."),
        "{}",
        support::text(&detached)
    );
    server
        .wait_for_log("herokurun", |logs| {
            logs.contains("app[run.") && logs.contains("detached-from-heroku")
        })
        .await;

    let mut command = server.heroku_command(cli.as_os_str(), home.path(), repo.path());
    command.args(["run", "-a", "herokurun", "--", "bash"]);
    let mut pty = spawn_command_in_pty(command, 100, 30);
    // Quoted so that the echo of the typed line does not look like the output.
    pty.type_in(b"echo he\"\"llo-from-a-pty\r");
    pty.wait_for("hello-from-a-pty", 1).await;
    pty.type_in(b"stty size\r");
    pty.wait_for("30 100", 1).await;
    pty.type_in(b"exit\r");
    assert!(pty.exit_status().await.success(), "{}", pty.output());
}

/// One TLS connection to an `attach_url` in Heroku mode (the secret line, then whatever the
/// listener sends until it closes), trusting only the platform CA at `ca`.
fn rendezvous_exchange(ca: &std::path::Path, attach_url: &str) -> String {
    rendezvous_until(ca, attach_url, None)
}

/// A secret opens exactly one session on the real server: a wrong one is refused (and does
/// not use the right one up), the right one runs the dyno, a second use is refused, and no
/// container is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rendezvous_secret_opens_one_session_and_a_wrong_one_none() {
    require_runc!();
    let server = Server::start();
    let _repo = server.deploy_echo_app("runsecret").await;
    let created: Value = server
        .api(reqwest::Method::POST, "/apps/runsecret/dynos")
        .json(&json!({"command": "echo attached-once", "attach": true, "force_no_tty": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = created["attach_url"]
        .as_str()
        .expect("attach_url")
        .to_owned();
    let wrong = format!("{}/{}", url.rsplit_once('/').unwrap().0, "0".repeat(64));
    let exchange = |url: String| {
        let ca = server.ca_path();
        tokio::task::spawn_blocking(move || rendezvous_exchange(&ca, &url))
    };

    let refused = exchange(wrong).await.unwrap();
    assert!(refused.contains("Error"), "{refused:?}");
    assert!(!refused.contains("attached-once"), "{refused:?}");
    let first = exchange(url.clone()).await.unwrap();
    assert!(first.starts_with("rendezvous\r\n"), "{first:?}");
    assert!(first.contains("attached-once"), "{first:?}");
    let again = exchange(url).await.unwrap();
    assert!(again.contains("Error"), "{again:?}");
    assert!(!again.contains("attached-once"), "{again:?}");
    server.wait_for_containers("runsecret.run", 0).await;
}

/// A client that goes away hangs the dyno up: SIGHUP reaches the process on the real server
/// (its trap exits 7, logged as Heroku logs it), and nothing is left running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_hangs_the_dyno_up() {
    require_runc!();
    let server = Server::start();
    let _repo = server.deploy_echo_app("runhup").await;
    let created: Value = server
        .api(reqwest::Method::POST, "/apps/runhup/dynos")
        .json(&json!({
            "command": "trap 'exit 7' HUP; echo ready-for-hangup; while :; do sleep 0.2; done",
            "attach": true,
            "force_no_tty": true
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = created["attach_url"]
        .as_str()
        .expect("attach_url")
        .to_owned();
    let ca = server.ca_path();
    let seen = tokio::task::spawn_blocking(move || {
        rendezvous_until(&ca, &url, Some("ready-for-hangup"))
        // The connection is dropped here, with the process still running.
    })
    .await
    .unwrap();
    assert!(seen.contains("ready-for-hangup"), "{seen:?}");
    let logs = server
        .wait_for_log("runhup", |logs| {
            logs.contains("Process exited with status 7")
        })
        .await;
    assert!(!logs.contains("Error R16"), "{logs}");
    server.wait_for_containers("runhup.run", 0).await;
}

/// As [`rendezvous_exchange`], but returns (and disconnects) as soon as `needle`, if any,
/// arrives.
fn rendezvous_until(ca: &std::path::Path, attach_url: &str, needle: Option<&str>) -> String {
    use rustls_pki_types::pem::PemObject;
    let rest = attach_url
        .strip_prefix("rendezvous://")
        .expect("a rendezvous URL");
    let (authority, secret) = rest.split_once('/').expect("a secret");
    let (host, port) = authority.rsplit_once(':').expect("a port");
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca).unwrap();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from(host.to_owned()).unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = std::net::TcpStream::connect((host, port.parse::<u16>().unwrap())).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    tls.write_all(format!("{secret}\r\n").as_bytes()).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !needle.is_some_and(|needle| String::from_utf8_lossy(&out).contains(needle)) {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `run:detached --tail` on the real server: it prints the dyno's own lines (the platform's
/// and the app's, nothing of other dynos) as they come, last the `Process exited` line, and
/// then returns by itself, with no logs hint since the logs were shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detached_tail_follows_the_dyno_until_it_exits() {
    require_runc!();
    let server = Server::start();
    let _repo = server.deploy_echo_app("runtail").await;
    let env = server_env(&server);
    let (status, stdout, stderr) = run_piped(
        &borrowed(&env),
        &[
            "run:detached",
            "--tail",
            "-a",
            "runtail",
            "--",
            "sh",
            "-c",
            "echo tail-one; sleep 1; echo tail-two; exit 4",
        ],
        b"",
    )
    .await;
    assert!(status.success(), "{stderr}");
    let dyno = stderr
        .rsplit_once("done, ")
        .map(|(_, name)| name.trim().to_owned())
        .unwrap_or_else(|| panic!("no dyno name in {stderr:?}"));
    assert!(dyno.starts_with("run."), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let position = |needle: String| {
        lines
            .iter()
            .position(|line| line.contains(&needle))
            .unwrap_or_else(|| panic!("no {needle:?} in {stdout}"))
    };
    let started = position(format!("heroku[{dyno}]: Starting process with command"));
    let one = position(format!("app[{dyno}]: tail-one"));
    let two = position(format!("app[{dyno}]: tail-two"));
    let exited = position(format!("heroku[{dyno}]: Process exited with status 4"));
    assert!(started < one && one < two && two < exited, "{stdout}");
    assert_eq!(exited, lines.len() - 1, "{stdout}");
    assert!(
        lines
            .iter()
            .all(|line| line.contains(&format!("[{dyno}]: "))),
        "{stdout}"
    );
    assert!(!stdout.contains("to view the output"), "{stdout}");
    server.wait_for_containers("runtail.run", 0).await;
}
