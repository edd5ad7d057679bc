//! End to end on etcd: `slipway server --store etcd://…` runs the whole platform on a real
//! etcd (Debian's `etcd-server`, started on loopback by the test): an app pushed with the real
//! git client is built, released and served through the router, a config change makes a new
//! release that reaches the dyno, the ledger is append-only in etcd too, and a server killed
//! with SIGKILL comes back on the same etcd and re-adopts its running dynos. Also: what a bad
//! `--store` says, and (printed, never asserted) API latency on etcd against SQLite.

mod support;

use std::time::{Duration, Instant};

use slipway_store::testing::{unique_namespace, EtcdServer};
use slipway_store::{EtcdConfig, EtcdStore, Store, StoreError};
use support::{text, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_runs_on_etcd_and_readopts_its_dynos_after_a_restart() {
    require_runc!();
    let etcd = EtcdServer::start();
    let namespace = unique_namespace("e2e");
    let store_url = etcd.url(&namespace);
    let args = ["--store", store_url.as_str()];
    let mut server = Server::start_with(&args);

    // Deploy with the real git client; served through the router.
    let app = "onetcd";
    let _repo = server.deploy_echo_app(app).await;
    let body = server.wait_for_200(app, "/").await;
    assert!(body.starts_with("hello from web.1"), "{body}");

    // A config change is a new release, and reaches the dyno.
    server.cli_ok(&["config:set", "COLOR=blue", "-a", app]);
    let env = server.wait_for_env(app, |env| env["COLOR"] == "blue").await;
    assert_eq!(env["COLOR"], "blue");
    let releases = server.api_json(&format!("/apps/{app}/releases")).await;
    let versions: Vec<i64> = releases
        .as_array()
        .expect("a list of releases")
        .iter()
        .map(|r| r["version"].as_i64().unwrap())
        .collect();
    // v1 is the deploy, v2 the config change.
    assert_eq!(versions, [1, 2], "{releases}");
    assert!(
        releases[1]["description"]
            .as_str()
            .is_some_and(|d| d.contains("COLOR")),
        "{releases}"
    );

    // The state is in etcd, under the namespace, and not in a SQLite file.
    assert!(
        !server.data_dir.join("slipway.db").exists(),
        "an etcd server must not open the embedded database"
    );
    let store = EtcdStore::connect(
        EtcdConfig::new([etcd.client_addr.clone()])
            .namespace(namespace.clone())
            .immutable_prefix("releases/")
            .immutable_prefix("slugs/"),
    )
    .await
    .unwrap();
    let (ledger, _) = store.range("releases/").await.unwrap();
    assert_eq!(
        ledger.len(),
        2,
        "one release key per release in etcd: {ledger:?}"
    );
    // The ledger is append-only on etcd too.
    let first = ledger[0].clone();
    let err = store
        .put(&first.key, b"{}".to_vec())
        .await
        .expect_err("a release cannot be overwritten");
    assert!(
        matches!(&err, StoreError::Immutable { key } if *key == first.key),
        "{err}"
    );
    assert!(store.delete(&first.key).await.is_err());
    assert_eq!(store.get(&first.key).await.unwrap(), Some(first));

    // Killed and restarted on the same etcd: the same dynos, not restarted.
    let before = server
        .wait_for_containers(&format!("slipway.{app}."), 1)
        .await;
    let pids: Vec<Option<u64>> = before.iter().map(|id| server.container_pid(id)).collect();
    assert!(pids.iter().all(Option::is_some), "{pids:?}");
    server.kill9_and_restart(&args);
    let body = server.wait_for_200(app, "/").await;
    assert!(body.starts_with("hello from web.1"), "{body}");
    // Give the manager a few reconcile rounds to start duplicates if it were going to.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = server
        .wait_for_containers(&format!("slipway.{app}."), 1)
        .await;
    assert_eq!(after, before, "the same dyno, none added or removed");
    let pids_after: Vec<Option<u64>> = before.iter().map(|id| server.container_pid(id)).collect();
    assert_eq!(pids, pids_after, "the same process, not restarted");
    let ps = server.cli_ok(&["ps", "-a", app]);
    assert!(ps.contains("web.1: up"), "{ps}");
    // And it still takes changes after the restart.
    server.cli_ok(&["config:set", "COLOR=green", "-a", app]);
    server
        .wait_for_env(app, |env| env["COLOR"] == "green")
        .await;

    // Benchmark-ready figures, printed only: the API on etcd against the embedded store, on
    // an app without dynos on both (so a config change is the store's work alone).
    let sqlite = Server::start();
    let bench = "bench";
    for (name, server) in [("etcd", &server), ("sqlite", &sqlite)] {
        server.cli_ok(&["apps:create", bench]);
        let (reads, writes) = api_latency(server, bench).await;
        eprintln!(
            "API latency on {name}: GET /apps/{bench} median {reads:?}; PATCH config-vars median {writes:?}"
        );
    }
}

/// Median latency of 30 app reads and 10 config writes through the API.
async fn api_latency(server: &Server, app: &str) -> (Duration, Duration) {
    let median = |mut samples: Vec<Duration>| {
        samples.sort();
        samples[samples.len() / 2]
    };
    let mut reads = Vec::new();
    for _ in 0..30 {
        let start = Instant::now();
        let response = server
            .api(reqwest::Method::GET, &format!("/apps/{app}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        reads.push(start.elapsed());
    }
    let mut writes = Vec::new();
    for i in 0..10 {
        let start = Instant::now();
        let response = server
            .api(reqwest::Method::PATCH, &format!("/apps/{app}/config-vars"))
            .json(&serde_json::json!({ "BENCH": i.to_string() }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        writes.push(start.elapsed());
    }
    (median(reads), median(writes))
}

/// What `slipway server` says for a store it cannot use: the reason, what to do, and never
/// the password of the URL; and it exits without serving.
#[test]
fn a_bad_store_url_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cases = [
        ("etcd://root:s3cret@127.0.0.1", "invalid store URL"),
        ("etcd://root:s3cret@127.0.0.1:0", "port"),
        ("mysql://127.0.0.1:2379", "starts with etcd://"),
        ("etcds://root:s3cret@127.0.0.1:2379", "--store-ca-file"),
        (
            &*format!("etcd://root:s3cret@127.0.0.1:{closed}"),
            "cannot reach etcd",
        ),
    ];
    for (url, expected) in cases {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_slipway"))
            .args(["server", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--api-addr", "127.0.0.1:0", "--router-addr", "127.0.0.1:0"])
            .args([
                "--router-tls-addr",
                "127.0.0.1:0",
                "--api-tls-addr",
                "127.0.0.1:0",
            ])
            .args(["--rendezvous-addr", "127.0.0.1:0", "--runtime", "process"])
            .args(["--store", url])
            .output()
            .unwrap();
        let said = text(&output);
        assert!(!output.status.success(), "{url}: {said}");
        assert!(said.contains(expected), "{url}: {said}");
        assert!(
            !said.contains("s3cret"),
            "{url} leaked its password: {said}"
        );
    }
}

/// A `slipway server` started by hand (plain-process runtime, its own data directory and
/// free loopback ports) on a shared store.
struct Replica {
    child: std::process::Child,
    api_url: String,
    data_dir: std::path::PathBuf,
    log_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Replica {
    fn start(store_url: &str) -> Replica {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let log_path = dir.path().join("server.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let api_port = port();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_slipway"));
        command
            .args(["server", "--data-dir"])
            .arg(&data_dir)
            .args(["--api-addr", &format!("127.0.0.1:{api_port}")]);
        for flag in [
            "--router-addr",
            "--router-tls-addr",
            "--api-tls-addr",
            "--rendezvous-addr",
        ] {
            command.args([flag, &format!("127.0.0.1:{}", port())]);
        }
        let child = command
            .args(["--runtime", "process", "--store", store_url])
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut replica = Replica {
            child,
            api_url: format!("http://127.0.0.1:{api_port}"),
            data_dir,
            log_path,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", api_port)).is_err() {
            if let Ok(Some(status)) = replica.child.try_wait() {
                panic!("the server exited with {status}:\n{}", replica.log());
            }
            assert!(
                Instant::now() < deadline,
                "the server did not start:\n{}",
                replica.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        replica
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn leads(&self) -> bool {
        self.log().contains("this server leads")
    }

    async fn wait_until_leading(&self, limit: Duration) -> Duration {
        let start = Instant::now();
        while !self.leads() {
            assert!(
                start.elapsed() < limit,
                "the server did not take over within {limit:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        start.elapsed()
    }

    async fn api(&self, method: reqwest::Method, path: &str, key: &str) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .request(method.clone(), format!("{}{path}", self.api_url))
            .header("accept", "application/vnd.heroku+json; version=3")
            .bearer_auth(key);
        if method == reqwest::Method::POST {
            request = request.json(&serde_json::json!({ "name": "replicated" }));
        }
        request.send().await.unwrap()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two servers on one etcd: both serve the API on the same state, only one leads the dyno
/// manager and the other singletons, and when the leader dies the other takes over within
/// 10 s (the leader lease's TTL is 5 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_one_etcd_and_the_survivor_takes_over_the_dyno_manager() {
    let etcd = EtcdServer::start();
    let store_url = etcd.url(&unique_namespace("replicas"));
    let mut first = Replica::start(&store_url);
    first.wait_until_leading(Duration::from_secs(10)).await;
    let key = std::fs::read_to_string(first.data_dir.join("admin.key"))
        .unwrap()
        .trim()
        .to_owned();
    let second = Replica::start(&store_url);
    assert!(
        !second.data_dir.join("admin.key").exists(),
        "the second server joins the existing platform: no new admin"
    );

    // Both serve the same state.
    let created = first.api(reqwest::Method::POST, "/apps", &key).await;
    assert_eq!(created.status(), 201, "{:?}", created.text().await);
    let apps: serde_json::Value = second
        .api(reqwest::Method::GET, "/apps", &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(apps.as_array().map(Vec::len), Some(1), "{apps}");

    // One leader: the second waits (a few of the first's renewals long).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(first.leads());
    assert!(!second.leads(), "two leaders:\n{}", second.log());

    // The leader dies; the survivor takes over.
    let _ = first.child.kill();
    let _ = first.child.wait();
    let failover = second.wait_until_leading(Duration::from_secs(10)).await;
    eprintln!("failover: the surviving server led {failover:?} after the leader was killed");
    let apps = second.api(reqwest::Method::GET, "/apps", &key).await;
    assert_eq!(apps.status(), 200);
}
