//! Filesystem chores of a build: reading tenant files safely ([`read_tenant_file`]), handing
//! directories to the build user and writing the buildpacks' `ENV_DIR`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
use std::path::{Component, Path};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::BuildError;

/// The most Slipway reads of any one tenant file (Procfile, app.json, .slugignore): 1 MB.
pub const TENANT_FILE_CAP: u64 = 1024 * 1024;

/// Why a tenant file could not be read. Messages name the file (relative to the app) and the
/// rule it broke, never its contents, and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum TenantFileError {
    #[error(
        "{name} is a symbolic link, or is reached through one ({component}). Slipway reads \
         {name} only as a regular file inside the app's source: commit the file itself, not a \
         link to it, and push again."
    )]
    Symlink { name: String, component: String },
    #[error(
        "{name} is not a regular file (it is a {kind}). Commit {name} as a regular file and push \
         again."
    )]
    NotRegular { name: String, kind: &'static str },
    #[error(
        "{name} is larger than {} KB, the most Slipway reads. Make it smaller and push again.",
        cap / 1024
    )]
    TooLarge { name: String, cap: u64 },
    #[error("{name} is not a relative path inside the app's source")]
    InvalidPath { name: String },
    #[error("{name} could not be read ({source}). Make it a regular file and push again.")]
    Io {
        name: String,
        #[source]
        source: std::io::Error,
    },
}

/// Reads `root/rel`, a file from tenant-controlled content (source, build output, slug), with
/// no way for the tenant to make the platform read anything else:
///
/// - every component of `rel` is opened from its parent's descriptor with `O_NOFOLLOW`, so a
///   symlink anywhere below `root` (`Procfile -> /etc/shadow`, `config -> /`) is refused, not
///   followed (`root` itself is the platform's own path and trusted);
/// - only a regular file is opened at all: FIFOs, devices, sockets and directories are refused
///   after an `lstat` of the last component, so opening cannot block or touch a device, and the
///   opened descriptor is checked again with `fstat`;
/// - at most `cap + 1` bytes are read: a bigger file is refused without reading it whole.
///
/// `Ok(None)` when the file (or one of its directories) does not exist. Blocking.
pub fn read_tenant_file(
    root: &Path,
    rel: &str,
    cap: u64,
) -> Result<Option<Vec<u8>>, TenantFileError> {
    let name = rel.to_string();
    let io = |source: std::io::Error| TenantFileError::Io {
        name: name.clone(),
        source,
    };
    let components: Vec<&std::ffi::OsStr> = Path::new(rel)
        .components()
        .map(|c| match c {
            Component::Normal(part) => Ok(part),
            _ => Err(TenantFileError::InvalidPath { name: name.clone() }),
        })
        .collect::<Result<_, _>>()?;
    let Some((last, dirs)) = components.split_last() else {
        return Err(TenantFileError::InvalidPath { name });
    };
    let mut dir = rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io(e.into()))?;
    let mut walked = std::path::PathBuf::new();
    for (index, part) in components.iter().enumerate() {
        walked.push(part);
        let is_last = index == dirs.len();
        let stat = match rustix::fs::statat(&dir, *part, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => return Ok(None),
            Err(e) => return Err(io(e.into())),
        };
        let kind = FileType::from_raw_mode(stat.st_mode);
        if kind == FileType::Symlink {
            return Err(TenantFileError::Symlink {
                name,
                component: walked.display().to_string(),
            });
        }
        if !is_last {
            if kind != FileType::Directory {
                return Ok(None);
            }
            dir = rustix::fs::openat(
                &dir,
                *part,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| symlink_or_io(e, &name, &walked))?;
            continue;
        }
        if kind != FileType::RegularFile {
            return Err(TenantFileError::NotRegular {
                name,
                kind: kind_name(kind),
            });
        }
    }
    let file = rustix::fs::openat(
        &dir,
        *last,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| symlink_or_io(e, &name, Path::new(rel)))?;
    // The entry may have been swapped between the lstat and the open: check what was opened.
    let kind = FileType::from_raw_mode(rustix::fs::fstat(&file).map_err(|e| io(e.into()))?.st_mode);
    if kind != FileType::RegularFile {
        return Err(TenantFileError::NotRegular {
            name,
            kind: kind_name(kind),
        });
    }
    let mut bytes = Vec::new();
    fs::File::from(file)
        .take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > cap {
        return Err(TenantFileError::TooLarge { name, cap });
    }
    Ok(Some(bytes))
}

fn symlink_or_io(error: rustix::io::Errno, name: &str, walked: &Path) -> TenantFileError {
    if error == rustix::io::Errno::LOOP {
        TenantFileError::Symlink {
            name: name.to_string(),
            component: walked.display().to_string(),
        }
    } else {
        TenantFileError::Io {
            name: name.to_string(),
            source: error.into(),
        }
    }
}

