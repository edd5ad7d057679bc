//! Turns an app's source directory into a slug, with Heroku's classic buildpack API.
//!
//! [`build`] prunes the source (`.slugignore`, `.git`), runs each buildpack's `bin/detect`,
//! `bin/compile` and `bin/release` in build containers through a [`slipway_runtime::Runtime`],
//! works out the process types (Procfile over the buildpack's defaults) and packs the result
//! as a content-addressed `./app/...` tarball. [`unpack_slug`] is the defensive inverse used
//! when a dyno's `/app` is prepared.
//!
//! Architecture Invariant: this crate knows nothing of the store, the API or releases. It gets
//! a fully resolved [`BuildRequest`] and returns a [`BuiltSlug`]; the caller records it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod build_container;
mod buildpacks;
mod cnb;
mod detect;
mod fsutil;
mod kept;
mod pipeline;
pub mod procfile;
mod slug;
mod slugignore;

pub use build_container::BUILD_DISK_BYTES;
pub use buildpacks::{
    install_builtin_buildpacks, parse_dot_buildpacks, BUILTIN_BUILDPACKS, MAX_DOT_BUILDPACKS,
};
pub use fsutil::{read_tenant_file, TenantFileError, TENANT_FILE_CAP};
pub use kept::remove_build_cache;
pub use pipeline::build;
pub use slug::{unpack_slug, unpack_source, MAX_UNPACKED_SLUG_BYTES};

/// Everything one build needs. All paths are host paths. `Default` exists so callers can
/// write `BuildRequest { app, source_dir, .., ..Default::default() }`; every path must be set.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    pub app: String,
    /// The checked-out source. It is modified in place (pruned, then compiled into), so it
    /// must be a scratch copy.
    pub source_dir: PathBuf,
    /// The app's build cache, persisted between builds. Created if missing.
    pub cache_dir: PathBuf,
    /// Written to the buildpacks' `ENV_DIR`, one file per var. Buildpacks choose what to export.
    pub config_vars: BTreeMap<String, String>,
    /// Where [`install_builtin_buildpacks`] put the built-in buildpacks.
    pub buildpacks_dir: PathBuf,
    /// Explicit buildpacks, run in order: a built-in name (`python`, `heroku/python`, ...) or
    /// an absolute path to a buildpack directory. Empty: auto-detect among the built-ins in
    /// the order of `BUILTIN_BUILDPACKS` (python, nodejs, ruby, php, go, java, rust, static,
    /// procfile).
    pub buildpacks: Vec<String>,
    /// Content-addressed slug store: slugs are written to `slug_dir/<sha256>.tgz`.
    pub slug_dir: PathBuf,
    /// Scratch space for this build (the env dir lives here). Created if missing.
    pub work_dir: PathBuf,
    /// The unprivileged user the build containers run as.
    pub uid: u32,
    pub gid: u32,
    /// E.g. `heroku-24`; exported to buildpacks as `STACK`.
    pub stack: String,
    /// The commit being built, exported to buildpacks as `SOURCE_VERSION` as Heroku does
    /// (unset when the source has no known version).
    pub source_version: Option<String>,
    /// The build image of that stack: the build containers' system directories.
    pub rootfs: slipway_runtime::Rootfs,
    /// Unique per build; part of the build containers' ids.
    pub build_id: String,
    /// How the runtime presents bind mounts to the build scripts.
    pub mount_view: MountView,
    /// Limit for each build step (detect, compile, release); the step's container is stopped
    /// and the build fails when it runs longer. `None`: no limit.
    pub step_timeout: Option<std::time::Duration>,
    /// Limit for the whole build (every step together; Heroku: 15 minutes). Past it the
    /// running step's container is killed and the build fails with
    /// [`BuildError::BuildTimedOut`]. `None`: no limit.
    pub build_timeout: Option<std::time::Duration>,
    /// The build budget: cgroup limits of every build container (memory, pids, CPU shares).
    /// Default: unlimited.
    pub limits: slipway_runtime::Limits,
    /// The largest compressed slug accepted (Heroku: 500 MB); a bigger one fails the build
    /// with [`BuildError::SlugTooLarge`] and is never kept. `None`: no limit.
    pub max_slug_bytes: Option<u64>,
    /// Variables the platform (not the app) sets for every build step, after `HOME`, `PATH`
    /// and `STACK`: the runtime sources (`SLIPWAY_RUNTIME_SOURCE_NODEJS=<url>`, ...) from
    /// which language buildpacks fetch the versions an app asks for. Not tenant input.
    pub platform_env: BTreeMap<String, String>,
}

