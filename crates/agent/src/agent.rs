//! The agent's loop: register, sync, start and stop containers, fence itself, ship logs.
//!
//! An agent may know several control planes (`--server URL,URL…`): it syncs with one at a time
//! and moves to the next, round robin, when one fails (a whole round failed: a backoff of
//! 100 ms doubling to 1 s, short enough to renew within the two thirds of the TTL it may
//! miss); any control plane takes the sync, since they share the store. Log batches go to
//! every control plane, each through a buffer of its own, so each one's log hub has the
//! dynos' output (`logs --tail` on any of them) and a control plane that is away costs only
//! its own copy. Slugs come from the control plane the agent syncs with, else the others.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use slipway_runtime::{RunningContainer, Runtime};
use tokio::time::Instant;
use uuid::Uuid;

use crate::error::AgentError;
use crate::fence::Lease;
use crate::logs::{LogBuffer, BATCH_LINES, BUFFER_LINES};
use crate::slugs::Slugs;
use crate::wire::{
    self, Assignment, ContainerReport, ContainerState, HostInfo, StopResult, SyncRequest,
    SyncResponse,
};
use crate::{defaults, AgentConfig};

/// How long a sync waits for the host's assignments to change (the long poll). Well under a
/// third of any lease TTL, so a renewal is never late because of it.
const LONG_POLL: Duration = Duration::from_millis(1000);

/// How long a sync may take beyond its long poll before the agent gives up on it.
const SYNC_TIMEOUT: Duration = Duration::from_secs(3);

/// After a whole round of control planes failed: the first wait, doubled each round up to
/// [`RETRY_MAX`].
const RETRY: Duration = Duration::from_millis(100);

/// The longest wait between rounds: well under the third of the lease's TTL an agent may
/// miss, so a control plane that comes back is found before the agent fences itself.
const RETRY_MAX: Duration = Duration::from_secs(1);

/// After a log batch a control plane did not take.
const LOG_RETRY: Duration = Duration::from_millis(250);

/// How often the log shipper sends what it has when lines trickle in.
const LOG_INTERVAL: Duration = Duration::from_millis(100);

/// One container the agent tracks.
#[derive(Debug, Clone)]
struct Tracked {
    state: ContainerState,
    /// A stop was asked for (by the control plane, or by self-fencing).
    stopping: bool,
}

/// Everything the agent's tasks share.
struct Shared {
    runtime: Arc<dyn Runtime>,
    /// One per control plane, in `--server`'s order.
    slugs: Vec<Slugs>,
    /// One per control plane, in `--server`'s order.
    logs: Vec<LogBuffer>,
    /// The control planes, and which one the agent syncs with.
    servers: Arc<Servers>,
    /// One lock per slug and uid across every control plane's `Slugs`, so a slug is fetched
    /// and unpacked once even when the control plane changes mid-start.
    slug_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    containers: Mutex<HashMap<String, Tracked>>,
    /// A container changed state: report it now rather than at the next renewal.
    changed: tokio::sync::Notify,
}

impl Shared {
    fn set_state(&self, id: &str, state: ContainerState) {
        let mut containers = self.containers.lock().expect("never poisoned");
        let tracked = containers.entry(id.to_owned()).or_insert(Tracked {
            state: ContainerState::Starting,
            stopping: false,
        });
        // A stop's outcome wins over the exit it caused; nothing else overrides a final state.
        let overrides =
            matches!(state, ContainerState::Stopped { .. }) || !tracked.state.is_final();
        if overrides {
            tracked.state = state;
        }
        drop(containers);
        self.changed.notify_one();
    }

    /// The output sink of one container: its lines go into every control plane's buffer.
    fn sink(&self, container: &str) -> slipway_runtime::OutputSink {
        let sinks: Vec<slipway_runtime::OutputSink> =
            self.logs.iter().map(|logs| logs.sink(container)).collect();
        Arc::new(move |stream, line: &str| {
            for sink in &sinks {
                sink(stream, line);
            }
        })
    }

