//! Layers on the host side: restoring cached layers before the build, reading what each
//! buildpack declared (`<layer>.toml` `[types]`), the environment a layer contributes, and the
//! export: launch layers into the slug under `/app/.layers`, cache layers into the app's build
//! cache.
//!
//! Everything below a buildpack's layers directory was written by tenant code. It is read only
//! between build steps (no tenant process runs then), each buildpack's directory is created
//! by the platform in a platform-owned root (so a buildpack cannot swap it for a link), and
//! entries that are links are skipped, never followed.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{lchown, PermissionsExt};
use std::path::{Path, PathBuf};

use libcnb_data::layer_content_metadata::{LayerContentMetadata, LayerTypes};

use super::buildpack::{copy_tree, CnbBuildpack, CopyError};
use super::env::{read_env_dir, EnvModification};
use super::CnbError;
use crate::fsutil::{read_tenant_file, remove_path, sorted_entries, TENANT_FILE_CAP};

/// Where launch layers are in a dyno: the slug is mounted at `/app`, so the layers travel in
/// it, and build steps see the same path (their layers directory is bound there), so paths
/// that buildpacks bake into files hold at run time.
pub(crate) const APP_LAYERS_DIR: &str = "/app/.layers";

/// Files of a buildpack's layers directory that are not layers.
const RESERVED: [&str; 3] = ["launch.toml", "build.toml", "store.toml"];

/// A layer a buildpack declared.
#[derive(Debug, Clone)]
pub(crate) struct Layer {
    pub(crate) name: String,
    pub(crate) types: LayerTypes,
    /// The `<layer>.toml` as written, to keep in the cache.
    pub(crate) toml: String,
    /// Whether `<layer>/` exists (as a directory).
    pub(crate) has_dir: bool,
}

/// The layers `buildpack` declared in `layers_root/<escaped id>`, by name. A `<layer>.toml`
/// that is not valid is an error naming it. Blocking.
pub(crate) fn read_layers(
    layers_root: &Path,
    buildpack: &CnbBuildpack,
) -> Result<Vec<Layer>, CnbError> {
    let escaped = buildpack.escaped_id();
    let dir = layers_root.join(&escaped);
    let mut layers = Vec::new();
    for entry in sorted_entries(&dir).map_err(|e| CnbError::Build(Box::new(e)))? {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(name) = file_name.strip_suffix(".toml") else {
            continue;
        };
        if RESERVED.contains(&file_name.as_str()) || matches!(name, "" | "." | "..") {
            continue;
        }
        let bytes = read_tenant_file(
            layers_root,
            &format!("{escaped}/{file_name}"),
            TENANT_FILE_CAP,
        )
        .map_err(|e| CnbError::invalid_output(buildpack, &file_name, e.to_string()))?
        .unwrap_or_default();
        let toml = String::from_utf8_lossy(&bytes).into_owned();
        let metadata: LayerContentMetadata = toml::from_str(&toml).map_err(|e| {
            CnbError::invalid_output(buildpack, &file_name, e.message().to_string())
        })?;
        let has_dir = fs::symlink_metadata(dir.join(name)).is_ok_and(|m| m.is_dir());
        layers.push(Layer {
            name: name.to_string(),
            types: metadata.types.unwrap_or_default(),
            toml,
            has_dir,
        });
    }
    Ok(layers)
}

/// A layer's environment changes: for every process, and by process type.
pub(crate) type LayerEnv = (Vec<EnvModification>, BTreeMap<String, Vec<EnvModification>>);

/// Which phase a layer's environment is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Build,
    Launch,
}

