//! Cloud Native Buildpacks (Buildpack API 0.10 and newer): the platform side of the CNB
//! lifecycle, run in the same build containers as the classic pipeline and producing the same
//! [`BuiltSlug`].
//!
//! The group comes from the app's buildpack list when every entry is a CNB buildpack
//! directory (a `buildpack.toml` at its root), else from `project.toml`'s
//! `[[io.buildpacks.group]]` (`uri` a directory committed with the app). Then, as the
//! lifecycle: detect (every buildpack's `bin/detect`, the build plan resolved across the group,
//! optional buildpacks left out when their part is unmet), restore (cached layers and their
//! metadata from the app's build cache), build (each participant's `bin/build` with its
//! Buildpack Plan, earlier buildpacks' `build` layers on its environment) and export.
//!
//! Where layers live: a build step sees its layers under `/app/.layers/<buildpack>/` (a
//! platform directory bound there, outside the app's tree), and the export moves the `launch`
//! layers to the same path in the slug, so a dyno, which sees only `/app`, finds them where
//! the build left them and paths buildpacks baked into files hold. Their launch environment
//! (`bin/`, `lib/`, `env/`, `env.launch/`, per process type too) becomes
//! `.profile.d/000-cnb-layers.sh`, which dynos source before the command. `launch.toml`
//! processes are the default process types (the Procfile wins); `cache` layers are kept in
//! the build cache, and a `launch`-only layer is rebuilt by its buildpack at every build
//! (there is no previous image to reuse it from).

mod buildpack;
mod env;
mod launch;
mod layers;
mod plan;
mod project;
mod step;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{lchown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use libcnb_data::launch::Launch;
use slipway_runtime::{OutputSink, Runtime, Stream};

use self::buildpack::CnbBuildpack;
use self::env::EnvModification;
use self::layers::{Export, Layer, Phase, APP_LAYERS_DIR};
use self::plan::{BuildToml, BuildpackPlan, Candidate, DetectPlan};
use self::step::{Runner, Script};
use crate::fsutil::{
    chown_recursive, read_tenant_file, remove_path, write_env_dir, TENANT_FILE_CAP,
};
use crate::{read_procfile, slug, slugignore, BuildError, BuildOutput, BuildRequest, BuiltSlug};

/// The `.profile.d` script holding the launch layers' environment.
const PROFILE_SCRIPT: &str = "000-cnb-layers.sh";

/// Why a CNB build failed. Messages are shown to the user who pushed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CnbError {
    #[error("Push rejected: Cloud Native Buildpack {buildpack} cannot be used: {detail}.")]
    InvalidBuildpack { buildpack: String, detail: String },
    #[error("Push rejected: {detail}")]
    Project { detail: String },
    #[error(
        "Push rejected: the app's buildpacks mix Cloud Native Buildpacks ({cnb}) with classic \
         buildpacks ({classic}); a build runs one kind. Set only one kind and push again."
    )]
    Mixed { cnb: String, classic: String },
    #[error(
        "Push rejected: No buildpack groups passed detection: {}. Check that the app has the \
         files its buildpacks look for, and push again.",
        reasons.join("; ")
    )]
    NoGroupPassed { reasons: Vec<String> },
    #[error(
        "Push rejected: bin/detect of buildpack {buildpack} failed with status {status} (100 \
         means \"does not apply\"; anything else is an error){}",
        detail_suffix(detail)
    )]
    DetectFailed {
        buildpack: String,
        status: String,
        detail: String,
    },
    #[error(
        "Push rejected, failed to build: bin/build of buildpack {buildpack} exited with status \
         {status}. See the output above."
    )]
    BuildFailed { buildpack: String, status: String },
    #[error("Push rejected: buildpack {buildpack} wrote an invalid {file}: {detail}")]
    InvalidOutput {
        buildpack: String,
        file: String,
        detail: String,
    },
    #[error(
        "Push rejected: the layer env file {} is larger than {} KB, the most Slipway reads.",
        path.display(),
        cap / 1024
    )]
    EnvFileTooLarge { path: PathBuf, cap: u64 },
    /// A failure the classic pipeline also has (a timeout, the runtime, the Procfile, a file
    /// operation, ...).
    #[error("{0}")]
    Build(Box<BuildError>),
}