/// How a runtime presents bind mounts to the processes it starts. The runtime trait does not
/// say, so the caller, which chose the runtime, does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MountView {
    /// The runtime isolates the filesystem (runc): binds appear at their targets, so scripts
    /// see `/app`, `/cache`, `/env` and `/buildpack`.
    #[default]
    Container,
    /// The runtime runs plain host processes (the process runtime): scripts are given the
    /// host paths of the bind sources instead. Absolute paths baked in by buildpacks (for
    /// example the Python venv's) then point at the host build dir, not at `/app`.
    Host,
}

/// A slug written to the slug store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltSlug {
    /// `slug_dir/<hex>.tgz`.
    pub path: PathBuf,
    /// `SHA256:<hex>` of the compressed tarball, as the Platform API's `slug.checksum`.
    pub checksum: String,
    /// Size of the compressed tarball in bytes.
    pub size: u64,
    /// Process type → command: the Procfile over the last buildpack's default process types.
    pub process_types: BTreeMap<String, String>,
    /// The last buildpack's framework name, e.g. `Python`.
    pub buildpack_description: String,
    /// What each buildpack's `bin/report` printed (a flat YAML map of build metadata), in
    /// build order; buildpacks without `bin/report` are absent.
    pub reports: Vec<BuildpackReport>,
}

/// One buildpack's `bin/report`: keys and values as printed (values kept as their YAML
/// text when not a string), at most [`TENANT_FILE_CAP`] of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildpackReport {
    /// The buildpack's short name, as in the build's messages.
    pub buildpack: String,
    pub entries: BTreeMap<String, String>,
}

/// Receives one line of build output at a time (streamed to `git push` as `remote:` lines).
pub type BuildOutput = Arc<dyn Fn(&str) + Send + Sync>;

/// Why a build failed. Messages are shown to the user who pushed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Auto-detection found no built-in buildpack for the app.
    #[error(
        "No default language could be detected for this app. Slipway looked for: {looked_for}. \
         Add one of these files, or set a buildpack explicitly."
    )]
    NoBuildpack {
        /// E.g. `requirements.txt, setup.py or pyproject.toml (Python); package.json (Node.js)`.
        looked_for: String,
    },
    /// Auto-detection found no language buildpack, but the app has files of a language no
    /// buildpack here builds (a `Gemfile`, `go.mod`, ...).
    #[error(
        "Push rejected: Found {found} but no buildpack for {languages} is available. Set one \
         with `slipway buildpacks:set URL` (a git URL or a .tgz of a classic buildpack, such as \
         the language's Heroku buildpack) and push again."
    )]
    LanguageWithoutBuildpack {
        /// E.g. `Gemfile (Ruby)`.
        found: String,
        /// E.g. `Ruby`.
        languages: String,
    },
    /// An explicitly configured buildpack's `bin/detect` rejected the app.
    #[error(
        "App not compatible with buildpack {buildpack}: its bin/detect exited with status \
         {status}{}",
        detail_suffix(detail)
    )]
    NotCompatible {
        buildpack: String,
        status: String,
        detail: String,
    },
    #[error(
        "Unknown buildpack {name:?}: use a built-in ({builtins}) or an absolute path to a \
         directory with bin/detect and bin/compile"
    )]
    UnknownBuildpack {
        name: String,
        /// The built-in buildpacks' names, for the message.
        builtins: String,
    },
    #[error(
        "The built-in buildpack {name} is not installed at {}; call install_builtin_buildpacks \
         on that directory first",
        path.display()
    )]
    BuiltinNotInstalled { name: String, path: PathBuf },
    #[error(
        "Push rejected, failed to compile {framework} app: bin/compile of buildpack {buildpack} \
         exited with status {status}.{hint} See the output above."
    )]
    CompileFailed {
        framework: String,
        buildpack: String,
        status: String,
        /// Empty, or a sentence (with a leading space) on the likely cause.
        hint: String,
    },
    #[error(
        "Push rejected: bin/release of buildpack {buildpack} exited with status {status}{}",
        detail_suffix(detail)
    )]
    ReleaseFailed {
        buildpack: String,
        status: String,
        detail: String,
    },
    #[error(
        "Push rejected: bin/release of buildpack {buildpack} printed output that is not the \
         expected YAML ({source})"
    )]
    InvalidReleaseOutput {
        buildpack: String,
        #[source]
        source: serde_norway::Error,
    },
    #[error(
        "Push rejected: bin/release of buildpack {buildpack} printed more than {} KB; Slipway \
         reads at most that much of its YAML",
        cap / 1024
    )]
    ReleaseOutputTooLarge { buildpack: String, cap: u64 },
    #[error("Push rejected: {source}. Fix the Procfile and push again.")]
    Procfile {
        #[from]
        source: procfile::ProcfileError,
    },
    #[error(
        "Config var name {key:?} cannot be passed to buildpacks: names must be non-empty and \
         must not contain `/` or NUL, nor be `.` or `..`"
    )]
    InvalidConfigVar { key: String },
    /// A file the platform reads from the app (Procfile, .slugignore) broke a rule: a
    /// symlink, not a regular file, or too big.
    #[error("Push rejected: {source}")]
    TenantFile {
        #[from]
        source: TenantFileError,
    },
    #[error("Could not run build step {step}: {source}")]
    Runtime {
        step: String,
        #[source]
        source: slipway_runtime::RuntimeError,
    },
    #[error("Could not {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "Refusing to unpack slug {}: entry {entry:?} {reason}. The slug is corrupt or hostile; \
         rebuild the app.",
        slug.display()
    )]
    UnsafeSlugEntry {
        slug: PathBuf,
        entry: String,
        reason: &'static str,
    },
    #[error(
        "Push rejected: the app's source contains an unsafe entry {entry:?}: it {reason}. \
         Remove it from the repository (or the source tarball) and push again."
    )]
    UnsafeSourceEntry { entry: String, reason: &'static str },
    /// An archive (source or slug) expands beyond its cap.
    #[error(
        "Push rejected: the {what} expands to more than {}M, the most Slipway unpacks. Remove \
         large files (or list them in .slugignore) and push again.",
        max / (1024 * 1024)
    )]
    ArchiveTooLarge { what: &'static str, max: u64 },
    /// Heroku's words: "Compiled slug size: 600M is too large (max is 500M)."
    #[error(
        "Push rejected: Compiled slug size: {}M is too large (max is {}M). Remove files the app \
         does not need at run time (list them in .slugignore, or clean the build cache) and \
         push again.",
        size / (1024 * 1024),
        max / (1024 * 1024)
    )]
    SlugTooLarge { size: u64, max: u64 },
    /// The whole build ran past [`BuildRequest::build_timeout`].
    #[error(
        "Push rejected: Build timed out: the build ran longer than {}, the limit for a build, \
         and was stopped. Make the build faster (reuse $CACHE_DIR between builds) and push \
         again.",
        display_duration(*limit)
    )]
    BuildTimedOut { limit: std::time::Duration },
    #[error(
        "Push rejected: build step {step} did not finish within {}s and was stopped",
        timeout.as_secs()
    )]
    TimedOut {
        step: String,
        timeout: std::time::Duration,
    },
    /// A Cloud Native Buildpacks build failed; the error (from `cnb.rs`) says why.
    #[error("{0}")]
    Cnb(Box<dyn std::error::Error + Send + Sync>),
    #[error("Internal error in build task {task}: it panicked or was cancelled")]
    TaskFailed { task: &'static str },
}

