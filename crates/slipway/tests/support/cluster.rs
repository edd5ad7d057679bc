//! The cluster harness: three etcd members on loopback (distinct ports, one data directory
//! each on tmpfs), control planes sharing them (`support::Server` with `--store`), and the
//! standalone router (`slipway router`). Every process is ended by a `Drop` guard, so a
//! failing test leaves nothing running; etcd members also die with the test process (a
//! shell guard watches it, as `slipway_store::testing` does).

#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use slipway_store::testing::ETCD_BINARY;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free loopback port")
}

/// One etcd member under its guard.
pub struct EtcdMember {
    pub name: String,
    /// `127.0.0.1:PORT` of its client listener.
    pub client_addr: String,
    guard: Option<Child>,
    log: PathBuf,
}

impl EtcdMember {
    /// Kills the member (SIGKILL: a crash, not a clean leave) and removes its data.
    pub fn kill(&mut self) {
        if let Some(mut guard) = self.guard.take() {
            // SIGTERM makes the guard SIGKILL etcd and remove its data directory.
            let _ = Command::new("kill").arg(guard.id().to_string()).status();
            let _ = guard.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for EtcdMember {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A three-member etcd cluster on loopback.
pub struct EtcdCluster {
    pub members: Vec<EtcdMember>,
}

impl EtcdCluster {
    /// Starts `count` members as one new cluster and waits until every member reports
    /// itself healthy (a leader is elected and each has joined).
    pub fn start(count: usize) -> EtcdCluster {
        assert!(
            Path::new(ETCD_BINARY).exists(),
            "{ETCD_BINARY} is missing: install Debian's etcd-server (apt-get install etcd-server); .ci/run does"
        );
        let root = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let ports: Vec<(u16, u16)> = (0..count).map(|_| (free_port(), free_port())).collect();
        let initial_cluster = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect::<Vec<_>>()
            .join(",");
        let token = format!("slipway-cluster-test-{}-{}", std::process::id(), ports[0].0);
        let script = r#"
            etcd "$@" >"$SLIPWAY_ETCD_DATA.log" 2>&1 &
            e=$!
            trap 'kill -9 $e 2>/dev/null; wait $e 2>/dev/null; rm -rf "$SLIPWAY_ETCD_DATA"; exit 0' TERM INT EXIT
            while kill -0 "$SLIPWAY_ETCD_OWNER" 2>/dev/null && kill -0 $e 2>/dev/null; do sleep 0.5; done
        "#;
        let members = ports
            .iter()
            .enumerate()
            .map(|(i, (client, peer))| {
                let name = format!("m{i}");
                let data = root.join(format!("{token}-{name}"));
                let client_url = format!("http://127.0.0.1:{client}");
                let peer_url = format!("http://127.0.0.1:{peer}");
                let guard = Command::new("sh")
                    .arg("-c")
                    .arg(script)
                    .arg("etcd-guard")
                    .args(["--name", &name, "--data-dir", &data.display().to_string()])
                    .args(["--listen-client-urls", &client_url])
                    .args(["--advertise-client-urls", &client_url])
                    .args(["--listen-peer-urls", &peer_url])
                    .args(["--initial-advertise-peer-urls", &peer_url])
                    .args(["--initial-cluster", &initial_cluster])
                    .args(["--initial-cluster-state", "new"])
                    .args(["--initial-cluster-token", &token])
                    // Deleting an app with many keys is one transaction.
                    .args(["--max-txn-ops", "10000"])
                    .args(["--log-level", "warn", "--logger", "zap"])
                    .env("SLIPWAY_ETCD_DATA", &data)
                    .env("SLIPWAY_ETCD_OWNER", std::process::id().to_string())
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start sh for an etcd guard");
                EtcdMember {
                    name,
                    client_addr: format!("127.0.0.1:{client}"),
                    guard: Some(guard),
                    log: PathBuf::from(format!("{}.log", data.display())),
                }
            })
            .collect();
        let cluster = EtcdCluster { members };
        let deadline = Instant::now() + Duration::from_secs(60);
        for member in &cluster.members {
            while !healthy(&member.client_addr) {
                assert!(
                    Instant::now() < deadline,
                    "etcd member {} never became healthy:\n{}",
                    member.name,
                    member.log()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        cluster
    }

    /// `etcd://a,b,c/<namespace>` for `slipway server --store`.
    pub fn store_url(&self, namespace: &str) -> String {
        let hosts: Vec<&str> = self
            .members
            .iter()
            .map(|m| m.client_addr.as_str())
            .collect();
        format!("etcd://{}/{namespace}", hosts.join(","))
    }

    /// The sum of a counter in every live member's `/metrics` (Prometheus text), e.g.
    /// `etcd_mvcc_txn_total`.
    pub fn counter(&self, name: &str) -> f64 {
        self.members
            .iter()
            .filter(|m| m.guard.is_some())
            .filter_map(|m| http_get(&m.client_addr, "/metrics"))
            .flat_map(|text| {
                text.lines()
                    .filter(|l| l.starts_with(name) && !l.starts_with('#'))
                    .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                    .collect::<Vec<_>>()
            })
            .sum()
    }
}

/// A plain HTTP/1.0 GET on loopback; the body, if the answer was 200.
fn http_get(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.to_owned())
        .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_owned()))
}

fn healthy(addr: &str) -> bool {
    http_get(addr, "/health").is_some_and(|body| body.contains("\"health\":\"true\""))
}

/// A `slipway router` process.
pub struct StandaloneRouter {
    child: Child,
    pub port: u16,
    log_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl StandaloneRouter {
    /// Starts `slipway router` for the control planes at `servers` with the token in
    /// `token_file`; returns once it listens.
    pub fn start(servers: &[&str], token_file: &Path) -> StandaloneRouter {
        let dir = tempfile::tempdir().expect("temp dir");
        let log_path = dir.path().join("router.log");
        let log = std::fs::File::create(&log_path).expect("router log");
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_slipway"))
            .arg("router")
            .args(["--server", &servers.join(",")])
            .arg("--token-file")
            .arg(token_file)
            .args(["--http", &format!("127.0.0.1:{port}"), "--threads", "2"])
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start slipway router");
        let mut router = StandaloneRouter {
            child,
            port,
            log_path,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = router.child.try_wait() {
                panic!("slipway router exited with {status}:\n{}", router.log());
            }
            assert!(
                Instant::now() < deadline,
                "slipway router did not start:\n{}",
                router.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        router
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// A request for `app` through this router.
    pub fn request(
        &self,
        client: &reqwest::Client,
        app: &str,
        path: &str,
    ) -> reqwest::RequestBuilder {
        client
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .header("host", format!("{app}.localhost"))
    }
}

impl Drop for StandaloneRouter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
