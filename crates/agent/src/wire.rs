//! The protocol between a host agent and the control plane, as JSON over HTTP(S): what an
//! agent reports on every sync (its host, its containers' states), what the control plane
//! answers (its lease's TTL, the containers assigned to the host), and the log batches.
//!
//! Both sides use these types (the core stores [`Assignment`]s as they are sent), so the
//! conversion from the runtime's [`ContainerSpec`] is written once, here. A spec that crosses
//! the wire never carries host paths of the control plane: the slug travels by its checksum
//! and the agent unpacks it itself; bind mounts are refused.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use slipway_runtime::{ContainerSpec, ExitStatus, Limits, Network, Rootfs, StopOutcome};
use uuid::Uuid;

#[cfg(test)]
mod tests;

/// The path of the sync endpoint of host `name` (POST [`SyncRequest`] → [`SyncResponse`]).
pub fn sync_path(name: &str) -> String {
    format!("/slipway/agents/{name}/sync")
}

/// The path of the log endpoint of host `name` (POST [`LogBatch`]).
pub fn logs_path(name: &str) -> String {
    format!("/slipway/agents/{name}/logs")
}

/// The path a slug is fetched from by its SHA-256 (hex).
pub fn slug_path(digest: &str) -> String {
    format!("/slipway/agents/slugs/{digest}")
}

/// What an agent says about its host when it registers and at every renewal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    /// Memory the host offers to dynos, in MiB: placement's capacity.
    pub memory_mb: u64,
    /// The host's dyno subnet (CIDR), routed to [`HostInfo::address`].
    pub dyno_subnet: String,
    /// Where other hosts reach this one (and its dyno subnet).
    pub address: IpAddr,
}

/// One sync: renews the host's lease, reports every container the agent tracks, and asks for
/// the host's assignments, waiting up to `wait_ms` for them to change (a long poll).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    /// Unique to one agent process: a new session is a restarted agent.
    pub session: Uuid,
    pub host: HostInfo,
    pub containers: Vec<ContainerReport>,
    pub wait_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerReport {
    pub id: String,
    pub state: ContainerState,
}

/// A container as its agent sees it. `Exited`, `Stopped` and `Failed` are final: the agent
/// reports them until the control plane drops the assignment, then forgets the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ContainerState {
    /// Fetching the slug, unpacking it, or starting the container.
    Starting,
    Running {
        pid: u32,
        address: Option<IpAddr>,
    },
    /// The first process ended on its own (or was killed by the kernel: `oom_killed`).
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
        oom_killed: bool,
    },
    /// A stop the control plane asked for (or the agent's self-fencing) finished.
    Stopped {
        outcome: StopResult,
    },
    /// The container could not be started.
    Failed {
        reason: String,
    },
}

impl ContainerState {
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            ContainerState::Exited { .. }
                | ContainerState::Stopped { .. }
                | ContainerState::Failed { .. }
        )
    }

    /// How the container's first process ended, for a final state.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        match self {
            ContainerState::Exited { code, signal, .. } => Some(ExitStatus {
                code: *code,
                signal: *signal,
            }),
            ContainerState::Stopped { outcome } => Some(ExitStatus {
                code: None,
                signal: Some(match outcome {
                    StopResult::Killed => 9,
                    _ => 15,
                }),
            }),
            ContainerState::Failed { .. } => Some(ExitStatus {
                code: Some(1),
                signal: None,
            }),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopResult {
    Terminated,
    Killed,
    NotFound,
}

impl From<StopOutcome> for StopResult {
    fn from(outcome: StopOutcome) -> StopResult {
        match outcome {
            StopOutcome::Terminated => StopResult::Terminated,
            StopOutcome::Killed => StopResult::Killed,
            StopOutcome::NotFound => StopResult::NotFound,
        }
    }
}

impl From<StopResult> for StopOutcome {
    fn from(result: StopResult) -> StopOutcome {
        match result {
            StopResult::Terminated => StopOutcome::Terminated,
            StopResult::Killed => StopOutcome::Killed,
            StopResult::NotFound => StopOutcome::NotFound,
        }
    }
}