/// The environment changes of one layer at `path` (as the process sees it; `host` is where it
/// is now): `bin/` on `PATH`, `lib/` on the library paths, then `env/` and `env.<phase>/`.
/// For launch, also `env.launch/<process>/`, by process type. Blocking.
pub(crate) fn layer_env(
    host: &Path,
    path: &str,
    phase: Phase,
    skipped: &mut Vec<String>,
) -> Result<LayerEnv, CnbError> {
    let is_dir = |sub: &str| fs::symlink_metadata(host.join(sub)).is_ok_and(|m| m.is_dir());
    let mut modifications = Vec::new();
    if is_dir("bin") {
        modifications.push(EnvModification::prepend_path("PATH", format!("{path}/bin")));
    }
    let library_vars: &[&str] = match phase {
        Phase::Build => &["LD_LIBRARY_PATH", "LIBRARY_PATH"],
        Phase::Launch => &["LD_LIBRARY_PATH"],
    };
    if is_dir("lib") {
        for var in library_vars {
            modifications.push(EnvModification::prepend_path(var, format!("{path}/lib")));
        }
    }
    if phase == Phase::Build {
        if is_dir("include") {
            modifications.push(EnvModification::prepend_path(
                "CPATH",
                format!("{path}/include"),
            ));
        }
        if is_dir("pkgconfig") {
            modifications.push(EnvModification::prepend_path(
                "PKG_CONFIG_PATH",
                format!("{path}/pkgconfig"),
            ));
        }
    }
    let phase_dir = match phase {
        Phase::Build => "env.build",
        Phase::Launch => "env.launch",
    };
    for sub in ["env", phase_dir] {
        if is_dir(sub) {
            modifications.extend(read_env_dir(&host.join(sub), skipped)?);
        }
    }
    let mut per_process = BTreeMap::new();
    if phase == Phase::Launch && is_dir("env.launch") {
        let launch_dir = host.join("env.launch");
        for entry in sorted_entries(&launch_dir).map_err(|e| CnbError::Build(Box::new(e)))? {
            let process = entry.file_name().to_string_lossy().into_owned();
            if !fs::symlink_metadata(entry.path()).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            if slipway_model::ProcessType::try_from(process.clone()).is_err() {
                skipped.push(format!("{} (not a process type)", entry.path().display()));
                continue;
            }
            per_process.insert(process, read_env_dir(&entry.path(), skipped)?);
        }
    }
    Ok((modifications, per_process))
}

/// Where cached layers are kept between builds, inside the app's build cache.
pub(crate) fn cache_store(cache_dir: &Path) -> PathBuf {
    cache_dir.join(".slipway-cnb")
}

/// Moves the cached layers of the group's buildpacks from the build cache into their layers
/// directories, with their `<layer>.toml`'s `[metadata]` (its `[types]` cleared, as the
/// lifecycle restores them: the buildpack says again what the layer is for). Returns what to
/// print. Layers of buildpacks no longer in the group stay in the store until the export
/// replaces it. Blocking.
pub(crate) fn restore(
    store: &Path,
    layers_root: &Path,
    buildpacks: &[CnbBuildpack],
    uid: u32,
    gid: u32,
) -> Result<Vec<String>, CnbError> {
    let mut lines = Vec::new();
    if !fs::symlink_metadata(store).is_ok_and(|m| m.is_dir()) {
        return Ok(lines);
    }
    for buildpack in buildpacks {
        let from = store.join(buildpack.escaped_id());
        if !fs::symlink_metadata(&from).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let to = layers_root.join(buildpack.escaped_id());
        for layer in read_layers(store, buildpack)? {
            if !layer.has_dir {
                continue;
            }
            let metadata: LayerContentMetadata = match toml::from_str(&layer.toml) {
                Ok(metadata) => metadata,
                Err(_) => continue,
            };
            let restored = LayerContentMetadata {
                types: None,
                metadata: metadata.metadata,
            };
            let text = toml::to_string(&restored).map_err(|e| {
                CnbError::invalid_output(buildpack, &format!("{}.toml", layer.name), e.to_string())
            })?;
            let dir = to.join(&layer.name);
            fs::rename(from.join(&layer.name), &dir)
                .map_err(|e| CnbError::io("restore the cached layer", &dir, e))?;
            let toml_path = to.join(format!("{}.toml", layer.name));
            fs::write(&toml_path, text).map_err(|e| CnbError::io("write", &toml_path, e))?;
            lchown(&toml_path, Some(uid), Some(gid))
                .map_err(|e| CnbError::io("change owner of", &toml_path, e))?;
            lines.push(format!(
                "Restoring data for \"{}:{}\" from cache",
                buildpack.id, layer.name
            ));
        }
    }
    Ok(lines)
}

