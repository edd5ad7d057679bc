//! Integration tests of [`RuncRuntime`] against the real `runc`: isolation, the `/app`
//! overlay, binds, cgroup limits, stop semantics, adoption by a new instance and cleanup.
//! They need root and `runc` on `PATH`, and skip loudly otherwise.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use slipway_runtime::{
    run_to_completion, BindMount, ContainerSpec, ExitStatus, Limits, Network, OutputSink,
    RuncConfig, RuncRuntime, Runtime, RuntimeError, StopOutcome, Stream,
};

const UID: u32 = 4321;
const GID: u32 = 4322;

type Lines = Arc<Mutex<Vec<(Stream, String)>>>;

fn collector() -> (OutputSink, Lines) {
    let lines: Lines = Arc::default();
    let l = lines.clone();
    (
        Arc::new(move |s, line: &str| l.lock().unwrap().push((s, line.to_string()))),
        lines,
    )
}

fn stdout(lines: &Lines) -> Vec<String> {
    lines
        .lock()
        .unwrap()
        .iter()
        .filter(|(s, _)| *s == Stream::Stdout)
        .map(|(_, l)| l.clone())
        .collect()
}

/// Waits (up to 10 s) until `line` has been printed to stdout.
async fn wait_for_line(lines: &Lines, line: &str) {
    for _ in 0..1000 {
        if stdout(lines).iter().any(|l| l == line) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{line:?} was not printed: {lines:?}");
}

/// A test's state dir and cgroup parent, both unique to the test.
struct Fixture {
    dir: tempfile::TempDir,
    cgroup_parent: String,
}

impl Fixture {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn config(&self) -> RuncConfig {
        let mut config = RuncConfig::new(self.dir.path());
        config.cgroup_parent = self.cgroup_parent.clone();
        config
    }

    /// Asserts that nothing of any container is left: bundles, runc state, mounts, cgroups.
    fn assert_clean(&self) {
        let entries = |p: PathBuf| -> Vec<String> {
            match std::fs::read_dir(&p) {
                Ok(dir) => dir
                    .map(|e| e.unwrap())
                    .filter(|e| e.file_type().unwrap().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
                Err(e) => panic!("{}: {e}", p.display()),
            }
        };
        assert_eq!(
            entries(self.path().join("containers")),
            Vec::<String>::new()
        );
        assert_eq!(entries(self.path().join("runc")), Vec::<String>::new());
        for controller in ["memory", "pids", "cpu"] {
            let dir = Path::new("/sys/fs/cgroup")
                .join(controller)
                .join(&self.cgroup_parent);
            assert_eq!(
                entries(dir),
                Vec::<String>::new(),
                "leftover {controller} cgroups"
            );
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let state = self.path().to_string_lossy();
        assert!(
            !mounts.contains(state.as_ref()),
            "leftover mounts under {state}"
        );
    }
}

impl Drop for Fixture {
    /// Kills containers a failed test left running, then removes the (empty) cgroup parent
    /// runc created in every hierarchy.
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
        let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
            return;
        };
        for hierarchy in hierarchies.flatten() {
            let _ = std::fs::remove_dir(hierarchy.path().join(&self.cgroup_parent));
        }
    }
}

/// A runtime on a fresh state dir, or `None` (after saying so) without root or runc.
fn setup(test: &str) -> Option<(RuncRuntime, Fixture)> {
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
        .prefix("slipway-runc-test-")
        .tempdir_in("/tmp")
        .unwrap();
    let fixture = Fixture {
        dir,
        cgroup_parent: format!("slipway-test-{test}-{}", std::process::id()),
    };
    let rt = RuncRuntime::new(fixture.config()).unwrap();
    Some((rt, fixture))
}

fn spec(id: &str, script: &str) -> ContainerSpec {
    ContainerSpec {
        id: id.to_string(),
        labels: BTreeMap::from([("app".to_string(), "demo".to_string())]),
        app_dir: None,
        rootfs: slipway_runtime::Rootfs::Host,
        binds: vec![],
        args: vec!["/bin/sh".into(), "-c".into(), script.into()],
        env: vec![("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into())],
        cwd: "/".into(),
        uid: UID,
        gid: GID,
        hostname: "dyno-host".into(),
        limits: Limits::default(),
        network: Network::Host,
        allowed_host_ports: Vec::new(),
    }
}

async fn run(rt: &RuncRuntime, spec: ContainerSpec) -> (ExitStatus, Lines) {
    let (sink, lines) = collector();
    let status = run_to_completion(rt, spec, sink).await.unwrap();
    (status, lines)
}

#[tokio::test]
async fn output_and_exit_codes() {
    let Some((rt, dir)) = setup("output_and_exit_codes") else {
        return;
    };
    let (status, lines) = run(
        &rt,
        spec("out", "echo out1; echo err1 >&2; echo out2; exit 3"),
    )
    .await;
    assert_eq!(
        status,
        ExitStatus {
            code: Some(3),
            signal: None
        }
    );
    let lines = lines.lock().unwrap().clone();
    let of = |s: Stream| -> Vec<&str> {
        lines
            .iter()
            .filter(|(t, _)| *t == s)
            .map(|(_, l)| l.as_str())
            .collect()
    };
    assert_eq!(of(Stream::Stdout), ["out1", "out2"]);
    assert_eq!(of(Stream::Stderr), ["err1"]);

    let (status, _) = run(&rt, spec("ok", "true")).await;
    assert!(status.success());
    // A child killed by SIGKILL: the shell exits 137, which is reported as signal 9.
    let (status, _) = run(&rt, spec("sig", "sh -c 'kill -9 $$'; exit $?")).await;
    assert_eq!(
        status,
        ExitStatus {
            code: None,
            signal: Some(9)
        }
    );
    assert_eq!(status.to_string(), "137");
    dir.assert_clean();
}

#[tokio::test]
async fn isolation_user_pidns_hostname_readonly_root() {
    let Some((rt, dir)) = setup("isolation") else {
        return;
    };
    let script = r#"
        id -u; id -g; echo $$; hostname; ls /proc | grep -c '^[0-9]'
        for p in /usr/x /etc/x /x /bin/x; do touch $p 2>/dev/null && echo "wrote $p"; done
        touch /tmp/x && echo tmp-ok
        cat /dev/null && echo dev-ok
        grep -c '' /proc/self/status >/dev/null && echo proc-ok
        grep CapEff /proc/self/status
    "#;
    let (status, lines) = run(&rt, spec("iso", script)).await;
    assert!(status.success(), "{status} {lines:?}");
    let out = stdout(&lines);
    assert_eq!(out[0], UID.to_string());
    assert_eq!(out[1], GID.to_string());
    assert_eq!(out[2], "1", "the shell must be PID 1 of its own namespace");
    assert_eq!(out[3], "dyno-host");
    let pids: u32 = out[4].parse().unwrap();
    assert!(
        pids <= 4,
        "only the container's processes are visible, saw {pids}"
    );
    assert_eq!(
        out[5..].to_vec(),
        ["tmp-ok", "dev-ok", "proc-ok", "CapEff:\t0000000000000000"]
    );
    dir.assert_clean();
}

#[tokio::test]
async fn app_dir_overlay_is_writable_and_ephemeral() {
    let Some((rt, dir)) = setup("app_dir_overlay") else {
        return;
    };
    let app = tempfile::tempdir_in("/tmp").unwrap();
    std::fs::write(app.path().join("a.txt"), "original\n").unwrap();
    std::fs::create_dir(app.path().join("sub")).unwrap();
    for p in [
        app.path().to_path_buf(),
        app.path().join("a.txt"),
        app.path().join("sub"),
    ] {
        nix::unistd::chown(
            &p,
            Some(nix::unistd::Uid::from_raw(UID)),
            Some(nix::unistd::Gid::from_raw(GID)),
        )
        .unwrap();
    }
    let mut s = spec(
        "app",
        "echo changed >> a.txt && echo new > b.txt && echo deep > sub/c.txt && cat a.txt && ls",
    );
    s.app_dir = Some(app.path().to_path_buf());
    s.cwd = "/app".into();
    let (status, lines) = run(&rt, s).await;
    assert!(status.success(), "{status} {lines:?}");
    assert_eq!(
        stdout(&lines),
        ["original", "changed", "a.txt", "b.txt", "sub"]
    );
    // The host directory is untouched and the writable layer is gone.
    assert_eq!(
        std::fs::read_to_string(app.path().join("a.txt")).unwrap(),
        "original\n"
    );
    assert!(!app.path().join("b.txt").exists());
    assert!(!app.path().join("sub/c.txt").exists());
    dir.assert_clean();

    // Without app_dir, /app is an empty writable directory.
    let (status, lines) = run(
        &rt,
        spec("noapp", "ls -A /app | wc -l; touch /app/x && echo ok"),
    )
    .await;
    assert!(status.success(), "{status} {lines:?}");
    assert_eq!(stdout(&lines), ["0", "ok"]);
    dir.assert_clean();
}

#[tokio::test]
async fn binds_readonly_and_readwrite() {
    let Some((rt, dir)) = setup("binds") else {
        return;
    };
    let ro = tempfile::tempdir_in("/tmp").unwrap();
    let rw = tempfile::tempdir_in("/tmp").unwrap();
    std::fs::write(ro.path().join("in.txt"), "input\n").unwrap();
    nix::unistd::chown(rw.path(), Some(nix::unistd::Uid::from_raw(UID)), None).unwrap();
    let mut s = spec(
        "binds",
        "cat /ro/in.txt; touch /ro/x 2>/dev/null && echo wrote-ro; echo built > /app/out.txt && echo rw-ok; pwd",
    );
    s.binds = vec![
        BindMount {
            source: ro.path().to_path_buf(),
            target: "/ro".into(),
            readonly: true,
        },
        BindMount {
            source: rw.path().to_path_buf(),
            target: "/app".into(),
            readonly: false,
        },
    ];
    s.cwd = "/app".into();
    let (status, lines) = run(&rt, s).await;
    assert!(status.success(), "{status} {lines:?}");
    assert_eq!(stdout(&lines), ["input", "rw-ok", "/app"]);
    assert_eq!(
        std::fs::read_to_string(rw.path().join("out.txt")).unwrap(),
        "built\n"
    );
    assert!(!ro.path().join("x").exists());
    dir.assert_clean();
}

#[tokio::test]
async fn memory_limit_is_enforced() {
    let Some((rt, dir)) = setup("memory_limit") else {
        return;
    };
    let mut s = spec(
        "mem",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; \
         cat /sys/fs/cgroup/memory/memory.soft_limit_in_bytes; sleep 0.5; \
         python3 -c 'b = bytearray(200 * 1024 * 1024); print(len(b))'",
    );
    s.limits.memory_bytes = Some(64 * 1024 * 1024);
    s.limits.memory_reservation_bytes = Some(32 * 1024 * 1024);
    let (status, lines) = run(&rt, s).await;
    assert_eq!(
        stdout(&lines),
        [
            (64 * 1024 * 1024).to_string(),
            (32 * 1024 * 1024).to_string()
        ]
    );
    assert_eq!(status.signal, Some(9), "{status} {lines:?}");
    assert!(rt.take_oom_kill("mem"), "the kernel's OOM kill is reported");
    assert!(!rt.take_oom_kill("mem"), "once");

    // The same allocation fits without a limit.
    let (status, lines) = run(
        &rt,
        spec(
            "nomem",
            "python3 -c 'b = bytearray(200 * 1024 * 1024); print(len(b))'",
        ),
    )
    .await;
    assert!(status.success(), "{status} {lines:?}");
    assert_eq!(stdout(&lines), [(200 * 1024 * 1024).to_string()]);
    dir.assert_clean();
}

#[tokio::test]
async fn pids_limit_is_enforced() {
    let Some((rt, dir)) = setup("pids_limit") else {
        return;
    };
    let forker = "import os, time\n\
                  n = 0\n\
                  for i in range(50):\n\
                  \x20   try:\n\
                  \x20       pid = os.fork()\n\
                  \x20   except OSError:\n\
                  \x20       break\n\
                  \x20   if pid == 0:\n\
                  \x20       time.sleep(5)\n\
                  \x20       os._exit(0)\n\
                  \x20   n += 1\n\
                  print(n)\n";
    let mut s = spec("pids", "");
    s.args = vec!["/usr/bin/python3".into(), "-c".into(), forker.into()];
    s.limits.pids = Some(20);
    let (status, lines) = run(&rt, s).await;
    assert!(status.success(), "{status} {lines:?}");
    let forked: u32 = stdout(&lines)[0].parse().unwrap();
    assert!(forked < 20, "forked {forked} children despite pids=20");
    assert!(forked > 5, "forked only {forked} children");
    dir.assert_clean();
}

#[tokio::test]
async fn stop_terminates_or_kills() {
    let Some((rt, dir)) = setup("stop") else {
        return;
    };
    let (sink, lines) = collector();
    let polite = rt
        .start(
            spec(
                "polite",
                "trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.05; done",
            ),
            sink,
        )
        .await
        .unwrap();
    let stubborn = rt
        .start(
            spec("stubborn", "trap '' TERM; while :; do sleep 0.05; done"),
            collector().0,
        )
        .await
        .unwrap();
    assert!(polite.pid > 1 && stubborn.pid > 1);
    assert!(matches!(
        rt.start(spec("polite", "true"), collector().0).await,
        Err(RuntimeError::AlreadyExists { .. })
    ));
    wait_for_line(&lines, "ready").await; // the trap is installed
    let grace = Duration::from_secs(1);
    assert_eq!(
        rt.stop("polite", grace).await.unwrap(),
        StopOutcome::Terminated
    );
    assert_eq!(polite.exited.await.unwrap().code, Some(0));
    assert!(stdout(&lines).contains(&"bye".to_string()));
    assert_eq!(
        rt.stop("stubborn", grace).await.unwrap(),
        StopOutcome::Killed
    );
    assert_eq!(stubborn.exited.await.unwrap().signal, Some(9));
    assert_eq!(
        rt.stop("polite", grace).await.unwrap(),
        StopOutcome::NotFound
    );
    dir.assert_clean();
}

#[tokio::test]
async fn a_new_instance_lists_and_stops_adopted_containers() {
    let Some((rt, dir)) = setup("adoption") else {
        return;
    };
    let mut s = spec(
        "adopt.web.1",
        "trap 'exit 0' TERM; echo ready; while :; do sleep 0.05; done",
    );
    s.labels.insert("dyno".into(), "web.1".into());
    let (sink, lines) = collector();
    let started = rt.start(s, sink).await.unwrap();

    let fresh = RuncRuntime::new(dir.config()).unwrap();
    let list = fresh.list().await.unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].id, "adopt.web.1");
    assert_eq!(list[0].pid, Some(started.pid));
    assert!(list[0].running);
    assert_eq!(list[0].labels["app"], "demo");
    assert_eq!(list[0].labels["dyno"], "web.1");

    wait_for_line(&lines, "ready").await;
    assert_eq!(
        fresh
            .stop("adopt.web.1", Duration::from_secs(5))
            .await
            .unwrap(),
        StopOutcome::Terminated
    );
    assert!(fresh.list().await.unwrap().is_empty());
    // The original instance sees the exit too.
    assert_eq!(started.exited.await.unwrap().code, Some(0));
    assert!(rt.list().await.unwrap().is_empty());
    dir.assert_clean();
}

#[tokio::test]
async fn bad_specs_and_runc_failures_are_errors() {
    let Some((rt, dir)) = setup("bad_specs") else {
        return;
    };
    let mut relative_app = spec("rel", "true");
    relative_app.app_dir = Some("app".into());
    let mut long_host = spec("host", "true");
    long_host.hostname = "h".repeat(65);
    for bad in [
        spec("../x", "true"),
        spec("a b", "true"),
        relative_app,
        long_host,
    ] {
        assert!(
            matches!(
                rt.start(bad.clone(), collector().0).await,
                Err(RuntimeError::InvalidSpec { .. })
            ),
            "{bad:?}"
        );
    }
    let mut missing = spec("missing", "");
    missing.args = vec!["/nonexistent/program".into()];
    match rt.start(missing, collector().0).await {
        Err(RuntimeError::Runc { stderr, .. }) => {
            assert!(stderr.contains("/nonexistent/program"), "{stderr}")
        }
        Ok(running) => panic!("started: {:?}", running.exited.await),
        Err(e) => panic!("unexpected error {e}"),
    }
    dir.assert_clean();
}

#[test]
fn state_dir_must_be_absolute() {
    assert!(matches!(
        RuncRuntime::new(RuncConfig::new("relative/state")),
        Err(RuntimeError::InvalidSpec { .. })
    ));
}
