//! The runc-backed runtime: every container is a `runc run` child of this process.
//!
//! # Layout on disk
//! Everything lives under [`RuncConfig::state_dir`] (call it `S`), so separate Slipway
//! instances or tests never collide:
//! - `S/runc/` is runc's state root (`runc --root`).
//! - `S/containers/<id>/` is the bundle: `config.json` (generated with `oci-spec`),
//!   `labels.json` (the spec's labels, read back by [`Runtime::list`] after a restart),
//!   `rootfs/` (a skeleton of empty mountpoints and `bin -> usr/bin`-style symlinks),
//!   `upper/` + `work/` (the ephemeral writable layer of `/app`), `init.pid` and `runc.log`
//!   (runc's own warnings, kept out of the app's output). With a disk quota, `disk/` is the
//!   container's own filesystem holding `upper/`, `work/` and `tmp/` (see `disk.rs`).
//! - `S/disks/` holds the pool of ready-made disks.
//!
//! # The container
//! - Root filesystem: the "stack" — with [`Rootfs::Host`](crate::Rootfs::Host) the host's
//!   `/usr`, `/etc` and any real `/bin`, `/sbin`, `/lib*` directories, with
//!   [`Rootfs::Dir`](crate::Rootfs::Dir) the same from that directory plus its `var` and `opt`,
//!   are recursively bind-mounted read-only (merged-`/usr` symlinks are recreated as symlinks;
//!   the stack directory is only ever a bind source, so containers share it unchanged); `/proc`; `/dev` as a tmpfs with runc's standard devices (`null`, `zero`,
//!   `full`, `random`, `urandom`, `tty`), `/dev/pts`, `/dev/shm`, `/dev/mqueue`; `/sys` and
//!   `/sys/fs/cgroup` read-only; `/tmp` a tmpfs (mode 1777), or with a disk quota the disk's
//!   `tmp/` (so `/app` and `/tmp` writes share the quota). The root itself is read-only.
//! - `/app`: with `app_dir`, an overlay with `lowerdir=app_dir` and `upper/`, `work/` from the
//!   bundle. The overlay root takes the upper dir's owner, which is chowned to `uid:gid`, so the
//!   app can create files in `/app`; editing an *existing* file in place needs that file (in
//!   `app_dir`) to be writable by `uid`, i.e. `app_dir` contents should be owned by `uid`.
//!   `app_dir` itself is never modified. Without `app_dir`, `/app` is the empty, writable
//!   `upper/` directory bind-mounted — unless a bind targets `/app` (the build pipeline binds
//!   its build dir there), in which case that bind is used.
//! - `binds` are applied in order after `/app` (so they may target paths below it), as
//!   recursive binds, read-only when asked. Mountpoints are created by runc.
//! - Namespaces: pid, mount, uts, ipc, and for [`Network::Isolated`] network: a namespace of
//!   its own, created by `net.rs` before `runc run` and bind-mounted at `bundle/netns` (runc
//!   joins it by path), with a veth to the runtime's bridge and an address of the dyno subnet
//!   (`network.json` in the bundle); see `net.rs` for the firewall. Without a
//!   [`RuncConfig::network`], an isolated container gets a namespace with only `lo`.
//!   [`Network::Host`] containers share the host network. The hostname is `spec.hostname` (the
//!   id if empty).
//! - Process: `args`, exactly `env`, `cwd`, `uid:gid` without supplementary groups,
//!   `noNewPrivileges`, no capabilities at all, the default seccomp profile (`seccomp.rs`),
//!   `RLIMIT_NOFILE` 65536 (capped at this process's own hard limit, which even root may be
//!   unable to exceed), no terminal, stdin `/dev/null` (attached containers: see below).
//! - Disk: with [`Limits::disk_bytes`](crate::Limits::disk_bytes), the container's own
//!   filesystem at `disk/` in the bundle (`disk.rs`), taken from a pool before the bundle is
//!   written; cleanup's unmount of everything under the bundle frees it.
//! - cgroups (`cgroupsPath` = `/<cgroup_parent>/<id>`): memory limit with memory+swap set to
//!   the same value (a hard limit; the OOM killer SIGKILLs, which `oom.rs` notices), an
//!   optional soft limit (`reservation`), pids limit, cpu shares.
//!
//! # Lifecycle
//! [`Runtime::start`] writes the bundle and spawns `runc run` in the foreground, in its own
//! process group (terminal signals do not reach it; dropping handles does not kill it). Its
//! stdout/stderr are the container's; lines are held back until runc has written the pid file,
//! so that runc's own fatal errors become a [`RuntimeError::Runc`] instead of app output. A
//! monitor task waits for runc, maps its exit code (runc exits with the container process's
//! code, `128+N` when killed by signal N — reported as `signal: Some(N)`), cleans up
//! (`runc delete --force` if runc left state behind, unmounts anything left under the bundle,
//! removes the bundle) and only then resolves `exited`.
//!
//! [`Runtime::stop`] runs `runc kill --all <id> TERM`, waits up to the grace period, then
//! `runc kill --all <id> KILL`. It also works for containers adopted from a previous instance
//! (found on disk by [`Runtime::list`]); then it polls the init pid and cleans up itself.
//!
//! Caveats: the first process is PID 1 of its namespace, so the kernel ignores a SIGTERM for
//! which it installed no handler (as in Docker): use `exec` only for programs that handle
//! SIGTERM, or trap it in the shell.
//!
//! # Attached containers
//! [`Runtime::start_attached`] shares everything above with `start` (`prepare`, `spawn_runc`
//! and `supervise`); only the first process's stdio differs (`attach.rs` has the plumbing):
//! - [`Attach::Tty`]: `process.terminal` is true with the asked `consoleSize`, and `runc run`
//!   runs in the foreground with a host pty's slave as stdin, stdout and stderr. runc then
//!   makes the container's console (a pty of the container's own devpts) and copies between it
//!   and its stdio; it sizes the console from its stdin's terminal and re-sizes it on every
//!   SIGWINCH. The host pty is set to raw mode before the spawn, so that only the container's
//!   console interprets what is typed: `0x03` becomes SIGINT for the container's foreground
//!   process group there, `0x04` end of input, and the echo comes from there. The wrapper
//!   runs under util-linux's `setsid --ctty` (a session of its own with the pty as controlling
//!   terminal; this crate has no unsafe code for a `pre_exec`), so that resizing the master
//!   (`TIOCSWINSZ`) makes the kernel send SIGWINCH to runc, the terminal's foreground
//!   process group, and so that a server that dies hangs the terminal up for real (runc
//!   forwards the SIGHUP to the container). Why not `--console-socket` and the console's
//!   master over `SCM_RIGHTS`: that needs `runc create`/`start` (detached), i.e. a second
//!   runc invocation on the start path and no `runc run` exit status to wait for, while the
//!   foreground proxy works with Debian's runc 1.1 as is.
//! - [`Attach::Pipes`]: stdin a pipe, stdout and stderr one pipe; runc copies them to and from
//!   the container's own pipes, and closes the container's stdin at the end of ours.
//! - The runtime keeps the master open until runc has exited, so dropping
//!   [`AttachedIo`](crate::AttachedIo) is not a hang-up; an unread output is drained in the
//!   background, so the container never blocks on it. `hangup` is `runc kill --all <id> HUP`
//!   (see `Inner::hangup` for why not closing the master). Errors runc hits before the
//!   container runs are read back from `runc.log` (JSON lines), as its stderr is the caller's
//!   stream here.
//! - Attached containers have no output FIFOs and cannot be re-attached by a restarted server;
//!   `list` reports them like any other (the caller labels them), `adopt` follows their end
//!   but their output is gone, and `stop` ends them.
//!
//! # Surviving the server
//! `runc run` runs under a small `sh` wrapper in its own process group (not killed with the
//! server) that writes runc's exit status to `exit-status` in the bundle. The container's
//! stdout/stderr are the FIFOs `stdout.fifo`/`stderr.fifo` in the bundle, held open read-write
//! by the container, so a dead server never makes its writes fail. [`Runtime::adopt`] lets a
//! restarted server take a container over: it re-opens the FIFOs (output written while no
//! server ran waits in the pipe buffer, 64 KiB; beyond that the dyno's writes block until
//! adoption), polls the init pid for its end and then reads `exit-status`.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oci_spec::runtime::{
    BoxBuilder, Capabilities, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder,
    LinuxDeviceCgroupBuilder, LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxPidsBuilder, LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimitBuilder,
    PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};
