//! Cluster mode's control-plane side (`slipway server --cluster`): formation dynos run on
//! registered host agents (`slipway agent`) instead of the server's own runtime.
//!
//! [`Cluster`] is the state the agents' API endpoints work on: a host registers and keeps a
//! store lease by syncing (`cluster/hosts/<name>`, under a lease of [`HOST_LEASE_TTL`]); what
//! it must run is in `cluster/assignments/<host>/<container id>` (the wire spec, the slug's
//! checksum, a stop order, the last state its agent reported). [`ClusterRuntime`] implements
//! the runtime seam over it, so the dyno manager and its planner do not change: `start`
//! places the dyno (`place.rs`), writes the assignment and resolves once the agent reports it
//! running; `exited` resolves when the agent reports the exit, or when the host's lease
//! expires (the host is fenced: its assignments are released and every dyno on it reported
//! gone, so the planner replaces them elsewhere); `stop` writes a stop order and waits for the
//! agent's answer; `list` and `adopt` read the assignments, so a restarted control plane
//! adopts the dynos its hosts run. Build, release-phase and one-off containers stay on the
//! server's own runtime.
//!
//! Several control planes share one store, and any of them takes an agent's syncs: what an
//! agent reports is written to the store, and every control plane follows
//! `cluster/assignments/` with a watch (`follow_assignments`), which resolves the start, exit
//! and stop waiters of the dynos it manages (the leader's dyno manager sees states reported
//! through any control plane), wakes the long polls of the hosts whose assignments changed,
//! and keeps an index of every container's app and dyno name.
//!
//! Log lines come from agents in batches and never touch the store: an agent sends every batch
//! to every control plane it knows (each through its own bounded buffer), and each control
//! plane publishes the lines into its own log hub, through the dyno's output sink when it
//! manages the dyno, else by the index. So `logs --tail` shows dyno output on whichever control
//! plane a user asks, without control planes knowing of each other. Slugs are served to agents
//! by checksum from the server's slug directory.
//!
//! Architecture Invariant: a host's dynos are reported gone only once its lease expired, and
//! an agent stops its own dynos at two thirds of the TTL without a renewal (`slipway-agent`'s
//! `fence.rs`), so a replacement never runs beside the dyno it replaces on a lost host.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
pub use slipway_agent::wire;
use slipway_logplex::{split_long_line, LogHub, LogLine};
use slipway_model::HostName;
use slipway_runtime::{
    Attach, AttachedIo, ContainerInfo, ContainerSpec, ExitStatus, OutputSink, RunningContainer,
    Runtime, RuntimeError, StopOutcome, Stream,
};
use slipway_store::{Compare, EventKind, Op, Store, StoreError, Txn};
use tokio::sync::{oneshot, Notify};
use wire::{Assignment, ContainerState, LogBatch, StopOrder, SyncRequest, SyncResponse};

mod place;

/// A host's lease: without a sync for this long it is fenced and its dynos replaced. Short
/// enough that replacements are up within 10 s of a host's loss (the target; a dyno
/// start takes a few seconds more), long enough for two missed one-second syncs before the
/// agent fences itself (at two thirds of it).
pub const HOST_LEASE_TTL: Duration = Duration::from_secs(5);

/// How long a sync waits at most for its host's assignments to change: the agents' renewal
/// interval, well under the third of the TTL an agent may miss.
const MAX_LONG_POLL: Duration = Duration::from_secs(1);

/// How long a dyno may take to start on its host: fetching and unpacking a slug of the
/// largest size included.
const START_TIMEOUT: Duration = Duration::from_secs(180);

/// How long a stop may take beyond its grace period before the host is not waited for.
const STOP_SLACK: Duration = Duration::from_secs(30);

/// How long past its lease's expiry a lost host's dynos may still run: its agent stopped them
/// at two thirds of the TTL (a third of the TTL, 1.7 s, before the expiry, which the store
/// counts from the renewal's arrival), and a kill with no grace takes a few milliseconds; the
/// margin covers an agent whose timer fired late. Until then they count against their
/// formation (`place.rs`) and are not reported gone. Short, because a lost host's dynos must be
/// replaced within 10 s of its loss, and when it held etcd's leader the expiry itself comes
/// late (etcd's new leader gives every lease a fresh TTL): cut + about 7 s.
pub const FENCE_MARGIN: Duration = Duration::from_millis(500);

/// How long a finished container stays in the log index, for the lines its agent sends after
/// reporting its end (the log shipper and the sync run apart).
const INDEX_LINGER: Duration = Duration::from_secs(60);

/// Between attempts to follow the store when it failed.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// How often every control plane reads the hosts and assignments afresh besides its watches:
/// a watch whose etcd member was cut off says nothing until its connection is declared dead
/// (seconds of HTTP/2 keep-alive), and a lost host must be replaced within 10 s. Two prefix
/// reads a second per control plane.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

const HOSTS: &str = "cluster/hosts/";
const ASSIGNMENTS: &str = "cluster/assignments/";

fn host_key(name: &str) -> String {
    format!("{HOSTS}{name}")
}

