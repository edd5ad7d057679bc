//! Stacks: the system directories builds and dynos run on.
//!
//! `host` is the server's own `/usr`, `/etc`, `/bin` and `/lib*`, read-only: the fast
//! development stack, and the default. Every other stack is a Debian root filesystem built
//! from a manifest (`stacks/<name>/packages.txt` in the repository, compiled in, or the same
//! layout under [`StacksConfig::manifests_dir`]) with debootstrap by `slipway stacks:build
//! NAME` (`build.rs`): a run image, and a build image with the build packages on top when the
//! manifest lists any. A build is stored once, shared read-only by every container of the
//! stack as its lowest layer (`slipway_runtime::Rootfs::Dir`).
//!
//! On disk, under `<data>/stacks/`: `<name>/<id>/{run,build,stack.json}` per build, where the
//! id is a fresh UUID; `<name>/current.json`, the build new builds use (replaced atomically);
//! `.tmp/`, builds in progress (a failed or interrupted one is removed). A build is renamed
//! into place only once complete, so a half-built stack is never used.
//!
//! A slug records the id of the stack build it was built on (`Slug::stack_id`) and its dynos
//! run on that build's run image, whatever was built since: a rebuild changes new builds,
//! never a running release. Old builds are kept (an operator removes a directory no release
//! uses); a slug without a stack id (built before stacks existed, or on `host`) runs on the
//! host.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use slipway_runtime::Rootfs;
use uuid::Uuid;

use crate::config::PlatformConfig;
pub use crate::config::{StacksConfig, HOST_STACK};
use crate::error::CoreError;
use crate::model::{App, User};
use crate::platform::Platform;

mod build;
mod manifest;

pub(crate) use manifest::{parse_manifest, Manifest};

/// The manifests compiled into the binary: `(name, packages.txt)`.
const BUILTIN_MANIFESTS: &[(&str, &str)] = &[(
    "heroku-24",
    include_str!("../../../stacks/heroku-24/packages.txt"),
)];

/// One build of a stack, as recorded in its `stack.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuiltStack {
    pub id: Uuid,
    pub name: String,
    pub suite: String,
    /// `sha256:<hex>` of the manifest it was built from.
    pub manifest_digest: String,
    pub packages: Vec<String>,
    /// What the build image adds; empty when builds use the run image.
    pub build_packages: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// How long the build took, in seconds.
    pub build_seconds: f64,
}

/// A stack as the API lists it.
#[derive(Debug, Clone, PartialEq)]
pub enum StackView {
    Host,
    Built(BuiltStack),
}

impl StackView {
    pub fn name(&self) -> &str {
        match self {
            StackView::Host => HOST_STACK,
            StackView::Built(built) => &built.name,
        }
    }
}

/// The stack a build runs on, resolved from the app's stack name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolvedStack {
    pub(crate) name: String,
    /// The stack build's id; `None` for `host`.
    pub(crate) id: Option<Uuid>,
    /// The build image.
    pub(crate) build_rootfs: Rootfs,
}

pub(crate) use crate::config::is_stack_name;

fn shown(text: &str) -> String {
    text.chars().take(64).filter(|c| !c.is_control()).collect()
}

fn stacks_dir(config: &PlatformConfig) -> PathBuf {
    config.stacks_dir()
}

fn build_dir(config: &PlatformConfig, name: &str, id: Uuid) -> PathBuf {
    config.stack_build_dir(name, id)
}

/// The run image of a slug's stack: `host` for `host` or a slug without a stack build.
#[cfg(test)]
pub(crate) fn run_rootfs(config: &PlatformConfig, stack: &str, stack_id: Option<Uuid>) -> Rootfs {
    config.run_rootfs(stack, stack_id)
}

/// Reads a small JSON record the platform wrote itself; `None` if it is missing or unreadable.
fn read_record(path: &Path) -> Option<BuiltStack> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The current build of `name`, if it has one.
fn current_build(config: &PlatformConfig, name: &str) -> Option<BuiltStack> {
    if !is_stack_name(name) || name == HOST_STACK {
        return None;
    }
    read_record(&stacks_dir(config).join(name).join("current.json"))
}

/// The id of `name`'s current build; `None` for `host` or a stack not built. An uploaded
/// slug declared for a stack runs on the build that is current when it is uploaded.
pub(crate) fn current_build_id(config: &PlatformConfig, name: &str) -> Option<Uuid> {
    current_build(config, name).map(|built| built.id)
}

