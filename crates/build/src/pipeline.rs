//! The build pipeline: prune the source, run the buildpacks' detect/compile/release in build
//! containers, work out the process types and pack the slug.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use slipway_runtime::{
    run_to_completion, BindMount, ContainerSpec, ExitStatus, Limits, Network, OutputSink, Runtime,
    Stream,
};

use crate::buildpacks::{self, ResolvedBuildpack, BUILTIN_BUILDPACKS};
use crate::fsutil::{
    chown_recursive, read_tenant_file, remove_path, write_env_dir, TENANT_FILE_CAP,
};
use crate::{
    procfile, slug, slugignore, BuildError, BuildOutput, BuildRequest, BuiltSlug, MountView,
};

/// The disk quota of every build container (`Limits::disk_bytes`): its ephemeral layer and
/// `/tmp`. The build, cache and buildpack directories are host directories bound into it and
/// not counted.
pub const BUILD_DISK_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// Builds `request.source_dir` into a slug in `request.slug_dir`, streaming Heroku-style
/// output lines through `output`. On any error no slug is written. The env dir (config var
/// values) is removed from `work_dir` afterwards, whatever the outcome.
pub async fn build(
    runtime: &dyn Runtime,
    request: &BuildRequest,
    output: BuildOutput,
) -> Result<BuiltSlug, BuildError> {
    let env_dir = request.work_dir.join("env");
    let result = build_inner(runtime, request, output, &env_dir).await;
    let _ = blocking("remove the env dir", {
        let env_dir = env_dir.clone();
        move || remove_path(&env_dir)
    })
    .await;
    result
}

async fn build_inner(
    runtime: &dyn Runtime,
    request: &BuildRequest,
    output: BuildOutput,
    env_dir: &Path,
) -> Result<BuiltSlug, BuildError> {
    // Heroku's line names the stack; on the host stack it says what that really is.
    output(&match request.rootfs {
        slipway_runtime::Rootfs::Host => format!(
            "-----> Building on the host stack (this server's own system directories{})",
            if request.stack == "host" {
                String::new()
            } else {
                format!(", not the {} stack", request.stack)
            }
        ),
        slipway_runtime::Rootfs::Dir(_) => format!(
            "-----> Building on the {} stack",
            display_stack(&request.stack)
        ),
    });

    let removed = blocking("prepare the build directory", {
        let request = request.clone();
        let env_dir = env_dir.to_path_buf();
        move || prepare(&request, &env_dir)
    })
    .await?;
    if !removed.is_empty() {
        output("-----> Removing files listed in .slugignore");
        output(&format!(
            "       Removed {} file{} or director{}",
            removed.len(),
            if removed.len() == 1 { "" } else { "s" },
            if removed.len() == 1 { "y" } else { "ies" },
        ));
    }

    let steps = StepRunner {
        runtime,
        request,
        env_dir: env_dir.to_path_buf(),
        deadline: request
            .build_timeout
            .map(|limit| (tokio::time::Instant::now() + limit, limit)),
    };

    // Detect.
    let selected = if request.buildpacks.is_empty() {
        vec![auto_detect(&steps).await?]
    } else {
        let mut selected = Vec::new();
        for (index, name) in request.buildpacks.iter().enumerate() {
            let buildpack = buildpacks::resolve(name, &request.buildpacks_dir)?;
            let step = format!("detect-{index}-{}", buildpack.name);
            let detect = steps.detect(&step, &buildpack).await?;
            if !detect.status.success() {
                return Err(BuildError::NotCompatible {
                    buildpack: name.clone(),
                    status: detect.status.to_string(),
                    detail: detect.stderr.last().cloned().unwrap_or_default(),
                });
            }
            let framework = detect.framework(&buildpack);
            selected.push((buildpack, framework));
        }
        selected
    };

    // Compile and release, in order; the last buildpack's release output is used.
    let mut default_process_types = BTreeMap::new();
    let mut description = String::new();
    for (index, (buildpack, framework)) in selected.iter().enumerate() {
        output(&format!("-----> {framework} app detected"));
        let step = format!("compile-{index}-{}", buildpack.name);
        let sink_output = output.clone();
        let sink: OutputSink = Arc::new(move |_stream: Stream, line: &str| sink_output(line));
        let status = steps
            .run(
                &step,
                buildpack,
                "compile",
                &[Mount::App, Mount::Cache, Mount::Env],
                sink,
            )
            .await?;
        if !status.success() {
            return Err(BuildError::CompileFailed {
                framework: framework.clone(),
                buildpack: buildpack.name.clone(),
                status: status.to_string(),
                hint: compile_hint(status, request),
            });
        }
        default_process_types = steps
            .release(
                &format!("release-{index}-{}", buildpack.name),
                buildpack,
                &output,
            )
            .await?;
        description = framework.clone();
    }

    // Process types: the Procfile wins over the buildpack's defaults.
    output("-----> Discovering process types");
    let procfile = blocking("read the Procfile", {
        let source_dir = request.source_dir.clone();
        move || read_procfile(&source_dir)
    })
    .await?;
    let mut process_types = default_process_types.clone();
    let declared = match &procfile {
        Some(procfile) => {
            for warning in &procfile.warnings {
                output(&format!("       Warning: {warning}"));
            }
            process_types.extend(procfile.processes.clone());
            join_types(procfile.processes.keys())
        }
        None => "(none)".to_string(),
    };
    if default_process_types.is_empty() {
        output(&format!("       Procfile declares types -> {declared}"));
    } else {
        output(&format!("       Procfile declares types     -> {declared}"));
        output(&format!(
            "       Default types for buildpack -> {}",
            join_types(default_process_types.keys())
        ));
    }

    // Pack.
    output("-----> Compressing...");
    let packed = blocking("pack the slug", {
        let source_dir = request.source_dir.clone();
        let slug_dir = request.slug_dir.clone();
        let max = request.max_slug_bytes;
        move || slug::pack(&source_dir, &slug_dir, max)
    })
    .await?;
    output(&format!("       Done: {}", display_size(packed.size)));

    Ok(BuiltSlug {
        path: packed.path,
        checksum: format!("SHA256:{}", packed.sha256),
        size: packed.size,
        process_types,
        buildpack_description: description,
    })
}