fn assignment_key(host: &str, container: &str) -> String {
    format!("{ASSIGNMENTS}{host}/{container}")
}

/// A registered host, under its lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRecord {
    pub name: String,
    pub session: uuid::Uuid,
    pub info: wire::HostInfo,
}

/// A container assigned to a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct AssignmentRecord {
    host: String,
    assignment: Assignment,
    /// What its agent last said.
    state: Option<ContainerState>,
}

impl AssignmentRecord {
    fn app(&self) -> &str {
        self.assignment
            .spec
            .labels
            .get("app")
            .map_or("", String::as_str)
    }

    fn dyno(&self) -> &str {
        self.assignment
            .spec
            .labels
            .get("dyno")
            .map_or("", String::as_str)
    }

    fn placed(&self) -> place::Placed {
        place::Placed {
            host: self.host.clone(),
            container: self.assignment.spec.id.clone(),
            app: self.app().to_owned(),
            process_type: process_type(self.dyno()).to_owned(),
            dyno: self.dyno().to_owned(),
            memory_mb: memory_mb(self.assignment.spec.memory_reservation_bytes),
            stopping: self.assignment.stop.is_some(),
        }
    }
}

/// The host and container id of an assignment's key.
fn parse_assignment_key(key: &str) -> Option<(&str, &str)> {
    key.strip_prefix(ASSIGNMENTS)?.split_once('/')
}

fn process_type(dyno: &str) -> &str {
    dyno.split('.').next().unwrap_or(dyno)
}

fn memory_mb(bytes: Option<u64>) -> u64 {
    bytes.map_or(0, |b| b.div_ceil(1024 * 1024))
}

/// Why the cluster refused an agent's request.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("the store failed while {action}: {source}")]
    Store {
        action: &'static str,
        #[source]
        source: StoreError,
    },
}

fn store_error(action: &'static str) -> impl FnOnce(StoreError) -> ClusterError {
    move |source| ClusterError::Store { action, source }
}

/// A started container's pid and address on its host, or why it did not start.
type Started = Result<(u32, Option<IpAddr>), String>;

/// What the control plane's tasks wait for about one container.
#[derive(Default)]
struct Waiters {
    /// The container's app, for the lines about it (L10).
    app: String,
    output: Option<OutputSink>,
    started: Option<oneshot::Sender<Started>>,
    exited: Option<oneshot::Sender<ExitStatus>>,
    stopped: Vec<oneshot::Sender<StopOutcome>>,
    /// Its assignment exists (it was created, or adopted): if the store no longer has it, the
    /// container is gone. Until then a missing assignment is one being created.
    assigned: bool,
}

/// A container in the log index: whose output its lines are.
struct Indexed {
    app: String,
    dyno: String,
    /// When its assignment went; it is forgotten [`INDEX_LINGER`] later.
    gone: Option<tokio::time::Instant>,
}

#[derive(Default)]
struct Inner {
    waiters: HashMap<String, Waiters>,
    oom_killed: HashSet<String>,
    /// Woken when a host's assignments change (its long poll answers).
    notify: HashMap<String, Arc<Notify>>,
    /// Every assigned container's app and dyno, from the watch on the assignments.
    index: HashMap<String, Indexed>,
    /// When this control plane saw each lost host's lease expire, until its assignments are
    /// released.
    lost: HashMap<String, tokio::time::Instant>,
}

/// The cluster's state on one control plane (see the module doc).
pub struct Cluster {
    store: Arc<dyn Store>,
    slugs_dir: PathBuf,
    logs: LogHub,
    token: String,
    ttl: Duration,
    inner: Mutex<Inner>,
    /// Held from reading the placements to writing the new one, so dynos started together
    /// see each other's placement (only the leader places: a local lock is enough).
    placing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("slugs_dir", &self.slugs_dir)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// The cluster of a control plane whose data directory is `data_dir` (slugs under
    /// `slugs/`), accepting agents that present `token`. Starts the task that fences hosts
    /// whose leases expire.
    pub fn start(
        store: Arc<dyn Store>,
        data_dir: &Path,
        logs: LogHub,
        token: String,
        ttl: Duration,
    ) -> Arc<Cluster> {
        let cluster = Arc::new(Cluster {
            store,
            slugs_dir: data_dir.join("slugs"),
            logs,
            token,
            ttl,
            inner: Mutex::new(Inner::default()),
            placing: tokio::sync::Mutex::new(()),
        });
        tokio::spawn(fence_lost_hosts(Arc::downgrade(&cluster)));
        tokio::spawn(follow_assignments(Arc::downgrade(&cluster)));
        cluster
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .expect("the cluster's lock is never poisoned: no code panics holding it")
    }

    fn notify(&self, host: &str) -> Arc<Notify> {
        self.inner()
            .notify
            .entry(host.to_owned())
            .or_default()
            .clone()
    }

    /// Whether `presented` is the cluster token (compared in constant time).
    pub fn token_matches(&self, presented: &str) -> bool {
        crate::secrets_match(presented, &self.token)
    }

