//! End to end: the dyno manager. Zero-downtime (preboot) deploys, config changes, restarts
//! and failed deploys under a steady stream of requests; re-adoption of running dynos after
//! `kill -9` of the server; restart/stop, scaling, sizes and the crash backoff.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{commit_all, repo, text, Server, ECHO_APP};

/// A web app that answers `<VERSION> <GREETING> <hostname>` after 20 ms and, on SIGTERM,
/// stops accepting and finishes its in-flight requests before exiting.
const DRAINING_APP: &str = r#"import http.server, os, signal, socket, threading, time
MARK = open("VERSION").read().strip()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(0.02)
        body = ("%s %s %s\n" % (MARK, os.environ.get("GREETING", "-"), socket.gethostname())).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class Server(http.server.ThreadingHTTPServer):
    daemon_threads = False
server = Server(("0.0.0.0", int(os.environ["PORT"])), Handler)
signal.signal(signal.SIGTERM, lambda *a: threading.Thread(target=server.shutdown).start())
print("listening", flush=True)
server.serve_forever()
server.server_close()
"#;

/// Requests sent continuously through the router by a few concurrent clients; every answer
/// that is not a 200 is kept.
struct Stream {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
    last_body: Arc<Mutex<String>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Stream {
    fn start(server: &Server, app: &str, clients: usize) -> Stream {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let last_body = Arc::new(Mutex::new(String::new()));
        let url = format!("http://127.0.0.1:{}/", server.router_port);
        let host = format!("{app}.localhost");
        let tasks = (0..clients)
            .map(|_| {
                let (stop, sent, failures, last_body) = (
                    stop.clone(),
                    sent.clone(),
                    failures.clone(),
                    last_body.clone(),
                );
                let (url, host) = (url.clone(), host.clone());
                tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    while !stop.load(Ordering::Relaxed) {
                        let result = client.get(&url).header("host", &host).send().await;
                        sent.fetch_add(1, Ordering::Relaxed);
                        match result {
                            Ok(response) => {
                                let status = response.status();
                                let body = response.text().await.unwrap_or_default();
                                if status == 200 {
                                    *last_body.lock().unwrap() = body;
                                } else {
                                    failures.lock().unwrap().push(format!("{status}: {body}"));
                                }
                            }
                            Err(error) => failures.lock().unwrap().push(error.to_string()),
                        }
                    }
                })
            })
            .collect();
        Stream {
            stop,
            sent,
            failures,
            last_body,
            tasks,
        }
    }

    fn last_body(&self) -> String {
        self.last_body.lock().unwrap().clone()
    }

    /// Waits until a successful answer satisfies `predicate`.
    async fn wait_for(&self, what: &str, server: &Server, predicate: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while !predicate(&self.last_body()) {
            assert!(
                Instant::now() < deadline,
                "never saw {what}; last answer {:?}\nfailures: {:?}\nserver log:\n{}\napp log:\n{}",
                self.last_body(),
                self.failures.lock().unwrap(),
                server.log(),
                server.logs("zero")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.expect("stream task");
        }
        let failures = self.failures.lock().unwrap().clone();
        (self.sent.load(Ordering::Relaxed), failures)
    }
}

