//! The build pipeline: prune the source, run the buildpacks' detect/compile/release in build
//! containers, work out the process types and pack the slug.

use std::collections::BTreeMap;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use slipway_runtime::{BindMount, ExitStatus, OutputSink, Runtime, Stream};

use crate::build_container::{build_deadline, host_path, run_step, StepContainer};
use crate::buildpacks::{self, ResolvedBuildpack, BUILTIN_BUILDPACKS};
use crate::detect::Detected;
use crate::fsutil::{
    chown_recursive, copy_tree, read_tenant_file, remove_path, sanitize_component, write_env_dir,
    TENANT_FILE_CAP,
};
use crate::{
    detail_suffix, read_procfile, slug, slugignore, BuildError, BuildOutput, BuildRequest,
    BuildpackReport, BuiltSlug, MountView,
};

/// Builds `request.source_dir` into a slug in `request.slug_dir`, streaming Heroku-style
/// output lines through `output`. On any error no slug is written. The env dir (config var
/// values) is removed from `work_dir` afterwards, whatever the outcome.
pub async fn build(
    runtime: &dyn Runtime,
    request: &BuildRequest,
    output: BuildOutput,
) -> Result<BuiltSlug, BuildError> {
    // Cloud Native Buildpacks take their own path (`cnb.rs`) to the same kind of slug.
    let cnb_group = blocking("read the CNB group", {
        let request = request.clone();
        move || crate::cnb::select(&request)
    })
    .await?;
    if let Some(group) = cnb_group {
        return crate::cnb::build(runtime, request, output, group).await;
    }
    let env_dir = request.work_dir.join("env");
    let mut kept = Vec::new();
    let result = build_inner(runtime, request, output, &env_dir, &mut kept).await;
    // The kept directories go back to their store whatever the outcome: the buildpacks' own
    // cache keys say whether the next build may use them.
    if !kept.is_empty() {
        match blocking("keep the buildpacks' directories", move || {
            crate::kept::keep(&kept)
        })
        .await
        {
            Ok(count) => tracing::debug!(app = %request.app, count, "kept build directories"),
            Err(error) => {
                tracing::warn!(app = %request.app, %error, "could not keep the build's directories; the next build installs them again")
            }
        }
    }
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
    kept: &mut Vec<crate::kept::KeptDir>,
) -> Result<BuiltSlug, BuildError> {
    output(&crate::stack_line(request));
    let mut timings = Timings::new(request);

    let removed = blocking("prepare the build directory", {
        let request = request.clone();
        let env_dir = env_dir.to_path_buf();
        move || prepare(&request, &env_dir)
    })
    .await?;
    timings.lap("prepare");
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
        deadline: build_deadline(request),
    };

    // Detect. Each buildpack runs from a per-build copy owned by the build user, which it
    // may write to: Heroku's contract has `bin/compile` leave `$BUILDPACK_DIR/export` for the
    // buildpacks after it, and the installed (or cached) directory is shared by every build
    // and readable by the platform only. Built-ins are detected in place (they are
    // world-readable) and only the one chosen is copied.
    let selected = if request.buildpacks.is_empty() {
        let (winner, framework) = auto_detect(&steps).await?;
        let copies = copy_buildpacks(request, vec![winner]).await?;
        copies
            .into_iter()
            .map(|copy| (copy, framework.clone()))
            .collect::<Vec<_>>()
    } else {
        let resolved = request
            .buildpacks
            .iter()
            .map(|name| buildpacks::resolve(name, &request.buildpacks_dir))
            .collect::<Result<Vec<_>, _>>()?;
        let copies = copy_buildpacks(request, resolved).await?;
        let mut selected = Vec::new();
        for (index, (name, buildpack)) in request.buildpacks.iter().zip(copies).enumerate() {
            let step = format!("detect-{index}-{}", buildpack.name);
            let detect = steps.detect(&step, &buildpack).await?;
            if !detect.status.success() {
                return Err(BuildError::NotCompatible {
                    buildpack: display_name(name),
                    status: detect.status.to_string(),
                    detail: detect.stderr.last().cloned().unwrap_or_default(),
                });
            }
            let framework = detect.framework(&buildpack);
            selected.push((buildpack, framework));
        }
        selected
    };
    timings.lap("detect");

    // Compile in order, each after the exports of those before it; the last buildpack's
    // release output is used (heroku-buildpack-multi's "release configuration from last
    // framework").
    let mut reports = Vec::new();
    for (index, (buildpack, framework)) in selected.iter().enumerate() {
        output(&format!("-----> {framework} app detected"));
        let step = format!("compile-{index}-{}", buildpack.name);
        let restored = blocking("restore the kept directories", {
            let request = request.clone();
            let buildpack = buildpack.clone();
            move || {
                crate::kept::restore(
                    &request.source_dir,
                    &request.cache_dir,
                    &buildpack.name,
                    buildpack.kept_dirs,
                    request.uid,
                    request.gid,
                )
            }
        })
        .await?;
        let kept_env = crate::kept::step_env(&restored);
        kept.extend(restored);
        let sink_output = output.clone();
        let sink: OutputSink = Arc::new(move |_stream: Stream, line: &str| sink_output(line));
        let status = steps
            .run(
                &step,
                buildpack,
                "compile",
                &[Mount::App, Mount::Cache, Mount::Env],
                sink,
                &kept_env,
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
        blocking("keep the buildpack's export file", {
            let buildpack = buildpack.clone();
            let exports = steps.exports_dir();
            let (uid, gid) = (request.uid, request.gid);
            move || keep_export(&buildpack, index, &exports, uid, gid)
        })
        .await?;
        if let Some(report) = steps
            .report(
                &format!("report-{index}-{}", buildpack.name),
                buildpack,
                &output,
            )
            .await?
        {
            reports.push(report);
        }
        timings.lap(&step);
    }
    let (last, description) = selected
        .last()
        .map(|(buildpack, framework)| (buildpack.clone(), framework.clone()))
        .ok_or_else(|| BuildError::NoBuildpack {
            looked_for: buildpacks::looked_for(),
        })?;
    let release = steps
        .release(
            &format!("release-{}-{}", selected.len() - 1, last.name),
            &last,
            &output,
        )
        .await?;
    if !release.addons.is_empty() {
        output(&format!(
            "       Warning: buildpack {} asks for the add-ons {}; Slipway provisions add-ons only when asked (`slipway addons:create`) or listed in app.json",
            last.name,
            release.addons.join(", ")
        ));
    }
    if !release.config_vars.is_empty() {
        let written = blocking("write the buildpack's default config vars", {
            let source_dir = request.source_dir.clone();
            let vars = release.config_vars.clone();
            let (uid, gid) = (request.uid, request.gid);
            move || write_config_var_defaults(&source_dir, &vars, uid, gid)
        })
        .await?;
        match written {
            Ok(keys) => output(&format!(
                "       Default config vars from buildpack {} (used when unset): {}",
                last.name,
                keys.join(", ")
            )),
            Err(reason) => output(&format!(
                "       Warning: the default config vars of buildpack {} were not kept: {reason}",
                last.name
            )),
        }
    }
    let default_process_types = release.default_process_types;
    timings.lap("release");

    // Process types: the Procfile wins over the buildpack's defaults.
    output("-----> Discovering process types");
    let procfile = blocking("read the Procfile", {
        let source_dir = request.source_dir.clone();
        move || read_procfile(&source_dir)
    })
    .await?;
    let (process_types, declared) =
        crate::with_procfile(&default_process_types, procfile.as_ref(), &output);
    if default_process_types.is_empty() {
        output(&format!("       Procfile declares types -> {declared}"));
    } else {
        output(&format!("       Procfile declares types     -> {declared}"));
        output(&format!(
            "       Default types for buildpack -> {}",
            crate::join_types(default_process_types.keys())
        ));
    }

    // Pack, reusing the compressed runs of the app's previous slug that did not change.
    output("-----> Compressing...");
    let (packed, stats) = blocking("pack the slug", {
        let source_dir = request.source_dir.clone();
        let slug_dir = request.slug_dir.clone();
        let layers = slug::layers_dir(&request.cache_dir);
        let max = request.max_slug_bytes;
        move || slug::pack_reusing(&source_dir, &slug_dir, max, Some(&layers))
    })
    .await?;
    output(&format!(
        "       Done: {}",
        crate::display_size(packed.size)
    ));
    timings.lap("pack");
    timings.report(&stats);

    Ok(BuiltSlug {
        path: packed.path,
        checksum: format!("SHA256:{}", packed.sha256),
        size: packed.size,
        process_types,
        buildpack_description: description,
        reports,
    })
}