impl CnbError {
    /// A file operation that failed, worded as the classic pipeline words it.
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        BuildError::io(action, path, source).into()
    }

    pub(crate) fn invalid_output(buildpack: &CnbBuildpack, file: &str, detail: String) -> Self {
        CnbError::InvalidOutput {
            buildpack: buildpack.id.clone(),
            file: file.to_string(),
            detail,
        }
    }
}

impl From<BuildError> for CnbError {
    fn from(error: BuildError) -> Self {
        CnbError::Build(Box::new(error))
    }
}

impl From<CnbError> for BuildError {
    fn from(error: CnbError) -> Self {
        match error {
            CnbError::Build(error) => *error,
            other => BuildError::Cnb(Box::new(other)),
        }
    }
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

/// Where the group comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Group {
    /// The app's buildpack list: absolute directories on the server.
    Server(Vec<PathBuf>),
    /// `project.toml`: directories relative to the app's root, and build-time env.
    Project(project::Project),
}

/// Whether this build is a CNB build, and its group. `None`: a classic build. Reads at most
/// `project.toml` and the buildpacks' `buildpack.toml` presence. Blocking.
pub(crate) fn select(request: &BuildRequest) -> Result<Option<Group>, BuildError> {
    if !request.buildpacks.is_empty() {
        let (cnb, classic): (Vec<&String>, Vec<&String>) =
            request.buildpacks.iter().partition(|name| {
                Path::new(name).is_absolute() && buildpack::is_cnb_dir(Path::new(name))
            });
        return match (cnb.is_empty(), classic.is_empty()) {
            (true, _) => Ok(None),
            (false, true) => Ok(Some(Group::Server(
                cnb.into_iter().map(PathBuf::from).collect(),
            ))),
            (false, false) => Err(CnbError::Mixed {
                cnb: join(cnb.iter().map(|s| s.as_str())),
                classic: join(classic.iter().map(|s| s.as_str())),
            }
            .into()),
        };
    }
    let Some(bytes) = read_tenant_file(&request.source_dir, "project.toml", TENANT_FILE_CAP)?
    else {
        return Ok(None);
    };
    let project = project::parse(&String::from_utf8_lossy(&bytes))
        .map_err(|detail| CnbError::Project { detail })?;
    Ok((!project.group.is_empty()).then_some(Group::Project(project)))
}

fn join<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

/// Builds `request.source_dir` with the CNB `group` into a slug. The platform directory
/// (config var values) and the layers are removed from `work_dir` afterwards, whatever the
/// outcome.
pub(crate) async fn build(
    runtime: &dyn Runtime,
    request: &BuildRequest,
    output: BuildOutput,
    group: Group,
) -> Result<BuiltSlug, BuildError> {
    let work = request.work_dir.join("cnb");
    let result = build_inner(runtime, request, &output, group, &work).await;
    let _ = blocking("remove the CNB work directory", {
        let work = work.clone();
        move || remove_path(&work).map_err(CnbError::from)
    })
    .await;
    result.map_err(BuildError::from)
}

/// The directories of one CNB build, under `work_dir/cnb`.
struct WorkDirs {
    platform: PathBuf,
    layers: PathBuf,
    io: PathBuf,
}