    /// The slug file an agent asked for by checksum, if the server has it (a regular file:
    /// never a link).
    pub fn slug_file(&self, digest: &str) -> Option<PathBuf> {
        if !wire::is_slug_digest(digest) {
            return None;
        }
        let path = self.slugs_dir.join(format!("{digest}.tgz"));
        let meta = std::fs::symlink_metadata(&path).ok()?;
        meta.file_type().is_file().then_some(path)
    }

    /// One agent sync: renews (or takes) the host's lease, records what it reports, and
    /// answers with its assignments, waiting up to the request's `wait_ms` for a change when
    /// there is nothing for the agent to do.
    pub async fn sync(
        &self,
        name: &HostName,
        request: SyncRequest,
    ) -> Result<SyncResponse, ClusterError> {
        let name = name.as_str();
        self.renew(name, &request).await?;
        let notify = self.notify(name);
        // Registered before the reports are applied and the assignments read, so a change
        // made after the read wakes the long poll below.
        let changed = notify.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let mut assignments = self.assignments_of(name).await?;
        let reported: HashMap<&str, &ContainerState> = request
            .containers
            .iter()
            .map(|r| (r.id.as_str(), &r.state))
            .collect();
        for (key, record) in &mut assignments {
            let Some(state) = reported.get(record.assignment.spec.id.as_str()) else {
                continue;
            };
            if record.state.as_ref() != Some(*state) {
                tracing::debug!(host = name, container = %record.assignment.spec.id, ?state, "container state reported");
                self.record_state(key, record, (*state).clone()).await?;
            }
        }
        assignments.retain(|(_, r)| !r.state.as_ref().is_some_and(ContainerState::is_final));
        let idle = assignments.iter().all(|(_, record)| {
            let state = reported.get(record.assignment.spec.id.as_str());
            state.is_some()
                && (record.assignment.stop.is_none() || state.is_some_and(|s| s.is_final()))
        });
        let wait = Duration::from_millis(request.wait_ms).min(MAX_LONG_POLL);
        if idle && !wait.is_zero() && tokio::time::timeout(wait, changed).await.is_ok() {
            assignments = self.assignments_of(name).await?;
            assignments.retain(|(_, r)| !r.state.as_ref().is_some_and(ContainerState::is_final));
        }
        Ok(SyncResponse {
            lease_ttl_ms: u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX),
            assignments: assignments.into_iter().map(|(_, r)| r.assignment).collect(),
        })
    }

    /// Keeps the host's lease, or registers it anew under a new one.
    async fn renew(&self, name: &str, request: &SyncRequest) -> Result<(), ClusterError> {
        let key = host_key(name);
        let record = HostRecord {
            name: name.to_owned(),
            session: request.session,
            info: request.host.clone(),
        };
        let existing = self
            .store
            .get(&key)
            .await
            .map_err(store_error("reading a host"))?;
        if let Some(kv) = existing {
            if let Some(lease) = kv.lease {
                match self.store.keep_alive(lease).await {
                    Ok(()) => {
                        if kv.json::<HostRecord>().ok().as_ref() != Some(&record) {
                            let txn = Txn {
                                compares: vec![Compare::mod_revision(&key, kv.mod_revision)],
                                success: vec![Op::put_with_lease(
                                    &key,
                                    serde_json::to_vec(&record).unwrap_or_default(),
                                    lease,
                                )],
                                failure: vec![],
                            };
                            self.store
                                .txn(txn)
                                .await
                                .map_err(store_error("updating a host"))?;
                        }
                        return Ok(());
                    }
                    Err(StoreError::LeaseNotFound { .. }) => {}
                    Err(source) => {
                        return Err(ClusterError::Store {
                            action: "renewing a host's lease",
                            source,
                        })
                    }
                }
            }
        }
        let lease = self
            .store
            .grant_lease(self.ttl)
            .await
            .map_err(store_error("granting a host's lease"))?;
        self.store
            .txn(Txn {
                compares: vec![],
                success: vec![Op::put_with_lease(
                    &key,
                    serde_json::to_vec(&record).unwrap_or_default(),
                    lease,
                )],
                failure: vec![],
            })
            .await
            .map_err(store_error("registering a host"))?;
        tracing::info!(host = name, address = %request.host.address, memory_mb = request.host.memory_mb, "host registered");
        Ok(())
    }

    async fn assignments_of(
        &self,
        host: &str,
    ) -> Result<Vec<(String, AssignmentRecord)>, ClusterError> {
        let (kvs, _) = self
            .store
            .range(&format!("{ASSIGNMENTS}{host}/"))
            .await
            .map_err(store_error("reading a host's assignments"))?;
        Ok(kvs
            .into_iter()
            .filter_map(|kv| kv.json::<AssignmentRecord>().ok().map(|r| (kv.key, r)))
            .collect())
    }

    async fn all_assignments(&self) -> Result<Vec<(String, AssignmentRecord)>, StoreError> {
        let (kvs, _) = self.store.range(ASSIGNMENTS).await?;
        Ok(kvs
            .into_iter()
            .filter_map(|kv| kv.json::<AssignmentRecord>().ok().map(|r| (kv.key, r)))
            .collect())
    }

    async fn live_hosts(&self) -> Result<Vec<HostRecord>, StoreError> {
        let (kvs, _) = self.store.range(HOSTS).await?;
        Ok(kvs
            .into_iter()
            .filter_map(|kv| kv.json::<HostRecord>().ok())
            .collect())
    }

    /// What an agent reported about an assigned container, recorded in the store. Whoever
    /// waits for it, on any control plane, hears of it through the watch
    /// (`follow_assignments`). A final state is written, then the assignment released.
    async fn record_state(
        &self,
        key: &str,
        record: &mut AssignmentRecord,
        state: ContainerState,
    ) -> Result<(), ClusterError> {
        let last = state.is_final();
        record.state = Some(state);
        slipway_store::json::put_json(self.store.as_ref(), key, record)
            .await
            .map_err(store_error("recording a container's state"))?;
        if last {
            self.store
                .delete(key)
                .await
                .map_err(store_error("releasing an assignment"))?;
        }
        Ok(())
    }

    /// An assignment changed (`record`) or went (`None`): the host's long poll wakes, the
    /// log index follows, and this control plane's waiters for the container hear of it.
    fn observe(&self, key: &str, record: Option<AssignmentRecord>) {
        let Some((host, id)) = parse_assignment_key(key) else {
            return;
        };
        let mut inner = self.inner();
        if let Some(notify) = inner.notify.get(host) {
            notify.notify_waiters();
        }
        let Some(record) = record else {
            let now = tokio::time::Instant::now();
            if let Some(indexed) = inner.index.get_mut(id) {
                indexed.gone.get_or_insert(now);
            }
            inner.index.retain(|_, i| {
                i.gone
                    .is_none_or(|at| now.duration_since(at) < INDEX_LINGER)
            });
            if let Some(waiters) = inner.waiters.remove(id) {
                drop(inner);
                let gone = ContainerState::Stopped {
                    outcome: wire::StopResult::NotFound,
                };
                resolve(waiters, Err(format!("its host {host} was lost")), &gone);
            }
            return;
        };
        inner.index.insert(
            id.to_owned(),
            Indexed {
                app: record.app().to_owned(),
                dyno: record.dyno().to_owned(),
                gone: None,
            },
        );
        let Some(state) = record.state else {
            return;
        };
        match &state {
            ContainerState::Running { pid, address } => {
                if let Some(started) = inner.waiters.get_mut(id).and_then(|w| w.started.take()) {
                    let _ = started.send(Ok((*pid, *address)));
                }
            }
            ContainerState::Failed { reason } => {
                if let Some(waiters) = inner.waiters.remove(id) {
                    drop(inner);
                    resolve(waiters, Err(reason.clone()), &state);
                }
            }
            final_state if final_state.is_final() => {
                if let Some(waiters) = inner.waiters.remove(id) {
                    if let ContainerState::Exited {
                        oom_killed: true, ..
                    } = state
                    {
                        inner.oom_killed.insert(id.to_owned());
                    }
                    drop(inner);
                    resolve(
                        waiters,
                        Err("the container ended while starting".into()),
                        &state,
                    );
                }
            }
            _ => {}
        }
    }

    /// After a fresh read of every assignment (at start, or after the watch broke): the
    /// index is rebuilt, and each waiter hears of its container's state, or of its end when
    /// its assignment is gone.
    fn reconcile(&self, records: Vec<(String, AssignmentRecord)>) {
        let present: HashSet<String> = records
            .iter()
            .map(|(_, r)| r.assignment.spec.id.clone())
            .collect();
        let missing: Vec<String> = self
            .inner()
            .waiters
            .iter()
            .filter(|(id, w)| w.assigned && !present.contains(*id))
            .map(|(id, _)| id.clone())
            .collect();
        for id in missing {
            self.observe(&assignment_key("(unknown)", &id), None);
        }
        for (key, record) in records {
            self.observe(&key, Some(record));
        }
    }

    /// Log lines from host `name`'s containers, into their dynos' streams: through the output
    /// sink of a dyno this control plane manages, else as the dyno's lines by the index (the
    /// same lines: the dyno manager's sink is `dyno_output`). A container this control plane
    /// does not know (yet) loses its lines here; the other control planes have them.
    pub fn ingest_logs(&self, name: &HostName, batch: LogBatch) {
        let mut sinks: HashMap<String, Option<OutputSink>> = HashMap::new();
        for record in batch.lines {
            let sink = sinks.entry(record.container.clone()).or_insert_with(|| {
                let inner = self.inner();
                match inner
                    .waiters
                    .get(&record.container)
                    .and_then(|w| w.output.clone())
                {
                    Some(output) => Some(output),
                    // A dyno this process's dyno manager does not wait on: the leader's
                    // manager does, elsewhere, and its copy of the batch goes to the drains.
                    // Here the lines go to history and tails only, so a drain gets each once.
                    None => inner.index.get(&record.container).map(|indexed| {
                        let (logs, app, dyno) =
                            (self.logs.clone(), indexed.app.clone(), indexed.dyno.clone());
                        let sink: OutputSink = Arc::new(move |_stream: Stream, line: &str| {
                            logs.publish_without_drains(&app, LogLine::app(dyno.clone(), line));
                        });
                        sink
                    }),
                }
            });
            if let Some(output) = sink {
                for part in split_long_line(&record.line) {
                    output(Stream::Stdout, part);
                }
            }
        }
        for (container, dropped) in batch.dropped {
            tracing::warn!(
                host = name.as_str(),
                container,
                dropped,
                "an agent dropped log lines"
            );
            self.publish_dropped(&container, dropped);
        }
    }

    /// Logplex's L10 for lines an agent's buffer dropped, in the container's app's stream.
    fn publish_dropped(&self, container: &str, dropped: u64) {
        let app = {
            let inner = self.inner();
            match inner.waiters.get(container) {
                Some(waiters) => Some(waiters.app.clone()),
                None => inner.index.get(container).map(|i| i.app.clone()),
            }
        };
        let Some(app) = app else {
            return;
        };
        self.logs.publish(
            &app,
            LogLine::heroku(
                "logplex",
                format!("Error L10 (output buffer overflow): {dropped} messages dropped on the dyno's host"),
            ),
        );
    }

    /// Fences every host that holds assignments made before `revision` but no registration
    /// (its lease expired while no watch told this control plane), unless already fencing it.
    async fn fence_orphans(self: &Arc<Self>, revision: slipway_store::Revision) {
        let (Ok(live), Ok(assigned)) = (self.live_hosts().await, self.all_assignments().await)
        else {
            return;
        };
        let live: HashSet<String> = live.into_iter().map(|h| h.name).collect();
        let orphans: HashSet<String> = assigned
            .into_iter()
            .map(|(_, r)| r.host)
            .filter(|host| !live.contains(host))
            .collect();
        for host in orphans {
            if self.inner().lost.contains_key(&host) {
                continue;
            }
            let cluster = self.clone();
            tokio::spawn(async move { cluster.fence(&host, revision + 1).await });
        }
    }

    /// Fences host `name`, whose lease is gone: once its dynos may no longer run (the
    /// [`FENCE_MARGIN`] past the expiry), releases its assignments made before `revision`; the
    /// watch then reports each of its dynos gone to whoever waits for it, and the planner
    /// replaces them. Every control plane fences (deleting twice is harmless), so a lost host
    /// is fenced whichever of them leads.
    async fn fence(&self, name: &str, revision: slipway_store::Revision) {
        self.inner()
            .lost
            .entry(name.to_owned())
            .or_insert_with(tokio::time::Instant::now);
        tracing::info!(
            host = name,
            margin = ?FENCE_MARGIN,
            "host lease expired: fencing it once its agent has stopped its dynos"
        );
        tokio::time::sleep(FENCE_MARGIN).await;
        let prefix = format!("{ASSIGNMENTS}{name}/");
        let read = tokio::time::timeout(SWEEP_EVERY, self.store.range(&prefix));
        let kvs = match read.await {
            Ok(Ok((kvs, _))) => kvs,
            failed => {
                // The next sweep fences it again (it is no longer marked as being fenced).
                let error = failed.map_or_else(
                    |_| "no answer in time".to_owned(),
                    |r| r.err().map(|e| e.to_string()).unwrap_or_default(),
                );
                tracing::error!(%error, host = name, "cannot read a lost host's assignments");
                self.inner().lost.remove(name);
                return;
            }
        };
        let mut lost = 0;
        for kv in kvs.into_iter().filter(|kv| kv.create_revision < revision) {
            match tokio::time::timeout(SWEEP_EVERY, self.store.delete(&kv.key)).await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => {
                    tracing::error!(%error, key = kv.key, "cannot release a lost host's assignment");
                    continue;
                }
                Err(_) => {
                    tracing::error!(
                        key = kv.key,
                        "releasing a lost host's assignment did not answer in time"
                    );
                    continue;
                }
            }
            lost += 1;
        }
        self.inner().lost.remove(name);
        if lost > 0 {
            tracing::warn!(
                host = name,
                dynos = lost,
                "host lost (its lease expired): its dynos are replaced elsewhere"
            );
        }
    }

    /// Places and assigns `spec` (whose slug is `slug`), then waits for its agent.
    async fn start_dyno(
        &self,
        spec: ContainerSpec,
        slug: Option<String>,
        output: OutputSink,
    ) -> Result<RunningContainer, RuntimeError> {
        let id = spec.id.clone();
        let invalid = |reason: String| RuntimeError::InvalidSpec {
            id: id.clone(),
            reason,
        };
        let wire_spec = wire::Spec::from_container(&spec).map_err(|e| invalid(e.to_string()))?;
        let store_failed = |e: StoreError| invalid(format!("the cluster's state: {e}"));
        let placing = self.placing.lock().await;
        let hosts = self.live_hosts().await.map_err(store_failed)?;
        let assignments = self.all_assignments().await.map_err(store_failed)?;
        let process = process_type(spec.labels.get("dyno").map_or("", String::as_str));
        let formation = self
            .formation_quantity(&spec, process)
            .await
            .map_err(store_failed)?;
        let request = place::Request {
            container: id.clone(),
            app: spec.labels.get("app").cloned().unwrap_or_default(),
            process_type: process.to_owned(),
            dyno: spec.labels.get("dyno").cloned().unwrap_or_default(),
            memory_mb: memory_mb(spec.limits.memory_reservation_bytes),
            formation,
        };
        let candidates: Vec<place::Host> = hosts
            .iter()
            .map(|h| place::Host {
                name: h.name.clone(),
                memory_mb: h.info.memory_mb,
            })
            .collect();
        let placed: Vec<place::Placed> = assignments.iter().map(|(_, r)| r.placed()).collect();
        let lost = self
            .inner()
            .lost
            .iter()
            .map(|(host, at)| (host.clone(), at.elapsed()))
            .collect();
        let fleet = place::Fleet {
            hosts: &candidates,
            lost,
            margin: FENCE_MARGIN,
        };
        let host = match place::place(&fleet, &placed, &request) {
            Ok(host) => host,
            Err(place::Refusal::AlreadyPlaced { .. }) => {
                return Err(RuntimeError::AlreadyExists { id });
            }
            Err(refusal) => return Err(invalid(refusal.to_string())),
        };
        let (started_tx, started_rx) = oneshot::channel();
        let (exited_tx, exited_rx) = oneshot::channel();
        self.inner().waiters.insert(
            id.clone(),
            Waiters {
                app: request.app.clone(),
                output: Some(output),
                started: Some(started_tx),
                exited: Some(exited_tx),
                stopped: Vec::new(),
                assigned: false,
            },
        );
        let key = assignment_key(&host, &id);
        let record = AssignmentRecord {
            host: host.clone(),
            assignment: Assignment {
                spec: wire_spec,
                slug,
                stop: None,
            },
            state: None,
        };
        let created = self
            .store
            .txn(Txn {
                compares: vec![Compare::Absent { key: key.clone() }],
                success: vec![Op::put(
                    &key,
                    serde_json::to_vec(&record).unwrap_or_default(),
                )],
                failure: vec![],
            })
            .await;
        drop(placing);
        if !matches!(created, Ok(ref r) if r.succeeded) {
            self.inner().waiters.remove(&id);
            return Err(RuntimeError::AlreadyExists { id });
        }
        if let Some(waiters) = self.inner().waiters.get_mut(&id) {
            waiters.assigned = true;
        }
        tracing::info!(container = %id, host, "dyno placed");
        self.notify(&host).notify_waiters();
        let started = tokio::time::timeout(START_TIMEOUT, started_rx).await;
        match started {
            Ok(Ok(Ok((pid, address)))) => Ok(RunningContainer {
                id,
                pid,
                address,
                exited: exited_rx,
            }),
            Ok(Ok(Err(reason))) => Err(invalid(format!("on host {host}: {reason}"))),
            Ok(Err(_)) => Err(invalid(format!("host {host} did not start it"))),
            Err(_) => {
                // Not up in time: the host is asked to stop it, and the start fails.
                let _ = self.order_stop(&host, &key, Duration::ZERO).await;
                Err(invalid(format!(
                    "host {host} did not start it within {} s",
                    START_TIMEOUT.as_secs()
                )))
            }
        }
    }

    /// The formation quantity of `spec`'s process type, from the store (`None` when the spec
    /// names no app id or the formation is gone: no cap then).
    async fn formation_quantity(
        &self,
        spec: &ContainerSpec,
        process: &str,
    ) -> Result<Option<u32>, StoreError> {
        let Some(app_id) = spec
            .labels
            .get("app_id")
            .and_then(|id| id.parse::<uuid::Uuid>().ok())
        else {
            return Ok(None);
        };
        let kv = self
            .store
            .get(&crate::model::keys::formation(app_id, process))
            .await?;
        Ok(kv
            .and_then(|kv| kv.json::<crate::model::Formation>().ok())
            .map(|formation| formation.quantity))
    }

    async fn find(&self, id: &str) -> Option<(String, AssignmentRecord)> {
        let assignments = self.all_assignments().await.ok()?;
        assignments
            .into_iter()
            .find(|(_, r)| r.assignment.spec.id == id)
    }

    async fn order_stop(&self, host: &str, key: &str, grace: Duration) -> Result<(), StoreError> {
        let Some(kv) = self.store.get(key).await? else {
            return Ok(());
        };
        let Ok(mut record) = kv.json::<AssignmentRecord>() else {
            return Ok(());
        };
        record.assignment.stop = Some(StopOrder {
            grace_ms: u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
        });
        self.store
            .txn(Txn {
                compares: vec![Compare::mod_revision(key, kv.mod_revision)],
                success: vec![Op::put(
                    key,
                    serde_json::to_vec(&record).unwrap_or_default(),
                )],
                failure: vec![],
            })
            .await?;
        self.notify(host).notify_waiters();
        Ok(())
    }

    async fn stop(&self, host: &str, key: &str, id: &str, grace: Duration) -> StopOutcome {
        let (tx, rx) = oneshot::channel();
        {
            let mut inner = self.inner();
            let waiters = inner.waiters.entry(id.to_owned()).or_default();
            waiters.stopped.push(tx);
            waiters.assigned = true;
        }
        if let Err(error) = self.order_stop(host, key, grace).await {
            tracing::error!(%error, container = id, "could not order a dyno's stop");
        }
        match tokio::time::timeout(grace + STOP_SLACK, rx).await {
            Ok(Ok(outcome)) => outcome,
            _ => {
                tracing::warn!(
                    container = id,
                    host,
                    "the host did not confirm a dyno's stop"
                );
                StopOutcome::NotFound
            }
        }
    }
}

