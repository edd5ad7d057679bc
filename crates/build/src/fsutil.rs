//! Filesystem chores of a build: handing directories to the build user and writing the
//! buildpacks' `ENV_DIR`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{lchown, PermissionsExt};
use std::path::Path;

use crate::BuildError;

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
