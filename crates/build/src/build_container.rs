//! A build step's container, the same for the classic pipeline and the CNB path: its id,
//! labels, user, disk quota and network, and its run under the step's own time limit and what
//! is left of the whole build's.
//!
//! The two paths differ only in what they mount, the arguments and the environment; keeping
//! the rest here means a build container cannot get a different quota, name or timeout rule
//! depending on the kind of buildpack that runs in it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use slipway_runtime::{
    run_to_completion, BindMount, ContainerSpec, ExitStatus, Limits, Network, OutputSink, Runtime,
};
use tokio::time::Instant;

use crate::{BuildError, BuildRequest};

#[cfg(test)]
mod tests;

/// The disk quota of every build container (`Limits::disk_bytes`): its ephemeral layer and
/// `/tmp`. The build, cache and buildpack directories are host directories bound into it and
/// not counted.
pub const BUILD_DISK_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// How long a timed-out build step gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// When the whole build must be over ([`BuildRequest::build_timeout`] from now), and that
/// limit; `None` without one.
pub(crate) fn build_deadline(request: &BuildRequest) -> Option<(Instant, Duration)> {
    request
        .build_timeout
        .map(|limit| (Instant::now() + limit, limit))
}

/// What one step puts in its container besides what every build container shares.
pub(crate) struct StepContainer {
    pub(crate) binds: Vec<BindMount>,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) cwd: String,
}

/// Runs build step `step` of `request` in a container with what `container` gives it (see
/// [`step_spec`]), under the step's and the whole build's time limits (see [`run_spec`]).
pub(crate) async fn run_step(
    runtime: &dyn Runtime,
    request: &BuildRequest,
    step: &str,
    container: StepContainer,
    sink: OutputSink,
    build_deadline: Option<(Instant, Duration)>,
) -> Result<ExitStatus, BuildError> {
    let spec = step_spec(request, step, container);
    tracing::debug!(id = %spec.id, args = ?spec.args, "running build step");
    run_spec(
        runtime,
        spec,
        sink,
        step,
        request.step_timeout,
        build_deadline,
    )
    .await
}

/// The container of build step `step` of `request`: named and labelled after the app, the
/// build and the step, on the build's rootfs as the build user, with the build disk quota
/// unless the request sets one, in a network namespace of its own (egress through the
/// runtime's NAT, nothing of the host).
fn step_spec(request: &BuildRequest, step: &str, step_container: StepContainer) -> ContainerSpec {
    let StepContainer {
        binds,
        args,
        env,
        cwd,
    } = step_container;
    ContainerSpec {
        id: container_id(&request.app, &request.build_id, step),
        labels: BTreeMap::from([
            ("role".to_string(), "build".to_string()),
            ("app".to_string(), request.app.clone()),
            ("build".to_string(), request.build_id.clone()),
            ("step".to_string(), step.to_string()),
        ]),
        app_dir: None,
        rootfs: request.rootfs.clone(),
        binds,
        args,
        env,
        cwd,
        uid: request.uid,
        gid: request.gid,
        hostname: "build".to_string(),
        limits: Limits {
            disk_bytes: request.limits.disk_bytes.or(Some(BUILD_DISK_BYTES)),
            ..request.limits.clone()
        },
        network: Network::Isolated,
        // A build reaches no add-on server.
        allowed_host_ports: Vec::new(),
    }
}

/// Runs `spec` (build step `step`) to completion, stopping it when the step's own limit
/// (`step_timeout` from now) or the whole build's (`build_deadline`) ends, whichever comes
/// first; the error names the limit that ended it.
async fn run_spec(
    runtime: &dyn Runtime,
    spec: ContainerSpec,
    sink: OutputSink,
    step: &str,
    step_timeout: Option<Duration>,
    build_deadline: Option<(Instant, Duration)>,
) -> Result<ExitStatus, BuildError> {
    let id = spec.id.clone();
    let run = run_to_completion(runtime, spec, sink);
    let step_deadline = step_timeout.map(|timeout| Instant::now() + timeout);
    let deadline = match (step_deadline, build_deadline.map(|(at, _)| at)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let result = match deadline {
        None => run.await,
        Some(deadline) => match tokio::time::timeout_at(deadline, run).await {
            Ok(result) => result,
            Err(_elapsed) => {
                if let Err(error) = runtime.stop(&id, STOP_GRACE).await {
                    tracing::warn!(%id, %error, "could not stop a timed-out build step");
                }
                return Err(match build_deadline {
                    Some((at, limit)) if at <= deadline => BuildError::BuildTimedOut { limit },
                    _ => BuildError::TimedOut {
                        step: step.to_string(),
                        timeout: step_timeout.unwrap_or_default(),
                    },
                });
            }
        },
    };
    result.map_err(|source| BuildError::Runtime {
        step: step.to_string(),
        source,
    })
}

/// `build.<app>.<build_id>.<step>` with anything outside `[A-Za-z0-9_.-]` replaced by `-`.
pub(crate) fn container_id(app: &str, build_id: &str, step: &str) -> String {
    format!("build.{app}.{build_id}.{step}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// A host path as a script's argument or environment value.
pub(crate) fn host_path(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