/// How long each phase of a build took, logged at its end (the server's log, `info`) so that
/// a slow build can be taken apart: prepare (prune the source, write the env dir, hand the
/// tree to the build user), detect, each buildpack's compile (with its report), release and
/// pack.
struct Timings {
    app: String,
    build_id: String,
    started: std::time::Instant,
    last: std::time::Instant,
    phases: Vec<(String, std::time::Duration)>,
}

impl Timings {
    fn new(request: &BuildRequest) -> Self {
        let now = std::time::Instant::now();
        Self {
            app: request.app.clone(),
            build_id: request.build_id.clone(),
            started: now,
            last: now,
            phases: Vec::new(),
        }
    }

    /// Ends the phase `name` now.
    fn lap(&mut self, name: &str) {
        let now = std::time::Instant::now();
        self.phases.push((name.to_owned(), now - self.last));
        self.last = now;
    }

    fn report(&self, stats: &slug::PackStats) {
        let phases = self
            .phases
            .iter()
            .map(|(name, took)| format!("{name}={}ms", took.as_millis()))
            .collect::<Vec<_>>()
            .join(" ");
        tracing::info!(
            app = %self.app,
            build = %self.build_id,
            total_ms = self.started.elapsed().as_millis() as u64,
            reused_parts = stats.reused_parts,
            reused_mb = stats.reused_bytes / (1024 * 1024),
            unread_parts = stats.unread_parts,
            compressed_parts = stats.compressed_parts,
            compressed_mb = stats.compressed_bytes / (1024 * 1024),
            "build phases: {phases}"
        );
    }
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

/// Runs the built-ins' detect in order (their rules, else their scripts); the first that
/// passes wins. When that is only the
/// generic Procfile buildpack (or none passes) while the app has files of a language no
/// buildpack here builds, the build fails naming them rather than deploy what cannot start.
async fn auto_detect(steps: &StepRunner<'_>) -> Result<(ResolvedBuildpack, String), BuildError> {
    let mut winner = None;
    // The built-ins' rules are file checks, made here against the tree (`detect.rs`); a
    // built-in's script runs in a container only where its rule meets a symbolic link.
    let rules = blocking("detect the built-in buildpacks", {
        let source_dir = steps.request.source_dir.clone();
        move || {
            Ok(BUILTIN_BUILDPACKS
                .iter()
                .map(|name| crate::detect::builtin(name, &source_dir))
                .collect::<Vec<_>>())
        }
    })
    .await?;
    for (name, rule) in BUILTIN_BUILDPACKS.into_iter().zip(rules) {
        let buildpack = buildpacks::builtin(name, &steps.request.buildpacks_dir)?;
        match rule {
            Some(Detected::Yes(framework)) => {
                winner = Some((buildpack, framework.to_owned()));
                break;
            }
            Some(Detected::No) => continue,
            Some(Detected::Unsure) | None => {}
        }
        let detect = steps.detect(&format!("detect-{name}"), &buildpack).await?;
        if detect.status.success() {
            let framework = detect.framework(&buildpack);
            winner = Some((buildpack, framework));
            break;
        }
    }
    let generic = winner
        .as_ref()
        .is_none_or(|(buildpack, _)| buildpack.name == buildpacks::GENERIC_BUILDPACK);
    if generic {
        let source_dir = steps.request.source_dir.clone();
        let found = blocking("look for language files", move || {
            Ok(buildpacks::unbuildable_language_files(&source_dir))
        })
        .await?;
        if !found.is_empty() {
            let mut languages: Vec<&str> = Vec::new();
            for (_, language) in &found {
                if !languages.contains(language) {
                    languages.push(language);
                }
            }
            return Err(BuildError::LanguageWithoutBuildpack {
                found: found
                    .iter()
                    .map(|(file, language)| format!("{file} ({language})"))
                    .collect::<Vec<_>>()
                    .join(", "),
                languages: languages.join(" or "),
            });
        }
    }
    winner.ok_or_else(|| BuildError::NoBuildpack {
        looked_for: buildpacks::looked_for(),
    })
}

/// Copies each buildpack to `work_dir/buildpacks/<index>-<name>`, owned by the build user,
/// and returns the copies (writable) in the same order.
async fn copy_buildpacks(
    request: &BuildRequest,
    buildpacks: Vec<ResolvedBuildpack>,
) -> Result<Vec<ResolvedBuildpack>, BuildError> {
    let request = request.clone();
    blocking("copy the buildpacks", move || {
        let root = request.work_dir.join("buildpacks");
        remove_path(&root)?;
        std::fs::create_dir_all(&root).map_err(|e| BuildError::io("create", &root, e))?;
        buildpacks
            .into_iter()
            .enumerate()
            .map(|(index, buildpack)| {
                let dir = root.join(format!("{index}-{}", sanitize_component(&buildpack.name)));
                copy_tree(&buildpack.dir, &dir)?;
                chown_recursive(&dir, request.uid, request.gid)?;
                Ok(ResolvedBuildpack {
                    name: buildpack.name,
                    dir,
                    writable: true,
                    kept_dirs: buildpack.kept_dirs,
                })
            })
            .collect()
    })
    .await
}

/// How a configured buildpack is named in messages: a built-in's name, or a directory's
/// last component (a fetched buildpack's cache path means nothing to the tenant).
fn display_name(name: &str) -> String {
    if Path::new(name).is_absolute() {
        Path::new(name)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| name.to_owned())
    } else {
        name.to_owned()
    }
}

