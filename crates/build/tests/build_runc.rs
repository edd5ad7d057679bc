//! Build pipeline tests in real runc build containers, as the unprivileged user 65534, and a
//! check that a built Python slug runs at `/app` in a dyno-like container.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use common::Harness;
use slipway_build::MountView;
use slipway_runtime::{
    run_to_completion, ContainerSpec, Limits, Network, OutputSink, RuncConfig, RuncRuntime, Runtime,
};

const NOBODY: u32 = 65534;

/// A runc harness, or `None` (after saying so loudly) when runc cannot be used here.
fn harness() -> Option<Harness> {
    let me = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = me
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"));
    if !root {
        eprintln!("SKIPPED: runc build tests need root");
        return None;
    }
    if std::process::Command::new("runc")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: runc is not installed");
        return None;
    }
    let state = tempfile::Builder::new()
        .prefix("slipway-build-runc-")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let runtime = RuncRuntime::new(RuncConfig::new(state.path())).expect("runc runtime");
    let mut harness = Harness::new(Arc::new(runtime), MountView::Container, NOBODY, NOBODY);
    harness.keep_alive.push(state);
    Some(harness)
}

#[tokio::test]
async fn procfile_only_app() {
    let Some(h) = harness() else { return };
    common::procfile_only_app(&h).await;
}

/// Builds the Python app, then runs the slug in a container with the slug at `/app`, the way
/// a dyno does: `.profile.d` puts the venv first on PATH and the venv's absolute paths hold.
#[tokio::test]
async fn python_app_offline_and_runs_at_app() {
    let Some(h) = harness() else { return };
    let app = common::python_app_offline(&h).await;

    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink: OutputSink = {
        let lines = lines.clone();
        Arc::new(move |_stream, line: &str| lines.lock().expect("lock").push(line.to_string()))
    };
    let spec = ContainerSpec {
        id: format!("build-test.dyno.{}", std::process::id()),
        labels: BTreeMap::new(),
        app_dir: Some(app),
        rootfs: slipway_runtime::Rootfs::Host,
        binds: Vec::new(),
        args: vec![
            "/bin/bash".to_string(),
            "-c".to_string(),
            "for f in /app/.profile.d/*.sh; do . \"$f\"; done; command -v python; python app.py"
                .to_string(),
        ],
        env: vec![
            ("HOME".to_string(), "/app".to_string()),
            (
                "PATH".to_string(),
                "/usr/local/bin:/usr/bin:/bin".to_string(),
            ),
        ],
        cwd: "/app".to_string(),
        uid: NOBODY,
        gid: NOBODY,
        hostname: "dyno".to_string(),
        limits: Limits::default(),
        network: Network::Host,
        allowed_host_ports: Vec::new(),
    };
    let status = run_to_completion(h.runtime.as_ref() as &dyn Runtime, spec, sink)
        .await
        .expect("run the dyno");
    let lines = lines.lock().expect("lock").clone();
    assert!(status.success(), "{status}: {lines:?}");
    assert_eq!(
        lines,
        ["/app/.heroku/python/bin/python", "hello from slipwaydemo"]
    );
}

#[tokio::test]
async fn no_matching_buildpack() {
    let Some(h) = harness() else { return };
    common::no_matching_buildpack(&h).await;
}

#[tokio::test]
async fn explicit_buildpack_not_compatible() {
    let Some(h) = harness() else { return };
    common::explicit_buildpack_not_compatible(&h).await;
}

#[tokio::test]
async fn compile_failure() {
    let Some(h) = harness() else { return };
    common::compile_failure(&h).await;
}

#[tokio::test]
async fn bad_procfile() {
    let Some(h) = harness() else { return };
    common::bad_procfile(&h).await;
}

#[tokio::test]
async fn cache_env_and_isolation_as_unprivileged_user() {
    let Some(h) = harness() else { return };
    common::cache_env_and_isolation(&h).await;
    // The last build ran as the unprivileged build user.
    let uid_files: Vec<_> = walk(h.root.path())
        .into_iter()
        .filter(|p| p.ends_with("build-uid.txt"))
        .collect();
    assert!(!uid_files.is_empty());
    for file in uid_files {
        assert_eq!(
            std::fs::read_to_string(&file).expect("read").trim(),
            NOBODY.to_string()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() && !path.is_symlink() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[tokio::test]
async fn step_timeout() {
    let Some(h) = harness() else { return };
    common::step_timeout(&h).await;
}

#[tokio::test]
async fn build_timeout() {
    let Some(h) = harness() else { return };
    common::build_timeout(&h).await;
}

#[tokio::test]
async fn multi_buildpack_export_and_report() {
    let Some(h) = harness() else { return };
    common::multi_buildpack_export_and_report(&h).await;
}

#[tokio::test]
async fn language_without_buildpack() {
    let Some(h) = harness() else { return };
    common::language_without_buildpack(&h).await;
}