/// A killed compile (SIGKILL, status 137) under a memory budget most likely ran out of it: say
/// so, since the kernel's OOM kill leaves only "Killed" in the output.
fn compile_hint(status: ExitStatus, request: &BuildRequest) -> String {
    let killed = status.code == Some(137) || status.signal == Some(9);
    match (killed, request.limits.memory_bytes) {
        (true, Some(memory)) => format!(
            " A process was killed, as happens when a build uses more than its memory budget \
             ({} MB); make the build use less memory.",
            memory / (1024 * 1024)
        ),
        _ => String::new(),
    }
}

/// Runs the built-ins' detect in order; the first that passes wins.
async fn auto_detect(steps: &StepRunner<'_>) -> Result<(ResolvedBuildpack, String), BuildError> {
    for name in BUILTIN_BUILDPACKS {
        let buildpack = buildpacks::builtin(name, &steps.request.buildpacks_dir)?;
        let detect = steps.detect(&format!("detect-{name}"), &buildpack).await?;
        if detect.status.success() {
            let framework = detect.framework(&buildpack);
            return Ok((buildpack, framework));
        }
    }
    Err(BuildError::NoBuildpack {
        looked_for: buildpacks::looked_for(),
    })
}

/// Creates the directories, prunes the source, validates an existing Procfile early (before
/// a slow compile), writes the env dir and hands everything to the build user. Returns what
/// `.slugignore` removed.
fn prepare(request: &BuildRequest, env_dir: &Path) -> Result<Vec<String>, BuildError> {
    for dir in [&request.cache_dir, &request.work_dir, &request.slug_dir] {
        std::fs::create_dir_all(dir).map_err(|e| BuildError::io("create", dir, e))?;
    }
    let source = &request.source_dir;
    if !source.is_dir() {
        return Err(BuildError::io(
            "read the app source in",
            source,
            std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
        ));
    }
    remove_path(&source.join(".git"))?;
    let removed = match read_tenant_file(source, ".slugignore", TENANT_FILE_CAP)? {
        Some(bytes) => {
            slugignore::apply(source, &slugignore::parse(&String::from_utf8_lossy(&bytes)))?
        }
        None => Vec::new(),
    };
    read_procfile(source)?;
    write_env_dir(env_dir, &request.config_vars, request.uid, request.gid)?;
    chown_recursive(source, request.uid, request.gid)?;
    chown_recursive(&request.cache_dir, request.uid, request.gid)?;
    Ok(removed)
}

/// Reads the Procfile through [`read_tenant_file`]: no symlinks, a regular file, 1 MB at most.
fn read_procfile(source_dir: &Path) -> Result<Option<procfile::Procfile>, BuildError> {
    match read_tenant_file(source_dir, "Procfile", TENANT_FILE_CAP)? {
        Some(bytes) => Ok(Some(procfile::parse(&String::from_utf8_lossy(&bytes))?)),
        None => Ok(None),
    }
}

/// Which of the build's directories a step gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mount {
    App,
    Cache,
    Env,
}

/// What a build step's `bin/detect` said.
#[derive(Debug)]
struct Detection {
    status: ExitStatus,
    stdout: Vec<String>,
    stderr: Vec<String>,
}