/// Every stack's current build, by name.
fn current_builds(config: &PlatformConfig) -> Vec<BuiltStack> {
    let Ok(entries) = std::fs::read_dir(stacks_dir(config)) else {
        return Vec::new();
    };
    let mut built: Vec<BuiltStack> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|name| current_build(config, &name))
        .collect();
    built.sort_by(|a, b| a.name.cmp(&b.name));
    built
}

/// Any build, current or not, by id.
fn build_by_id(config: &PlatformConfig, id: Uuid) -> Option<BuiltStack> {
    let entries = std::fs::read_dir(stacks_dir(config)).ok()?;
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| is_stack_name(name))
        .find_map(|name| read_record(&build_dir(config, &name, id).join("stack.json")))
}

/// The text of `name`'s manifest: the configured directory's, else the compiled-in one.
fn manifest_text(config: &PlatformConfig, name: &str) -> Result<Option<String>, CoreError> {
    if let Some(dir) = &config.stacks.manifests_dir {
        let path = dir.join(name).join("packages.txt");
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => {
                if meta.len() > manifest::MAX_MANIFEST_BYTES as u64 {
                    return Err(CoreError::invalid(format!(
                        "The manifest of stack {name} is larger than {} bytes.",
                        manifest::MAX_MANIFEST_BYTES
                    )));
                }
                let text = std::fs::read_to_string(&path).map_err(|error| {
                    CoreError::invalid(format!(
                        "Could not read the manifest of stack {name}: {error}"
                    ))
                })?;
                return Ok(Some(text));
            }
            _ => {}
        }
    }
    Ok(BUILTIN_MANIFESTS
        .iter()
        .find(|(builtin, _)| *builtin == name)
        .map(|(_, text)| text.to_string()))
}

/// The names of every stack with a manifest (not necessarily built).
fn manifest_names(config: &PlatformConfig) -> Vec<String> {
    let mut names: Vec<String> = BUILTIN_MANIFESTS
        .iter()
        .map(|(name, _)| name.to_string())
        .collect();
    if let Some(dir) = &config.stacks.manifests_dir {
        if let Ok(entries) = std::fs::read_dir(dir) {
            names.extend(
                entries
                    .filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|name| is_stack_name(name) && name != HOST_STACK)
                    .filter(|name| dir.join(name).join("packages.txt").is_file()),
            );
        }
    }
    names.sort();
    names.dedup();
    names
}

/// One stack build at a time per data directory: two would race for the same `current.json`
/// and double the download.
static BUILDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

struct BuildingGuard(PathBuf);

impl BuildingGuard {
    fn claim(dir: PathBuf) -> Option<BuildingGuard> {
        let mut building = BUILDING
            .lock()
            .expect("the stack build registry is never poisoned");
        if building.contains(&dir) {
            return None;
        }
        building.push(dir.clone());
        Some(BuildingGuard(dir))
    }
}

impl Drop for BuildingGuard {
    fn drop(&mut self) {
        let mut building = BUILDING
            .lock()
            .expect("the stack build registry is never poisoned");
        building.retain(|d| d != &self.0);
    }
}

/// Receives each line of a stack build's progress.
pub type StackOutput = Arc<dyn Fn(&str) + Send + Sync>;

impl Platform {
    /// The stacks apps can use now: `host` and every built stack's current build.
    pub fn stacks(&self) -> Vec<StackView> {
        let mut out = vec![StackView::Host];
        out.extend(
            current_builds(self.config())
                .into_iter()
                .map(StackView::Built),
        );
        out
    }

    /// A stack by name, or by the id of any of its builds (old ones included).
    pub fn stack(&self, name_or_id: &str) -> Option<StackView> {
        if name_or_id == HOST_STACK {
            return Some(StackView::Host);
        }
        if let Ok(id) = name_or_id.parse::<Uuid>() {
            return build_by_id(self.config(), id).map(StackView::Built);
        }
        current_build(self.config(), name_or_id).map(StackView::Built)
    }

