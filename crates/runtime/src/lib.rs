//! The container runtime seam: how Slipway starts, watches and stops dynos and build containers.
//!
//! The dyno manager and the build pipeline talk only to [`Runtime`]. The default implementation,
//! [`RuncRuntime`], drives Debian's `runc`; [`ProcessRuntime`] runs the same specs as plain host
//! processes without isolation and exists for logic tests that cannot be root. A host agent on
//! another machine will implement the same trait.
//!
//! Architecture Invariant: this crate knows nothing of apps, releases, the store or the API. It
//! receives fully resolved [`ContainerSpec`]s and reports output and exits through callbacks.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

mod attach;
mod common;
mod disk;
mod mounts;
mod net;
mod oom;
mod process;
mod runc;
mod seccomp;

pub use attach::{ClosingInput, TtyOutput, DEFAULT_SIGNALS};
pub use disk::MIN_DISK_BYTES;
pub use net::{remove_network, Ipv4Subnet, NetworkConfig};
pub use process::ProcessRuntime;
pub use runc::{RuncConfig, RuncRuntime};

/// Everything needed to start one container. Paths are host paths.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    /// Unique, stable id (`[a-zA-Z0-9_.-]+`), e.g. `slipway.demo.web.1.3f2a9c`.
    pub id: String,
    /// Free-form labels persisted with the container so a restarted server can re-adopt it
    /// (`app`, `dyno`, `release`, ...). Returned by [`Runtime::list`].
    pub labels: BTreeMap<String, String>,
    /// An unpacked directory mounted at `/app`. The container sees it through a writable
    /// ephemeral layer (overlayfs) that is thrown away when the container is removed, so the
    /// directory itself is never modified. `None`: `/app` is an empty ephemeral directory.
    pub app_dir: Option<PathBuf>,
    /// The container's system directories (its stack): the host's, or a stack's root
    /// filesystem, shared read-only by every container that names it.
    pub rootfs: Rootfs,
    /// Extra bind mounts (build dir, cache dir, buildpack dir, ...).
    pub binds: Vec<BindMount>,
    /// argv of the first process, e.g. `["/bin/bash", "-c", "exec python3 app.py"]`.
    pub args: Vec<String>,
    /// The complete environment of the first process.
    pub env: Vec<(String, String)>,
    /// Working directory inside the container, e.g. `/app`.
    pub cwd: String,
    /// Unprivileged uid/gid the processes run as.
    pub uid: u32,
    pub gid: u32,
    pub hostname: String,
    pub limits: Limits,
    /// Which network the container gets.
    pub network: Network,
    /// The add-on servers' ports on the dyno network's gateway that this container may open
    /// connections to (a dyno of an app with a PostgreSQL or Redis add-on attached). Only
    /// ports among [`NetworkConfig::addon_ports`] count; others are ignored. Empty (the
    /// default for builds and apps without add-ons): no add-on server is reachable at all.
    /// Only a [`Network::Isolated`] container on a runtime with a network is confined; the
    /// [`ProcessRuntime`] isolates nothing.
    pub allowed_host_ports: Vec<u16>,
}

/// Where a container's system directories (`/usr`, `/etc`, `/bin`, `/lib*`, ...) come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Rootfs {
    /// The host's own, read-only: the fast development stack.
    #[default]
    Host,
    /// A stack's root filesystem (e.g. one built with debootstrap): an absolute path to a
    /// directory holding at least `usr/`. Its `usr`, `etc`, `var`, `opt` and real `bin`,
    /// `sbin`, `lib*` directories are bind-mounted read-only, its merged-`/usr` symlinks
    /// recreated; the directory itself is never written to, so any number of containers
    /// share it. The [`ProcessRuntime`] cannot honour it and refuses the spec.
    Dir(PathBuf),
}