impl Detection {
    /// The framework name: the first non-empty stdout line, else the buildpack's name.
    fn framework(&self, buildpack: &ResolvedBuildpack) -> String {
        self.stdout
            .iter()
            .map(|l| l.trim())
            .find(|l| !l.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| buildpack.name.clone())
    }
}

/// `bin/release` output. Heroku documents `addons` and `default_process_types`; the
/// historical `config_vars` is accepted and ignored.
#[derive(Debug, Default, Deserialize)]
struct ReleaseOutput {
    #[serde(default)]
    default_process_types: Option<BTreeMap<String, String>>,
}

/// The default process types in a buildpack's `bin/release` output (YAML); none when it
/// printed nothing or no `default_process_types`.
fn parse_release_output(text: &str) -> Result<BTreeMap<String, String>, serde_norway::Error> {
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let parsed: Option<ReleaseOutput> = serde_norway::from_str(text)?;
    Ok(parsed
        .and_then(|p| p.default_process_types)
        .unwrap_or_default())
}

/// Runs buildpack scripts in build containers.
struct StepRunner<'a> {
    runtime: &'a dyn Runtime,
    request: &'a BuildRequest,
    env_dir: PathBuf,
    /// When the whole build must be over ([`BuildRequest::build_timeout`]), and that limit.
    deadline: Option<(tokio::time::Instant, std::time::Duration)>,
}