use tokio::sync::{oneshot, watch};

use crate::attach::HostTerminal;
use crate::common::{pump_lines, validate_spec, OutputGate};
use crate::net::{Allocator, Attachment, NetworkConfig};
use crate::{
    Attach, AttachedIo, ContainerInfo, ContainerSpec, ExitStatus, Network, OutputSink,
    RunningContainer, Runtime, RuntimeError, StopOutcome, Stream,
};

/// Where runc keeps its state and where bundles live.
#[derive(Debug, Clone)]
pub struct RuncConfig {
    /// Directory for bundles, overlay layers and per-container files. Must be absolute and
    /// not on overlayfs (overlay upper dirs live here); it is created if missing.
    pub state_dir: PathBuf,
    /// The runc executable (looked up on `PATH` if it has no `/`). Default `runc`.
    pub runc_binary: PathBuf,
    /// First component of every container's cgroup path (`/<cgroup_parent>/<id>`).
    /// Default `slipway`.
    pub cgroup_parent: String,
    /// The dyno network for [`Network::Isolated`] containers: bridge, subnet, firewall.
    /// `None`: isolated containers get a network namespace with only a loopback interface.
    pub network: Option<NetworkConfig>,
    /// How many ready-made disks (see [`Limits::disk_bytes`](crate::Limits::disk_bytes)) are
    /// kept per size, to keep formatting and mounting off the start path. Default 2; 0 makes
    /// every disk at start.
    pub disk_pool: usize,
    /// Disk sizes whose pool is filled at once (others on their first use).
    pub disk_pool_sizes: Vec<u64>,
}

impl RuncConfig {
    /// The defaults for everything but the state directory.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        RuncConfig {
            state_dir: state_dir.into(),
            runc_binary: PathBuf::from("runc"),
            cgroup_parent: "slipway".to_string(),
            network: None,
            disk_pool: 2,
            disk_pool_sizes: Vec::new(),
        }
    }
}

/// How `runc run` ended, published by the monitor task after cleanup.
#[derive(Debug, Clone)]
struct Finished {
    status: ExitStatus,
    /// The container's pid if runc had written the pid file, i.e. the container did start.
    pid: Option<u32>,
    /// Without a pid: the errors runc logged (`runc.log`), read before the bundle went.
    runc_error: Option<String>,
}

type Active = Arc<Mutex<HashMap<String, watch::Receiver<Option<Finished>>>>>;

/// A directory of the "stack" (the host's or a stack rootfs's) and how it appears in the
/// container's rootfs.
#[derive(Debug, Clone)]
enum StackEntry {
    /// `source` is recursively bind-mounted read-only at `/<name>`.
    Dir { name: String, source: PathBuf },
    /// Recreated as a symlink with the same target (merged-/usr systems).
    Symlink(String, PathBuf),
}

/// The stack entries of `root`: each of `names` that is a directory or a symlink there.
/// Anything else (missing, a plain file) is left out.
fn stack_entries(root: &Path, names: &[&str]) -> std::io::Result<Vec<StackEntry>> {
    let mut stack = Vec::new();
    for name in names {
        let source = root.join(name);
        match std::fs::symlink_metadata(&source) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = std::fs::read_link(&source)?;
                stack.push(StackEntry::Symlink(name.to_string(), target));
            }
            Ok(meta) if meta.is_dir() => stack.push(StackEntry::Dir {
                name: name.to_string(),
                source,
            }),
            _ => {}
        }
    }
    Ok(stack)
}

struct Inner {
    state_dir: PathBuf,
    runc_root: PathBuf,
    containers_dir: PathBuf,
    runc_binary: PathBuf,
    cgroup_parent: String,
    /// The host stack ([`Rootfs::Host`](crate::Rootfs::Host)), inspected once.
    stack: Vec<StackEntry>,
    /// False on cgroup v1 hosts without swap accounting (no `memory.memsw.*`).
    memsw: bool,
    /// `RLIMIT_NOFILE` for containers: [`NOFILE`] capped at our own hard limit.
    nofile: u64,
    active: Active,
    /// The dyno network and its address allocator (see `net.rs`).
    network: Option<(NetworkConfig, Mutex<Allocator>)>,
    /// Containers whose memory cgroup saw an OOM kill (R15).
    oom_kills: crate::oom::OomKills,
    /// Per-container disks and their pools (`disk.rs`).
    disks: Arc<crate::disk::Disks>,
}

/// The runc-backed [`Runtime`]. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct RuncRuntime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RuncRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuncRuntime")
            .field("state_dir", &self.inner.state_dir)
            .field("runc_binary", &self.inner.runc_binary)
            .finish()
    }
}

const STACK_DIRS: [&str; 8] = [
    "usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc",
];
/// A stack rootfs's directories that containers see: the host's set plus `var` and `opt`,
/// which a stack built for tenants holds nothing secret in (the host's `/var` does). Its
/// `root`, `home`, `run`, `srv` and the like are left out, as they are for the host.
const ROOTFS_DIRS: [&str; 10] = [
    "usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "var", "opt",
];
const NOFILE: u64 = 65536;
const PID_POLL: Duration = Duration::from_millis(2);
const GONE_POLL: Duration = Duration::from_millis(10);
const KILL_WAIT: Duration = Duration::from_secs(30);
/// How long the kernel gets to destroy a stopped container's network namespace and veth pair
/// before the runtime deletes a veth still there.
const VETH_GRACE: Duration = Duration::from_secs(2);

fn io_err<'a>(
    id: &'a str,
    action: &'static str,
) -> impl FnOnce(std::io::Error) -> RuntimeError + 'a {
    move |source| RuntimeError::Io {
        id: id.to_string(),
        action,
        source,
    }
}

