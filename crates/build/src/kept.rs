//! Kept directories: trees a built-in buildpack builds into the app (Python's virtual
//! environment in `.heroku/python`, Node.js's runtime in `.heroku/node`) that the platform
//! keeps from one build to the next by renaming them, instead of the buildpack copying them
//! into `CACHE_DIR` and back.
//!
//! Heroku's buildpacks copy such a tree into the cache after an install and back at the next
//! build; for a virtual environment's thousands of small files that copy is most of a no-op
//! rebuild. Here, before the buildpack's `bin/compile`, the tree of the previous build is
//! renamed from `<cache_dir>.kept/<buildpack>/<dir>` into the build directory, and after the
//! slug is packed (whatever the build's outcome) it is renamed back: two renames on the same
//! filesystem, whatever the tree's size. The buildpack learns of it from two variables:
//! `SLIPWAY_KEPT_DIRS` (the directories the platform keeps for it, so it need not copy them
//! into its cache) and `SLIPWAY_RESTORED_DIRS` (those of them restored now, from the previous
//! build). It still decides whether the restored tree is fit to use (its own cache keys: the
//! runtime version, the stack, the lockfile) and empties it when not.
//!
//! The build directory is the tenant's: a directory is restored only where the source has
//! nothing of its own (no `.heroku/python` in the pushed tree, no symbolic link on the way),
//! and kept only when the build left a real directory there (never a symbolic link, which a
//! rename would carry into the next build). No tenant process runs while the platform renames.
//! When the build directory and the store are on different filesystems nothing is kept and
//! the buildpack copies as Heroku's does.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::fsutil::{remove_path, sanitize_component};
use crate::BuildError;

/// The variable that names, space-separated, the directories (relative to the app) the
/// platform keeps for the buildpack across builds.
pub(crate) const KEPT_DIRS_VAR: &str = "SLIPWAY_KEPT_DIRS";
/// The variable that names those of them restored from the previous build for this one.
pub(crate) const RESTORED_DIRS_VAR: &str = "SLIPWAY_RESTORED_DIRS";

/// Where an app's kept directories are stored: beside its build cache
/// (`<cache_dir>.kept`), as the slug runs are, so that purging the cache can find them.
pub(crate) fn kept_root(cache_dir: &Path) -> PathBuf {
    let mut name = cache_dir
        .file_name()
        .map(std::ffi::OsStr::to_os_string)
        .unwrap_or_else(|| std::ffi::OsString::from("cache"));
    name.push(".kept");
    cache_dir.with_file_name(name)
}

/// One directory kept for one buildpack of this build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeptDir {
    /// Relative to the app, e.g. `.heroku/python`.
    pub(crate) relative: &'static str,
    /// In the build directory.
    pub(crate) in_build: PathBuf,
    /// In the store, between builds.
    pub(crate) stored: PathBuf,
    /// Whether the previous build's tree was restored into the build directory.
    pub(crate) restored: bool,
}

/// The variables that tell a buildpack what the platform keeps and restored for it; none
/// when it keeps nothing.
pub(crate) fn step_env(dirs: &[KeptDir]) -> Vec<(String, String)> {
    if dirs.is_empty() {
        return Vec::new();
    }
    let join = |restored_only: bool| {
        dirs.iter()
            .filter(|dir| !restored_only || dir.restored)
            .map(|dir| dir.relative)
            .collect::<Vec<_>>()
            .join(" ")
    };
    vec![
        (KEPT_DIRS_VAR.to_owned(), join(false)),
        (RESTORED_DIRS_VAR.to_owned(), join(true)),
    ]
}

