//! The data directory belongs to the server alone: [`tighten_permissions`] takes group and
//! other permissions off what an older version left readable, and [`write_secret`] writes a
//! secret file 0600 from the start.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A file system operation on `path` failed.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}", path.display())]
pub struct PathError {
    action: &'static str,
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

impl PathError {
    /// The error of `action` on `path`, for `map_err`.
    fn new(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> PathError {
        let path = path.to_path_buf();
        move |source| PathError {
            action,
            path,
            source,
        }
    }
}

/// Where permissions stay as they are: the built-in buildpacks (0755, read by the build user).
/// Relative to the data directory.
const KEEP_PERMISSIONS: &[&str] = &["buildpacks"];
/// Where directories keep their mode (files are tightened): the runtime's bundles, whose rootfs
/// skeletons are the root directories of running dynos, traversed by their users.
const KEEP_DIRECTORY_PERMISSIONS: &[&str] = &["runtime"];

/// Makes the data directory 0700 and, below it, takes group and other permissions off every
/// file and directory (an older version created them 0644/0755), except under
/// [`KEEP_PERMISSIONS`], directories under [`KEEP_DIRECTORY_PERMISSIONS`], and files owned by
/// someone else than the server (dyno-owned slug files keep their mode: their owner reads them
/// inside the container). Does not follow symbolic links, nor cross into other filesystems: the
/// mounts under the data directory are running dynos' (their network namespace files, their
/// disks). Returns how many modes it changed.
pub(crate) fn tighten_permissions(data_dir: &Path) -> Result<usize, PathError> {
    let me = nix::unistd::geteuid().as_raw();
    let device = std::fs::metadata(data_dir)
        .map_err(PathError::new("reading", data_dir))?
        .dev();
    let mut changed = 0;
    let mut stack = vec![data_dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(PathError::new("reading", &path)(error)),
        };
        if meta.file_type().is_symlink() || meta.uid() != me || meta.dev() != device {
            continue;
        }
        let relative = path.strip_prefix(data_dir).unwrap_or(&path);
        if KEEP_PERMISSIONS
            .iter()
            .any(|keep| relative == Path::new(keep))
        {
            continue;
        }
        let keep_dir = meta.is_dir()
            && KEEP_DIRECTORY_PERMISSIONS
                .iter()
                .any(|keep| relative.starts_with(keep) && relative != Path::new(keep));
        let mode = meta.permissions().mode() & 0o7777;
        let wanted = if path == data_dir {
            0o700
        } else {
            mode & !0o077
        };
        if ((meta.is_dir() && !keep_dir) || meta.is_file()) && wanted != mode {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(wanted))
                .map_err(PathError::new("changing the mode of", &path))?;
            changed += 1;
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(PathError::new("listing", &path))? {
                stack.push(entry.map_err(PathError::new("listing", &path))?.path());
            }
        }
    }
    Ok(changed)
}

/// Writes `secret` to `path`, readable by the server's user alone from the first byte.
pub(crate) fn write_secret(path: &Path, secret: &str) -> Result<(), PathError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(PathError::new("writing the admin key to", path))?;
    file.write_all(secret.as_bytes())
        .map_err(PathError::new("writing the admin key to", path))
}

#[cfg(test)]
mod tests;
