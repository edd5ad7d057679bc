//! Runs a CNB buildpack's `bin/detect` or `bin/build` in a build container through the
//! runtime, with the CNB directories mounted, under the build's step and whole-build limits
//! (as the classic pipeline's steps are).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use slipway_runtime::{
    run_to_completion, BindMount, ContainerSpec, ExitStatus, Limits, Network, OutputSink, Runtime,
};

use super::buildpack::CnbBuildpack;
use super::layers::APP_LAYERS_DIR;
use super::CnbError;
use crate::{BuildRequest, MountView};

/// The disk quota of a build container, as the classic pipeline's (`BUILD_DISK_BYTES`).
const BUILD_DISK_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// How long a timed-out step gets between SIGTERM and SIGKILL.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Which script of the buildpack a step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Script {
    Detect,
    Build,
}

impl Script {
    fn name(self) -> &'static str {
        match self {
            Script::Detect => "detect",
            Script::Build => "build",
        }
    }
}

/// The CNB paths as the scripts see them.
#[derive(Debug, Clone)]
pub(crate) struct Paths {
    pub(crate) app: String,
    /// The root of every buildpack's layers directory.
    pub(crate) layers_root: String,
    pub(crate) platform: String,
    pub(crate) buildpack: String,
    /// A directory of the step's own: the build plan detect writes, the plan build reads.
    pub(crate) io: String,
}

/// Runs the steps of one CNB build.
pub(crate) struct Runner<'a> {
    pub(crate) runtime: &'a dyn Runtime,
    pub(crate) request: &'a BuildRequest,
    /// Host directory of every buildpack's layers directory.
    pub(crate) layers_root: PathBuf,
    /// Host directory bound at `CNB_PLATFORM_DIR`.
    pub(crate) platform_dir: PathBuf,
    /// When the whole build must be over, and that limit.
    pub(crate) deadline: Option<(tokio::time::Instant, std::time::Duration)>,
}

impl Runner<'_> {
    pub(crate) fn paths(&self, buildpack: &CnbBuildpack, io: &Path) -> Paths {
        match self.request.mount_view {
            MountView::Container => Paths {
                app: "/app".to_string(),
                layers_root: APP_LAYERS_DIR.to_string(),
                platform: "/platform".to_string(),
                buildpack: format!(
                    "/cnb/buildpacks/{}/{}",
                    buildpack.escaped_id(),
                    buildpack.version
                ),
                io: "/cnb/io".to_string(),
            },
            MountView::Host => Paths {
                app: host_path(&self.request.source_dir),
                layers_root: host_path(&self.layers_root),
                platform: host_path(&self.platform_dir),
                buildpack: host_path(&buildpack.dir),
                io: host_path(io),
            },
        }
    }

    /// Runs `bin/<script>` of `buildpack` with `env` (complete), the app as working directory
    /// and `io` (host) as the step's own directory.
    pub(crate) async fn run(
        &self,
        step: &str,
        buildpack: &CnbBuildpack,
        script: Script,
        io: &Path,
        env: Vec<(String, String)>,
        sink: OutputSink,
    ) -> Result<ExitStatus, CnbError> {
        let request = self.request;
        let paths = self.paths(buildpack, io);
        let mut binds = vec![BindMount {
            source: request.source_dir.clone(),
            target: "/app".to_string(),
            readonly: false,
        }];
        if script == Script::Build {
            binds.push(BindMount {
                source: self.layers_root.clone(),
                target: APP_LAYERS_DIR.to_string(),
                readonly: false,
            });
        }
        binds.extend([
            BindMount {
                source: self.platform_dir.clone(),
                target: "/platform".to_string(),
                readonly: true,
            },
            BindMount {
                source: buildpack.dir.clone(),
                target: format!(
                    "/cnb/buildpacks/{}/{}",
                    buildpack.escaped_id(),
                    buildpack.version
                ),
                readonly: true,
            },
            BindMount {
                source: io.to_path_buf(),
                target: "/cnb/io".to_string(),
                readonly: false,
            },
        ]);
        let labels = BTreeMap::from([
            ("role".to_string(), "build".to_string()),
            ("app".to_string(), request.app.clone()),
            ("build".to_string(), request.build_id.clone()),
            ("step".to_string(), step.to_string()),
        ]);
        let spec = ContainerSpec {
            id: container_id(&request.app, &request.build_id, step),
            labels,
            app_dir: None,
            rootfs: request.rootfs.clone(),
            binds,
            args: vec![format!("{}/bin/{}", paths.buildpack, script.name())],
            env,
            cwd: paths.app.clone(),
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
        };
        tracing::debug!(id = %spec.id, args = ?spec.args, "running CNB build step");
        let id = spec.id.clone();
        let run = run_to_completion(self.runtime, spec, sink);
        let step_deadline = request
            .step_timeout
            .map(|timeout| tokio::time::Instant::now() + timeout);
        let deadline = match (step_deadline, self.deadline.map(|(at, _)| at)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let result = match deadline {
            None => run.await,
            Some(deadline) => match tokio::time::timeout_at(deadline, run).await {
                Ok(result) => result,
                Err(_elapsed) => {
                    if let Err(error) = self.runtime.stop(&id, STOP_GRACE).await {
                        tracing::warn!(%id, %error, "could not stop a timed-out build step");
                    }
                    return Err(CnbError::Build(Box::new(match self.deadline {
                        Some((at, limit)) if at <= deadline => {
                            crate::BuildError::BuildTimedOut { limit }
                        }
                        _ => crate::BuildError::TimedOut {
                            step: step.to_string(),
                            timeout: request.step_timeout.unwrap_or_default(),
                        },
                    })));
                }
            },
        };
        result.map_err(|source| {
            CnbError::Build(Box::new(crate::BuildError::Runtime {
                step: step.to_string(),
                source,
            }))
        })
    }
}

fn host_path(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// `build.<app>.<build_id>.<step>` with anything outside `[A-Za-z0-9_.-]` replaced by `-`, as
/// the classic pipeline names its containers.
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