async fn build_inner(
    runtime: &dyn Runtime,
    request: &BuildRequest,
    output: &BuildOutput,
    group: Group,
    work: &Path,
) -> Result<BuiltSlug, CnbError> {
    output(&crate::stack_line(request));
    let dirs = WorkDirs {
        platform: work.join("platform"),
        layers: work.join("layers"),
        io: work.join("io"),
    };
    let (buildpacks, removed, user_env) = blocking("prepare the CNB build", {
        let request = request.clone();
        let work = work.to_path_buf();
        let dirs = WorkDirs {
            platform: dirs.platform.clone(),
            layers: dirs.layers.clone(),
            io: dirs.io.clone(),
        };
        move || prepare(&request, &group, &work, &dirs)
    })
    .await?;
    if removed > 0 {
        output("-----> Removing files listed in .slugignore");
        output(&format!("       Removed {removed} file(s) or directories"));
    }
    let runner = Runner {
        runtime,
        request,
        layers_root: dirs.layers.clone(),
        platform_dir: dirs.platform.clone(),
        deadline: crate::build_container::build_deadline(request),
    };

    // Detect.
    output(&format!(
        "-----> Detecting Cloud Native Buildpacks ({} in the group)",
        buildpacks.len()
    ));
    let mut candidates = Vec::new();
    let mut reasons = Vec::new();
    for (index, buildpack) in buildpacks.iter().enumerate() {
        let io = dirs.io.join(format!("detect-{index}"));
        let paths = runner.paths(buildpack, &io);
        let mut env = base_env(&paths.app);
        if !buildpack.clear_env {
            env.extend(user_env.clone());
        }
        env.extend([
            (
                "CNB_BUILD_PLAN_PATH".to_string(),
                format!("{}/plan.toml", paths.io),
            ),
            ("CNB_PLATFORM_DIR".to_string(), paths.platform.clone()),
            ("CNB_BUILDPACK_DIR".to_string(), paths.buildpack.clone()),
        ]);
        env.extend(target_env());
        let (sink, captured) = capture();
        let status = runner
            .run(
                &format!("cnb-detect-{index}"),
                buildpack,
                Script::Detect,
                &io,
                env.into_iter().collect(),
                sink,
            )
            .await?;
        let lines = take(&captured);
        match status.code {
            Some(0) => {
                let plan = blocking("read the build plan", {
                    let io = io.clone();
                    let buildpack = buildpack.clone();
                    move || read_detect_plan(&io, &buildpack)
                })
                .await?;
                candidates.push((
                    index,
                    Candidate {
                        id: buildpack.id.clone(),
                        optional: false,
                        alternatives: plan.alternatives(),
                    },
                ));
            }
            Some(100) => {
                reasons.push(format!("{} does not apply to this app", buildpack.id));
            }
            _ => {
                for line in &lines {
                    output(&format!("       {line}"));
                }
                return Err(CnbError::DetectFailed {
                    buildpack: buildpack.id.clone(),
                    status: status.to_string(),
                    detail: lines.last().cloned().unwrap_or_default(),
                });
            }
        }
    }
    // Every buildpack of a group from project.toml or the buildpack list is required, as a
    // group in an order.toml without `optional = true`.
    if candidates.len() != buildpacks.len() {
        return Err(CnbError::NoGroupPassed { reasons });
    }
    let resolution = plan::resolve(
        &candidates
            .iter()
            .map(|(_, candidate)| candidate.clone())
            .collect::<Vec<_>>(),
    )
    .map_err(|reasons| CnbError::NoGroupPassed { reasons })?;
    let participants: Vec<&CnbBuildpack> = resolution
        .participants
        .iter()
        .map(|(candidate, _)| &buildpacks[candidates[*candidate].0])
        .collect();
    output(&format!(
        "       {} of {} buildpacks participating",
        participants.len(),
        buildpacks.len()
    ));
    for buildpack in &participants {
        output(&format!("       {} {}", buildpack.id, buildpack.version));
    }

    // Restore.
    let restored = blocking("restore cached layers", {
        let store = layers::cache_store(&request.cache_dir);
        let layers_root = dirs.layers.clone();
        let buildpacks: Vec<CnbBuildpack> = participants.iter().map(|b| (*b).clone()).collect();
        let (uid, gid) = (request.uid, request.gid);
        move || layers::restore(&store, &layers_root, &buildpacks, uid, gid)
    })
    .await?;
    if !restored.is_empty() {
        output("-----> Restoring cached layers");
        for line in &restored {
            output(&format!("       {line}"));
        }
    }

    // Build.
    let mut build_layer_env: Vec<EnvModification> = Vec::new();
    let mut launch_script = String::new();
    let mut launches: Vec<(String, Launch)> = Vec::new();
    let mut exported: Vec<(CnbBuildpack, Vec<Layer>)> = Vec::new();
    let mut met: BTreeSet<String> = BTreeSet::new();
    for (position, buildpack) in participants.iter().enumerate() {
        let buildpack = (*buildpack).clone();
        let io = dirs.io.join(format!("build-{position}"));
        let plan = BuildpackPlan::for_participant(&resolution, position, &met);
        blocking("write the buildpack plan", {
            let io = io.clone();
            let plan = plan.clone();
            let buildpack = buildpack.clone();
            let (uid, gid) = (request.uid, request.gid);
            move || write_plan(&io, &plan, &buildpack, uid, gid)
        })
        .await?;
        let paths = runner.paths(&buildpack, &io);
        let mut env = base_env(&paths.app);
        if !buildpack.clear_env {
            env.extend(user_env.clone());
        }
        env::apply(&mut env, &build_layer_env);
        env.extend([
            (
                "CNB_LAYERS_DIR".to_string(),
                format!("{}/{}", paths.layers_root, buildpack.escaped_id()),
            ),
            ("CNB_PLATFORM_DIR".to_string(), paths.platform.clone()),
            (
                "CNB_BP_PLAN_PATH".to_string(),
                format!("{}/plan.toml", paths.io),
            ),
            ("CNB_BUILDPACK_DIR".to_string(), paths.buildpack.clone()),
        ]);
        env.extend(target_env());
        output(&format!(
            "-----> Building with {} {}",
            buildpack.id, buildpack.version
        ));
        let sink_output = output.clone();
        let sink: OutputSink = Arc::new(move |_stream: Stream, line: &str| sink_output(line));
        let status = runner
            .run(
                &format!("cnb-build-{position}"),
                &buildpack,
                Script::Build,
                &io,
                env.into_iter().collect(),
                sink,
            )
            .await?;
        if !status.success() {
            return Err(CnbError::BuildFailed {
                buildpack: buildpack.id.clone(),
                status: status.to_string(),
            });
        }
        let outcome = blocking("read the buildpack's layers", {
            let layers_root = dirs.layers.clone();
            let buildpack = buildpack.clone();
            let host_layers = runner.paths(&buildpack, &io).layers_root;
            move || after_build(&layers_root, &host_layers, &buildpack)
        })
        .await?;
        for skipped in &outcome.skipped {
            output(&format!(
                "       Warning: skipped the layer env file {skipped}"
            ));
        }
        build_layer_env.extend(outcome.build_env);
        launch_script.push_str(&outcome.launch_script);
        if let Some(launch) = outcome.launch {
            launches.push((buildpack.id.clone(), launch));
        }
        met.extend(
            plan.entries
                .iter()
                .map(|entry| entry.name.clone())
                .filter(|name| !outcome.unmet.contains(name)),
        );
        exported.push((buildpack, outcome.layers));
    }

    // Export.
    let export_lines = blocking("export the layers", {
        let layers_root = dirs.layers.clone();
        let source = request.source_dir.clone();
        let cache_dir = request.cache_dir.clone();
        let (uid, gid) = (request.uid, request.gid);
        move || {
            let lines = Export {
                layers_root: &layers_root,
                source: &source,
                cache_dir: &cache_dir,
                uid,
                gid,
            }
            .run(&exported)?;
            write_profile_script(&source, &launch_script, uid, gid)?;
            Ok(lines)
        }
    })
    .await?;
    output("-----> Exporting layers");
    for line in &export_lines {
        output(&format!("       {line}"));
    }

    // Process types: the Procfile wins over launch.toml's.
    output("-----> Discovering process types");
    let (mut default_types, default_process) =
        launch::process_types(&launches).map_err(|detail| CnbError::InvalidOutput {
            buildpack: "(group)".to_string(),
            file: "launch.toml".to_string(),
            detail,
        })?;
    let procfile = blocking("read the Procfile", {
        let source = request.source_dir.clone();
        move || Ok(read_procfile(&source)?)
    })
    .await?;
    let (mut process_types, declared) =
        crate::with_procfile(&default_types, procfile.as_ref(), output);
    if let Some(default) = default_process {
        if !process_types.contains_key("web") {
            if let Some(command) = default_types.get(&default).cloned() {
                process_types.insert("web".to_string(), command.clone());
                default_types.insert("web".to_string(), command);
            }
        }
    }
    output(&format!("       Procfile declares types     -> {declared}"));
    output(&format!(
        "       Default types for buildpack -> {}",
        crate::join_types(default_types.keys())
    ));

    // Pack.
    output("-----> Compressing...");
    let packed = blocking("pack the slug", {
        let source = request.source_dir.clone();
        let slug_dir = request.slug_dir.clone();
        let max = request.max_slug_bytes;
        move || slug::pack(&source, &slug_dir, max).map_err(CnbError::from)
    })
    .await?;
    output(&format!(
        "       Done: {}",
        crate::display_size(packed.size)
    ));
    let description = participants
        .last()
        .map(|b| b.name.clone())
        .unwrap_or_default();
    Ok(BuiltSlug {
        path: packed.path,
        checksum: format!("SHA256:{}", packed.sha256),
        size: packed.size,
        process_types,
        buildpack_description: description,
        // CNB buildpacks have no `bin/report`.
        reports: Vec::new(),
    })
}