/// A container's network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Network {
    /// The host's own network namespace (the process runtime; logic tests).
    #[default]
    Host,
    /// A network namespace of its own, joined to the platform's bridge with an address of the
    /// dyno subnet ([`RunningContainer::address`]); outbound traffic leaves through NAT, and the
    /// firewall keeps it from the host, its loopback services and every other container.
    /// On a [`RuncRuntime`] without a configured network: a namespace with only `lo`. The
    /// [`ProcessRuntime`] cannot isolate and runs it on the host network (address `None`).
    Isolated,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    pub target: String,
    pub readonly: bool,
}

/// cgroup limits. `None` means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// The hard limit: the kernel OOM-kills beyond it.
    pub memory_bytes: Option<u64>,
    /// The soft limit (`memory.soft_limit_in_bytes`), which the container can read as its
    /// memory quota; reclaim pushes the container back under it when the host is short.
    pub memory_reservation_bytes: Option<u64>,
    pub pids: Option<i64>,
    pub cpu_shares: Option<u64>,
    /// What the container may write to its writable layers (the ephemeral `/app` layer and
    /// `/tmp`) together; beyond it writes fail with ENOSPC. The runc runtime gives the
    /// container a filesystem of this size (whole MiB, at least [`MIN_DISK_BYTES`]) and puts
    /// `/tmp` on it instead of a tmpfs; `None`: no limit, `/tmp` a tmpfs.
    pub disk_bytes: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Receives each line (without its trailing newline) a container writes. Must not block: it is
/// called from the task that drains the container's pipes.
pub type OutputSink = Arc<dyn Fn(Stream, &str) + Send + Sync>;

/// How the container's first process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl ExitStatus {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "{code}"),
            (None, Some(signal)) => write!(f, "{}", 128 + signal),
            (None, None) => write!(f, "unknown"),
        }
    }
}

/// A started container. `exited` resolves once, when its first process has ended and the
/// container has been cleaned up.
#[derive(Debug)]
pub struct RunningContainer {
    pub id: String,
    /// Host pid of the container's first process.
    pub pid: u32,
    /// The container's own address on the dyno network ([`Network::Isolated`]); `None` on the
    /// host network, where it listens on the host's loopback.
    pub address: Option<IpAddr>,
    pub exited: tokio::sync::oneshot::Receiver<ExitStatus>,
}

/// A container the runtime knows about, as reported by [`Runtime::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    pub pid: Option<u32>,
    pub running: bool,
    pub labels: BTreeMap<String, String>,
    /// As [`RunningContainer::address`].
    pub address: Option<IpAddr>,
}

/// What [`Runtime::stop`] had to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    /// Every process exited within the grace period after SIGTERM.
    Terminated,
    /// The grace period ran out and the processes were SIGKILLed (Heroku's R12).
    Killed,
    /// There was no such container (already gone).
    NotFound,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("invalid container spec for {id}: {reason}")]
    InvalidSpec { id: String, reason: String },
    #[error("container {id} already exists")]
    AlreadyExists { id: String },
    #[error("{action} container {id}: {source}")]
    Io {
        id: String,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the network of container {id}: {reason}")]
    Network { id: String, reason: String },
    #[error("runc {action} for container {id} failed: {stderr}")]
    Runc {
        id: String,
        action: &'static str,
        stderr: String,
    },
}

/// How a one-off container's first process is connected to the person who started it
/// (`slipway run`, `heroku run`): its stdin, and its stdout and stderr merged into one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    /// A pseudo-terminal of this size, the process's controlling terminal: bytes written are
    /// typed (Ctrl-C, `0x03`, interrupts the foreground process group), the output is the
    /// terminal's, and [`AttachControl::resize`] changes the size (SIGWINCH).
    Tty { cols: u16, rows: u16 },
    /// Plain pipes: bytes written are the process's stdin, shutting the writer down is its
    /// end of input; stdout and stderr arrive as written.
    Pipes,
}

