//! Layer environment files (`env/`, `env.build/`, `env.launch/`): parsed into
//! [`EnvModification`]s, applied to the build environment of later buildpacks ([`apply`]) and
//! rendered as a `.profile.d` script for the dynos ([`render`]), both with the same semantics.
//!
//! A file `<layer>/env/NAME.<op>` holds a value and says what to do with it: `.override` (also
//! a file without a suffix, since Buildpack API 0.5) sets the variable, `.default` sets it only
//! when it is unset, `.append` and `.prepend` add the value after or before the current one,
//! separated by the contents of `NAME.delim` (nothing without that file).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use rustix::fs::{Mode, OFlags};

use super::CnbError;

/// The most bytes read of one env file: values are environment variables, and the kernel
/// caps one at 128 KiB (`MAX_ARG_STRLEN`).
const ENV_FILE_CAP: u64 = 128 * 1024;

/// How a value changes a variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EnvOp {
    Override,
    Default,
    Append { delim: String },
    Prepend { delim: String },
}

/// One change to one variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvModification {
    pub(crate) name: String,
    pub(crate) op: EnvOp,
    pub(crate) value: String,
}

impl EnvModification {
    /// `dir` goes first on the `:`-separated list `name` (`bin/` on `PATH`, ...).
    pub(crate) fn prepend_path(name: &str, dir: String) -> Self {
        EnvModification {
            name: name.to_string(),
            op: EnvOp::Prepend {
                delim: ":".to_string(),
            },
            value: dir,
        }
    }
}

/// Whether `name` can be a shell variable's name: the rendered script exports it.
pub(crate) fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The modifications an env directory describes, ordered by variable name then file name, as
/// the lifecycle applies them. Files the directory holds in a shape Slipway cannot honour (a
/// name that is not a shell variable, a subdirectory, a symbolic link) are skipped and named
/// in `skipped`. A missing directory has none. Blocking.
pub(crate) fn read_env_dir(
    dir: &Path,
    skipped: &mut Vec<String>,
) -> Result<Vec<EnvModification>, CnbError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CnbError::io("read the env directory", dir, e)),
    };
    let mut files = BTreeMap::new();
    for entry in entries {
        let entry = entry.map_err(|e| CnbError::io("read the env directory", dir, e))?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry
            .file_type()
            .map_err(|e| CnbError::io("inspect", &entry.path(), e))?;
        if kind.is_dir() {
            // Process-specific directories (`env.launch/<process>/`) are read by the caller.
            continue;
        }
        if !kind.is_file() {
            skipped.push(format!("{} (not a regular file)", entry.path().display()));
            continue;
        }
        files.insert(file_name, entry.path());
    }
    let mut modifications = Vec::new();
    for (file_name, path) in &files {
        let (name, suffix) = match file_name.rsplit_once('.') {
            Some((name, suffix)) => (name, suffix),
            None => (file_name.as_str(), "override"),
        };
        let op = match suffix {
            "override" => EnvOp::Override,
            "default" => EnvOp::Default,
            "append" | "prepend" => {
                let delim = match files.get(&format!("{name}.delim")) {
                    Some(delim) => read_value(delim)?,
                    None => String::new(),
                };
                if suffix == "append" {
                    EnvOp::Append { delim }
                } else {
                    EnvOp::Prepend { delim }
                }
            }
            "delim" => continue,
            _ => {
                skipped.push(format!("{} (unknown suffix .{suffix})", path.display()));
                continue;
            }
        };
        if !is_valid_name(name) {
            skipped.push(format!(
                "{} ({name:?} is not a variable name)",
                path.display()
            ));
            continue;
        }
        modifications.push(EnvModification {
            name: name.to_string(),
            op,
            value: read_value(path)?,
        });
    }
    // The lifecycle applies a directory's files sorted by variable name; the sort above is by
    // file name, which orders `A.append` before `A_B.override` alike.
    Ok(modifications)
}

/// A value file's contents, exactly (no trimming), up to [`ENV_FILE_CAP`]. The file was
/// listed as a regular file; it is opened without following a link in case it changed since.
fn read_value(path: &Path) -> Result<String, CnbError> {
    use std::io::Read;
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| CnbError::io("open", path, e.into()))?;
    let mut bytes = Vec::new();
    fs::File::from(fd)
        .take(ENV_FILE_CAP + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CnbError::io("read", path, e))?;
    if bytes.len() as u64 > ENV_FILE_CAP {
        return Err(CnbError::EnvFileTooLarge {
            path: path.to_path_buf(),
            cap: ENV_FILE_CAP,
        });
    }
    // A NUL cannot be part of an environment variable.
    bytes.retain(|b| *b != 0);
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Applies `modifications` in order to `env`, as the lifecycle does to the build environment.
pub(crate) fn apply(env: &mut BTreeMap<String, String>, modifications: &[EnvModification]) {
    for modification in modifications {
        let current = env.get(&modification.name).filter(|v| !v.is_empty());
        let value = match (&modification.op, current) {
            (EnvOp::Override, _) => modification.value.clone(),
            (EnvOp::Default, Some(_)) => continue,
            (EnvOp::Default, None) => modification.value.clone(),
            (EnvOp::Append { delim }, Some(current)) => {
                format!("{current}{delim}{}", modification.value)
            }
            (EnvOp::Prepend { delim }, Some(current)) => {
                format!("{}{delim}{current}", modification.value)
            }
            (EnvOp::Append { .. } | EnvOp::Prepend { .. }, None) => modification.value.clone(),
        };
        env.insert(modification.name.clone(), value);
    }
}

/// The shell lines that make the same changes as [`apply`] at a dyno's start (sourced from
/// `.profile.d`). Every value is single-quoted, so nothing in it is expanded.
pub(crate) fn render(modifications: &[EnvModification]) -> String {
    let mut script = String::new();
    for m in modifications {
        let name = &m.name;
        let value = quote(&m.value);
        let line = match &m.op {
            EnvOp::Override => format!("export {name}={value}\n"),
            EnvOp::Default => format!("if [ -z \"${{{name}:-}}\" ]; then export {name}={value}; fi\n"),
            EnvOp::Append { delim } => format!(
                "if [ -n \"${{{name}:-}}\" ]; then export {name}=\"${name}\"{}{value}; else export {name}={value}; fi\n",
                quote(delim)
            ),
            EnvOp::Prepend { delim } => format!(
                "if [ -n \"${{{name}:-}}\" ]; then export {name}={value}{}\"${name}\"; else export {name}={value}; fi\n",
                quote(delim)
            ),
        };
        script.push_str(&line);
    }
    script
}

/// `value` in single quotes, each `'` in it written as `'\''`.
pub(crate) fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}