/// The group's buildpacks, how many entries `.slugignore` removed, and the user-provided
/// environment.
type Prepared = (Vec<CnbBuildpack>, usize, BTreeMap<String, String>);

/// Prunes the source as the classic pipeline does, checks the Procfile early, lays out the
/// work directories, writes the platform env and loads the group's buildpacks (copying those
/// committed with the app). Returns them, how many entries `.slugignore` removed and the
/// user-provided environment (config vars over project.toml's build env).
fn prepare(
    request: &BuildRequest,
    group: &Group,
    work: &Path,
    dirs: &WorkDirs,
) -> Result<Prepared, CnbError> {
    for dir in [&request.cache_dir, &request.work_dir, &request.slug_dir] {
        fs::create_dir_all(dir).map_err(|e| CnbError::io("create", dir, e))?;
    }
    let source = &request.source_dir;
    remove_path(&source.join(".git"))?;
    let removed = match read_tenant_file(source, ".slugignore", TENANT_FILE_CAP)
        .map_err(BuildError::from)?
    {
        Some(bytes) => {
            slugignore::apply(source, &slugignore::parse(&String::from_utf8_lossy(&bytes)))?.len()
        }
        None => 0,
    };
    read_procfile(source)?;
    // The layers' place in the slug belongs to the platform; the app's own `.layers`, if
    // any, would be shadowed during the build and replaced by the export.
    remove_path(&source.join(".layers"))?;
    remove_path(work)?;
    layers::make_dir(work, 0o755)?;
    for dir in [&dirs.platform, &dirs.layers, &dirs.io] {
        layers::make_dir(dir, 0o755)?;
    }
    let mut config = request.config_vars.clone();
    if let Group::Project(project) = group {
        for (name, value) in &project.env {
            config.entry(name.clone()).or_insert_with(|| value.clone());
        }
    }
    write_env_dir(
        &dirs.platform.join("env"),
        &config,
        request.uid,
        request.gid,
    )?;

    let buildpacks_dir = work.join("buildpacks");
    let buildpacks = match group {
        Group::Server(paths) => paths
            .iter()
            .map(|path| buildpack::load(path, &path.display().to_string()))
            .collect::<Result<Vec<_>, _>>()?,
        Group::Project(project) => {
            layers::make_dir(&buildpacks_dir, 0o755)?;
            let mut loaded = Vec::new();
            for (index, relative) in project.group.iter().enumerate() {
                let copy = buildpacks_dir.join(index.to_string());
                buildpack::copy_from_app(source, relative, &copy)?;
                loaded.push(buildpack::load(&copy, &relative.display().to_string())?);
            }
            loaded
        }
    };
    let mut seen = BTreeSet::new();
    for (index, buildpack) in buildpacks.iter().enumerate() {
        if !seen.insert(buildpack.id.clone()) {
            return Err(CnbError::InvalidBuildpack {
                buildpack: buildpack.id.clone(),
                detail: "it is in the group twice".to_string(),
            });
        }
        let layers = dirs.layers.join(buildpack.escaped_id());
        layers::make_dir(&layers, 0o755)?;
        lchown(&layers, Some(request.uid), Some(request.gid))
            .map_err(|e| CnbError::io("change owner of", &layers, e))?;
        for io in [format!("detect-{index}"), format!("build-{index}")] {
            let io = dirs.io.join(io);
            layers::make_dir(&io, 0o755)?;
            lchown(&io, Some(request.uid), Some(request.gid))
                .map_err(|e| CnbError::io("change owner of", &io, e))?;
        }
    }
    chown_recursive(source, request.uid, request.gid)?;
    chown_recursive(&request.cache_dir, request.uid, request.gid)?;
    Ok((buildpacks, removed, config))
}