/// After a buildpack's compile: its `export` file (if it left one, through
/// [`read_tenant_file`]: no symlink, at most [`TENANT_FILE_CAP`]) becomes
/// `exports/<index>`, which the next compiles source in order.
fn keep_export(
    buildpack: &ResolvedBuildpack,
    index: usize,
    exports: &Path,
    uid: u32,
    gid: u32,
) -> Result<(), BuildError> {
    let Some(contents) = read_tenant_file(&buildpack.dir, "export", TENANT_FILE_CAP)? else {
        return Ok(());
    };
    let path = exports.join(format!("{index:03}"));
    std::fs::write(&path, contents).map_err(|e| BuildError::io("write", &path, e))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
        .map_err(|e| BuildError::io("set permissions of", &path, e))?;
    chown_recursive(&path, uid, gid)
}

/// Where `bin/release`'s `config_vars` go: a `.profile.d` script that exports each one only
/// when the app has not set it, as Dokku's herokuish does (Heroku itself stopped documenting
/// them; they were defaults for the app's config).
pub(crate) const CONFIG_VAR_DEFAULTS_SCRIPT: &str = "000-buildpack-config-vars.sh";

/// Writes [`CONFIG_VAR_DEFAULTS_SCRIPT`] into the app's `.profile.d`; returns the keys kept,
/// or why nothing was (a key that is not a shell name, or a `.profile.d` that is not a plain
/// directory: the build may have left a symlink there, which the platform must not write
/// through).
fn write_config_var_defaults(
    source_dir: &Path,
    vars: &BTreeMap<String, String>,
    uid: u32,
    gid: u32,
) -> Result<Result<Vec<String>, String>, BuildError> {
    let script = match config_var_defaults_script(vars) {
        Ok(script) => script,
        Err(reason) => return Ok(Err(reason)),
    };
    let dir = source_dir.join(".profile.d");
    match std::fs::symlink_metadata(&dir) {
        Ok(metadata) if metadata.is_dir() => {}
        Ok(_) => return Ok(Err(".profile.d is not a directory".to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir(&dir).map_err(|e| BuildError::io("create", &dir, e))?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| BuildError::io("set permissions of", &dir, e))?;
            chown_recursive(&dir, uid, gid)?;
        }
        Err(e) => return Err(BuildError::io("inspect", &dir, e)),
    }
    let path = dir.join(CONFIG_VAR_DEFAULTS_SCRIPT);
    remove_path(&path)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| BuildError::io("create", &path, e))?;
    std::io::Write::write_all(&mut file, script.as_bytes())
        .map_err(|e| BuildError::io("write", &path, e))?;
    chown_recursive(&path, uid, gid)?;
    Ok(Ok(vars.keys().cloned().collect()))
}