impl RuncRuntime {
    /// Prepares the state directory. Does not touch containers left by a previous instance:
    /// [`Runtime::list`] reports them and [`Runtime::stop`] removes them.
    pub fn new(config: RuncConfig) -> Result<RuncRuntime, RuntimeError> {
        const NEW: &str = "(runtime)";
        if !config.state_dir.is_absolute() {
            return Err(RuntimeError::InvalidSpec {
                id: NEW.into(),
                reason: format!(
                    "state_dir {} must be an absolute path",
                    config.state_dir.display()
                ),
            });
        }
        if crate::common::validate_id(&config.cgroup_parent).is_err() {
            return Err(RuntimeError::InvalidSpec {
                id: NEW.into(),
                reason: format!(
                    "cgroup_parent {:?} may only contain [A-Za-z0-9_.-]",
                    config.cgroup_parent
                ),
            });
        }
        let runc_root = config.state_dir.join("runc");
        let containers_dir = config.state_dir.join("containers");
        for dir in [&runc_root, &containers_dir] {
            std::fs::create_dir_all(dir).map_err(io_err(NEW, "create the state dir for"))?;
        }
        let state_dir = config
            .state_dir
            .canonicalize()
            .map_err(io_err(NEW, "resolve the state dir for"))?;
        let text = state_dir.to_string_lossy();
        if text.contains([',', ':', '\\']) {
            return Err(RuntimeError::InvalidSpec {
                id: NEW.into(),
                reason: format!(
                    "state_dir {text} must not contain `,`, `:` or `\\` (overlay mount options)"
                ),
            });
        }
        let stack = stack_entries(Path::new("/"), &STACK_DIRS)
            .map_err(io_err(NEW, "inspect the host for"))?;
        let network = match config.network {
            None => None,
            Some(net) => {
                // Addresses of containers a previous instance left running stay theirs, and
                // so does their add-on reach in the firewall installed anew.
                let running: Vec<Attachment> = std::fs::read_dir(state_dir.join("containers"))
                    .map_err(io_err(NEW, "list the bundles of"))?
                    .filter_map(|e| e.ok())
                    .filter_map(|e| Attachment::read(&e.path()))
                    .collect();
                crate::net::setup_host(&net, &running).map_err(|reason| RuntimeError::Network {
                    id: NEW.into(),
                    reason,
                })?;
                let used = running.into_iter().map(|a| a.address);
                let allocator = Allocator::new(net.clone(), used);
                Some((net, Mutex::new(allocator)))
            }
        };
        let disks = crate::disk::Disks::new(
            state_dir.join("disks"),
            config.disk_pool,
            &config.disk_pool_sizes,
        )
        .map_err(io_err(NEW, "prepare the disk pool of"))?;
        let memory_v1 = Path::new("/sys/fs/cgroup/memory");
        let memsw = !memory_v1.is_dir() || memory_v1.join("memory.memsw.limit_in_bytes").exists();
        Ok(RuncRuntime {
            inner: Arc::new(Inner {
                runc_root: state_dir.join("runc"),
                containers_dir: state_dir.join("containers"),
                state_dir,
                runc_binary: config.runc_binary,
                cgroup_parent: config.cgroup_parent,
                stack,
                memsw,
                nofile: own_nofile_hard_limit().map_or(NOFILE, |hard| hard.min(NOFILE)),
                active: Arc::default(),
                network,
                oom_kills: Default::default(),
                disks,
            }),
        })
    }
}

impl Inner {
    /// Watches the container's memory cgroup for OOM kills (see `oom.rs`).
    fn watch_oom(&self, id: &str) {
        let dir = PathBuf::from(format!("/sys/fs/cgroup/memory/{}/{id}", self.cgroup_parent));
        self.oom_kills.watch(id, dir);
    }

    fn bundle(&self, id: &str) -> PathBuf {
        self.containers_dir.join(id)
    }

