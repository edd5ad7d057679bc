//! A CNB buildpack on disk: its `buildpack.toml` (libcnb-data's `BuildpackDescriptor`),
//! checked for what Slipway runs (Buildpack API 0.10 and newer, a component buildpack with
//! `bin/detect` and `bin/build`), and copies of buildpacks committed with the app.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use libcnb_data::buildpack::BuildpackDescriptor;

use super::CnbError;
use crate::fsutil::{read_tenant_file, sorted_entries, TENANT_FILE_CAP};

/// The oldest Buildpack API Slipway runs.
pub(crate) const MIN_API: (u64, u64) = (0, 10);

/// A buildpack of the group, ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CnbBuildpack {
    /// `buildpack.id`, e.g. `examples/hello`.
    pub(crate) id: String,
    pub(crate) version: String,
    /// `buildpack.name`, or the id.
    pub(crate) name: String,
    pub(crate) api: (u64, u64),
    /// `buildpack.clear-env`: the build scripts get no config vars in their environment.
    pub(crate) clear_env: bool,
    /// Where it is on the host (a platform-owned copy for one committed with the app).
    pub(crate) dir: PathBuf,
}

impl CnbBuildpack {
    /// The id as a directory name (`examples/hello` → `examples_hello`), as the lifecycle
    /// names the buildpack's layers directory.
    pub(crate) fn escaped_id(&self) -> String {
        self.id.replace('/', "_")
    }
}

/// Whether `dir` holds a CNB buildpack (a `buildpack.toml` at its root), without following a
/// link. Blocking.
pub(crate) fn is_cnb_dir(dir: &Path) -> bool {
    fs::symlink_metadata(dir.join("buildpack.toml")).is_ok_and(|m| m.is_file())
}

/// Reads and checks the buildpack at `dir` (`reference` names it in messages). Blocking.
pub(crate) fn load(dir: &Path, reference: &str) -> Result<CnbBuildpack, CnbError> {
    let invalid = |detail: String| CnbError::InvalidBuildpack {
        buildpack: reference.to_string(),
        detail,
    };
    let bytes = read_tenant_file(dir, "buildpack.toml", TENANT_FILE_CAP)
        .map_err(|e| invalid(e.to_string()))?
        .ok_or_else(|| invalid("it has no buildpack.toml at its root".to_string()))?;
    let text =
        String::from_utf8(bytes).map_err(|_| invalid("buildpack.toml is not UTF-8".into()))?;
    let descriptor: BuildpackDescriptor = toml::from_str(&text).map_err(|e| {
        invalid(format!(
            "buildpack.toml is not a valid buildpack descriptor ({})",
            e.message().trim_end_matches('.')
        ))
    })?;
    let component = match descriptor {
        BuildpackDescriptor::Component(component) => component,
        BuildpackDescriptor::Composite(_) => {
            return Err(invalid(
                "it is a composite buildpack ([[order]]); Slipway runs component buildpacks: \
                 list them in project.toml's [[io.buildpacks.group]] instead"
                    .to_string(),
            ))
        }
    };
    let api = (component.api.major, component.api.minor);
    if api < MIN_API {
        return Err(invalid(format!(
            "it uses Buildpack API {}.{}; Slipway runs Buildpack API {}.{} and newer",
            api.0, api.1, MIN_API.0, MIN_API.1
        )));
    }
    for script in ["bin/detect", "bin/build"] {
        if fs::symlink_metadata(dir.join(script)).is_err() {
            return Err(invalid(format!("it has no {script}")));
        }
    }
    let buildpack = component.buildpack;
    let id = buildpack.id.to_string();
    Ok(CnbBuildpack {
        name: buildpack.name.clone().unwrap_or_else(|| id.clone()),
        version: buildpack.version.to_string(),
        id,
        api,
        clear_env: buildpack.clear_env,
        dir: dir.to_path_buf(),
    })
}

/// The most bytes of buildpack copied out of an app: a buildpack is scripts and small files.
const MAX_COPY_BYTES: u64 = 256 * 1024 * 1024;

/// Copies the buildpack committed at `source/relative` to `dest`, owned by the platform and
/// readable by all: build steps run tenant code that may change the app's tree, so the
/// directory mounted as the buildpack must not be one the tenant can swap for a link between
/// two steps. A link on the way to it is refused; links inside it are copied as links (they
/// resolve inside the container). Blocking.
pub(crate) fn copy_from_app(source: &Path, relative: &Path, dest: &Path) -> Result<(), CnbError> {
    let mut at = source.to_path_buf();
    for part in relative.components() {
        at.push(part);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(CnbError::InvalidBuildpack {
                    buildpack: relative.display().to_string(),
                    detail: format!(
                        "{} is a symbolic link or a file, not a directory committed with the app",
                        at.strip_prefix(source).unwrap_or(&at).display()
                    ),
                })
            }
            Err(_) => {
                return Err(CnbError::InvalidBuildpack {
                    buildpack: relative.display().to_string(),
                    detail: "no such directory in the app".to_string(),
                })
            }
        }
    }
    let mut budget = MAX_COPY_BYTES;
    copy_tree(&at, dest, &mut budget).map_err(|e| match e {
        CopyError::TooLarge => CnbError::InvalidBuildpack {
            buildpack: relative.display().to_string(),
            detail: format!("it is larger than {} MB", MAX_COPY_BYTES / (1024 * 1024)),
        },
        CopyError::Cnb(e) => e,
    })
}

pub(crate) enum CopyError {
    TooLarge,
    Cnb(CnbError),
}

/// Copies the tree at `from` to `to` (created), regular files with their permission bits,
/// directories 0755, links as links; sockets, FIFOs and devices are left out. Never follows
/// a link. At most `budget` bytes of file contents.
pub(crate) fn copy_tree(from: &Path, to: &Path, budget: &mut u64) -> Result<(), CopyError> {
    let cnb = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |e: std::io::Error| CopyError::Cnb(CnbError::io(action, &path, e))
    };
    fs::create_dir_all(to).map_err(cnb("create", to))?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o755))
        .map_err(cnb("set permissions of", to))?;
    for entry in sorted_entries(from).map_err(|e| CopyError::Cnb(CnbError::Build(Box::new(e))))? {
        let path = entry.path();
        let target = to.join(entry.file_name());
        let metadata = fs::symlink_metadata(&path).map_err(cnb("inspect", &path))?;
        let kind = metadata.file_type();
        if kind.is_dir() {
            copy_tree(&path, &target, budget)?;
        } else if kind.is_symlink() {
            let link = fs::read_link(&path).map_err(cnb("read the link", &path))?;
            symlink(link, &target).map_err(cnb("create the link", &target))?;
        } else if kind.is_file() {
            if metadata.len() > *budget {
                return Err(CopyError::TooLarge);
            }
            *budget -= metadata.len();
            copy_file(&path, &target).map_err(cnb("copy", &path))?;
            let mode = metadata.permissions().mode() & 0o777 | 0o444;
            fs::set_permissions(&target, fs::Permissions::from_mode(mode))
                .map_err(cnb("set permissions of", &target))?;
        }
    }
    Ok(())
}

/// Copies one regular file, opened without following a link.
fn copy_file(from: &Path, to: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut input = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(from)?;
    if !input.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut output = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)?;
    std::io::copy(&mut input, &mut output)
}