/// The control plane's answer to a sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncResponse {
    /// The host's lease: without a renewal for this long the host is fenced and its dynos
    /// replaced elsewhere. The agent stops its own dynos before that (self-fencing).
    pub lease_ttl_ms: u64,
    /// Every container the host should run (or stop: [`Assignment::stop`]). A container the
    /// agent runs that is not here is not the host's any more and is stopped.
    pub assignments: Vec<Assignment>,
}

/// One container assigned to a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub spec: Spec,
    /// The SHA-256 (hex) of the slug unpacked at `/app`, fetched from the control plane.
    pub slug: Option<String>,
    /// Set when the control plane wants the container stopped.
    pub stop: Option<StopOrder>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopOrder {
    /// SIGTERM, then SIGKILL after this long.
    pub grace_ms: u64,
}

/// A [`ContainerSpec`] without its host paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    pub id: String,
    pub labels: BTreeMap<String, String>,
    /// A stack's root filesystem, which must exist at the same path on every host; `None`:
    /// the host's own.
    pub rootfs: Option<PathBuf>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub hostname: String,
    pub memory_bytes: Option<u64>,
    pub memory_reservation_bytes: Option<u64>,
    pub pids: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub disk_bytes: Option<u64>,
    pub isolated: bool,
}

/// Why a container cannot run on another host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("container {id} binds host directories and can only run on the control plane")]
    Binds { id: String },
}

impl Spec {
    /// The wire form of `spec`; its `app_dir` is dropped (the slug travels by checksum).
    pub fn from_container(spec: &ContainerSpec) -> Result<Spec, SpecError> {
        if !spec.binds.is_empty() {
            return Err(SpecError::Binds {
                id: spec.id.clone(),
            });
        }
        Ok(Spec {
            id: spec.id.clone(),
            labels: spec.labels.clone(),
            rootfs: match &spec.rootfs {
                Rootfs::Host => None,
                Rootfs::Dir(dir) => Some(dir.clone()),
            },
            args: spec.args.clone(),
            env: spec.env.clone(),
            cwd: spec.cwd.clone(),
            uid: spec.uid,
            gid: spec.gid,
            hostname: spec.hostname.clone(),
            memory_bytes: spec.limits.memory_bytes,
            memory_reservation_bytes: spec.limits.memory_reservation_bytes,
            pids: spec.limits.pids,
            cpu_shares: spec.limits.cpu_shares,
            disk_bytes: spec.limits.disk_bytes,
            isolated: spec.network == Network::Isolated,
        })
    }

    /// The runtime's spec, with the slug unpacked at `app_dir` on this host.
    pub fn into_container(self, app_dir: Option<PathBuf>) -> ContainerSpec {
        ContainerSpec {
            id: self.id,
            labels: self.labels,
            app_dir,
            rootfs: self.rootfs.map_or(Rootfs::Host, Rootfs::Dir),
            binds: Vec::new(),
            args: self.args,
            env: self.env,
            cwd: self.cwd,
            uid: self.uid,
            gid: self.gid,
            hostname: self.hostname,
            limits: Limits {
                memory_bytes: self.memory_bytes,
                memory_reservation_bytes: self.memory_reservation_bytes,
                pids: self.pids,
                cpu_shares: self.cpu_shares,
                disk_bytes: self.disk_bytes,
            },
            network: if self.isolated {
                Network::Isolated
            } else {
                Network::Host
            },
            // The add-on servers listen on the control plane's gateway, which an agent's
            // dynos do not reach: no add-on port is opened on an agent host.
            allowed_host_ports: Vec::new(),
        }
    }
}

/// Log lines of a host's containers, sent as they come (never through the store).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogBatch {
    pub lines: Vec<LogRecord>,
    /// Lines dropped per container since the last batch because the agent's buffer was full
    /// (logplex's L10).
    pub dropped: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    pub container: String,
    pub line: String,
}

/// Whether `digest` looks like a slug's SHA-256 (64 lowercase hex digits): the only thing
/// either side ever puts into a slug's path.
pub fn is_slug_digest(digest: &str) -> bool {
    digest.len() == 64
        && digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