    fn runc(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.runc_binary);
        cmd.arg("--root").arg(&self.runc_root);
        cmd
    }

    /// Runs a short runc subcommand; `Err(stderr)` if it failed.
    async fn runc_cmd(
        &self,
        id: &str,
        action: &'static str,
        args: &[&str],
    ) -> Result<(), RuntimeError> {
        let out = self
            .runc()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(io_err(id, "spawn runc for"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(RuntimeError::Runc {
                id: id.to_string(),
                action,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }

    /// `runc list`: id → (status, pid).
    async fn runc_list(&self) -> Result<HashMap<String, (String, u32)>, RuntimeError> {
        let out = self
            .runc()
            .args(["list", "--format", "json"])
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(io_err("(all)", "spawn runc to list"))?;
        let runc_err = |stderr: String| RuntimeError::Runc {
            id: "(all)".into(),
            action: "list",
            stderr,
        };
        if !out.status.success() {
            return Err(runc_err(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        #[derive(serde::Deserialize)]
        struct Item {
            id: String,
            #[serde(default)]
            pid: u32,
            #[serde(default)]
            status: String,
        }
        let items: Option<Vec<Item>> = serde_json::from_slice(&out.stdout)
            .map_err(|e| runc_err(format!("unparsable `runc list` output: {e}")))?;
        Ok(items
            .unwrap_or_default()
            .into_iter()
            .map(|i| (i.id, (i.status, i.pid)))
            .collect())
    }

    /// What [`AttachControl::hangup`](crate::AttachControl::hangup) does for an attached
    /// container: `runc kill --all <id> HUP`, for a terminal as for pipes. Closing a
    /// terminal's master would be a real hang-up too, but it would also end the output before
    /// the process's last words (a `trap ... HUP` that says goodbye) and kill the status
    /// wrapper, the session leader, so the exit status would be lost. It runs runc and waits
    /// for it (some milliseconds): the trait's method is not async. A container that is
    /// already gone is not an error.
    fn hangup(&self, id: &str) -> crate::attach::Hangup {
        let runc = self.runc_binary.clone();
        let root = self.runc_root.clone();
        let id = id.to_string();
        Box::new(move || {
            let out = std::process::Command::new(&runc)
                .arg("--root")
                .arg(&root)
                .args(["kill", "--all", &id, "HUP"])
                .stdin(Stdio::null())
                .output()?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            if out.status.success()
                || stderr.contains("does not exist")
                || stderr.contains("not running")
            {
                Ok(())
            } else {
                Err(std::io::Error::other(format!(
                    "runc kill HUP for container {id} failed: {}",
                    stderr.trim()
                )))
            }
        })
    }

    /// After a container's end: removes every trace of it and stops tracking it as active.
    async fn forget(&self, id: &str) {
        self.cleanup(id).await;
        self.active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// Removes every trace of a container: runc state, leftover mounts, the bundle.
    async fn cleanup(&self, id: &str) {
        if self.runc_root.join(id).exists() {
            if let Err(e) = self
                .runc_cmd(id, "delete", &["delete", "--force", id])
                .await
            {
                tracing::warn!(id, error = %e, "runc delete failed");
            }
        }
        let bundle = self.bundle(id);
        let attachment = Attachment::read(&bundle);
        let id = id.to_string();
        let result = tokio::task::spawn_blocking(move || {
            crate::mounts::unmount_under(&bundle);
            match std::fs::remove_dir_all(&bundle) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        })
        .await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(id, error = %e, "removing the bundle failed"),
            Err(e) => tracing::warn!(id, error = %e, "cleanup task failed"),
        }
        // With the container's processes gone and its namespace unmounted with the bundle, the
        // kernel destroys the namespace, and the veth pair with it, on its own (deleting the
        // veth here took ~15 ms of RCU waits on every stop, on the path of every build step).
        // Whatever is left (a namespace something else still holds) is removed in the
        // background.
        if let Some(attachment) = attachment {
            let veth = attachment.veth.clone();
            tokio::task::spawn_blocking(move || {
                std::thread::sleep(VETH_GRACE);
                crate::net::delete_veth(&veth);
            });
            // The address lived inside the namespace, which is gone with the bundle. Its
            // add-on reach goes first: an address whose reach could not be removed is never
            // handed out again by this instance (a restart rebuilds the firewall without it).
            if let Some((config, allocator)) = &self.network {
                let (config, revoked) = (config.clone(), attachment.clone());
                let revoked = tokio::task::spawn_blocking(move || {
                    crate::net::revoke_addon_reach(&config, &revoked)
                })
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
                if let Err(reason) = revoked {
                    tracing::error!(
                        id,
                        reason,
                        "removing a container's add-on reach failed; its address stays taken"
                    );
                    return;
                }
                allocator
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .free(attachment.address);
            }
        }
    }

    /// Creates the network namespace of an isolated container (see `net.rs`) and returns its
    /// address on the dyno network, if the runtime has one.
    async fn setup_network(
        &self,
        id: &str,
        bundle: &Path,
        addon_ports: &[u16],
    ) -> Result<Option<std::net::IpAddr>, RuntimeError> {
        let net_err = |reason: String| RuntimeError::Network {
            id: id.to_string(),
            reason,
        };
        let attach = match &self.network {
            None => None,
            Some((config, allocator)) => {
                let mut attachment = allocator
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .allocate()
                    .ok_or_else(|| {
                        net_err(format!(
                            "the dyno subnet {} has no free address left; stop some containers \
                             or choose a larger --dyno-subnet",
                            config.subnet
                        ))
                    })?;
                attachment.addon_ports = crate::net::addon_ports_of(config, addon_ports);
                // Recorded before anything exists, so that cleanup frees what was made.
                if let Err(e) = attachment.write(bundle) {
                    allocator
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .free(attachment.address);
                    return Err(io_err(id, "record the address of")(e));
                }
                Some((config.clone(), attachment))
            }
        };
        let netns = bundle.join(crate::net::NETNS_FILE);
        let address = attach
            .as_ref()
            .map(|(_, a)| std::net::IpAddr::V4(a.address));
        let (tx, rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("slipway-netns".into())
            .spawn(move || {
                let result = crate::net::create_netns(&netns, attach.as_ref().map(|(c, a)| (c, a)));
                let _ = tx.send(result.map(|()| attach));
            })
            .map_err(io_err(id, "start the network set-up of"))?;
        let attach = match rx.await {
            Ok(Ok(attach)) => attach,
            Ok(Err(reason)) => return Err(net_err(reason)),
            Err(_) => return Err(net_err("the network set-up thread died".into())),
        };
        // From the host's namespace (the set-up thread, and any process it would fork, is in
        // the container's): the firewall's add-on reach, before the container runs.
        if let Some((config, attachment)) = attach.filter(|(_, a)| !a.addon_ports.is_empty()) {
            tokio::task::spawn_blocking(move || {
                crate::net::allow_addon_reach(&config, &attachment)
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()))
            .map_err(net_err)?;
        }
        Ok(address)
    }

    /// Writes the bundle (rootfs skeleton, layers, labels, config.json).
    /// `console`: the first process gets a terminal of this size (columns, rows).
    fn write_bundle(
        &self,
        spec: &ContainerSpec,
        bundle: &Path,
        console: Option<(u16, u16)>,
    ) -> Result<(), RuntimeError> {
        let id = spec.id.as_str();
        let rootfs = bundle.join("rootfs");
        let upper = crate::disk::layers_dir(bundle).join("upper");
        let stack = match &spec.rootfs {
            crate::Rootfs::Host => self.stack.clone(),
            crate::Rootfs::Dir(dir) => {
                stack_entries(dir, &ROOTFS_DIRS).map_err(io_err(id, "inspect the stack of"))?
            }
        };
        for dir in ["proc", "dev", "sys", "tmp", "app"] {
            std::fs::create_dir_all(rootfs.join(dir))
                .map_err(io_err(id, "create the rootfs of"))?;
        }
        for entry in &stack {
            match entry {
                StackEntry::Dir { name, .. } => std::fs::create_dir(rootfs.join(name)),
                StackEntry::Symlink(name, target) => {
                    std::os::unix::fs::symlink(target, rootfs.join(name))
                }
            }
            .map_err(io_err(id, "create the rootfs of"))?;
        }
        // The server runs with umask 077; the container's user must traverse its root and
        // mountpoints (runc gives a tmpfs such as /dev the mode of its mountpoint).
        let mut skeleton = vec![rootfs.clone()];
        skeleton.extend(["proc", "dev", "sys", "app"].iter().map(|d| rootfs.join(d)));
        skeleton.extend(stack.iter().filter_map(|entry| match entry {
            StackEntry::Dir { name, .. } => Some(rootfs.join(name)),
            StackEntry::Symlink(..) => None,
        }));
        for dir in skeleton {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
                .map_err(io_err(id, "create the rootfs of"))?;
        }
        // runc gives a tmpfs the mode of its mountpoint, overriding `mode=`.
        std::fs::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777))
            .map_err(io_err(id, "create the rootfs of"))?;
        std::fs::create_dir(&upper).map_err(io_err(id, "create the writable layer of"))?;
        nix::unistd::chown(
            &upper,
            Some(nix::unistd::Uid::from_raw(spec.uid)),
            Some(nix::unistd::Gid::from_raw(spec.gid)),
        )
        .map_err(|e| io_err(id, "chown the writable layer of")(e.into()))?;
        if spec.app_dir.is_some() {
            std::fs::create_dir(crate::disk::layers_dir(bundle).join("work"))
                .map_err(io_err(id, "create the overlay work dir of"))?;
        }
        let labels = serde_json::to_vec(&spec.labels)
            .map_err(|e| io_err(id, "serialise the labels of")(e.into()))?;
        std::fs::write(bundle.join("labels.json"), labels)
            .map_err(io_err(id, "write the labels of"))?;
        let oci = self.oci_spec(spec, bundle, &stack, console).map_err(|e| {
            RuntimeError::InvalidSpec {
                id: id.to_string(),
                reason: format!("cannot build the OCI config: {e}"),
            }
        })?;
        let json = serde_json::to_vec_pretty(&oci)
            .map_err(|e| io_err(id, "serialise the OCI config of")(e.into()))?;
        std::fs::write(bundle.join("config.json"), json)
            .map_err(io_err(id, "write the OCI config of"))?;
        Ok(())
    }

    fn oci_spec(
        &self,
        spec: &ContainerSpec,
        bundle: &Path,
        stack: &[StackEntry],
        console: Option<(u16, u16)>,
    ) -> Result<Spec, oci_spec::OciSpecError> {
        let mount = |dest: &str, typ: &str, source: &str, opts: &[&str]| {
            MountBuilder::default()
                .destination(dest)
                .typ(typ)
                .source(source)
                .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .build()
        };
        let mut mounts: Vec<Mount> = vec![
            mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
            mount(
                "/dev",
                "tmpfs",
                "tmpfs",
                &["nosuid", "strictatime", "mode=755", "size=65536k"],
            )?,
            mount(
                "/dev/pts",
                "devpts",
                "devpts",
                &[
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                    "gid=5",
                ],
            )?,
            mount(
                "/dev/shm",
                "tmpfs",
                "shm",
                &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            )?,
            mount(
                "/dev/mqueue",
                "mqueue",
                "mqueue",
                &["nosuid", "noexec", "nodev"],
            )?,
            mount(
                "/sys",
                "sysfs",
                "sysfs",
                &["nosuid", "noexec", "nodev", "ro"],
            )?,
            mount(
                "/sys/fs/cgroup",
                "cgroup",
                "cgroup",
                &["nosuid", "noexec", "nodev", "relatime", "ro"],
            )?,
        ];
        match crate::disk::tmp_source(bundle) {
            Some(tmp) => mounts.push(mount(
                "/tmp",
                "bind",
                &tmp.to_string_lossy(),
                &["rbind", "rw", "nosuid", "nodev"],
            )?),
            None => mounts.push(mount(
                "/tmp",
                "tmpfs",
                "tmpfs",
                &["nosuid", "nodev", "mode=1777"],
            )?),
        }
        for entry in stack {
            if let StackEntry::Dir { name, source } = entry {
                mounts.push(mount(
                    &format!("/{name}"),
                    "bind",
                    &source.to_string_lossy(),
                    &["rbind", "ro", "rro", "nosuid", "nodev"],
                )?);
            }
        }
        let layers = crate::disk::layers_dir(bundle);
        let upper = layers.join("upper");
        let binds_app = spec.binds.iter().any(|b| b.target == "/app");
        if let Some(app_dir) = &spec.app_dir {
            let data = format!(
                "lowerdir={},upperdir={},workdir={}",
                app_dir.display(),
                upper.display(),
                layers.join("work").display()
            );
            mounts.push(mount("/app", "overlay", "overlay", &[&data, "nodev"])?);
        } else if !binds_app {
            let upper = upper.to_string_lossy();
            mounts.push(mount("/app", "bind", &upper, &["rbind", "rw", "nodev"])?);
        }
        for bind in &spec.binds {
            let source = bind.source.to_string_lossy();
            let opts: &[&str] = if bind.readonly {
                &["rbind", "ro", "rro"]
            } else {
                &["rbind", "rw"]
            };
            mounts.push(mount(&bind.target, "bind", &source, opts)?);
        }

        let no_caps = || Capabilities::new();
        let mut process = ProcessBuilder::default().terminal(console.is_some());
        if let Some((cols, rows)) = console {
            process = process.console_size(
                BoxBuilder::default()
                    .width(u64::from(cols))
                    .height(u64::from(rows))
                    .build()?,
            );
        }
        let process = process
            .user(UserBuilder::default().uid(spec.uid).gid(spec.gid).build()?)
            .args(spec.args.clone())
            .env(
                spec.env
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>(),
            )
            .cwd(&spec.cwd)
            .capabilities(
                LinuxCapabilitiesBuilder::default()
                    .bounding(no_caps())
                    .effective(no_caps())
                    .inheritable(no_caps())
                    .permitted(no_caps())
                    .ambient(no_caps())
                    .build()?,
            )
            .rlimits(vec![PosixRlimitBuilder::default()
                .typ(PosixRlimitType::RlimitNofile)
                .hard(self.nofile)
                .soft(self.nofile)
                .build()?])
            .no_new_privileges(true)
            .build()?;

        // Deny all devices; runc itself allows its standard ones (null, zero, tty, ...).
        let deny_all = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()?;
        let mut resources = LinuxResourcesBuilder::default().devices(vec![deny_all]);
        if let Some(bytes) = spec.limits.memory_bytes {
            let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
            let mut memory = LinuxMemoryBuilder::default().limit(bytes);
            if self.memsw {
                memory = memory.swap(bytes);
            }
            if let Some(soft) = spec.limits.memory_reservation_bytes {
                memory = memory.reservation(i64::try_from(soft).unwrap_or(i64::MAX).min(bytes));
            }
            resources = resources.memory(memory.build()?);
        }
        if let Some(pids) = spec.limits.pids {
            resources = resources.pids(LinuxPidsBuilder::default().limit(pids).build()?);
        }
        if let Some(shares) = spec.limits.cpu_shares {
            resources = resources.cpu(LinuxCpuBuilder::default().shares(shares).build()?);
        }
        let namespaces = [
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Ipc,
        ]
        .into_iter()
        .map(|typ| LinuxNamespaceBuilder::default().typ(typ).build())
        .collect::<Result<Vec<_>, _>>()?;
        let mut namespaces = namespaces;
        if spec.network == Network::Isolated {
            namespaces.push(
                LinuxNamespaceBuilder::default()
                    .typ(LinuxNamespaceType::Network)
                    .path(bundle.join(crate::net::NETNS_FILE))
                    .build()?,
            );
        }
        let linux = LinuxBuilder::default()
            .namespaces(namespaces)
            .resources(resources.build()?)
            .cgroups_path(format!("/{}/{}", self.cgroup_parent, spec.id))
            .masked_paths(oci_spec::runtime::get_default_maskedpaths())
            .readonly_paths(oci_spec::runtime::get_default_readonly_paths())
            .seccomp(crate::seccomp::default_profile())
            .build()?;
        let hostname = if spec.hostname.is_empty() {
            spec.id.chars().take(63).collect()
        } else {
            spec.hostname.clone()
        };
        SpecBuilder::default()
            .version("1.0.2-dev")
            .root(
                RootBuilder::default()
                    .path(bundle.join("rootfs"))
                    .readonly(true)
                    .build()?,
            )
            .mounts(mounts)
            .process(process)
            .hostname(hostname)
            .linux(linux)
            .build()
    }
}

/// Maps `runc run`'s exit status onto the container's.
fn map_runc_exit(status: std::process::ExitStatus) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) if (129..=128 + 64).contains(&code) => ExitStatus {
            code: None,
            signal: Some(code - 128),
        },
        (code, signal) => ExitStatus { code, signal },
    }
}

/// Our hard `RLIMIT_NOFILE` (raising it may be forbidden even for root, e.g. in a sandbox).
fn own_nofile_hard_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let hard = line.split_whitespace().nth(4)?;
    if hard == "unlimited" {
        return Some(u64::MAX);
    }
    hard.parse().ok()
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// A process's start time (field 22 of /proc/<pid>/stat) and whether it is a zombie.
fn proc_start(pid: u32) -> Option<(u64, bool)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let state = fields.first()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((start, matches!(*state, "Z" | "X")))
}

/// Runs `runc run ...` (`$2...`) and writes its exit status to the file `$1`.
///
/// runc runs with umask 022 (the server's is 077): the cgroup directories it creates must be
/// readable by the container's user, who reads its own limits there.
const STATUS_WRAPPER: &str = r#"status_file=$1; shift; (umask 022 && exec "$@"); s=$?; echo "$s" > "$status_file"; exit "$s""#;
/// Where [`STATUS_WRAPPER`] records `runc run`'s exit status, in the bundle.
const EXIT_STATUS_FILE: &str = "exit-status";
const STDOUT_FIFO: &str = "stdout.fifo";
/// Where `runc run` writes its pid file, in the bundle.
const PID_FILE: &str = "init.pid";
/// runc's own log (JSON lines), in the bundle.
const RUNC_LOG: &str = "runc.log";
const STDERR_FIFO: &str = "stderr.fifo";
/// How often the exit of an adopted container (not our child) is checked.
const ADOPTED_POLL: Duration = Duration::from_millis(100);

/// Creates the bundle's output FIFOs and opens them read-write for the container: a FIFO
/// with a reader never gives its writers EPIPE, so the dyno keeps running while no server
/// reads (its writes block once the pipe buffer, 64 KiB, is full).
fn open_output_fifos(bundle: &Path) -> std::io::Result<(std::fs::File, std::fs::File)> {
    let open = |name: &str| -> std::io::Result<std::fs::File> {
        let path = bundle.join(name);
        match nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)) {
            Ok(()) => {}
            Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
    };
    Ok((open(STDOUT_FIFO)?, open(STDERR_FIFO)?))
}