/// `15 minutes`, `90 seconds`.
fn display_duration(duration: std::time::Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        60 => "1 minute".to_string(),
        s if s % 60 == 0 => format!("{} minutes", s / 60),
        1 => "1 second".to_string(),
        s => format!("{s} seconds"),
    }
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(" ({detail})")
    }
}

impl BuildError {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The build's first line, Heroku's `-----> Building on the Heroku-24 stack`; on the host stack
/// it says what that really is. The classic and CNB paths both print it.
pub(crate) fn stack_line(request: &BuildRequest) -> String {
    match request.rootfs {
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
    }
}

/// `heroku-24` → `Heroku-24`.
pub(crate) fn display_stack(stack: &str) -> String {
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

/// Reads the Procfile through [`read_tenant_file`]: no symlinks, a regular file, 1 MB at most.
pub(crate) fn read_procfile(source_dir: &Path) -> Result<Option<procfile::Procfile>, BuildError> {
    match read_tenant_file(source_dir, "Procfile", TENANT_FILE_CAP)? {
        Some(bytes) => Ok(Some(procfile::parse(&String::from_utf8_lossy(&bytes))?)),
        None => Ok(None),
    }
}

/// The build's process types, the Procfile's over `defaults` (a buildpack's), and the list
/// the build output says the Procfile declares; the Procfile's warnings go to `output`. The
/// classic and CNB paths both answer this way.
pub(crate) fn with_procfile(
    defaults: &BTreeMap<String, String>,
    procfile: Option<&procfile::Procfile>,
    output: &BuildOutput,
) -> (BTreeMap<String, String>, String) {
    let mut process_types = defaults.clone();
    let declared = match procfile {
        Some(procfile) => {
            for warning in &procfile.warnings {
                output(&format!("       Warning: {warning}"));
            }
            process_types.extend(procfile.processes.clone());
            join_types(procfile.processes.keys())
        }
        None => "(none)".to_string(),
    };
    (process_types, declared)
}

/// `web, worker`, or `(none)`: the process-type lists of the build output.
pub(crate) fn join_types<'a>(types: impl Iterator<Item = &'a String>) -> String {
    let joined = types.map(String::as_str).collect::<Vec<_>>().join(", ");
    if joined.is_empty() {
        "(none)".to_string()
    } else {
        joined
    }
}
