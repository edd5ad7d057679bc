//! The container every dyno runs in — formation dynos and one-off ones (`release.1`,
//! `postdeploy.1`) alike: its environment, labels, limits and first process.
//!
//! Memory, as on Heroku: the dyno size's quota is the cgroup's soft limit
//! (`memory.soft_limit_in_bytes`, what the dyno can read as its quota); the hard limit is twice
//! the quota. Above the quota the dyno keeps running and the dyno manager logs R14; at twice
//! the quota the kernel kills it, and the dyno manager logs R15 and restarts it.
//!
//! Disk: the ephemeral `/app` layer and `/tmp` share a quota per size (`PlatformConfig::dyno_disk_bytes`, 2 GiB for
//! the small sizes by default); beyond it writes fail with ENOSPC. The dyno runs as its app's
//! own uid and gid.

use std::collections::BTreeMap;
use std::path::PathBuf;

use slipway_model::DynoSize;
use slipway_runtime::{ContainerSpec, Limits, Network};
use uuid::Uuid;

use crate::config::PlatformConfig;
use crate::model::ConfigVars;

/// What differs from one dyno to the next.
pub(crate) struct DynoSpec<'a> {
    pub(crate) container_id: String,
    pub(crate) app_id: Uuid,
    pub(crate) app_name: &'a str,
    /// `web.1`, `release.1`.
    pub(crate) dyno: &'a str,
    /// The release the dyno runs, for its labels (none for a release phase: it has none yet).
    pub(crate) release_version: Option<u32>,
    pub(crate) command: &'a str,
    /// Parsed where the stored record is read: an unknown size never gets here.
    pub(crate) size: DynoSize,
    pub(crate) port: u16,
    pub(crate) config_vars: &'a ConfigVars,
    pub(crate) stack: &'a str,
    /// The stack build the slug was built on: the dyno runs on its run image (`stacks.rs`).
    pub(crate) stack_id: Option<Uuid>,
    pub(crate) app_dir: Option<PathBuf>,
    /// The app's own uid, also its gid (`uids.rs`).
    pub(crate) uid: u32,
    /// The add-on servers' ports the dyno may connect to (`addons_reach.rs`).
    pub(crate) addon_ports: Vec<u16>,
}

/// The dyno's first process: sources `.profile.d/*.sh` and `.profile` as Heroku does, runs
/// the command under bash, and forwards SIGTERM/SIGINT to it (as PID 1 of its namespace the
/// kernel would otherwise drop signals the command does not handle). The first `wait` comes
/// before any `kill -0`: a command that ends at once may already be reaped by then, and only
/// `wait` still knows its status (a loop that starts with `kill -0` took it for status 0, so
/// `release: exit 3` passed on a busy host). The loop waits again after a trapped signal
/// interrupted the wait.
const DYNO_INIT: &str = r#"for f in /app/.profile.d/*.sh; do [ -r "$f" ] && . "$f"; done; unset f
[ -r /app/.profile ] && . /app/.profile
trap 'kill -TERM "$child" 2>/dev/null' TERM
trap 'kill -INT "$child" 2>/dev/null' INT
/bin/bash -c "$1" </dev/null &
child=$!
wait "$child"
status=$?
while kill -0 "$child" 2>/dev/null; do wait "$child"; status=$?; done
exit "$status""#;

/// The first process of an attached one-off dyno: as [`DYNO_INIT`], but the command runs in
/// the foreground on the container's stdin (the client's terminal or pipe). Not as a
/// background job: a shell without job control starts those with SIGINT ignored (and `/dev/null`
/// as stdin), which every process under it would inherit, so Ctrl-C could never interrupt
/// anything. In the foreground, the terminal's SIGINT reaches the command's process group
/// directly; the platform's SIGTERM and SIGHUP go to every process in the container (`runc kill
/// --all`), so the command needs no forwarding, and this shell, as PID 1 without handlers,
/// ignores them and exits with the command's status. The explicit `exit` keeps bash from
/// replacing itself with the command, which would make the command PID 1 and deaf to Ctrl-C.
const ATTACHED_DYNO_INIT: &str = r#"for f in /app/.profile.d/*.sh; do [ -r "$f" ] && . "$f"; done; unset f
[ -r /app/.profile ] && . /app/.profile
/bin/bash -c "$1"
exit "$?""#;

/// The label that marks a one-off dyno's container (`run.N`): the dyno manager never adopts
/// one, and stops any a previous server process left behind.
pub(crate) const ONE_OFF_LABEL: &str = "oneoff";

/// Turns a dyno's container into a one-off dyno's: labelled as one, and, when `attached`, with
/// its command reading the container's stdin instead of `/dev/null`.
pub(crate) fn make_one_off(spec: &mut ContainerSpec, attached: bool) {
    spec.labels
        .insert(ONE_OFF_LABEL.to_owned(), "true".to_owned());
    if attached {
        if let Some(init) = spec.args.get_mut(2) {
            *init = ATTACHED_DYNO_INIT.to_owned();
        }
    }
}

/// The hard memory limit of a dyno with this quota: twice it (R15).
pub(crate) fn hard_memory_limit(quota: u64) -> u64 {
    quota.saturating_mul(2)
}

pub(crate) fn container_spec(config: &PlatformConfig, dyno: DynoSpec<'_>) -> ContainerSpec {
    let quota = dyno.size.memory_bytes();
    let pids = dyno.size.pids();
    let mut env: Vec<(String, String)> = dyno
        .config_vars
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    env.extend([
        ("HOME".to_owned(), "/app".to_owned()),
        ("PATH".to_owned(), "/usr/local/bin:/usr/bin:/bin".to_owned()),
        ("DYNO".to_owned(), dyno.dyno.to_owned()),
        ("PORT".to_owned(), dyno.port.to_string()),
        ("STACK".to_owned(), dyno.stack.to_owned()),
    ]);
    let mut labels = BTreeMap::new();
    labels.insert("app".to_owned(), dyno.app_name.to_owned());
    labels.insert("app_id".to_owned(), dyno.app_id.to_string());
    labels.insert("dyno".to_owned(), dyno.dyno.to_owned());
    if let Some(version) = dyno.release_version {
        labels.insert("release".to_owned(), version.to_string());
    }
    ContainerSpec {
        hostname: dyno.container_id.chars().take(60).collect(),
        id: dyno.container_id,
        labels,
        app_dir: dyno.app_dir,
        rootfs: config.run_rootfs(dyno.stack, dyno.stack_id),
        binds: Vec::new(),
        args: vec![
            "/bin/bash".to_owned(),
            "-c".to_owned(),
            DYNO_INIT.to_owned(),
            "slipway-dyno".to_owned(),
            dyno.command.to_owned(),
        ],
        env,
        cwd: "/app".to_owned(),
        uid: dyno.uid,
        gid: dyno.uid,
        limits: Limits {
            memory_bytes: Some(hard_memory_limit(quota)),
            memory_reservation_bytes: Some(quota),
            pids: Some(pids),
            cpu_shares: Some(1024 * quota / (512 * 1024 * 1024)),
            disk_bytes: Some(config.dyno_disk_bytes(dyno.size)),
        },
        // Every dyno gets a network namespace of its own (on runc; the process runtime runs
        // everything on the host network).
        network: Network::Isolated,
        // Only the add-on servers of the app's own add-ons; none at all without one.
        allowed_host_ports: dyno.addon_ports,
    }
}

#[cfg(test)]
mod tests;