/// Opens the read ends of a bundle's output FIFOs (non-blocking; EOF once every writer, i.e.
/// the container, is gone).
fn open_fifo_readers(
    bundle: &Path,
) -> std::io::Result<(
    tokio::net::unix::pipe::Receiver,
    tokio::net::unix::pipe::Receiver,
)> {
    let open =
        |name: &str| tokio::net::unix::pipe::OpenOptions::new().open_receiver(bundle.join(name));
    Ok((open(STDOUT_FIFO)?, open(STDERR_FIFO)?))
}

/// The messages of the errors runc logged in the bundle's `runc.log`, one a line, if any.
fn read_runc_errors(bundle: &Path) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        level: String,
        #[serde(default)]
        msg: String,
    }
    let log = std::fs::read_to_string(bundle.join(RUNC_LOG)).ok()?;
    let errors: Vec<String> = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Entry>(line).ok())
        .filter(|entry| matches!(entry.level.as_str(), "error" | "fatal"))
        .map(|entry| entry.msg)
        .collect();
    (!errors.is_empty()).then(|| errors.join("\n"))
}

/// The exit status [`STATUS_WRAPPER`] recorded, if it did.
fn read_exit_status(bundle: &Path) -> Option<ExitStatus> {
    let code: i32 = std::fs::read_to_string(bundle.join(EXIT_STATUS_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(if (129..=128 + 64).contains(&code) {
        ExitStatus {
            code: None,
            signal: Some(code - 128),
        }
    } else {
        ExitStatus {
            code: Some(code),
            signal: None,
        }
    })
}

/// Opens the gate when dropped unless disarmed: if `start` is cancelled while waiting for the
/// pid file, the container's output still reaches the sink.
struct OpenOnDrop(Option<OutputGate>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        if let Some(gate) = self.0.take() {
            gate.open();
        }
    }
}

impl RuncRuntime {
    /// Everything before `runc run`: checks the spec, creates the bundle, gives the container
    /// its disk, writes the bundle (with a terminal of size `console`, if asked) and sets up
    /// its network. Returns the bundle and the container's address; on error nothing is left.
    async fn prepare(
        &self,
        spec: &ContainerSpec,
        console: Option<(u16, u16)>,
    ) -> Result<(PathBuf, Option<std::net::IpAddr>), RuntimeError> {
        validate_spec(spec)?;
        let inner = &self.inner;
        let id = spec.id.clone();
        if let Some(app_dir) = &spec.app_dir {
            if app_dir.to_string_lossy().contains([',', ':', '\\']) {
                return Err(RuntimeError::InvalidSpec {
                    id,
                    reason: format!(
                        "app_dir {} must not contain `,`, `:` or `\\` (overlay mount options)",
                        app_dir.display()
                    ),
                });
            }
        }
        if spec.hostname.len() > 64 {
            return Err(RuntimeError::InvalidSpec {
                id,
                reason: format!("hostname {:?} is longer than 64 bytes", spec.hostname),
            });
        }
        let bundle = inner.bundle(&id);
        match std::fs::create_dir(&bundle) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(RuntimeError::AlreadyExists { id });
            }
            Err(e) => return Err(io_err(&id, "create the bundle of")(e)),
        }
        if let Some(bytes) = spec.limits.disk_bytes {
            let disks = inner.disks.clone();
            let disk_bundle = bundle.clone();
            let attached = tokio::task::spawn_blocking(move || disks.attach(&disk_bundle, bytes))
                .await
                .unwrap_or_else(|e| Err(crate::disk::DiskError::Attach(std::io::Error::other(e))));
            if let Err(e) = attached {
                inner.cleanup(&id).await;
                return Err(io_err(&id, "give a disk to")(e.into()));
            }
        }
        if let Err(e) = inner.write_bundle(spec, &bundle, console) {
            inner.cleanup(&id).await;
            return Err(e);
        }
        let address = match spec.network {
            Network::Host => None,
            Network::Isolated => match inner
                .setup_network(&id, &bundle, &spec.allowed_host_ports)
                .await
            {
                Ok(address) => address,
                Err(e) => {
                    inner.cleanup(&id).await;
                    return Err(e);
                }
            },
        };
        Ok((bundle, address))
    }

    /// Spawns `runc run` for a prepared bundle with these stdin, stdout and stderr, under a
    /// tiny shell that records its exit status in the bundle, so that a server that adopts the
    /// container later (it is then not our child) can learn it. `ctty`: stdin is a terminal,
    /// which becomes the controlling terminal of a session of its own (see `start_attached`);
    /// otherwise it runs in a process group of its own. On error the bundle is removed.
    async fn spawn_runc(
        &self,
        id: &str,
        bundle: &Path,
        stdio: [Stdio; 3],
        ctty: bool,
    ) -> Result<tokio::process::Child, RuntimeError> {
        let inner = &self.inner;
        let mut cmd = if ctty {
            let setsid = match crate::attach::setsid_binary() {
                Ok(setsid) => setsid,
                Err(e) => {
                    inner.cleanup(id).await;
                    return Err(io_err(id, "give a terminal to")(e));
                }
            };
            let mut cmd = tokio::process::Command::new(setsid);
            cmd.arg("--ctty")
                .args(crate::attach::DEFAULT_SIGNALS)
                .arg("/bin/sh");
            cmd
        } else {
            let [env, reset] = crate::attach::DEFAULT_SIGNALS;
            let mut cmd = tokio::process::Command::new(env);
            cmd.arg(reset).arg("/bin/sh").process_group(0);
            cmd
        };
        let [stdin, stdout, stderr] = stdio;
        cmd.arg("-c")
            .arg(STATUS_WRAPPER)
            .arg("slipway-runc")
            .arg(bundle.join(EXIT_STATUS_FILE))
            .arg(&inner.runc_binary)
            .arg("--root")
            .arg(&inner.runc_root)
            .arg("--log")
            .arg(bundle.join(RUNC_LOG))
            .arg("--log-format")
            .arg("json")
            .arg("run")
            .arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(bundle.join(PID_FILE))
            .arg("--no-new-keyring")
            .arg(id)
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(false);
        match cmd.spawn() {
            Ok(child) => Ok(child),
            Err(e) => {
                inner.cleanup(id).await;
                Err(io_err(id, "spawn runc for")(e))
            }
        }
    }

    /// Watches a spawned `runc run`: a monitor task waits for it, then for `pumps` (the tasks
    /// draining its output), cleans up, drops `keep` and resolves `exited`. Returns once the
    /// container runs (runc wrote its pid file), or how runc ended if it never did.
    async fn supervise(
        &self,
        id: &str,
        address: Option<std::net::IpAddr>,
        mut child: tokio::process::Child,
        pumps: Vec<tokio::task::JoinHandle<()>>,
        keep: Option<Arc<std::os::fd::OwnedFd>>,
    ) -> Result<RunningContainer, Finished> {
        let pid_file = self.inner.bundle(id).join(PID_FILE);
        let (watch_tx, mut watch_rx) = watch::channel(None);
        self.inner
            .active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), watch_rx.clone());
        let (exit_tx, exit_rx) = oneshot::channel();
        let monitor_inner = self.inner.clone();
        let monitor_id = id.to_string();
        let monitor_pid_file = pid_file.clone();
        tokio::spawn(async move {
            let id = monitor_id;
            let status = match child.wait().await {
                Ok(status) => map_runc_exit(status),
                Err(e) => {
                    tracing::warn!(id, error = %e, "waiting for runc failed");
                    ExitStatus {
                        code: None,
                        signal: None,
                    }
                }
            };
            for pump in pumps {
                let _ = pump.await;
            }
            drop(keep);
            let pid = read_pid(&monitor_pid_file);
            let runc_error = match pid {
                Some(_) => None,
                None => read_runc_errors(&monitor_inner.bundle(&id)),
            };
            monitor_inner.forget(&id).await;
            let _ = watch_tx.send(Some(Finished {
                status,
                pid,
                runc_error,
            }));
            let _ = exit_tx.send(status);
        });

        // Wait for the pid file (the container runs) or runc's exit (it failed, or the
        // container was so quick that it is already gone).
        let pid = loop {
            if let Some(pid) = read_pid(&pid_file) {
                break pid;
            }
            let finished = watch_rx.borrow_and_update().clone();
            if let Some(finished) = finished {
                match finished.pid {
                    Some(pid) => break pid,
                    None => return Err(finished),
                }
            }
            tokio::select! {
                _ = watch_rx.changed() => {}
                _ = tokio::time::sleep(PID_POLL) => {}
            }
        };
        self.inner.watch_oom(id);
        Ok(RunningContainer {
            id: id.to_string(),
            pid,
            address,
            exited: exit_rx,
        })
    }
}