/// Before the compile of built-in `buildpack`: for each of its `dirs` the build directory
/// can take, restores the previous build's tree (when there is one, owned by `uid`) and
/// returns what is kept. A directory the source already has, or whose way there is not
/// made of plain directories, is left to the buildpack as without this.
pub(crate) fn restore(
    source_dir: &Path,
    cache_dir: &Path,
    buildpack: &str,
    dirs: &[&'static str],
    uid: u32,
    gid: u32,
) -> Result<Vec<KeptDir>, BuildError> {
    let store = kept_root(cache_dir).join(sanitize_component(buildpack));
    let mut kept = Vec::new();
    for relative in dirs {
        let in_build = source_dir.join(relative);
        if !parents_are_plain_dirs(source_dir, relative, uid, gid)? || exists(&in_build)? {
            continue;
        }
        let stored = store.join(sanitize_component(relative));
        let restored = match fs::symlink_metadata(&stored) {
            Ok(metadata) if metadata.is_dir() && metadata.uid() == uid => {
                match fs::rename(&stored, &in_build) {
                    Ok(()) => true,
                    // Another filesystem: nothing can be kept cheaply here.
                    Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                        remove_path(&stored)?;
                        continue;
                    }
                    Err(e) => return Err(BuildError::io("restore the kept directory", &stored, e)),
                }
            }
            // A tree of another user (the app's uid changed) or not a directory: not this
            // build's to use.
            Ok(_) => {
                remove_path(&stored)?;
                false
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(BuildError::io("inspect", &stored, e)),
        };
        kept.push(KeptDir {
            relative,
            in_build,
            stored,
            restored,
        });
    }
    Ok(kept)
}

/// After the slug is packed (or the build failed): renames each kept directory the build
/// left as a real directory back into the store. Returns how many were kept.
pub(crate) fn keep(dirs: &[KeptDir]) -> Result<usize, BuildError> {
    let mut count = 0;
    for dir in dirs {
        // The previous tree was renamed away at the start; anything there now is stale.
        remove_path(&dir.stored)?;
        match fs::symlink_metadata(&dir.in_build) {
            Ok(metadata) if metadata.is_dir() => {}
            _ => continue,
        }
        let parent = dir
            .stored
            .parent()
            .expect("a kept directory's store path has a parent");
        create_private_dirs(parent)?;
        match fs::rename(&dir.in_build, &dir.stored) {
            Ok(()) => count += 1,
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {}
            Err(e) => return Err(BuildError::io("keep the directory", &dir.in_build, e)),
        }
    }
    Ok(count)
}

/// Removes everything an app's builds keep between builds: the build cache at `cache_dir`,
/// and beside it the compressed slug runs later slugs reuse and the directories kept for the
/// built-in buildpacks (`builds:cache:purge`, and the app's destruction). Blocking; what is
/// already gone is no error.
pub fn remove_build_cache(cache_dir: &Path) -> Result<(), BuildError> {
    remove_path(cache_dir)?;
    let layers = crate::slug::layers_dir(cache_dir);
    remove_path(&crate::slug::stat_index_path(&layers))?;
    remove_path(&layers)?;
    remove_all(cache_dir)?;
    Ok(())
}

/// Removes what [`keep`] stored for the app whose build cache is `cache_dir`.
pub(crate) fn remove_all(cache_dir: &Path) -> Result<bool, BuildError> {
    remove_path(&kept_root(cache_dir))
}

/// Whether anything (a symlink too) is at `path`.
fn exists(path: &Path) -> Result<bool, BuildError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(BuildError::io("inspect", path, e)),
    }
}

/// Whether every parent of `relative` below `root` is a plain directory (never a symbolic
/// link), creating the missing ones for the build user (mode 0755).
fn parents_are_plain_dirs(
    root: &Path,
    relative: &str,
    uid: u32,
    gid: u32,
) -> Result<bool, BuildError> {
    let mut path = root.to_path_buf();
    let parts: Vec<&str> = relative.split('/').collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        path.push(part);
        match fs::symlink_metadata(&path) {
            Ok(metadata) if metadata.is_dir() => {}
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir(&path).map_err(|e| BuildError::io("create", &path, e))?;
                fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
                    .map_err(|e| BuildError::io("set permissions of", &path, e))?;
                std::os::unix::fs::lchown(&path, Some(uid), Some(gid))
                    .map_err(|e| BuildError::io("change owner of", &path, e))?;
            }
            Err(e) => return Err(BuildError::io("inspect", &path, e)),
        }
    }
    Ok(true)
}

/// Creates `dir` and its missing parents, readable by the platform only (mode 0700): the
/// kept trees are the app's, and no other tenant's build mounts them.
fn create_private_dirs(dir: &Path) -> Result<(), BuildError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|e| BuildError::io("create", dir, e))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| BuildError::io("set permissions of", dir, e))
}

#[cfg(test)]
mod tests;