/// The environment every script starts from.
fn base_env(app: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("HOME".to_string(), app.to_string()),
        (
            "PATH".to_string(),
            "/usr/local/bin:/usr/bin:/bin".to_string(),
        ),
    ])
}

/// `CNB_TARGET_OS` and `CNB_TARGET_ARCH` (Buildpack API 0.10), in OCI's names.
fn target_env() -> [(String, String); 2] {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    [
        ("CNB_TARGET_OS".to_string(), "linux".to_string()),
        ("CNB_TARGET_ARCH".to_string(), arch.to_string()),
    ]
}

fn read_detect_plan(io: &Path, buildpack: &CnbBuildpack) -> Result<DetectPlan, CnbError> {
    let bytes = read_tenant_file(io, "plan.toml", TENANT_FILE_CAP)
        .map_err(|e| CnbError::invalid_output(buildpack, "build plan", e.to_string()))?
        .unwrap_or_default();
    DetectPlan::parse(&String::from_utf8_lossy(&bytes))
        .map_err(|e| CnbError::invalid_output(buildpack, "build plan", e.message().to_string()))
}

fn write_plan(
    io: &Path,
    plan: &BuildpackPlan,
    buildpack: &CnbBuildpack,
    uid: u32,
    gid: u32,
) -> Result<(), CnbError> {
    let text = plan
        .to_toml()
        .map_err(|e| CnbError::invalid_output(buildpack, "buildpack plan", e.to_string()))?;
    let path = io.join("plan.toml");
    fs::write(&path, text).map_err(|e| CnbError::io("write", &path, e))?;
    lchown(&path, Some(uid), Some(gid)).map_err(|e| CnbError::io("change owner of", &path, e))
}