/// Tells a container's waiters how it ended.
fn resolve(waiters: Waiters, start_error: Result<(), String>, state: &ContainerState) {
    if let (Some(started), Err(reason)) = (waiters.started, start_error) {
        let _ = started.send(Err(reason));
    }
    let status = state.exit_status().unwrap_or(ExitStatus {
        code: None,
        signal: Some(9),
    });
    if let Some(exited) = waiters.exited {
        let _ = exited.send(status);
    }
    let outcome = match state {
        ContainerState::Stopped { outcome } => StopOutcome::from(*outcome),
        _ => StopOutcome::Terminated,
    };
    for stopped in waiters.stopped {
        let _ = stopped.send(outcome);
    }
}

/// Watches host registrations and fences each host whose key goes (its lease expired), and
/// every [`SWEEP_EVERY`] (and at start) the hosts that hold assignments but no registration:
/// a watch whose etcd member was cut off stays silent until its connection is declared dead,
/// long after the host's dynos should have been replaced.
async fn fence_lost_hosts(cluster: std::sync::Weak<Cluster>) {
    loop {
        let Some(this) = cluster.upgrade() else {
            return;
        };
        let revision = match this.store.current_revision().await {
            Ok(revision) => revision,
            Err(error) => {
                tracing::error!(%error, "cannot read the store's revision to watch hosts");
                drop(this);
                tokio::time::sleep(STORE_RETRY).await;
                continue;
            }
        };
        this.fence_orphans(revision).await;
        let mut watcher = match this.store.watch(HOSTS, Some(revision)).await {
            Ok(watcher) => watcher,
            Err(error) => {
                tracing::error!(%error, "cannot watch hosts");
                drop(this);
                tokio::time::sleep(STORE_RETRY).await;
                continue;
            }
        };
        drop(this);
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        sweep.tick().await;
        loop {
            tokio::select! {
                event = watcher.next() => {
                    let Some(Ok(event)) = event else { break };
                    if event.kind != EventKind::Delete {
                        continue;
                    }
                    let Some(cluster) = cluster.upgrade() else {
                        return;
                    };
                    if let Some(name) = event.kv.key.strip_prefix(HOSTS) {
                        let (name, revision) = (name.to_owned(), event.kv.mod_revision);
                        tokio::spawn(async move { cluster.fence(&name, revision).await });
                    }
                }
                _ = sweep.tick() => {
                    let Some(this) = cluster.upgrade() else {
                        return;
                    };
                    // Bounded: a read sent to an etcd member just cut off hangs until its
                    // connection is declared dead; the next sweep goes to another member.
                    let sweep = async {
                        if let Ok(revision) = this.store.current_revision().await {
                            this.fence_orphans(revision).await;
                        }
                    };
                    let _ = tokio::time::timeout(SWEEP_EVERY, sweep).await;
                }
            }
        }
    }
}