/// The shell text of [`CONFIG_VAR_DEFAULTS_SCRIPT`]: each value single-quoted, set only when
/// the variable is unset. A key that is not a shell variable name refuses the whole map.
pub(crate) fn config_var_defaults_script(
    vars: &BTreeMap<String, String>,
) -> Result<String, String> {
    let mut script = String::from(
        "# Default config vars from the last buildpack's bin/release; a config var set on the app wins.\n",
    );
    for (key, value) in vars {
        let valid = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            let shown: String = key.chars().take(64).filter(|c| !c.is_control()).collect();
            return Err(format!("{shown:?} is not a shell variable name"));
        }
        let quoted = value.replace('\'', "'\\''");
        script.push_str(&format!(
            "if [ -z \"${{{key}+set}}\" ]; then export {key}='{quoted}'; fi\n"
        ));
    }
    Ok(script)
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
    let exports = request.work_dir.join("exports");
    remove_path(&exports)?;
    std::fs::create_dir_all(&exports).map_err(|e| BuildError::io("create", &exports, e))?;
    std::fs::set_permissions(&exports, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| BuildError::io("set permissions of", &exports, e))?;
    chown_recursive(&exports, request.uid, request.gid)?;
    chown_recursive(source, request.uid, request.gid)?;
    chown_recursive(&request.cache_dir, request.uid, request.gid)?;
    Ok(removed)
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
/// historical `config_vars` is kept as defaults (see [`CONFIG_VAR_DEFAULTS_SCRIPT`]).
#[derive(Debug, Default, Deserialize)]
struct RawReleaseOutput {
    #[serde(default)]
    default_process_types: Option<BTreeMap<String, String>>,
    #[serde(default)]
    addons: Option<Vec<String>>,
    #[serde(default)]
    config_vars: Option<BTreeMap<String, serde_norway::Value>>,
}