impl StepRunner<'_> {
    async fn detect(
        &self,
        step: &str,
        buildpack: &ResolvedBuildpack,
    ) -> Result<Detection, BuildError> {
        let (status, (stdout, _), (stderr, _)) =
            self.run_captured(step, buildpack, "detect").await?;
        tracing::debug!(step, %status, ?stderr, "bin/detect finished");
        Ok(Detection {
            status,
            stdout,
            stderr,
        })
    }

    async fn release(
        &self,
        step: &str,
        buildpack: &ResolvedBuildpack,
        output: &BuildOutput,
    ) -> Result<BTreeMap<String, String>, BuildError> {
        if !buildpack.dir.join("bin/release").is_file() {
            return Ok(BTreeMap::new());
        }
        let (status, (stdout, stdout_truncated), (stderr, _)) =
            self.run_captured(step, buildpack, "release").await?;
        for line in &stderr {
            output(line);
        }
        if !status.success() {
            return Err(BuildError::ReleaseFailed {
                buildpack: buildpack.name.clone(),
                status: status.to_string(),
                detail: stderr.last().cloned().unwrap_or_default(),
            });
        }
        if stdout_truncated {
            return Err(BuildError::ReleaseOutputTooLarge {
                buildpack: buildpack.name.clone(),
                cap: TENANT_FILE_CAP,
            });
        }
        parse_release_output(&stdout.join("\n")).map_err(|source| {
            BuildError::InvalidReleaseOutput {
                buildpack: buildpack.name.clone(),
                source,
            }
        })
    }

    /// Runs `bin/<script>` of `buildpack` with the app mounted, and returns its exit status
    /// and its captured stdout and stderr (each with whether it was cut at the cap).
    async fn run_captured(
        &self,
        step: &str,
        buildpack: &ResolvedBuildpack,
        script: &str,
    ) -> Result<(ExitStatus, Taken, Taken), BuildError> {
        let (sink, stdout, stderr) = capture();
        let status = self
            .run(step, buildpack, script, &[Mount::App], sink)
            .await?;
        Ok((status, take(&stdout), take(&stderr)))
    }

    /// Runs `bin/<script>` of `buildpack` with the classic arguments for that script.
    async fn run(
        &self,
        step: &str,
        buildpack: &ResolvedBuildpack,
        script: &str,
        mounts: &[Mount],
        sink: OutputSink,
    ) -> Result<ExitStatus, BuildError> {
        let request = self.request;
        let paths = StepPaths::new(request, &self.env_dir, buildpack);
        let mut args = vec![format!("{}/bin/{script}", paths.buildpack)];
        for mount in mounts {
            args.push(match mount {
                Mount::App => paths.app.clone(),
                Mount::Cache => paths.cache.clone(),
                Mount::Env => paths.env.clone(),
            });
        }
        let binds = vec![
            BindMount {
                source: request.source_dir.clone(),
                target: "/app".to_string(),
                readonly: false,
            },
            BindMount {
                source: request.cache_dir.clone(),
                target: "/cache".to_string(),
                readonly: false,
            },
            BindMount {
                source: self.env_dir.clone(),
                target: "/env".to_string(),
                readonly: true,
            },
            BindMount {
                source: buildpack.dir.clone(),
                target: "/buildpack".to_string(),
                readonly: true,
            },
        ];
        let id = container_id(&request.app, &request.build_id, step);
        let labels = BTreeMap::from([
            ("role".to_string(), "build".to_string()),
            ("app".to_string(), request.app.clone()),
            ("build".to_string(), request.build_id.clone()),
            ("step".to_string(), step.to_string()),
        ]);
        let spec = ContainerSpec {
            id,
            labels,
            app_dir: None,
            rootfs: request.rootfs.clone(),
            binds,
            args,
            env: vec![
                ("HOME".to_string(), paths.app.clone()),
                (
                    "PATH".to_string(),
                    "/usr/local/bin:/usr/bin:/bin".to_string(),
                ),
                ("STACK".to_string(), request.stack.clone()),
            ],
            cwd: "/app".to_string(),
            uid: request.uid,
            gid: request.gid,
            hostname: "build".to_string(),
            limits: Limits {
                disk_bytes: request.limits.disk_bytes.or(Some(BUILD_DISK_BYTES)),
                ..request.limits.clone()
            },
            // Its own network namespace: egress through the runtime's NAT, nothing of the host.
            network: Network::Isolated,
        };
        tracing::debug!(id = %spec.id, args = ?spec.args, "running build step");
        let id = spec.id.clone();
        let run = run_to_completion(self.runtime, spec, sink);
        // The step's own limit, or what is left of the build's, whichever ends first.
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
                    return Err(match self.deadline {
                        Some((at, limit)) if at <= deadline => BuildError::BuildTimedOut { limit },
                        _ => BuildError::TimedOut {
                            step: step.to_string(),
                            timeout: request.step_timeout.unwrap_or_default(),
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
}

/// How long a timed-out build step gets between SIGTERM and SIGKILL.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// The paths a build script is given, as it sees them.
struct StepPaths {
    app: String,
    cache: String,
    env: String,
    buildpack: String,
}

impl StepPaths {
    fn new(request: &BuildRequest, env_dir: &Path, buildpack: &ResolvedBuildpack) -> Self {
        match request.mount_view {
            MountView::Container => Self {
                app: "/app".to_string(),
                cache: "/cache".to_string(),
                env: "/env".to_string(),
                buildpack: "/buildpack".to_string(),
            },
            MountView::Host => Self {
                app: host_path(&request.source_dir),
                cache: host_path(&request.cache_dir),
                env: host_path(env_dir),
                buildpack: host_path(&buildpack.dir),
            },
        }
    }
}

fn host_path(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Lines a step printed, up to [`TENANT_FILE_CAP`] bytes; `truncated` when it printed more.
#[derive(Debug, Default)]
struct Captured {
    lines: Vec<String>,
    bytes: u64,
    truncated: bool,
}

type Lines = Arc<Mutex<Captured>>;

/// A sink that collects stdout and stderr lines separately, each up to [`TENANT_FILE_CAP`]
/// bytes: a step's output is tenant input and must not grow the server without bound.
fn capture() -> (OutputSink, Lines, Lines) {
    let stdout: Lines = Arc::default();
    let stderr: Lines = Arc::default();
    let sink: OutputSink = {
        let stdout = stdout.clone();
        let stderr = stderr.clone();
        Arc::new(move |stream: Stream, line: &str| {
            let lines = match stream {
                Stream::Stdout => &stdout,
                Stream::Stderr => &stderr,
            };
            let mut captured = lines
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let size = line.len() as u64 + 1;
            if captured.bytes + size > TENANT_FILE_CAP {
                captured.truncated = true;
                return;
            }
            captured.bytes += size;
            captured.lines.push(line.to_string());
        })
    };
    (sink, stdout, stderr)
}

/// One stream's captured lines, and whether some were dropped over the cap.
type Taken = (Vec<String>, bool);

/// The captured lines, and whether some were dropped over the cap.
fn take(lines: &Lines) -> Taken {
    let captured = std::mem::take(&mut *lines.lock().unwrap_or_else(|p| p.into_inner()));
    (captured.lines, captured.truncated)
}

async fn blocking<T: Send + 'static>(
    task: &'static str,
    f: impl FnOnce() -> Result<T, BuildError> + Send + 'static,
) -> Result<T, BuildError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| BuildError::TaskFailed { task })?
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

/// `heroku-24` → `Heroku-24`.
fn display_stack(stack: &str) -> String {
    let mut chars = stack.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => "unknown".to_string(),
    }
}

/// Heroku style: `12.3M`, or `4.5K` below a mebibyte.
pub(crate) fn display_size(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    let bytes = bytes as f64;
    if bytes >= MIB {
        format!("{:.1}M", bytes / MIB)
    } else {
        format!("{:.1}K", bytes / 1024.0)
    }
}

fn join_types<'a>(types: impl Iterator<Item = &'a String>) -> String {
    let joined = types.map(String::as_str).collect::<Vec<_>>().join(", ");
    if joined.is_empty() {
        "(none)".to_string()
    } else {
        joined
    }
}

#[cfg(test)]
mod tests;