/// What one buildpack's build left for the next ones and for the export.
struct AfterBuild {
    layers: Vec<Layer>,
    build_env: Vec<EnvModification>,
    launch_script: String,
    launch: Option<Launch>,
    unmet: Vec<String>,
    skipped: Vec<String>,
}

/// Reads `launch.toml`, `build.toml` and the layers of `buildpack`, with their build and
/// launch environment. `build_root` is the layers root as build scripts see it. Blocking.
fn after_build(
    layers_root: &Path,
    build_root: &str,
    buildpack: &CnbBuildpack,
) -> Result<AfterBuild, CnbError> {
    let escaped = buildpack.escaped_id();
    let read = |file: &str| -> Result<Option<String>, CnbError> {
        let bytes = read_tenant_file(layers_root, &format!("{escaped}/{file}"), TENANT_FILE_CAP)
            .map_err(|e| CnbError::invalid_output(buildpack, file, e.to_string()))?;
        Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned()))
    };
    let launch = match read("launch.toml")? {
        Some(text) => Some(toml::from_str::<Launch>(&text).map_err(|e| {
            CnbError::invalid_output(buildpack, "launch.toml", e.message().to_string())
        })?),
        None => None,
    };
    let unmet = match read("build.toml")? {
        Some(text) => toml::from_str::<BuildToml>(&text)
            .map_err(|e| {
                CnbError::invalid_output(buildpack, "build.toml", e.message().to_string())
            })?
            .unmet
            .into_iter()
            .map(|u| u.name)
            .collect(),
        None => Vec::new(),
    };
    let layers = layers::read_layers(layers_root, buildpack)?;
    let mut build_env = Vec::new();
    let mut launch_script = String::new();
    let mut skipped = Vec::new();
    for layer in layers.iter().filter(|layer| layer.has_dir) {
        let host = layers_root.join(&escaped).join(&layer.name);
        if layer.types.build {
            let path = format!("{build_root}/{escaped}/{}", layer.name);
            build_env.extend(layers::layer_env(&host, &path, Phase::Build, &mut skipped)?.0);
        }
        if layer.types.launch {
            let path = format!("{APP_LAYERS_DIR}/{escaped}/{}", layer.name);
            let (global, per_process) =
                layers::layer_env(&host, &path, Phase::Launch, &mut skipped)?;
            launch_script.push_str(&env::render(&global));
            if !per_process.is_empty() {
                launch_script.push_str("case \"${DYNO%%.*}\" in\n");
                for (process, modifications) in &per_process {
                    launch_script.push_str(&format!("{process})\n"));
                    launch_script.push_str(&env::render(modifications));
                    launch_script.push_str(";;\n");
                }
                launch_script.push_str("esac\n");
            }
        }
    }
    Ok(AfterBuild {
        layers,
        build_env,
        launch_script,
        launch,
        unmet,
        skipped,
    })
}

