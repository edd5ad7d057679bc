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
    pub(crate) app_dir: Option<PathBuf>,
    /// The app's own uid, also its gid (`uids.rs`).
    pub(crate) uid: u32,
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_is_the_soft_limit_and_twice_it_the_hard_one() {
        let config = PlatformConfig::new(PathBuf::from("/tmp/x"));
        let vars = ConfigVars::from([("A".to_owned(), "1".to_owned())]);
        let spec = container_spec(
            &config,
            DynoSpec {
                container_id: "slipway.demo.web.1.abcd".into(),
                app_id: Uuid::nil(),
                app_name: "demo",
                dyno: "web.1",
                release_version: Some(3),
                command: "python3 app.py",
                size: DynoSize::Standard2X,
                port: 5123,
                config_vars: &vars,
                stack: "heroku-24",
                app_dir: None,
                uid: 100_042,
            },
        );
        let gib = 1024 * 1024 * 1024;
        assert_eq!((spec.uid, spec.gid), (100_042, 100_042));
        assert_eq!(spec.limits.disk_bytes, Some(4 * gib));
        assert_eq!(spec.limits.memory_reservation_bytes, Some(gib));
        assert_eq!(spec.limits.memory_bytes, Some(2 * gib));
        assert_eq!(spec.limits.pids, Some(512));
        assert_eq!(spec.labels["release"], "3");
        assert!(spec.env.contains(&("PORT".into(), "5123".into())));
        assert!(spec.env.contains(&("A".into(), "1".into())));
        assert_eq!(spec.args.last().map(String::as_str), Some("python3 app.py"));
    }

    /// The init script reports the command's own status, however quickly it ends: run for
    /// real with the host's bash (no container needed), many times, with quick exits.
    #[test]
    fn the_init_script_returns_the_commands_status_even_when_it_ends_at_once() {
        for attempt in 0..40 {
            for (command, expected) in [("exit 3", 3), ("true", 0), ("kill -TERM $$", 143)] {
                let status = std::process::Command::new("/bin/bash")
                    .args(["-c", DYNO_INIT, "slipway-dyno", command])
                    .stdin(std::process::Stdio::null())
                    .status()
                    .expect("run bash");
                assert_eq!(
                    status.code(),
                    Some(expected),
                    "attempt {attempt}: `{command}`"
                );
            }
        }
    }

    #[test]
    fn a_one_off_is_labelled_and_an_attached_one_keeps_its_stdin() {
        let config = PlatformConfig::new(PathBuf::from("/tmp/x"));
        let vars = ConfigVars::new();
        let spec = || {
            container_spec(
                &config,
                DynoSpec {
                    container_id: "slipway.demo.run.1234.abcd".into(),
                    app_id: Uuid::nil(),
                    app_name: "demo",
                    dyno: "run.1234",
                    release_version: Some(1),
                    command: "bash",
                    size: DynoSize::Basic,
                    port: 5000,
                    config_vars: &vars,
                    stack: "heroku-24",
                    app_dir: None,
                    uid: 100_042,
                },
            )
        };
        let mut detached = spec();
        make_one_off(&mut detached, false);
        assert_eq!(detached.labels[ONE_OFF_LABEL], "true");
        assert!(detached.args[2].contains("</dev/null &"));
        let mut attached = spec();
        make_one_off(&mut attached, true);
        // In the foreground (not `&`, which would ignore SIGINT), on the container's stdin.
        assert!(attached.args[2].contains("/bin/bash -c \"$1\"\nexit"));
        assert!(!attached.args[2].contains("\"$1\" &") && !attached.args[2].contains("<&0 &"));
        assert!(!attached.args[2].contains("/dev/null"));
        assert_eq!(attached.args.last().map(String::as_str), Some("bash"));
    }

    #[test]
    fn disk_quota_scales_with_the_size_from_the_configured_base() {
        let mut config = PlatformConfig::new(PathBuf::from("/tmp/x"));
        let mib = 1024 * 1024;
        for (size, want) in [
            ("eco", 2048),
            ("basic", 2048),
            ("standard-1x", 2048),
            ("Standard-2X", 4096),
            ("performance-m", 8192),
            ("performance-l", 16384),
        ] {
            let parsed: DynoSize = size.parse().expect("a dyno size");
            assert_eq!(config.dyno_disk_bytes(parsed), want * mib, "{size}");
        }
        config.dyno_disk_mb = 64;
        assert_eq!(config.dyno_disk_bytes(DynoSize::Eco), 64 * mib);
        assert_eq!(config.dyno_disk_bytes(DynoSize::PerformanceL), 512 * mib);
    }
}