/// Follows `cluster/assignments/` for this control plane (see [`Cluster::observe`]): a read of
/// everything, then a watch from its revision, and a fresh read every [`SWEEP_EVERY`] besides
/// (a watch on a cut-off etcd member is silent, not broken); when the watch breaks, again.
async fn follow_assignments(cluster: std::sync::Weak<Cluster>) {
    loop {
        let Some(this) = cluster.upgrade() else {
            return;
        };
        let (kvs, revision) = match this.store.range(ASSIGNMENTS).await {
            Ok(read) => read,
            Err(error) => {
                tracing::error!(%error, "cannot read the cluster's assignments");
                drop(this);
                tokio::time::sleep(STORE_RETRY).await;
                continue;
            }
        };
        let mut watcher = match this.store.watch(ASSIGNMENTS, Some(revision)).await {
            Ok(watcher) => watcher,
            Err(error) => {
                tracing::error!(%error, "cannot watch the cluster's assignments");
                drop(this);
                tokio::time::sleep(STORE_RETRY).await;
                continue;
            }
        };
        this.reconcile(records_of(kvs));
        drop(this);
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        sweep.tick().await;
        loop {
            tokio::select! {
                event = watcher.next() => {
                    let Some(Ok(event)) = event else { break };
                    let Some(this) = cluster.upgrade() else {
                        return;
                    };
                    let record = match event.kind {
                        EventKind::Put => event.kv.json::<AssignmentRecord>().ok(),
                        EventKind::Delete => None,
                    };
                    this.observe(&event.kv.key, record);
                }
                _ = sweep.tick() => {
                    let Some(this) = cluster.upgrade() else {
                        return;
                    };
                    // Bounded, as the hosts' sweep is.
                    let read = tokio::time::timeout(SWEEP_EVERY, this.store.range(ASSIGNMENTS));
                    if let Ok(Ok((kvs, _))) = read.await {
                        this.reconcile(records_of(kvs));
                    }
                }
            }
        }
    }
}