/// The error for a container runc never started: what runc said on stderr (`held_stderr`, if
/// the caller kept it) or in its log, or at least its exit status.
fn never_started(id: &str, held_stderr: String, finished: Finished) -> RuntimeError {
    let stderr = if !held_stderr.is_empty() {
        held_stderr
    } else if let Some(logged) = finished.runc_error {
        logged
    } else {
        format!(
            "runc exited with status {} before starting the container",
            finished.status
        )
    };
    RuntimeError::Runc {
        id: id.to_string(),
        action: "run",
        stderr,
    }
}

#[async_trait::async_trait]
impl Runtime for RuncRuntime {
    async fn start(
        &self,
        spec: ContainerSpec,
        output: OutputSink,
    ) -> Result<RunningContainer, RuntimeError> {
        let (bundle, address) = self.prepare(&spec, None).await?;
        let inner = &self.inner;
        let id = spec.id;
        // The container's stdout/stderr are FIFOs in the bundle, opened read-write for the
        // container so that writes never fail with EPIPE while no server reads them (the
        // server may restart and re-open them with `adopt`).
        let (stdout_fifo, stderr_fifo) = match open_output_fifos(&bundle) {
            Ok(fifos) => fifos,
            Err(e) => {
                inner.cleanup(&id).await;
                return Err(io_err(&id, "create the output FIFOs of")(e));
            }
        };
        let readers = match open_fifo_readers(&bundle) {
            Ok(readers) => readers,
            Err(e) => {
                inner.cleanup(&id).await;
                return Err(io_err(&id, "open the output FIFOs of")(e));
            }
        };
        let stdio = [
            Stdio::null(),
            Stdio::from(stdout_fifo),
            Stdio::from(stderr_fifo),
        ];
        let child = self.spawn_runc(&id, &bundle, stdio, false).await?;

        // Lines are held back until the container runs, so runc's own errors are not output.
        let gate = OutputGate::closed(output);
        let mut guard = OpenOnDrop(Some(gate.clone()));
        let (stdout_reader, stderr_reader) = readers;
        let pumps: Vec<_> = vec![
            tokio::spawn(pump_lines(stdout_reader, Stream::Stdout, gate.clone())),
            tokio::spawn(pump_lines(stderr_reader, Stream::Stderr, gate.clone())),
        ];
        match self.supervise(&id, address, child, pumps, None).await {
            Ok(running) => Ok(running),
            Err(finished) => {
                guard.0 = None;
                Err(never_started(&id, gate.held_stderr(), finished))
            }
        }
    }

