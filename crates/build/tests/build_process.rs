//! Build pipeline tests on the process runtime (plain host processes, host paths).

mod common;

use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use common::Harness;
use slipway_build::MountView;
use slipway_runtime::ProcessRuntime;

fn harness() -> Harness {
    // The process runtime ignores uid/gid; hand the dirs to whoever runs the tests.
    let me = std::fs::metadata("/proc/self").expect("/proc/self");
    Harness::new(
        Arc::new(ProcessRuntime::new()),
        MountView::Host,
        me.uid(),
        me.gid(),
    )
}

#[tokio::test]
async fn procfile_only_app() {
    common::procfile_only_app(&harness()).await;
}

#[tokio::test]
async fn python_app_offline() {
    common::python_app_offline(&harness()).await;
}

#[tokio::test]
async fn no_matching_buildpack() {
    common::no_matching_buildpack(&harness()).await;
}

#[tokio::test]
async fn explicit_buildpack_not_compatible() {
    common::explicit_buildpack_not_compatible(&harness()).await;
}

#[tokio::test]
async fn compile_failure() {
    common::compile_failure(&harness()).await;
}

#[tokio::test]
async fn bad_procfile() {
    common::bad_procfile(&harness()).await;
}

#[tokio::test]
async fn cache_env_and_isolation() {
    common::cache_env_and_isolation(&harness()).await;
}

#[tokio::test]
async fn step_timeout() {
    common::step_timeout(&harness()).await;
}

#[tokio::test]
async fn build_timeout() {
    common::build_timeout(&harness()).await;
}

#[tokio::test]
async fn release_output_cap() {
    common::release_output_cap(&harness()).await;
}

#[tokio::test]
async fn multi_buildpack_export_and_report() {
    common::multi_buildpack_export_and_report(&harness()).await;
}

#[tokio::test]
async fn language_without_buildpack() {
    common::language_without_buildpack(&harness()).await;
}
