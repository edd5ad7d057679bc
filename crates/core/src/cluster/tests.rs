//! The cluster's control-plane side against a real (SQLite) store and a scripted agent: a dyno
//! starts once its host reports it, logs reach its sink, a stop goes through the host, a lost
//! host's dynos are reported gone, and a new control plane adopts what hosts run.

use std::collections::BTreeMap;
use std::sync::Mutex as StdMutex;

use slipway_agent::wire::{ContainerReport, HostInfo, LogRecord, StopResult};
use slipway_runtime::{Limits, Network, Rootfs};

use super::*;

/// The server's own runtime, which only records what reaches it.
#[derive(Default)]
struct LocalRecorder {
    started: StdMutex<Vec<String>>,
}

#[async_trait::async_trait]
impl Runtime for LocalRecorder {
    async fn start(
        &self,
        spec: ContainerSpec,
        _output: OutputSink,
    ) -> Result<RunningContainer, RuntimeError> {
        self.started.lock().unwrap().push(spec.id.clone());
        let (_tx, exited) = oneshot::channel();
        Ok(RunningContainer {
            id: spec.id,
            pid: 1,
            address: None,
            exited,
        })
    }
    async fn stop(&self, _id: &str, _grace: Duration) -> Result<StopOutcome, RuntimeError> {
        Ok(StopOutcome::NotFound)
    }
    async fn list(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        Ok(Vec::new())
    }
}

struct Fixture {
    store: Arc<dyn Store>,
    dir: tempfile::TempDir,
    local: Arc<LocalRecorder>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = slipway_store::SqliteStore::open(
        &dir.path().join("slipway.db"),
        slipway_store::StoreOptions {
            lease_check_interval: Duration::from_millis(20),
            ..Default::default()
        },
    )
    .unwrap();
    Fixture {
        store,
        dir,
        local: Arc::default(),
    }
}

impl Fixture {
    fn cluster(&self, ttl: Duration) -> (Arc<Cluster>, ClusterRuntime) {
        self.cluster_with_logs(ttl, LogHub::new(100))
    }

    /// A control plane on the fixture's store whose log hub is `logs`.
    fn cluster_with_logs(&self, ttl: Duration, logs: LogHub) -> (Arc<Cluster>, ClusterRuntime) {
        let cluster = Cluster::start(
            self.store.clone(),
            self.dir.path(),
            logs,
            "token".into(),
            ttl,
        );
        let runtime = ClusterRuntime::new(self.local.clone(), cluster.clone());
        (cluster, runtime)
    }
}

fn host(name: &str) -> HostName {
    name.parse().unwrap()
}

fn sync_request(memory_mb: u64, containers: Vec<ContainerReport>) -> SyncRequest {
    SyncRequest {
        session: uuid::Uuid::nil(),
        host: HostInfo {
            memory_mb,
            dyno_subnet: "10.1.0.0/24".into(),
            address: "10.0.0.2".parse().unwrap(),
        },
        containers,
        wait_ms: 0,
    }
}

fn running(id: &str) -> ContainerReport {
    ContainerReport {
        id: id.into(),
        state: ContainerState::Running {
            pid: 42,
            address: Some("10.1.0.5".parse().unwrap()),
        },
    }
}

fn dyno(id: &str, digest: &str) -> ContainerSpec {
    ContainerSpec {
        id: id.into(),
        labels: BTreeMap::from([
            ("app".into(), "demo".into()),
            ("dyno".into(), "web.1".into()),
            ("release".into(), "2".into()),
        ]),
        app_dir: Some(PathBuf::from(format!("/data/unpacked/{digest}-20000/app"))),
        rootfs: Rootfs::Host,
        binds: Vec::new(),
        args: vec!["/bin/true".into()],
        env: Vec::new(),
        cwd: "/app".into(),
        uid: 20000,
        gid: 20000,
        hostname: id.into(),
        limits: Limits {
            memory_reservation_bytes: Some(512 * 1024 * 1024),
            ..Default::default()
        },
        network: Network::Isolated,
        allowed_host_ports: Vec::new(),
    }
}