    /// The unpacked slug `digest` for `uid`, from the control plane the agent syncs with, else
    /// from the others in turn.
    async fn app_dir(&self, digest: &str, uid: u32) -> Result<std::path::PathBuf, AgentError> {
        let lock = self
            .slug_locks
            .lock()
            .expect("never poisoned")
            .entry(format!("{digest}-{uid}"))
            .or_default()
            .clone();
        let _held = lock.lock().await;
        let first = self.servers.current();
        let mut last = None;
        for i in 0..self.slugs.len() {
            let slugs = &self.slugs[(first + i) % self.slugs.len()];
            match slugs.app_dir(digest, uid).await {
                Ok(dir) => return Ok(dir),
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| AgentError::Slug {
            digest: digest.to_owned(),
            reason: "no control plane to fetch it from".into(),
        }))
    }

    fn report(&self) -> Vec<ContainerReport> {
        let containers = self.containers.lock().expect("never poisoned");
        let mut report: Vec<ContainerReport> = containers
            .iter()
            .map(|(id, tracked)| ContainerReport {
                id: id.clone(),
                state: tracked.state.clone(),
            })
            .collect();
        report.sort_by(|a, b| a.id.cmp(&b.id));
        report
    }
}

/// Runs the agent until `stop` resolves. Dynos keep running when it returns: the next agent
/// process on this host adopts them.
pub async fn run(
    config: AgentConfig,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), AgentError> {
    let servers = parse_servers(&config.server)?;
    std::fs::create_dir_all(&config.data_dir).map_err(|source| AgentError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let data_dir = config
        .data_dir
        .canonicalize()
        .map_err(|source| AgentError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
    let token_file = config
        .token_file
        .clone()
        .unwrap_or_else(|| data_dir.join(defaults::TOKEN_FILE));
    let token = std::fs::read_to_string(&token_file)
        .map_err(|source| AgentError::ReadToken {
            path: token_file.clone(),
            source,
        })?
        .trim()
        .to_owned();
    if token.is_empty() {
        return Err(AgentError::EmptyToken { path: token_file });
    }
    let mut server_addrs = Vec::new();
    for server in &servers {
        server_addrs.push(server_socket(server).await?);
    }
    let address = match config.address {
        Some(address) => address,
        None => local_address_towards(server_addrs[0]).map_err(|source| AgentError::Address {
            server: servers[0].to_string(),
            source,
        })?,
    };
    let client = http_client(config.ca_file.as_deref())?;
    let mut network = slipway_runtime::NetworkConfig::for_key(config.dyno_subnet, &data_dir);
    network.routed_from = if config.routed_from.is_empty() {
        server_addrs
            .iter()
            .filter_map(|addr| match addr.ip() {
                IpAddr::V4(v4) => slipway_runtime::Ipv4Subnet::new(v4, 32),
                IpAddr::V6(_) => None,
            })
            .collect()
    } else {
        config.routed_from.clone()
    };
    let mut runc = slipway_runtime::RuncConfig::new(data_dir.join("runtime"));
    runc.network = Some(network);
    let runtime: Arc<dyn Runtime> =
        Arc::new(slipway_runtime::RuncRuntime::new(runc).map_err(AgentError::Runtime)?);
    let memory_mb = config.memory_mb.unwrap_or_else(host_memory_mb);
    let host = HostInfo {
        memory_mb,
        dyno_subnet: config.dyno_subnet.to_string(),
        address,
    };
    tracing::info!(name = %config.name, %address, memory_mb, subnet = %config.dyno_subnet, "agent starting");
    let servers = Arc::new(Servers::new(servers));
    let shared = Arc::new(Shared {
        runtime,
        slugs: servers
            .urls
            .iter()
            .map(|server| {
                Slugs::new(
                    data_dir.clone(),
                    client.clone(),
                    server.clone(),
                    token.clone(),
                    config.max_slug_size_mb.saturating_mul(1024 * 1024),
                    config.slug_store.clone(),
                )
            })
            .collect(),
        logs: servers
            .urls
            .iter()
            .map(|_| LogBuffer::new(BUFFER_LINES))
            .collect(),
        servers: servers.clone(),
        slug_locks: Mutex::new(HashMap::new()),
        containers: Mutex::new(HashMap::new()),
        changed: tokio::sync::Notify::new(),
    });
    adopt_existing(&shared).await;
    let endpoint = Endpoint {
        client,
        servers,
        token,
        name: config.name.to_string(),
    };
    let shippers: Vec<_> = (0..shared.logs.len())
        .map(|i| tokio::spawn(ship_logs(shared.clone(), endpoint.clone(), i)))
        .collect();
    let result = tokio::select! {
        result = sync_loop(shared.clone(), endpoint, host) => result,
        () = stop => Ok(()),
    };
    for shipper in shippers {
        shipper.abort();
    }
    result
}

/// The control planes an agent knows, and the one it syncs with.
struct Servers {
    urls: Vec<url::Url>,
    current: std::sync::atomic::AtomicUsize,
}

impl Servers {
    fn new(urls: Vec<url::Url>) -> Servers {
        Servers {
            urls,
            current: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// The index of the control plane the agent syncs with.
    fn current(&self) -> usize {
        self.current.load(std::sync::atomic::Ordering::Relaxed) % self.urls.len()
    }

    /// Moves on to the next control plane; whether that starts a new round.
    fn advance(&self) -> bool {
        let next = (self.current() + 1) % self.urls.len();
        self.current
            .store(next, std::sync::atomic::Ordering::Relaxed);
        next == 0
    }
}

/// The control planes as the agent talks to them.
#[derive(Clone)]
struct Endpoint {
    client: reqwest::Client,
    servers: Arc<Servers>,
    token: String,
    name: String,
}

impl Endpoint {
    /// One sync with the current control plane, given up after `timeout`.
    async fn sync(
        &self,
        request: &SyncRequest,
        timeout: Duration,
    ) -> Result<SyncResponse, AgentError> {
        let server = &self.servers.urls[self.servers.current()];
        let response = self
            .post(server, &wire::sync_path(&self.name), request, timeout)
            .await?;
        response.json().await.map_err(AgentError::Unreachable)
    }

    /// One log batch to control plane `server`.
    async fn send_logs(&self, server: usize, batch: &wire::LogBatch) -> Result<(), AgentError> {
        self.post(
            &self.servers.urls[server],
            &wire::logs_path(&self.name),
            batch,
            SYNC_TIMEOUT,
        )
        .await
        .map(drop)
    }

    /// POSTs `body` as JSON with the cluster token; a refusal carries the control plane's
    /// message (its `{"id","message"}` body), at most 500 characters of it.
    async fn post(
        &self,
        server: &url::Url,
        path: &str,
        body: &impl serde::Serialize,
        timeout: Duration,
    ) -> Result<reqwest::Response, AgentError> {
        let url = server.join(path).map_err(|_| AgentError::ServerUrl {
            url: server.to_string(),
        })?;
        let response = self
            .client
            .post(url)
            .bearer_auth(&self.token)
            .timeout(timeout)
            .json(body)
            .send()
            .await
            .map_err(AgentError::Unreachable)?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or(body);
        Err(AgentError::Refused {
            status: status.as_u16(),
            message: message.chars().take(500).collect(),
        })
    }
}

/// Renews the lease, reports, applies assignments; fences itself when renewals fail.
async fn sync_loop(
    shared: Arc<Shared>,
    endpoint: Endpoint,
    host: HostInfo,
) -> Result<(), AgentError> {
    let session = Uuid::new_v4();
    let mut lease = Lease::None;
    let mut last_error: Option<String> = None;
    let mut retry = RETRY;
    loop {
        if lease.must_fence(Instant::now()) {
            tracing::warn!(
                "could not renew this host's lease in time: stopping every dyno (self-fencing)"
            );
            fence(&shared);
            lease = Lease::None;
        }
        let sent = Instant::now();
        let fence_at = lease
            .deadline()
            .unwrap_or_else(|| sent + Duration::from_secs(3600));
        let (wait, timeout) = attempt_budget(fence_at.saturating_duration_since(sent));
        let request = SyncRequest {
            session,
            host: host.clone(),
            containers: shared.report(),
            wait_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        };
        tokio::select! {
            result = endpoint.sync(&request, timeout) => match result {
                Ok(response) => {
                    if last_error.take().is_some() {
                        let server = &shared.servers.urls[shared.servers.current()];
                        tracing::info!(%server, "a control plane answers again");
                    }
                    retry = RETRY;
                    lease = Lease::renewed(sent, Duration::from_millis(response.lease_ttl_ms));
                    apply(&shared, response.assignments);
                }
                Err(AgentError::Refused { status, message }) if status == 401 || status == 403 => {
                    return Err(AgentError::Refused { status, message });
                }
                Err(error) => {
                    let text = error.to_string();
                    let server = &shared.servers.urls[shared.servers.current()];
                    if last_error.as_deref() != Some(text.as_str()) {
                        tracing::warn!(error = %text, %server, "sync with the control plane failed; trying the next one");
                    }
                    last_error = Some(text);
                    // Another control plane at once; after a whole round, a backoff.
                    if shared.servers.advance() {
                        tokio::time::sleep(retry.min(fence_at.saturating_duration_since(Instant::now()))).await;
                        retry = (retry * 2).min(RETRY_MAX);
                    }
                }
            },
            () = shared.changed.notified() => {}
            () = tokio::time::sleep_until(fence_at) => {}
        }
    }
}

/// A sync's long poll and timeout when the agent must fence itself in `left`: the usual ones
/// while there is time, else no long poll and half of what is left (at least 300 ms), so a
/// control plane that does not answer leaves time to try another before the deadline.
fn attempt_budget(left: Duration) -> (Duration, Duration) {
    let usual = LONG_POLL + SYNC_TIMEOUT;
    if left >= usual * 2 {
        (LONG_POLL, usual)
    } else if left >= LONG_POLL * 2 + SYNC_TIMEOUT / 3 {
        (
            LONG_POLL,
            (left / 2).max(LONG_POLL + Duration::from_millis(500)),
        )
    } else {
        (Duration::ZERO, (left / 2).max(Duration::from_millis(300)))
    }
}

/// Brings the host in line with its assignments.
fn apply(shared: &Arc<Shared>, assignments: Vec<Assignment>) {
    let assigned: HashMap<String, Assignment> = assignments
        .into_iter()
        .map(|a| (a.spec.id.clone(), a))
        .collect();
    let mut to_start = Vec::new();
    let mut to_stop = Vec::new();
    {
        let mut containers = shared.containers.lock().expect("never poisoned");
        // Not the host's any more: forget what ended, stop what still runs.
        containers.retain(|id, tracked| {
            if assigned.contains_key(id) {
                return true;
            }
            if tracked.state.is_final() {
                return false;
            }
            if !tracked.stopping {
                tracked.stopping = true;
                to_stop.push((id.clone(), Duration::ZERO));
            }
            true
        });
        for (id, assignment) in assigned {
            match containers.get_mut(&id) {
                None => {
                    if assignment.stop.is_some() {
                        // Asked to stop something never started here: say so.
                        containers.insert(
                            id,
                            Tracked {
                                state: ContainerState::Stopped {
                                    outcome: StopResult::NotFound,
                                },
                                stopping: true,
                            },
                        );
                        shared.changed.notify_one();
                    } else {
                        containers.insert(
                            id,
                            Tracked {
                                state: ContainerState::Starting,
                                stopping: false,
                            },
                        );
                        to_start.push(assignment);
                    }
                }
                Some(tracked) => {
                    if let Some(order) = assignment.stop {
                        let running = matches!(tracked.state, ContainerState::Running { .. });
                        if running && !tracked.stopping {
                            tracked.stopping = true;
                            to_stop.push((id, Duration::from_millis(order.grace_ms)));
                        }
                    }
                }
            }
        }
    }
    for assignment in to_start {
        tokio::spawn(start(shared.clone(), assignment));
    }
    for (id, grace) in to_stop {
        tokio::spawn(stop(shared.clone(), id, grace));
    }
}

/// Stops every container now (self-fencing).
fn fence(shared: &Arc<Shared>) {
    let mut to_stop = Vec::new();
    {
        let mut containers = shared.containers.lock().expect("never poisoned");
        for (id, tracked) in containers.iter_mut() {
            if !tracked.state.is_final() && !tracked.stopping {
                tracked.stopping = true;
                to_stop.push(id.clone());
            }
        }
    }
    for id in to_stop {
        tokio::spawn(stop(shared.clone(), id, Duration::ZERO));
    }
}

async fn start(shared: Arc<Shared>, assignment: Assignment) {
    let id = assignment.spec.id.clone();
    let began = Instant::now();
    let app_dir = match &assignment.slug {
        Some(digest) => match shared.app_dir(digest, assignment.spec.uid).await {
            Ok(dir) => Some(dir),
            Err(error) => {
                tracing::warn!(%error, container = %id, "could not fetch the dyno's slug");
                shared.set_state(
                    &id,
                    ContainerState::Failed {
                        reason: error.to_string(),
                    },
                );
                return;
            }
        },
        None => None,
    };
    let slug_ready = began.elapsed();
    let port = web_port(&assignment.spec);
    let spec = assignment.spec.into_container(app_dir);
    let output = shared.sink(&id);
    match shared.runtime.start(spec, output).await {
        Ok(running) => {
            if let (Some(port), Some(address)) = (port, running.address) {
                wait_until_reachable(SocketAddr::new(address, port)).await;
            }
            tracing::info!(container = %id, ?slug_ready, started = ?began.elapsed(), "dyno started");
            watch(shared, running)
        }
        Err(error) => {
            tracing::warn!(%error, container = %id, "could not start a dyno");
            shared.set_state(
                &id,
                ContainerState::Failed {
                    reason: error.to_string(),
                },
            );
        }
    }
}

/// A web dyno's `$PORT`.
fn web_port(spec: &wire::Spec) -> Option<u16> {
    let dyno = spec.labels.get("dyno")?;
    if !dyno.starts_with("web.") {
        return None;
    }
    spec.env
        .iter()
        .find(|(key, _)| key == "PORT")
        .and_then(|(_, value)| value.parse().ok())
}

/// How long the agent waits for a web dyno's `$PORT` before reporting it running anyway (the
/// control plane's boot timeout decides about it then).
const REACHABLE_WAIT: Duration = Duration::from_secs(30);

/// Waits until a web dyno accepts connections from this host, each attempt cut short: an
/// attempt whose SYN went out before the dyno's network was ready would otherwise wait for
/// the kernel's retransmission (1, 3, 7 s...), and so would the control plane's boot check,
/// which connects from another host once the dyno is reported running.
async fn wait_until_reachable(address: SocketAddr) {
    let deadline = Instant::now() + REACHABLE_WAIT;
    while Instant::now() < deadline {
        let attempt = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(address),
        )
        .await;
        if matches!(attempt, Ok(Ok(_))) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Reports a started (or adopted) container running, and its exit when it comes. A stop
/// asked for before the start finished is carried out now.
fn watch(shared: Arc<Shared>, running: RunningContainer) {
    let id = running.id.clone();
    shared.set_state(
        &id,
        ContainerState::Running {
            pid: running.pid,
            address: running.address,
        },
    );
    let stop_now = shared
        .containers
        .lock()
        .expect("never poisoned")
        .get(&id)
        .is_some_and(|tracked| tracked.stopping);
    if stop_now {
        tokio::spawn(stop(shared.clone(), id.clone(), Duration::ZERO));
    }
    tokio::spawn(async move {
        let status = running.exited.await.ok();
        let oom_killed = shared.runtime.take_oom_kill(&id);
        shared.set_state(
            &id,
            ContainerState::Exited {
                code: status.and_then(|s| s.code),
                signal: status.and_then(|s| s.signal),
                oom_killed,
            },
        );
    });
}

async fn stop(shared: Arc<Shared>, id: String, grace: Duration) {
    let outcome = match shared.runtime.stop(&id, grace).await {
        Ok(outcome) => StopResult::from(outcome),
        Err(error) => {
            tracing::error!(%error, container = %id, "stopping a dyno failed");
            StopResult::NotFound
        }
    };
    shared.set_state(&id, ContainerState::Stopped { outcome });
}

/// Takes over the containers a previous agent process left running; the first sync tells
/// which of them the host still has (the others are stopped then).
async fn adopt_existing(shared: &Arc<Shared>) {
    let containers = match shared.runtime.list().await {
        Ok(containers) => containers,
        Err(error) => {
            tracing::error!(%error, "cannot list this host's containers to re-adopt them");
            return;
        }
    };
    for container in containers {
        if !container.running {
            let _ = shared.runtime.stop(&container.id, Duration::ZERO).await;
            continue;
        }
        let output = shared.sink(&container.id);
        match shared.runtime.adopt(&container.id, output).await {
            Ok(running) => {
                tracing::info!(container = %container.id, "re-adopted a running dyno");
                watch(shared.clone(), running);
            }
            Err(error) => {
                tracing::warn!(%error, container = %container.id, "could not re-adopt a dyno; stopping it");
                let _ = shared.runtime.stop(&container.id, Duration::ZERO).await;
            }
        }
    }
}

/// Sends control plane `server`'s buffered log lines in batches; a batch that cannot be
/// delivered counts as dropped (logs are best effort, as logplex's).
async fn ship_logs(shared: Arc<Shared>, endpoint: Endpoint, server: usize) {
    let logs = &shared.logs[server];
    loop {
        match logs.take(BATCH_LINES) {
            Some(batch) => {
                if let Err(error) = endpoint.send_logs(server, &batch).await {
                    tracing::debug!(%error, server = %endpoint.servers.urls[server], "log batch not delivered");
                    logs.lost(batch);
                    tokio::time::sleep(LOG_RETRY).await;
                }
            }
            None => {
                tokio::select! {
                    () = logs.wait() => {}
                    () = tokio::time::sleep(LOG_INTERVAL) => {}
                }
            }
        }
    }
}

/// `--server`'s control planes: one URL, or several separated by commas.
fn parse_servers(servers: &str) -> Result<Vec<url::Url>, AgentError> {
    let urls = servers
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_server)
        .collect::<Result<Vec<_>, _>>()?;
    if urls.is_empty() {
        return Err(AgentError::ServerUrl {
            url: servers.to_owned(),
        });
    }
    Ok(urls)
}

#[cfg(test)]
mod tests;

fn parse_server(server: &str) -> Result<url::Url, AgentError> {
    let invalid = || AgentError::ServerUrl {
        url: server.to_owned(),
    };
    let url: url::Url = server.parse().map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid());
    }
    Ok(url)
}

/// The control plane's socket address (its host resolved once).
async fn server_socket(server: &url::Url) -> Result<SocketAddr, AgentError> {
    let invalid = || AgentError::ServerUrl {
        url: server.to_string(),
    };
    let host = server.host_str().ok_or_else(invalid)?;
    let port = server.port_or_known_default().ok_or_else(invalid)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| AgentError::Address {
            server: server.to_string(),
            source,
        })?
        .next()
        .ok_or_else(invalid)
}

/// The local address the kernel would use to reach `server` (a UDP socket's connect sends
/// nothing).
fn local_address_towards(server: SocketAddr) -> std::io::Result<IpAddr> {
    let bind: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = std::net::UdpSocket::bind(bind)?;
    socket.connect(server)?;
    Ok(socket.local_addr()?.ip())
}

fn http_client(ca_file: Option<&std::path::Path>) -> Result<reqwest::Client, AgentError> {
    let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(2));
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| AgentError::CaFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let ca = reqwest::Certificate::from_pem(&pem).map_err(|e| AgentError::CaFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        builder = builder
            .add_root_certificate(ca)
            .tls_built_in_root_certs(false);
    }
    builder.build().map_err(AgentError::Client)
}

/// The host's total memory in MiB (`/proc/meminfo`), or 1 GiB if it cannot be read.
fn host_memory_mb() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .map_or(1024, |kb| kb / 1024)
}