    async fn start_attached(
        &self,
        spec: ContainerSpec,
        attach: Attach,
    ) -> Result<(RunningContainer, AttachedIo), RuntimeError> {
        let console = match attach {
            Attach::Tty { cols, rows } => Some((cols, rows)),
            Attach::Pipes => None,
        };
        let (bundle, address) = self.prepare(&spec, console).await?;
        let id = spec.id;
        let (child, plumbing) = match crate::attach::plumb(attach, HostTerminal::Raw) {
            Ok(plumbed) => plumbed,
            Err(e) => {
                self.inner.cleanup(&id).await;
                return Err(io_err(&id, "open the terminal or pipes of")(e));
            }
        };
        let stdio = child.map(Stdio::from);
        // Our copies of the child's ends are closed once it is spawned, so the output ends
        // when runc and the container are gone.
        let child = self
            .spawn_runc(&id, &bundle, stdio, console.is_some())
            .await?;
        let running = self
            .supervise(&id, address, child, Vec::new(), plumbing.master.clone())
            .await
            .map_err(|finished| never_started(&id, String::new(), finished))?;
        let hangup = self.inner.hangup(&id);
        Ok((running, plumbing.into_attached(hangup)))
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<StopOutcome, RuntimeError> {
        crate::common::validate_id(id)?;
        let inner = &self.inner;
        let active = inner
            .active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned();
        if active.is_none() && !inner.bundle(id).exists() {
            return Ok(StopOutcome::NotFound);
        }
        // For adopted containers: the init pid and its start time, to detect its end.
        let adopted_init = if active.is_none() {
            match inner.runc_list().await?.get(id) {
                Some((status, pid)) if status != "stopped" && *pid > 0 => {
                    proc_start(*pid).map(|(start, _)| (*pid, start))
                }
                _ => None,
            }
        } else {
            None
        };
        let is_gone = |adopted_init: Option<(u32, u64)>| match adopted_init {
            None => true,
            Some((pid, start)) => match proc_start(pid) {
                Some((s, zombie)) => s != start || zombie,
                None => true,
            },
        };
        let wait_gone = |limit: Duration| {
            let mut active = active.clone();
            async move {
                let wait = async {
                    match active.as_mut() {
                        Some(rx) => {
                            let _ = rx.wait_for(|f| f.is_some()).await;
                        }
                        None => {
                            while !is_gone(adopted_init) {
                                tokio::time::sleep(GONE_POLL).await;
                            }
                        }
                    }
                };
                tokio::time::timeout(limit, wait).await.is_ok()
            }
        };
        if active.is_none() && adopted_init.is_none() {
            // Not running (a leftover from a crash): just remove it.
            inner.cleanup(id).await;
            return Ok(StopOutcome::NotFound);
        }

        // A zero grace period means SIGKILL at once (Heroku's R10 and R15 kills).
        let first_signal = if grace.is_zero() { "KILL" } else { "TERM" };
        let outcome = match inner
            .runc_cmd(id, "kill", &["kill", "--all", id, first_signal])
            .await
        {
            Err(e) => {
                // runc no longer knows it (it exited and was removed just now): already gone.
                // Not running any more (it exited on its own just now)?
                if is_missing_container(&e) || wait_gone(Duration::from_secs(5)).await {
                    StopOutcome::NotFound
                } else {
                    return Err(e);
                }
            }
            Ok(()) => {
                if !grace.is_zero() && wait_gone(grace).await {
                    StopOutcome::Terminated
                } else {
                    if let Err(e) = inner
                        .runc_cmd(id, "kill", &["kill", "--all", id, "KILL"])
                        .await
                    {
                        tracing::debug!(id, error = %e, "runc kill KILL failed (already gone?)");
                    }
                    if !wait_gone(KILL_WAIT).await {
                        return Err(RuntimeError::Runc {
                            id: id.to_string(),
                            action: "kill",
                            stderr: format!(
                                "the container survived SIGKILL for {} s",
                                KILL_WAIT.as_secs()
                            ),
                        });
                    }
                    StopOutcome::Killed
                }
            }
        };
        if active.is_none() {
            inner.cleanup(id).await;
        }
        Ok(outcome)
    }

    async fn adopt(&self, id: &str, output: OutputSink) -> Result<RunningContainer, RuntimeError> {
        crate::common::validate_id(id)?;
        let inner = &self.inner;
        let bundle = inner.bundle(id);
        if !bundle.join("labels.json").exists() {
            return Err(io_err(id, "adopt")(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such container",
            )));
        }
        let (watch_tx, watch_rx) = watch::channel(None);
        {
            let mut active = inner.active.lock().unwrap_or_else(|e| e.into_inner());
            if active.contains_key(id) {
                return Err(RuntimeError::AlreadyExists { id: id.to_string() });
            }
            active.insert(id.to_string(), watch_rx);
        }
        inner.watch_oom(id);
        let pid = read_pid(&bundle.join(PID_FILE));
        let init = pid.and_then(|pid| {
            proc_start(pid)
                .filter(|(_, zombie)| !zombie)
                .map(|(start, _)| (pid, start))
        });
        let gate = OutputGate::open_now(output);
        let pumps: Vec<_> = match open_fifo_readers(&bundle) {
            Ok((stdout, stderr)) => vec![
                tokio::spawn(pump_lines(stdout, Stream::Stdout, gate.clone())),
                tokio::spawn(pump_lines(stderr, Stream::Stderr, gate)),
            ],
            Err(e) => {
                tracing::warn!(id, error = %e, "cannot re-open the output of an adopted container; its output is lost");
                Vec::new()
            }
        };
        let (exit_tx, exit_rx) = oneshot::channel();
        let monitor_inner = self.inner.clone();
        let monitor_id = id.to_string();
        tokio::spawn(async move {
            let id = monitor_id;
            if let Some((pid, start)) = init {
                loop {
                    match proc_start(pid) {
                        Some((s, zombie)) if s == start && !zombie => {
                            tokio::time::sleep(ADOPTED_POLL).await
                        }
                        _ => break,
                    }
                }
            }
            // The wrapper writes the status right after `runc run` returns.
            let bundle = monitor_inner.bundle(&id);
            let mut status = None;
            for _ in 0..50 {
                status = read_exit_status(&bundle);
                if status.is_some() {
                    break;
                }
                tokio::time::sleep(ADOPTED_POLL).await;
            }
            let status = status.unwrap_or(ExitStatus {
                code: None,
                signal: None,
            });
            for pump in pumps {
                let _ = tokio::time::timeout(Duration::from_secs(2), pump).await;
            }
            monitor_inner.forget(&id).await;
            let _ = watch_tx.send(Some(Finished {
                status,
                pid,
                runc_error: None,
            }));
            let _ = exit_tx.send(status);
        });
        Ok(RunningContainer {
            id: id.to_string(),
            pid: pid.unwrap_or(0),
            address: Attachment::read(&bundle).map(|a| std::net::IpAddr::V4(a.address)),
            exited: exit_rx,
        })
    }

