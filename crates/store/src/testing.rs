//! A throwaway etcd server for tests (feature `test-support`): Debian's `etcd` on loopback
//! with free ports and its data on tmpfs, gone when the test process ends.
//!
//! The server runs under a small `sh` guard that kills it and removes its data directory as
//! soon as the process that started it exits, so a test binary that panics or is killed
//! leaves nothing behind. Tests share one server per binary ([`shared`]) and keep apart
//! with a key namespace each ([`unique_namespace`]).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Where Debian's `etcd-server` package puts the server.
pub const ETCD_BINARY: &str = "/usr/bin/etcd";

/// A running etcd server.
pub struct EtcdServer {
    /// `127.0.0.1:PORT` of its client listener.
    pub client_addr: String,
    guard: Child,
}

impl std::fmt::Debug for EtcdServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdServer")
            .field("client_addr", &self.client_addr)
            .finish_non_exhaustive()
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        // SIGTERM lets the guard's trap kill etcd and remove its data (SIGKILL would not).
        let _ = Command::new("kill")
            .arg(self.guard.id().to_string())
            .status();
        let _ = self.guard.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free loopback port")
}

fn data_root() -> PathBuf {
    // tmpfs: etcd fsyncs every write, which tests need not pay for.
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

impl EtcdServer {
    /// Starts a single-member etcd and waits until it answers. Panics with what to install
    /// if etcd is missing: the tests that need it cannot pass without it.
    pub fn start() -> EtcdServer {
        assert!(
            Path::new(ETCD_BINARY).exists(),
            "{ETCD_BINARY} is missing: install Debian's etcd-server (apt-get install etcd-server); .ci/run does"
        );
        let client = free_port();
        let peer = free_port();
        let data = data_root().join(format!("slipway-etcd-test-{}-{client}", std::process::id()));
        let client_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        // The guard: etcd in the background, killed (and its data removed) once the test
        // process is gone or the guard itself is killed.
        let script = r#"
            etcd "$@" >"$SLIPWAY_ETCD_DATA.log" 2>&1 &
            e=$!
            trap 'kill -9 $e 2>/dev/null; wait $e 2>/dev/null; rm -rf "$SLIPWAY_ETCD_DATA" "$SLIPWAY_ETCD_DATA.log"; exit 0' TERM INT EXIT
            while kill -0 "$SLIPWAY_ETCD_OWNER" 2>/dev/null && kill -0 $e 2>/dev/null; do sleep 0.5; done
        "#;
        let guard = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("etcd-guard")
            .args([
                "--name",
                "test",
                "--data-dir",
                &data.display().to_string(),
                "--listen-client-urls",
                &client_url,
                "--advertise-client-urls",
                &client_url,
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
                "--initial-cluster",
                &format!("test={peer_url}"),
                "--max-txn-ops",
                "10000",
                "--log-level",
                "warn",
                "--logger",
                "zap",
            ])
            .env("SLIPWAY_ETCD_DATA", &data)
            .env("SLIPWAY_ETCD_OWNER", std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start sh for the etcd guard");
        let server = EtcdServer {
            client_addr: format!("127.0.0.1:{client}"),
            guard,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&server.client_addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "etcd did not listen on {} within 30 s; see {}.log",
                server.client_addr,
                data.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// The `--store` URL of this server with `namespace`.
    pub fn url(&self, namespace: &str) -> String {
        format!("etcd://{}/{namespace}", self.client_addr)
    }
}

/// One etcd server for the whole test binary, started on first use.
pub fn shared() -> &'static EtcdServer {
    static SERVER: OnceLock<EtcdServer> = OnceLock::new();
    SERVER.get_or_init(EtcdServer::start)
}

/// A namespace no other test of this run uses: `test/<name>-<pid>-<n>/`.
pub fn unique_namespace(name: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "test/{name}-{}-{}/",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