fn kind_name(kind: FileType) -> &'static str {
    match kind {
        FileType::Directory => "directory",
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Symlink => "symbolic link",
        FileType::RegularFile => "regular file",
        _ => "special file",
    }
}

/// `chown -hR uid:gid path`: never follows symlinks, so a symlink in the source pointing at
/// e.g. `/etc` cannot redirect the chown.
pub(crate) fn chown_recursive(path: &Path, uid: u32, gid: u32) -> Result<(), BuildError> {
    lchown(path, Some(uid), Some(gid)).map_err(|e| BuildError::io("change owner of", path, e))?;
    let metadata = fs::symlink_metadata(path).map_err(|e| BuildError::io("inspect", path, e))?;
    if metadata.is_dir() {
        let entries = fs::read_dir(path).map_err(|e| BuildError::io("read directory", path, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| BuildError::io("read directory", path, e))?;
            chown_recursive(&entry.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Recreates `env_dir` with one file per config var (name = key, contents = value), readable
/// only by the build user.
pub(crate) fn write_env_dir(
    env_dir: &Path,
    config_vars: &BTreeMap<String, String>,
    uid: u32,
    gid: u32,
) -> Result<(), BuildError> {
    if env_dir.exists() {
        fs::remove_dir_all(env_dir).map_err(|e| BuildError::io("remove", env_dir, e))?;
    }
    fs::create_dir_all(env_dir).map_err(|e| BuildError::io("create", env_dir, e))?;
    fs::set_permissions(env_dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| BuildError::io("set permissions of", env_dir, e))?;
    for (key, value) in config_vars {
        if key.is_empty() || key == "." || key == ".." || key.contains(['/', '\0']) {
            return Err(BuildError::InvalidConfigVar { key: key.clone() });
        }
        let path = env_dir.join(key);
        fs::write(&path, value).map_err(|e| BuildError::io("write", &path, e))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
            .map_err(|e| BuildError::io("set permissions of", &path, e))?;
    }
    chown_recursive(env_dir, uid, gid)
}

/// Copies the tree at `src` to `dst` (which must not exist) without following a symbolic link:
/// links are recreated as links, regular files keep their permission bits (set-id bits
/// dropped), anything else is skipped. A buildpack's per-build copy is made with it, and a
/// fetched buildpack is tenant content.
pub(crate) fn copy_tree(src: &Path, dst: &Path) -> Result<(), BuildError> {
    let metadata = fs::symlink_metadata(src).map_err(|e| BuildError::io("inspect", src, e))?;
    let file_type = metadata.file_type();
    if file_type.is_dir() {
        fs::create_dir(dst).map_err(|e| BuildError::io("create", dst, e))?;
        fs::set_permissions(dst, fs::Permissions::from_mode(0o755))
            .map_err(|e| BuildError::io("set permissions of", dst, e))?;
        for entry in sorted_entries(src)? {
            copy_tree(&entry.path(), &dst.join(entry.file_name()))?;
        }
    } else if file_type.is_symlink() {
        let target = fs::read_link(src).map_err(|e| BuildError::io("read the link", src, e))?;
        std::os::unix::fs::symlink(&target, dst).map_err(|e| BuildError::io("create", dst, e))?;
    } else if file_type.is_file() {
        fs::copy(src, dst).map_err(|e| BuildError::io("copy", src, e))?;
        fs::set_permissions(dst, fs::Permissions::from_mode(metadata.mode() & 0o777))
            .map_err(|e| BuildError::io("set permissions of", dst, e))?;
    }
    Ok(())
}

/// Removes `path` (file, symlink or directory tree) if it exists.
pub(crate) fn remove_path(path: &Path) -> Result<bool, BuildError> {
    match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => {
            fs::remove_dir_all(path).map_err(|e| BuildError::io("remove", path, e))?;
            Ok(true)
        }
        Ok(_) => {
            fs::remove_file(path).map_err(|e| BuildError::io("remove", path, e))?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(BuildError::io("inspect", path, e)),
    }
}

/// A name as one path component: `[A-Za-z0-9_.-]`, anything else `-` (a buildpack's name in
/// its per-build copy's directory, a kept directory's path in its store).
pub(crate) fn sanitize_component(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The entries of `dir`, sorted by name (so identical trees are walked, and archived, alike).
pub(crate) fn sorted_entries(dir: &Path) -> Result<Vec<fs::DirEntry>, BuildError> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(|e| BuildError::io("read directory", dir, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| BuildError::io("read directory", dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    Ok(entries)
}

#[cfg(test)]
mod tests;