/// What the person at the other end can do to an attached container besides typing.
pub trait AttachControl: Send + Sync + 'static {
    /// Sets the terminal's size; the process gets SIGWINCH. A no-op for [`Attach::Pipes`].
    fn resize(&self, cols: u16, rows: u16) -> std::io::Result<()>;
    /// The person went away: the container's processes get SIGHUP (as when a terminal hangs
    /// up). The container is not stopped; what keeps running is the caller's to end.
    fn hangup(&self) -> std::io::Result<()>;
}

/// The streams of a container started with [`Runtime::start_attached`].
pub struct AttachedIo {
    /// To the process's stdin (the terminal, for [`Attach::Tty`]).
    pub input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    /// The process's stdout and stderr, merged (the terminal's output, for [`Attach::Tty`]).
    /// Ends when the container has exited and every byte has been read.
    pub output: std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>,
    pub control: Arc<dyn AttachControl>,
}

impl std::fmt::Debug for AttachedIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachedIo").finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// Creates and starts a container. Output lines are passed to `output` until it exits.
    async fn start(
        &self,
        spec: ContainerSpec,
        output: OutputSink,
    ) -> Result<RunningContainer, RuntimeError>;

    /// Creates and starts a container whose first process is connected to the returned
    /// streams instead of the output sink (one-off dynos). Everything else (isolation, limits,
    /// [`Runtime::stop`], [`Runtime::list`]) is as for [`Runtime::start`]. A runtime that
    /// cannot attach says so.
    async fn start_attached(
        &self,
        spec: ContainerSpec,
        attach: Attach,
    ) -> Result<(RunningContainer, AttachedIo), RuntimeError> {
        let _ = attach;
        Err(RuntimeError::InvalidSpec {
            id: spec.id,
            reason: "this runtime cannot attach a terminal or pipes to a container".into(),
        })
    }

    /// Sends SIGTERM to every process in the container, SIGKILL after `grace`, then removes
    /// the container and its ephemeral layer. A zero `grace` sends SIGKILL at once.
    async fn stop(&self, id: &str, grace: Duration) -> Result<StopOutcome, RuntimeError>;

    /// Containers created by this runtime that still exist (running or not).
    async fn list(&self) -> Result<Vec<ContainerInfo>, RuntimeError>;

    /// Takes over a container a previous instance of this runtime started (found by
    /// [`Runtime::list`]) and that still runs: its output goes to `output` from now on and
    /// `exited` resolves when it ends, exactly as for a container this instance started.
    async fn adopt(&self, id: &str, output: OutputSink) -> Result<RunningContainer, RuntimeError> {
        let _ = output;
        Err(RuntimeError::InvalidSpec {
            id: id.to_string(),
            reason: "this runtime cannot adopt containers from a previous run; stop it instead"
                .into(),
        })
    }

    /// True (once) when the kernel OOM-killed a process of the container at its hard memory
    /// limit; asked when the container exits.
    fn take_oom_kill(&self, id: &str) -> bool {
        let _ = id;
        false
    }

    /// The container's current memory use (its cgroup's, cache included), if known.
    fn memory_usage(&self, id: &str) -> Option<u64> {
        let _ = id;
        None
    }
}

/// Lazily unmounts whatever is still mounted at or below `dir` (e.g. the network namespaces of
/// containers that were killed without the runtime's cleanup), for tests and tools that remove
/// a state directory.
pub fn unmount_leftovers(dir: &std::path::Path) {
    mounts::unmount_under(dir);
}

/// Starts a container and waits for it to exit, e.g. a build step or a one-off command.
pub async fn run_to_completion(
    runtime: &dyn Runtime,
    spec: ContainerSpec,
    output: OutputSink,
) -> Result<ExitStatus, RuntimeError> {
    let id = spec.id.clone();
    let running = runtime.start(spec, output).await?;
    running.exited.await.map_err(|_| RuntimeError::Io {
        id,
        action: "wait for",
        source: std::io::Error::other("the runtime dropped the container's exit status"),
    })
}