fn records_of(kvs: Vec<slipway_store::KeyValue>) -> Vec<(String, AssignmentRecord)> {
    kvs.into_iter()
        .filter_map(|kv| kv.json::<AssignmentRecord>().ok().map(|r| (kv.key, r)))
        .collect()
}

/// The runtime of a control plane in cluster mode: formation dynos on the cluster's hosts,
/// everything else (builds, release phase, one-off dynos) on the server's own runtime.
pub struct ClusterRuntime {
    local: Arc<dyn Runtime>,
    cluster: Arc<Cluster>,
}

impl ClusterRuntime {
    pub fn new(local: Arc<dyn Runtime>, cluster: Arc<Cluster>) -> ClusterRuntime {
        ClusterRuntime { local, cluster }
    }
}

/// Whether `spec` is a formation dyno's (a release's, not a one-off, nothing bound from the
/// control plane's disk): those run on the hosts.
fn runs_on_hosts(spec: &ContainerSpec) -> bool {
    spec.labels.contains_key("app")
        && spec.labels.contains_key("release")
        && !spec.labels.contains_key(crate::dyno_spec::ONE_OFF_LABEL)
        && spec.binds.is_empty()
}

/// The slug checksum of an unpacked slug's directory (`…/unpacked/<digest>-<uid>/app`).
fn slug_of(app_dir: &Path, uid: u32) -> Option<String> {
    let parent = app_dir.parent()?.file_name()?.to_str()?;
    let digest = parent.strip_suffix(&format!("-{uid}"))?;
    wire::is_slug_digest(digest).then(|| digest.to_owned())
}

