//! Runs a CNB buildpack's `bin/detect` or `bin/build` in a build container through the
//! runtime, with the CNB directories mounted, under the build's step and whole-build limits
//! (as the classic pipeline's steps are).

use std::path::{Path, PathBuf};

use slipway_runtime::{BindMount, ExitStatus, OutputSink, Runtime};

use super::buildpack::CnbBuildpack;
use super::layers::APP_LAYERS_DIR;
use super::CnbError;
use crate::build_container::{host_path, run_step, StepContainer};
use crate::{BuildRequest, MountView};

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
        let container = StepContainer {
            binds,
            args: vec![format!("{}/bin/{}", paths.buildpack, script.name())],
            env,
            cwd: paths.app.clone(),
        };
        Ok(run_step(self.runtime, request, step, container, sink, self.deadline).await?)
    }
}