fn collecting_sink() -> (OutputSink, Arc<StdMutex<Vec<String>>>) {
    let lines = Arc::new(StdMutex::new(Vec::new()));
    let sink_lines = lines.clone();
    let sink: OutputSink = Arc::new(move |_stream: Stream, line: &str| {
        sink_lines.lock().unwrap().push(line.to_owned());
    });
    (sink, lines)
}

/// Syncs as host `name` until it is assigned something, and returns its assignments.
async fn assignments_for(cluster: &Cluster, name: &str) -> Vec<Assignment> {
    for _ in 0..200 {
        let response = cluster
            .sync(&host(name), sync_request(4096, vec![]))
            .await
            .unwrap();
        if !response.assignments.is_empty() {
            return response.assignments;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("host {name} was never assigned anything");
}

#[tokio::test]
async fn a_dyno_starts_on_a_host_and_its_logs_and_stop_go_through_the_host() {
    let f = fixture();
    let (cluster, runtime) = f.cluster(Duration::from_secs(30));
    cluster
        .sync(&host("a"), sync_request(4096, vec![]))
        .await
        .unwrap();
    let digest = "ab".repeat(32);
    let (sink, lines) = collecting_sink();
    let starting = tokio::spawn({
        let spec = dyno("c1", &digest);
        async move { runtime.start(spec, sink).await.map(|r| (r, runtime)) }
    });
    let assigned = assignments_for(&cluster, "a").await;
    assert_eq!(assigned.len(), 1);
    assert_eq!(assigned[0].spec.id, "c1");
    // The slug travels by checksum, never as the control plane's path.
    assert_eq!(assigned[0].slug.as_deref(), Some(digest.as_str()));
    cluster
        .sync(&host("a"), sync_request(4096, vec![running("c1")]))
        .await
        .unwrap();
    let (started, runtime) = starting.await.unwrap().unwrap();
    assert_eq!(started.address, Some("10.1.0.5".parse().unwrap()));
    assert!(f.local.started.lock().unwrap().is_empty());

    cluster.ingest_logs(
        &host("a"),
        LogBatch {
            lines: vec![LogRecord {
                container: "c1".into(),
                line: "hello from a".into(),
            }],
            dropped: BTreeMap::new(),
        },
    );
    assert_eq!(*lines.lock().unwrap(), ["hello from a"]);

    let stopping = tokio::spawn(async move {
        let outcome = runtime.stop("c1", Duration::from_secs(5)).await;
        (outcome, runtime)
    });
    let order = loop {
        let response = cluster
            .sync(&host("a"), sync_request(4096, vec![running("c1")]))
            .await
            .unwrap();
        if let Some(stop) = response.assignments.first().and_then(|a| a.stop) {
            break stop;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(order.grace_ms, 5000);
    let stopped = ContainerReport {
        id: "c1".into(),
        state: ContainerState::Stopped {
            outcome: StopResult::Killed,
        },
    };
    let response = cluster
        .sync(&host("a"), sync_request(4096, vec![stopped]))
        .await
        .unwrap();
    assert!(response.assignments.is_empty(), "{response:?}");
    let (outcome, runtime) = stopping.await.unwrap();
    assert_eq!(outcome.unwrap(), StopOutcome::Killed);
    assert_eq!(started.exited.await.unwrap().signal, Some(9));
    assert!(runtime.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_lost_hosts_dynos_are_reported_gone_when_its_lease_expires() {
    let f = fixture();
    let (cluster, runtime) = f.cluster(Duration::from_millis(300));
    cluster
        .sync(&host("a"), sync_request(4096, vec![]))
        .await
        .unwrap();
    let (sink, _) = collecting_sink();
    let runtime = Arc::new(runtime);
    let starting = tokio::spawn({
        let runtime = runtime.clone();
        async move { runtime.start(dyno("c1", &"cd".repeat(32)), sink).await }
    });
    assignments_for(&cluster, "a").await;
    cluster
        .sync(&host("a"), sync_request(4096, vec![running("c1")]))
        .await
        .unwrap();
    let started = starting.await.unwrap().unwrap();
    // Host a stops syncing: once its lease expires, the dyno is gone.
    let status = tokio::time::timeout(Duration::from_secs(10), started.exited)
        .await
        .expect("the lost host's dyno is reported gone")
        .unwrap();
    assert!(!status.success());
    assert!(runtime.list().await.unwrap().is_empty());
    // A host that comes back registers anew and is assigned nothing of before.
    let response = cluster
        .sync(&host("a"), sync_request(4096, vec![running("c1")]))
        .await
        .unwrap();
    assert!(response.assignments.is_empty(), "{response:?}");
}

#[tokio::test]
async fn a_new_control_plane_adopts_what_hosts_run() {
    let f = fixture();
    let digest = "ef".repeat(32);
    {
        let (cluster, runtime) = f.cluster(Duration::from_secs(30));
        cluster
            .sync(&host("a"), sync_request(4096, vec![]))
            .await
            .unwrap();
        let (sink, _) = collecting_sink();
        let starting = tokio::spawn(async move { runtime.start(dyno("c1", &digest), sink).await });
        assignments_for(&cluster, "a").await;
        cluster
            .sync(&host("a"), sync_request(4096, vec![running("c1")]))
            .await
            .unwrap();
        starting.await.unwrap().unwrap();
    }
    let (cluster, runtime) = f.cluster(Duration::from_secs(30));
    let listed = runtime.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].running);
    assert_eq!(
        listed[0].labels.get("app").map(String::as_str),
        Some("demo")
    );
    let (sink, lines) = collecting_sink();
    let adopted = runtime.adopt("c1", sink).await.unwrap();
    assert_eq!(adopted.pid, 42);
    cluster.ingest_logs(
        &host("a"),
        LogBatch {
            lines: vec![LogRecord {
                container: "c1".into(),
                line: "still here".into(),
            }],
            dropped: BTreeMap::new(),
        },
    );
    assert_eq!(*lines.lock().unwrap(), ["still here"]);
}

/// The lines of `app`'s log in `logs`, as `process: message`.
fn app_log(logs: &LogHub, app: &str) -> Vec<String> {
    logs.recent(app, 100, &slipway_logplex::LogFilter::default())
        .iter()
        .map(|line| format!("{}: {}", line.process, line.message))
        .collect()
}

#[tokio::test]
async fn an_agent_syncing_through_another_control_plane_reaches_the_leaders_waiters() {
    // Two control planes on one store: the leader starts and stops the dyno, the agent talks
    // only to the other one, which keeps nothing of the leader's in memory.
    let f = fixture();
    let (leader_logs, other_logs) = (LogHub::new(100), LogHub::new(100));
    let (_leader, runtime) = f.cluster_with_logs(Duration::from_secs(30), leader_logs.clone());
    let (other, _) = f.cluster_with_logs(Duration::from_secs(30), other_logs.clone());
    other
        .sync(&host("a"), sync_request(4096, vec![]))
        .await
        .unwrap();
    let runtime = Arc::new(runtime);
    let (sink, lines) = collecting_sink();
    let starting = tokio::spawn({
        let runtime = runtime.clone();
        async move { runtime.start(dyno("c1", &"ab".repeat(32)), sink).await }
    });
    // The other control plane's long poll wakes when the leader assigns the host a dyno.
    let response = other
        .sync(
            &host("a"),
            SyncRequest {
                wait_ms: 1000,
                ..sync_request(4096, vec![])
            },
        )
        .await
        .unwrap();
    let response = if response.assignments.is_empty() {
        other
            .sync(&host("a"), sync_request(4096, vec![]))
            .await
            .unwrap()
    } else {
        response
    };
    assert_eq!(response.assignments.len(), 1, "{response:?}");
    other
        .sync(&host("a"), sync_request(4096, vec![running("c1")]))
        .await
        .unwrap();
    let started = tokio::time::timeout(Duration::from_secs(10), starting)
        .await
        .expect("the leader hears of the start through the store")
        .unwrap()
        .unwrap();
    assert_eq!(started.pid, 42);

    // The agent sends its batch to both control planes: each publishes it once, the leader
    // through the dyno's sink, the other by its index of the assignments.
    let batch = || LogBatch {
        lines: vec![LogRecord {
            container: "c1".into(),
            line: "hello from a".into(),
        }],
        dropped: BTreeMap::from([("c1".to_owned(), 3)]),
    };
    _leader.ingest_logs(&host("a"), batch());
    other.ingest_logs(&host("a"), batch());
    assert_eq!(*lines.lock().unwrap(), ["hello from a"]);
    let other_log = app_log(&other_logs, "demo");
    assert_eq!(other_log.len(), 2, "{other_log:?}");
    assert_eq!(other_log[0], "web.1: hello from a");
    assert!(other_log[1].contains("L10"), "{other_log:?}");

    // The dyno exits: reported through the other control plane, it reaches the leader.
    let exited = ContainerReport {
        id: "c1".into(),
        state: ContainerState::Exited {
            code: Some(3),
            signal: None,
            oom_killed: true,
        },
    };
    other
        .sync(&host("a"), sync_request(4096, vec![exited]))
        .await
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), started.exited)
        .await
        .expect("the leader hears of the exit")
        .unwrap();
    assert_eq!(status.code, Some(3));
    assert!(runtime.take_oom_kill("c1"));
    assert!(runtime.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_lost_hosts_dyno_counts_against_its_formation_until_the_fencing_margin() {
    // web=1 and its only dyno on host a; a is lost: until the margin has passed, a replacement
    // on b is refused; after it, a is fenced and the replacement goes to b.
    let f = fixture();
    let app_id = uuid::Uuid::new_v4();
    let formation = crate::model::Formation {
        id: uuid::Uuid::new_v4(),
        app_id,
        process_type: "web".into(),
        quantity: 1,
        size: "basic".into(),
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
    };
    slipway_store::json::put_json(
        f.store.as_ref(),
        &crate::model::keys::formation(app_id, "web"),
        &formation,
    )
    .await
    .unwrap();
    // c1 is web.1; c2 is web.2 (a second dyno, not a preboot replacement of web.1).
    let with_app = move |id: &str| {
        let mut spec = dyno(id, &"ab".repeat(32));
        spec.labels.insert("app_id".into(), app_id.to_string());
        if id == "c2" {
            spec.labels.insert("dyno".into(), "web.2".into());
        }
        spec
    };
    let (cluster, runtime) = f.cluster(Duration::from_millis(300));
    let runtime = Arc::new(runtime);
    cluster
        .sync(&host("a"), sync_request(4096, vec![]))
        .await
        .unwrap();
    let starting = tokio::spawn({
        let runtime = runtime.clone();
        let (sink, _) = collecting_sink();
        async move { runtime.start(with_app("c1"), sink).await }
    });
    assignments_for(&cluster, "a").await;
    cluster
        .sync(&host("a"), sync_request(4096, vec![running("c1")]))
        .await
        .unwrap();
    let started = starting.await.unwrap().unwrap();
    // A second web dyno while the first runs: over the formation.
    let (sink, _) = collecting_sink();
    let error = runtime.start(with_app("c2"), sink).await.unwrap_err();
    assert!(
        error.to_string().contains("the formation allows 1"),
        "{error}"
    );
    // Host b keeps syncing, host a stops: its lease expires.
    let keep_b = tokio::spawn({
        let cluster = cluster.clone();
        async move {
            loop {
                let _ = cluster.sync(&host("b"), sync_request(4096, vec![])).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    // The lease expired between the last read that still listed host a and the first that did
    // not; under load that window can be long, so the margin is counted from the earlier read,
    // before which the expiry cannot have happened.
    let mut last_live = tokio::time::Instant::now();
    let lost_at = loop {
        let read_at = tokio::time::Instant::now();
        let hosts = cluster.live_hosts().await.unwrap();
        if hosts.iter().all(|h| h.name != "a") {
            break tokio::time::Instant::now();
        }
        last_live = read_at;
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // Within the margin: c1 may still run on a, so c2 is refused.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (sink, _) = collecting_sink();
    let error = runtime.start(with_app("c2"), sink).await.unwrap_err();
    assert!(
        lost_at.elapsed() >= FENCE_MARGIN || error.to_string().contains("lost hosts' included"),
        "{error}"
    );
    let status = tokio::time::timeout(Duration::from_secs(10), started.exited)
        .await
        .expect("the lost host's dyno is reported gone")
        .unwrap();
    assert!(!status.success());
    assert!(
        last_live.elapsed() >= FENCE_MARGIN,
        "reported gone {:?} after the last read that listed the host, before the margin",
        last_live.elapsed()
    );
    let starting = tokio::spawn({
        let runtime = runtime.clone();
        let (sink, _) = collecting_sink();
        async move { runtime.start(with_app("c2"), sink).await }
    });
    assert_eq!(assignments_for(&cluster, "b").await[0].spec.id, "c2");
    keep_b.abort();
    starting.abort();
}

#[tokio::test]
async fn builds_and_one_off_dynos_stay_on_the_servers_runtime() {
    let f = fixture();
    let (_cluster, runtime) = f.cluster(Duration::from_secs(30));
    let mut build = dyno("build-1", &"00".repeat(32));
    build.labels.remove("release");
    let mut one_off = dyno("run-1", &"00".repeat(32));
    one_off
        .labels
        .insert(crate::dyno_spec::ONE_OFF_LABEL.into(), "true".into());
    for spec in [build, one_off] {
        let (sink, _) = collecting_sink();
        runtime.start(spec, sink).await.unwrap();
    }
    assert_eq!(*f.local.started.lock().unwrap(), ["build-1", "run-1"]);
}

#[tokio::test]
async fn no_host_no_start() {
    let f = fixture();
    let (_cluster, runtime) = f.cluster(Duration::from_secs(30));
    let (sink, _) = collecting_sink();
    let error = runtime
        .start(dyno("c1", &"00".repeat(32)), sink)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("no cluster host has 512 MB free"), "{error}");
}

#[test]
fn slug_checksums_come_only_from_unpacked_slug_dirs() {
    let digest = "ab".repeat(32);
    let dir = PathBuf::from(format!("/d/unpacked/{digest}-20000/app"));
    assert_eq!(slug_of(&dir, 20000), Some(digest.clone()));
    assert_eq!(slug_of(&dir, 20001), None);
    assert_eq!(
        slug_of(Path::new("/d/unpacked/../x-20000/app"), 20000),
        None
    );
}

#[test]
fn slug_files_are_served_only_by_checksum_and_never_through_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let slugs = dir.path().join("slugs");
    std::fs::create_dir_all(&slugs).unwrap();
    let good = "ab".repeat(32);
    let linked = "cd".repeat(32);
    std::fs::write(slugs.join(format!("{good}.tgz")), b"x").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", slugs.join(format!("{linked}.tgz"))).unwrap();
    let cluster = Cluster {
        store: fixture().store,
        slugs_dir: slugs.clone(),
        logs: LogHub::new(10),
        token: "t".into(),
        ttl: Duration::from_secs(1),
        inner: Mutex::default(),
        placing: tokio::sync::Mutex::new(()),
    };
    assert_eq!(
        cluster.slug_file(&good),
        Some(slugs.join(format!("{good}.tgz")))
    );
    assert_eq!(cluster.slug_file(&linked), None);
    assert_eq!(cluster.slug_file("../../etc/passwd"), None);
    assert!(cluster.token_matches("t"));
    assert!(!cluster.token_matches("u"));
}