/// Writes the launch environment to `.profile.d/000-cnb-layers.sh` in the slug tree (not
/// through a link the app may have committed there). Nothing when there is none. Blocking.
fn write_profile_script(source: &Path, script: &str, uid: u32, gid: u32) -> Result<(), CnbError> {
    if script.is_empty() {
        return Ok(());
    }
    let dir = source.join(".profile.d");
    match fs::symlink_metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(CnbError::Project {
                detail: ".profile.d is not a directory (a link or a file). Commit it as a \
                         directory, or not at all, and push again."
                    .to_string(),
            })
        }
        Err(_) => {
            fs::create_dir(&dir).map_err(|e| CnbError::io("create", &dir, e))?;
            lchown(&dir, Some(uid), Some(gid))
                .map_err(|e| CnbError::io("change owner of", &dir, e))?;
        }
    }
    let path = dir.join(PROFILE_SCRIPT);
    remove_path(&path)?;
    let text = format!(
        "# Written by Slipway: the launch environment of the app's Cloud Native Buildpacks \
         layers.\n{script}"
    );
    fs::write(&path, text).map_err(|e| CnbError::io("write", &path, e))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644))
        .map_err(|e| CnbError::io("set permissions of", &path, e))?;
    lchown(&path, Some(uid), Some(gid)).map_err(|e| CnbError::io("change owner of", &path, e))
}

/// Lines a detect step printed, up to [`TENANT_FILE_CAP`] bytes.
type Captured = Arc<Mutex<(Vec<String>, u64)>>;

/// A sink collecting both streams' lines, bounded: a step's output is tenant input.
fn capture() -> (OutputSink, Captured) {
    let captured: Captured = Arc::default();
    let sink: OutputSink = {
        let captured = captured.clone();
        Arc::new(move |_stream: Stream, line: &str| {
            let mut captured = captured.lock().unwrap_or_else(|p| p.into_inner());
            let size = line.len() as u64 + 1;
            if captured.1 + size <= TENANT_FILE_CAP {
                captured.1 += size;
                captured.0.push(line.to_string());
            }
        })
    };
    (sink, captured)
}

fn take(captured: &Captured) -> Vec<String> {
    std::mem::take(&mut captured.lock().unwrap_or_else(|p| p.into_inner()).0)
}

async fn blocking<T: Send + 'static>(
    task: &'static str,
    f: impl FnOnce() -> Result<T, CnbError> + Send + 'static,
) -> Result<T, CnbError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| CnbError::from(BuildError::TaskFailed { task }))?
}

#[cfg(test)]
mod tests;