    fn take_oom_kill(&self, id: &str) -> bool {
        self.inner.oom_kills.take(id)
    }

    fn memory_usage(&self, id: &str) -> Option<u64> {
        let parent = &self.inner.cgroup_parent;
        [
            format!("/sys/fs/cgroup/memory/{parent}/{id}/memory.usage_in_bytes"),
            format!("/sys/fs/cgroup/{parent}/{id}/memory.current"),
        ]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok()?.trim().parse().ok())
    }

    async fn list(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let inner = &self.inner;
        let mut entries = match std::fs::read_dir(&inner.containers_dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect::<Vec<_>>(),
            Err(e) => return Err(io_err("(all)", "list the bundles of")(e)),
        };
        entries.sort();
        let states = inner.runc_list().await?;
        let mut list = Vec::with_capacity(entries.len());
        for id in entries {
            let labels: BTreeMap<String, String> =
                match std::fs::read(inner.bundle(&id).join("labels.json")) {
                    Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
                    // Being created or removed right now.
                    Err(_) => continue,
                };
            let (running, pid) = match states.get(&id) {
                Some((status, pid)) if status != "stopped" && *pid > 0 => (true, Some(*pid)),
                _ => (false, None),
            };
            let address =
                Attachment::read(&inner.bundle(&id)).map(|a| std::net::IpAddr::V4(a.address));
            list.push(ContainerInfo {
                id,
                pid,
                running,
                labels,
                address,
            });
        }
        Ok(list)
    }
}

/// Whether runc refused a command because it has no such container ("container does not
/// exist"): a container that is already gone, not a failure.
fn is_missing_container(error: &RuntimeError) -> bool {
    matches!(error, RuntimeError::Runc { stderr, .. } if stderr.contains("does not exist"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_runc_does_not_know_is_already_gone() {
        let runc = |stderr: &str| RuntimeError::Runc {
            id: "slipway.app.web.1.abc".to_owned(),
            action: "kill",
            stderr: stderr.to_owned(),
        };
        assert!(is_missing_container(&runc(
            "time=\"2026-01-01T00:00:00Z\" level=error msg=\"container does not exist\""
        )));
        assert!(!is_missing_container(&runc("permission denied")));
    }

    #[test]
    fn exit_mapping() {
        use std::os::unix::process::ExitStatusExt;
        let raw = |code: i32| std::process::ExitStatus::from_raw(code << 8);
        for (code, want) in [
            (0, (Some(0), None)),
            (3, (Some(3), None)),
            (128, (Some(128), None)),
            (137, (None, Some(9))),
            (143, (None, Some(15))),
            (255, (Some(255), None)),
        ] {
            let got = map_runc_exit(raw(code));
            assert_eq!((got.code, got.signal), want, "{code}");
        }
        let killed = map_runc_exit(std::process::ExitStatus::from_raw(9));
        assert_eq!((killed.code, killed.signal), (None, Some(9)));
    }
}
