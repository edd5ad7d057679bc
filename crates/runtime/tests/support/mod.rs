//! Shared helpers of the runtime's sandbox tests (`seccomp.rs`, `disk.rs`): a runc runtime on a
//! fresh state dir with its own cgroup parent, output collection, skip-loudly setup.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use slipway_runtime::{
    run_to_completion, ContainerSpec, ExitStatus, Limits, Network, OutputSink, RuncConfig,
    RuncRuntime, Stream,
};

pub(crate) const UID: u32 = 4321;
pub(crate) const GID: u32 = 4322;

pub(crate) type Lines = Arc<Mutex<Vec<(Stream, String)>>>;

pub(crate) fn collector() -> (OutputSink, Lines) {
    let lines: Lines = Arc::default();
    let l = lines.clone();
    (
        Arc::new(move |s, line: &str| l.lock().unwrap().push((s, line.to_string()))),
        lines,
    )
}

pub(crate) fn stream(lines: &Lines, which: Stream) -> Vec<String> {
    lines
        .lock()
        .unwrap()
        .iter()
        .filter(|(s, _)| *s == which)
        .map(|(_, l)| l.clone())
        .collect()
}

pub(crate) fn stdout(lines: &Lines) -> Vec<String> {
    stream(lines, Stream::Stdout)
}

/// Waits (up to 20 s) until `line` has been printed to stdout.
pub(crate) async fn wait_for_line(lines: &Lines, line: &str) {
    for _ in 0..2000 {
        if stdout(lines).iter().any(|l| l == line) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{line:?} was not printed: {lines:?}");
}

/// A test's state dir and cgroup parent, both unique to the test.
pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) cgroup_parent: String,
}

impl Fixture {
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn config(&self) -> RuncConfig {
        let mut config = RuncConfig::new(self.dir.path());
        config.cgroup_parent = self.cgroup_parent.clone();
        config
    }
}

impl Drop for Fixture {
    /// Kills containers a failed test left running, unmounts what is left under the state dir,
    /// then removes the (empty) cgroup parent runc created in every hierarchy.
    fn drop(&mut self) {
        let runc = |args: &[&str]| {
            std::process::Command::new("runc")
                .arg("--root")
                .arg(self.path().join("runc"))
                .args(args)
                .output()
        };
        if let Ok(out) = runc(&["list", "-q"]) {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = runc(&["kill", "--all", id, "KILL"]);
                let _ = runc(&["delete", "--force", id]);
            }
        }
        if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
            let mut points: Vec<&str> = info
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|p| Path::new(p).starts_with(self.path()))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in points {
                let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
            }
        }
        if let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") {
            for hierarchy in hierarchies.flatten() {
                let _ = std::fs::remove_dir(hierarchy.path().join(&self.cgroup_parent));
            }
        }
    }
}

/// A fixture (state dir and cgroup parent), or `None` (after saying so) without root or runc.
pub(crate) fn fixture(test: &str) -> Option<Fixture> {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("SKIPPED {test}: needs root");
        return None;
    }
    if std::process::Command::new("runc")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED {test}: runc is not on PATH");
        return None;
    }
    let dir = tempfile::Builder::new()
        .prefix("slipway-sandbox-test-")
        .tempdir_in("/tmp")
        .unwrap();
    Some(Fixture {
        dir,
        cgroup_parent: format!("slipway-test-{test}-{}", std::process::id()),
    })
}

/// A runtime on a fresh state dir, or `None` (after saying so) without root or runc.
pub(crate) fn setup(test: &str) -> Option<(RuncRuntime, Fixture)> {
    let fixture = fixture(test)?;
    let rt = RuncRuntime::new(fixture.config()).unwrap();
    Some((rt, fixture))
}

pub(crate) fn spec(id: &str, script: &str) -> ContainerSpec {
    ContainerSpec {
        id: id.to_string(),
        labels: BTreeMap::from([("app".to_string(), "demo".to_string())]),
        app_dir: None,
        rootfs: slipway_runtime::Rootfs::Host,
        binds: vec![],
        args: vec!["/bin/sh".into(), "-c".into(), script.into()],
        env: vec![
            ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
            ("HOME".into(), "/app".into()),
        ],
        cwd: "/".into(),
        uid: UID,
        gid: GID,
        hostname: "dyno-host".into(),
        limits: Limits::default(),
        network: Network::Host,
        allowed_host_ports: Vec::new(),
    }
}

pub(crate) async fn run(rt: &RuncRuntime, spec: ContainerSpec) -> (ExitStatus, Lines) {
    let (sink, lines) = collector();
    let status = run_to_completion(rt, spec, sink).await.unwrap();
    (status, lines)
}