/// What the platform takes from a `bin/release`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ReleaseOutput {
    pub(crate) default_process_types: BTreeMap<String, String>,
    pub(crate) addons: Vec<String>,
    /// Scalar values as text; a nested value is dropped.
    pub(crate) config_vars: BTreeMap<String, String>,
}

/// A buildpack's `bin/release` output (YAML); empty when it printed nothing.
fn parse_release_output(text: &str) -> Result<ReleaseOutput, serde_norway::Error> {
    if text.trim().is_empty() {
        return Ok(ReleaseOutput::default());
    }
    let parsed: Option<RawReleaseOutput> = serde_norway::from_str(text)?;
    let parsed = parsed.unwrap_or_default();
    Ok(ReleaseOutput {
        default_process_types: parsed.default_process_types.unwrap_or_default(),
        addons: parsed.addons.unwrap_or_default(),
        config_vars: parsed
            .config_vars
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(key, value)| scalar_text(&value).map(|text| (key, text)))
            .collect(),
    })
}

/// A YAML scalar as text (`3000`, `true`, `abc`); none for null, lists and maps.
fn scalar_text(value: &serde_norway::Value) -> Option<String> {
    match value {
        serde_norway::Value::String(text) => Some(text.clone()),
        serde_norway::Value::Number(number) => Some(number.to_string()),
        serde_norway::Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// A buildpack's `bin/report` output: a flat YAML map (Heroku's buildpacks print
/// `key: value` lines of build metadata). Nested values are kept as their YAML text.
fn parse_report(text: &str) -> Result<BTreeMap<String, String>, serde_norway::Error> {
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let parsed: Option<BTreeMap<String, serde_norway::Value>> = serde_norway::from_str(text)?;
    Ok(parsed
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| {
            let text = scalar_text(&value).unwrap_or_else(|| match value {
                serde_norway::Value::Null => String::new(),
                other => serde_norway::to_string(&other)
                    .map(|yaml| yaml.trim_end().to_owned())
                    .unwrap_or_default(),
            });
            (key, text)
        })
        .collect())
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

    /// Where the exports of finished compiles are kept (host path).
    fn exports_dir(&self) -> PathBuf {
        self.request.work_dir.join("exports")
    }

    /// Runs `bin/report BUILD_DIR CACHE_DIR ENV_DIR` when the buildpack has one and returns
    /// its metadata. A report is informative: one that fails or is not a YAML map is a
    /// warning in the output, never a failed build.
    async fn report(
        &self,
        step: &str,
        buildpack: &ResolvedBuildpack,
        output: &BuildOutput,
    ) -> Result<Option<BuildpackReport>, BuildError> {
        if !buildpack.dir.join("bin/report").is_file() {
            return Ok(None);
        }
        let (sink, stdout, stderr) = capture();
        let status = self
            .run(
                step,
                buildpack,
                "report",
                &[Mount::App, Mount::Cache, Mount::Env],
                sink,
                &[],
            )
            .await?;
        let ((stdout, truncated), (stderr, _)) = (take(&stdout), take(&stderr));
        let warn = |reason: String| {
            output(&format!(
                "       Warning: bin/report of buildpack {} {reason}; its report is not kept",
                buildpack.name
            ));
            Ok(None)
        };
        if !status.success() {
            let detail = stderr.last().cloned().unwrap_or_default();
            return warn(format!(
                "exited with status {status}{}",
                detail_suffix(&detail)
            ));
        }
        if truncated {
            return warn(format!("printed more than {} KB", TENANT_FILE_CAP / 1024));
        }
        match parse_report(&stdout.join("\n")) {
            Ok(entries) => {
                // Heroku keeps reports for its own metrics; here the tenant sees them in the
                // build output (and so in `builds:output`).
                if !entries.is_empty() {
                    output(&format!(
                        "-----> Build report of buildpack {}",
                        buildpack.name
                    ));
                    for (key, value) in &entries {
                        let value: String = value.chars().filter(|c| !c.is_control()).collect();
                        output(&format!("       {key}: {value}"));
                    }
                }
                Ok(Some(BuildpackReport {
                    buildpack: buildpack.name.clone(),
                    entries,
                }))
            }
            Err(error) => warn(format!("printed output that is not a YAML map ({error})")),
        }
    }

    async fn release(
        &self,
        step: &str,
        buildpack: &ResolvedBuildpack,
        output: &BuildOutput,
    ) -> Result<ReleaseOutput, BuildError> {
        // A buildpack without bin/release (a "null" buildpack) declares nothing.
        if !buildpack.dir.join("bin/release").is_file() {
            return Ok(ReleaseOutput::default());
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
            .run(step, buildpack, script, &[Mount::App], sink, &[])
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
        extra_env: &[(String, String)],
    ) -> Result<ExitStatus, BuildError> {
        let request = self.request;
        let paths = StepPaths::new(request, &self.env_dir, buildpack);
        let mut args = Vec::new();
        if script == "compile" {
            // The exports of the buildpacks before this one, sourced in order, then the
            // compile itself in their environment (heroku-buildpack-multi's contract).
            args.extend([
                "/bin/bash".to_string(),
                "-c".to_string(),
                COMPILE_WRAPPER.to_string(),
                "compile".to_string(),
                paths.exports.clone(),
            ]);
        }
        args.push(format!("{}/bin/{script}", paths.buildpack));
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
                readonly: !buildpack.writable,
            },
            BindMount {
                source: self.exports_dir(),
                target: "/exports".to_string(),
                readonly: true,
            },
        ];
        let mut env = vec![
            ("HOME".to_string(), paths.app.clone()),
            (
                "PATH".to_string(),
                "/usr/local/bin:/usr/bin:/bin".to_string(),
            ),
            ("STACK".to_string(), request.stack.clone()),
            // Heroku's builds carry the build's id as REQUEST_ID (herokuish does too).
            ("REQUEST_ID".to_string(), request.build_id.clone()),
        ];
        if let Some(version) = &request.source_version {
            env.push(("SOURCE_VERSION".to_string(), version.clone()));
        }
        env.extend(
            request
                .platform_env
                .iter()
                .map(|(key, value)| (key.clone(), value.clone())),
        );
        env.extend(extra_env.iter().cloned());
        let container = StepContainer {
            binds,
            args,
            env,
            cwd: "/app".to_string(),
        };
        run_step(self.runtime, request, step, container, sink, self.deadline).await
    }
}

/// Sources `$1/*` (the exports of the buildpacks compiled before, in order) and runs the rest
/// of its arguments: `bin/compile BUILD_DIR CACHE_DIR ENV_DIR`.
const COMPILE_WRAPPER: &str = r#"exports="$1"; shift
for f in "$exports"/*; do if [ -f "$f" ]; then . "$f"; fi; done
unset f exports
exec "$@""#;

/// The paths a build script is given, as it sees them.
struct StepPaths {
    app: String,
    cache: String,
    env: String,
    buildpack: String,
    exports: String,
}

impl StepPaths {
    fn new(request: &BuildRequest, env_dir: &Path, buildpack: &ResolvedBuildpack) -> Self {
        match request.mount_view {
            MountView::Container => Self {
                app: "/app".to_string(),
                cache: "/cache".to_string(),
                env: "/env".to_string(),
                buildpack: "/buildpack".to_string(),
                exports: "/exports".to_string(),
            },
            MountView::Host => Self {
                app: host_path(&request.source_dir),
                cache: host_path(&request.cache_dir),
                env: host_path(env_dir),
                buildpack: host_path(&buildpack.dir),
                exports: host_path(&request.work_dir.join("exports")),
            },
        }
    }
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

#[cfg(test)]
mod tests;