/// The layers that go into the slug and the cache, once every buildpack has built.
pub(crate) struct Export<'a> {
    pub(crate) layers_root: &'a Path,
    /// The app's tree, packed as the slug; launch layers go to `<source>/.layers`.
    pub(crate) source: &'a Path,
    pub(crate) cache_dir: &'a Path,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

impl Export<'_> {
    /// Moves launch layers into the slug tree and cache layers into a new cache store that
    /// replaces the old one (a cache layer a build no longer declares is dropped). Returns
    /// what to print. Blocking.
    pub(crate) fn run(
        &self,
        participants: &[(CnbBuildpack, Vec<Layer>)],
    ) -> Result<Vec<String>, CnbError> {
        let mut lines = Vec::new();
        let slug_layers = self.source.join(".layers");
        remove_path(&slug_layers).map_err(|e| CnbError::Build(Box::new(e)))?;
        let store = cache_store(self.cache_dir);
        let new_store = self.cache_dir.join(".slipway-cnb.new");
        remove_path(&new_store).map_err(|e| CnbError::Build(Box::new(e)))?;
        for (buildpack, layers) in participants {
            let escaped = buildpack.escaped_id();
            let from = self.layers_root.join(&escaped);
            for layer in layers.iter().filter(|layer| layer.has_dir) {
                let dir = from.join(&layer.name);
                let label = format!("{}:{}", buildpack.id, layer.name);
                if layer.types.cache {
                    let cached = new_store.join(&escaped).join(&layer.name);
                    make_dir(&new_store, 0o700)?;
                    make_dir(&new_store.join(&escaped), 0o700)?;
                    if layer.types.launch {
                        let mut budget = u64::MAX;
                        copy_tree(&dir, &cached, &mut budget).map_err(|e| match e {
                            CopyError::Cnb(e) => e,
                            CopyError::TooLarge => {
                                CnbError::io("cache", &dir, std::io::Error::other("too large"))
                            }
                        })?;
                    } else {
                        fs::rename(&dir, &cached)
                            .map_err(|e| CnbError::io("cache the layer", &dir, e))?;
                    }
                    let toml_path = new_store
                        .join(&escaped)
                        .join(format!("{}.toml", layer.name));
                    fs::write(&toml_path, &layer.toml)
                        .map_err(|e| CnbError::io("write", &toml_path, e))?;
                    lines.push(format!("Adding cache layer '{label}'"));
                }
                if layer.types.launch {
                    let parent = slug_layers.join(&escaped);
                    make_dir(&slug_layers, 0o755)?;
                    make_dir(&parent, 0o755)?;
                    fs::rename(&dir, parent.join(&layer.name))
                        .map_err(|e| CnbError::io("add the layer to the slug", &dir, e))?;
                    lines.push(format!("Adding layer '{label}'"));
                }
            }
        }
        if fs::symlink_metadata(&new_store).is_ok() {
            crate::fsutil::chown_recursive(&new_store, self.uid, self.gid)
                .map_err(|e| CnbError::Build(Box::new(e)))?;
        }
        remove_path(&store).map_err(|e| CnbError::Build(Box::new(e)))?;
        if fs::symlink_metadata(&new_store).is_ok() {
            fs::rename(&new_store, &store)
                .map_err(|e| CnbError::io("save the cache", &store, e))?;
        }
        Ok(lines)
    }
}

/// Creates `dir` if missing, with `mode`.
pub(crate) fn make_dir(dir: &Path, mode: u32) -> Result<(), CnbError> {
    if !fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        fs::create_dir(dir).map_err(|e| CnbError::io("create", dir, e))?;
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
        .map_err(|e| CnbError::io("set permissions of", dir, e))
}