fn hostname(body: &str) -> String {
    body.split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deploys_config_changes_restarts_and_failed_deploys_drop_no_request() {
    require_runc!();
    let server = Server::start_with(&["--boot-timeout", "5", "--stop-grace", "5"]);
    server.cli_ok(&["apps:create", "zero"]);
    let app = repo(&[
        ("Procfile", "web: python3 server.py\n"),
        ("server.py", DRAINING_APP),
        ("VERSION", "one\n"),
    ]);
    let push = server.push("zero", app.path());
    assert!(push.status.success(), "{}", text(&push));
    server.cli_ok(&["ps:scale", "web=2", "-a", "zero"]);
    server.wait_for_200("zero", "/").await;

    let stream = Stream::start(&server, "zero", 3);
    stream
        .wait_for("the first release", &server, |b| b.starts_with("one "))
        .await;

    // A deploy.
    std::fs::write(app.path().join("VERSION"), "two\n").unwrap();
    commit_all(app.path(), "two");
    let push = server.push("zero", app.path());
    assert!(push.status.success(), "{}", text(&push));
    stream
        .wait_for("the deployed release", &server, |b| b.starts_with("two -"))
        .await;

    // A config change.
    server.cli_ok(&["config:set", "GREETING=hi", "-a", "zero"]);
    stream
        .wait_for("the new config", &server, |b| b.starts_with("two hi "))
        .await;

    // A restart: every web dyno is replaced.
    let before = hostname(&stream.last_body());
    server.cli_ok(&["ps:restart", "web", "-a", "zero"]);
    let log = server
        .wait_for_log("zero", |log| log.contains("heroku[web.1]: Restarting"))
        .await;
    assert!(log.contains("heroku[web.2]: Restarting"), "{log}");
    stream
        .wait_for("a restarted dyno", &server, |b| {
            !hostname(b).is_empty() && hostname(b) != before
        })
        .await;

    // A deploy whose web process never binds $PORT: R10, and it never takes traffic.
    std::fs::write(
        app.path().join("Procfile"),
        "web: python3 -c 'import time; time.sleep(1000)'\n",
    )
    .unwrap();
    commit_all(app.path(), "broken");
    let push = server.push("zero", app.path());
    assert!(push.status.success(), "{}", text(&push));
    server
        .wait_for_log("zero", |log| {
            log.contains("Error R10 (Boot timeout) -> Web process failed to bind to $PORT within 5 seconds of launch")
        })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        stream.last_body().starts_with("two hi "),
        "the old dynos keep serving: {}",
        stream.last_body()
    );

    let (sent, failures) = stream.finish().await;
    assert!(sent > 100, "only {sent} requests were sent");
    assert!(
        failures.is_empty(),
        "{} of {sent} requests failed: {failures:?}\napp log:\n{}",
        failures.len(),
        server.logs("zero")
    );
    let log = server.logs("zero");
    for expected in [
        "heroku[web.1]: State changed from starting to up",
        "heroku[web.1]: Stopping all processes with SIGTERM",
        "heroku[web.1]: State changed from starting to crashed",
    ] {
        assert!(log.contains(expected), "the log lacks {expected:?}:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_readopts_its_running_dynos() {
    require_runc!();
    let mut server = Server::start();
    server.cli_ok(&["apps:create", "adopt"]);
    let app = repo(&[
        (
            "Procfile",
            "web: python3 server.py\nworker: while true; do echo tick $(date +%s%N); sleep 0.2; done\n",
        ),
        ("server.py", ECHO_APP),
    ]);
    let push = server.push("adopt", app.path());
    assert!(push.status.success(), "{}", text(&push));
    server.cli_ok(&["ps:scale", "web=2", "worker=1", "-a", "adopt"]);
    server.wait_for_200("adopt", "/").await;
    server
        .wait_for_log("adopt", |log| log.contains("app[worker.1]: tick"))
        .await;
    let before = server.wait_for_containers("slipway.adopt.", 3).await;
    let pids: Vec<Option<u64>> = before.iter().map(|id| server.container_pid(id)).collect();
    assert!(pids.iter().all(Option::is_some), "{pids:?}");

    server.kill9_and_restart(&[]);

    // The router serves the adopted dynos as soon as it listens.
    let body = server.wait_for_200("adopt", "/").await;
    assert!(body.starts_with("hello from web."), "{body}");
    // Their output is read again.
    server
        .wait_for_log("adopt", |log| log.contains("app[worker.1]: tick"))
        .await;
    // Give the manager a few reconcile rounds to start duplicates if it were going to.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let mut after = server.wait_for_containers("slipway.adopt.", 3).await;
    after.sort();
    let mut sorted_before = before.clone();
    sorted_before.sort();
    assert_eq!(
        after, sorted_before,
        "the same dynos, none added or removed"
    );
    let pids_after: Vec<Option<u64>> = before.iter().map(|id| server.container_pid(id)).collect();
    assert_eq!(pids, pids_after, "the same processes, not restarted");
    let ps = server.cli_ok(&["ps", "-a", "adopt"]);
    assert!(
        ps.contains("web.1: up") && ps.contains("web.2: up") && ps.contains("worker.1: up"),
        "{ps}"
    );
    assert!(
        !server.log().contains("stopping a stray"),
        "no dyno is a stray:\n{}",
        server.log()
    );

    // Adopted dynos are managed: scaling down stops the highest number, and its exit is seen.
    server.cli_ok(&["ps:scale", "web=1", "-a", "adopt"]);
    server.wait_for_containers("slipway.adopt.web.", 1).await;
    // `ps` shows web.2 `down` until the manager has seen its container exit and removed its
    // record, a moment after the container itself is gone.
    let mut ps = String::new();
    for _ in 0..50 {
        ps = server.cli_ok(&["ps", "-a", "adopt"]);
        if !ps.contains("web.2") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ps.contains("web.1: up") && !ps.contains("web.2"), "{ps}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_stop_scale_sizes_and_crash_backoff() {
    require_runc!();
    let server = Server::start_with(&["--crash-backoff", "0,3600", "--stop-grace", "5"]);
    server.cli_ok(&["apps:create", "life"]);
    let app = repo(&[
        (
            "Procfile",
            "web: python3 server.py\ncrasher: echo crashing; exit 3\n",
        ),
        ("server.py", ECHO_APP),
    ]);
    let push = server.push("life", app.path());
    assert!(push.status.success(), "{}", text(&push));
    server.wait_for_200("life", "/").await;

    // Scaling up names web.1..web.3; scaling down stops the highest numbers first.
    server.cli_ok(&["ps:scale", "web=3", "-a", "life"]);
    server.wait_for_containers("slipway.life.web.", 3).await;
    server.cli_ok(&["ps:scale", "web=1", "-a", "life"]);
    let left = server.wait_for_containers("slipway.life.web.", 1).await;
    assert!(left[0].starts_with("slipway.life.web.1."), "{left:?}");
    let log = server
        .wait_for_log("life", |log| {
            log.contains("heroku[web.3]: Stopping all processes with SIGTERM")
                && log.contains("heroku[web.2]: Stopping all processes with SIGTERM")
        })
        .await;
    assert!(!log.contains("heroku[web.1]: Stopping"), "{log}");

    // A type the release does not define cannot be scaled up.
    let output = server.cli(&["ps:scale", "clock=1", "-a", "life"]);
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("Couldn't find that process type"),
        "{}",
        text(&output)
    );

    // Sizes: the cgroup memory limit follows the dyno size.
    server.cli_ok(&["ps:scale", "web=1:standard-2x", "-a", "life"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = server.wait_for_200("life", "/env").await;
        let facts: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        // Quota 1 GiB (the soft limit); the kernel kills at twice it (R15).
        if facts["memory_quota"] == 1024 * 1024 * 1024
            && facts["memory_limit"] == 2 * 1024 * 1024 * 1024_i64
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "memory limit stays {}",
            facts["memory_limit"]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // ps:restart of one dyno replaces it; ps:stop stops it and the formation starts it again.
    let before = server.wait_for_containers("slipway.life.web.", 1).await;
    server.cli_ok(&["ps:restart", "web.1", "-a", "life"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut now = before.clone();
    while now == before {
        assert!(Instant::now() < deadline, "web.1 was not restarted");
        tokio::time::sleep(Duration::from_millis(100)).await;
        now = server
            .containers()
            .into_iter()
            .filter(|c| c.contains("slipway.life.web."))
            .collect();
    }
    server.wait_for_200("life", "/").await;
    let before = server.wait_for_containers("slipway.life.web.", 1).await;
    server.cli_ok(&["ps:stop", "web.1", "-a", "life"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now: Vec<String> = server
            .containers()
            .into_iter()
            .filter(|c| c.contains("slipway.life.web."))
            .collect();
        if now.len() == 1 && now != before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "web.1 was not stopped and started again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.wait_for_200("life", "/").await;
    let output = server.cli(&["ps:restart", "web.7", "-a", "life"]);
    assert!(
        !output.status.success(),
        "restarting a dyno that does not exist fails"
    );

    // Crash backoff: the first crash restarts at once, the second waits (an hour here).
    server.cli_ok(&["ps:scale", "crasher=1", "-a", "life"]);
    let starts = |log: &str| {
        log.matches("heroku[crasher.1]: Starting process with command")
            .count()
    };
    server
        .wait_for_log("life", |log| {
            starts(log) >= 2
                && log
                    .matches("heroku[crasher.1]: State changed from up to crashed")
                    .count()
                    >= 2
        })
        .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let log = server.logs("life");
    assert_eq!(starts(&log), 2, "no third start within the backoff:\n{log}");
    assert!(log.contains("app[crasher.1]: crashing"), "{log}");
    assert!(
        log.contains("heroku[crasher.1]: Process exited with status 3"),
        "{log}"
    );
    // A restart resets the backoff.
    server.cli_ok(&["ps:restart", "crasher", "-a", "life"]);
    server.wait_for_log("life", |log| starts(log) == 3).await;
}