    /// The canonical name of a stack an app may be set to (`stack:set`, `apps:create
    /// --stack`): `host`, a stack with a manifest (built or not: its build says so), or the
    /// id of a build. A 422 listing what there is otherwise.
    pub fn check_stack(&self, stack: &str) -> Result<String, CoreError> {
        let config = self.config();
        if stack == HOST_STACK {
            return Ok(HOST_STACK.to_string());
        }
        if let Ok(id) = stack.parse::<Uuid>() {
            if let Some(built) = build_by_id(config, id) {
                return Ok(built.name);
            }
        }
        let mut known = manifest_names(config);
        known.extend(current_builds(config).into_iter().map(|b| b.name));
        known.sort();
        known.dedup();
        if is_stack_name(stack) && known.iter().any(|k| k == stack) {
            return Ok(stack.to_string());
        }
        let mut listed = vec![HOST_STACK.to_string()];
        listed.extend(known);
        Err(CoreError::invalid(format!(
            "Stack {:?} is not available on Slipway. Available stacks: {}.",
            shown(stack),
            listed.join(", ")
        )))
    }

    /// The stack a build of `app` runs on: its current build, or a clear refusal when the
    /// stack is not built.
    pub(crate) fn resolve_build_stack(&self, app: &App) -> Result<ResolvedStack, CoreError> {
        let name = app.stack.as_str();
        if name == HOST_STACK {
            return Ok(ResolvedStack {
                name: HOST_STACK.to_string(),
                id: None,
                build_rootfs: Rootfs::Host,
            });
        }
        let config = self.config();
        let Some(built) = current_build(config, name) else {
            return Err(CoreError::invalid(format!(
                "Push rejected: the {} stack is not built on this Slipway. An administrator \
                 builds it with `slipway stacks:build {}`, or run `heroku stack:set host -a {}` \
                 to build on the host stack.",
                shown(name),
                shown(name),
                app.name
            )));
        };
        let dir = build_dir(config, &built.name, built.id);
        let build = dir.join("build");
        Ok(ResolvedStack {
            name: built.name.clone(),
            id: Some(built.id),
            build_rootfs: Rootfs::Dir(if build.is_dir() {
                build
            } else {
                dir.join("run")
            }),
        })
    }

    /// `stack:set`: records the app's stack (already checked); its next build uses it.
    pub(crate) async fn set_app_stack(&self, app: App, stack: String) -> Result<App, CoreError> {
        use slipway_store::{Compare, Op, Txn};
        loop {
            let key = crate::model::keys::app(&app.name);
            let (mut current, revision) = self.app_record(&app).await?;
            if current.stack == stack {
                return Ok(current);
            }
            current.stack = stack.clone();
            current.updated_at = Utc::now();
            let txn = Txn::new()
                .when(Compare::mod_revision(key.clone(), revision))
                .then(Op::put_json(key.clone(), &current)?);
            if self.store().txn(txn).await?.succeeded {
                return Ok(current);
            }
        }
    }

    /// `slipway stacks:build NAME` (administrators): builds the stack from its manifest with
    /// debootstrap, reporting progress to `output`, and makes it the stack's current build.
    pub async fn build_stack(
        &self,
        actor: &User,
        name: &str,
        output: StackOutput,
    ) -> Result<BuiltStack, CoreError> {
        if !actor.admin {
            return Err(CoreError::invalid(
                "Only an administrator can build stacks.",
            ));
        }
        let config = self.config();
        if name == HOST_STACK {
            return Err(CoreError::invalid(
                "The host stack is the server's own system directories: there is nothing to build.",
            ));
        }
        let text = if is_stack_name(name) {
            manifest_text(config, name)?
        } else {
            None
        };
        let Some(text) = text else {
            return Err(CoreError::invalid(format!(
                "Slipway has no manifest for a stack named {:?}. Stacks with a manifest: {}.",
                shown(name),
                manifest_names(config).join(", ")
            )));
        };
        let manifest = parse_manifest(&text).map_err(|error| {
            CoreError::invalid(format!(
                "The manifest of stack {name} is not valid: {error}"
            ))
        })?;
        let root = stacks_dir(config);
        let Some(_guard) = BuildingGuard::claim(root.clone()) else {
            return Err(CoreError::Conflict {
                message: "A stack is already being built on this Slipway; wait for it to finish."
                    .into(),
            });
        };
        let cache = config
            .stacks
            .package_cache
            .clone()
            .unwrap_or_else(|| root.join(".packages"));
        let request = build::BuildRequest {
            name: name.to_string(),
            manifest,
            stacks_dir: root,
            package_cache: cache,
        };
        build::build(request, output).await
    }
}

#[cfg(test)]
mod tests;