#[async_trait::async_trait]
impl Runtime for ClusterRuntime {
    async fn start(
        &self,
        spec: ContainerSpec,
        output: OutputSink,
    ) -> Result<RunningContainer, RuntimeError> {
        if !runs_on_hosts(&spec) {
            return self.local.start(spec, output).await;
        }
        let slug = match &spec.app_dir {
            None => None,
            Some(dir) => Some(
                slug_of(dir, spec.uid).ok_or_else(|| RuntimeError::InvalidSpec {
                    id: spec.id.clone(),
                    reason: "its /app is not an unpacked slug, which hosts fetch by checksum"
                        .into(),
                })?,
            ),
        };
        self.cluster.start_dyno(spec, slug, output).await
    }

    async fn start_attached(
        &self,
        spec: ContainerSpec,
        attach: Attach,
    ) -> Result<(RunningContainer, AttachedIo), RuntimeError> {
        self.local.start_attached(spec, attach).await
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<StopOutcome, RuntimeError> {
        match self.cluster.find(id).await {
            Some((key, record)) => Ok(self.cluster.stop(&record.host, &key, id, grace).await),
            None => self.local.stop(id, grace).await,
        }
    }

    async fn list(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let mut containers = self.local.list().await?;
        let assignments =
            self.cluster
                .all_assignments()
                .await
                .map_err(|e| RuntimeError::InvalidSpec {
                    id: "cluster".into(),
                    reason: format!("the cluster's state: {e}"),
                })?;
        for (_, record) in assignments {
            let (pid, address, running) = match record.state {
                Some(ContainerState::Running { pid, address }) => (Some(pid), address, true),
                _ => (None, None, false),
            };
            containers.push(ContainerInfo {
                id: record.assignment.spec.id.clone(),
                pid,
                running,
                labels: record.assignment.spec.labels.clone(),
                address,
            });
        }
        Ok(containers)
    }

    async fn adopt(&self, id: &str, output: OutputSink) -> Result<RunningContainer, RuntimeError> {
        let Some((_, record)) = self.cluster.find(id).await else {
            return self.local.adopt(id, output).await;
        };
        let Some(ContainerState::Running { pid, address }) = record.state else {
            return Err(RuntimeError::InvalidSpec {
                id: id.to_owned(),
                reason: format!("its host {} has not reported it running", record.host),
            });
        };
        let (exited_tx, exited_rx) = oneshot::channel();
        self.cluster.inner().waiters.insert(
            id.to_owned(),
            Waiters {
                app: record.app().to_owned(),
                output: Some(output),
                started: None,
                exited: Some(exited_tx),
                stopped: Vec::new(),
                assigned: true,
            },
        );
        Ok(RunningContainer {
            id: id.to_owned(),
            pid,
            address,
            exited: exited_rx,
        })
    }

    fn take_oom_kill(&self, id: &str) -> bool {
        self.cluster.inner().oom_killed.remove(id) || self.local.take_oom_kill(id)
    }

    fn memory_usage(&self, id: &str) -> Option<u64> {
        self.local.memory_usage(id)
    }
}

#[cfg(test)]
mod tests;
