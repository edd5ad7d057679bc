//! The built-in buildpacks shipped inside this crate, and resolution of buildpack names to
//! directories.
//!
//! The scripts live under `crates/build/buildpacks/<name>/bin/` and are embedded with
//! `include_str!`, so the binary is self-contained; [`install_builtin_buildpacks`] writes them
//! out where build containers can mount them.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::BuildError;

/// A buildpack shipped with Slipway.
#[derive(Debug)]
pub(crate) struct BuiltinBuildpack {
    /// Directory name under the buildpacks dir, and the name used in `BuildRequest::buildpacks`.
    pub(crate) name: &'static str,
    /// What `bin/detect` looks for, for the "no buildpack" message.
    pub(crate) looks_for: &'static str,
    /// Which kind of app that is, for the same message.
    pub(crate) kind_of_app: &'static str,
    /// Directories of the app the platform keeps for this buildpack from one build to the
    /// next (see `kept.rs`).
    pub(crate) kept_dirs: &'static [&'static str],
    /// `bin/<script>` → contents.
    scripts: [(&'static str, &'static str); 3],
}

/// A built-in buildpack whose scripts are `buildpacks/<name>/bin/{detect,compile,release}`.
macro_rules! builtin {
    ($name:literal, looks_for: $looks_for:literal, kind_of_app: $kind_of_app:literal) => {
        builtin!($name, looks_for: $looks_for, kind_of_app: $kind_of_app, kept_dirs: &[])
    };
    ($name:literal, looks_for: $looks_for:literal, kind_of_app: $kind_of_app:literal,
     kept_dirs: $kept_dirs:expr) => {
        BuiltinBuildpack {
            name: $name,
            looks_for: $looks_for,
            kind_of_app: $kind_of_app,
            kept_dirs: $kept_dirs,
            scripts: [
                script!($name, "detect"),
                script!($name, "compile"),
                script!($name, "release"),
            ],
        }
    };
}

/// `bin/<script>` of the built-in buildpack `<name>`, embedded.
macro_rules! script {
    ($name:literal, $script:literal) => {
        (
            $script,
            include_str!(concat!("../buildpacks/", $name, "/bin/", $script)),
        )
    };
}

/// In auto-detection order.
pub(crate) const BUILTINS: [BuiltinBuildpack; 9] = [
    builtin!(
        "python",
        looks_for: "requirements.txt, setup.py or pyproject.toml",
        kind_of_app: "Python",
        kept_dirs: &[".heroku/python"]
    ),
    builtin!(
        "nodejs",
        looks_for: "package.json",
        kind_of_app: "Node.js",
        kept_dirs: &[".heroku/node"]
    ),
    builtin!("ruby", looks_for: "Gemfile", kind_of_app: "Ruby"),
    builtin!(
        "php",
        looks_for: "composer.json or index.php",
        kind_of_app: "PHP"
    ),
    builtin!("go", looks_for: "go.mod", kind_of_app: "Go"),
    builtin!("java", looks_for: "pom.xml", kind_of_app: "Java"),
    builtin!("rust", looks_for: "Cargo.toml", kind_of_app: "Rust"),
    builtin!("static", looks_for: "static.json", kind_of_app: "static sites"),
    builtin!(
        "procfile",
        looks_for: "a Procfile",
        kind_of_app: "Procfile-only apps"
    ),
];

/// Names of the built-in buildpacks, in auto-detection order.
pub const BUILTIN_BUILDPACKS: [&str; 9] = [
    "python", "nodejs", "ruby", "php", "go", "java", "rust", "static", "procfile",
];

/// "python, nodejs, ruby, php, go, java, rust, static, procfile", for messages.
pub(crate) fn builtin_names() -> String {
    BUILTIN_BUILDPACKS.join(", ")
}

/// Materializes the built-in buildpacks into `dir/<name>/bin/{detect,compile,release}`, mode
/// 0755 (directories too, so an unprivileged build user can read them). Overwrites existing
/// files atomically, so it is safe to call at every start even while builds run.
pub fn install_builtin_buildpacks(dir: &Path) -> Result<(), BuildError> {
    for buildpack in &BUILTINS {
        let bin = dir.join(buildpack.name).join("bin");
        fs::create_dir_all(&bin).map_err(|e| BuildError::io("create", &bin, e))?;
        for path in [dir.to_path_buf(), dir.join(buildpack.name), bin.clone()] {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
                .map_err(|e| BuildError::io("set permissions of", &path, e))?;
        }
        for (script, contents) in buildpack.scripts {
            let path = bin.join(script);
            let mut file = tempfile::NamedTempFile::new_in(&bin)
                .map_err(|e| BuildError::io("create a temporary file in", &bin, e))?;
            file.write_all(contents.as_bytes())
                .and_then(|()| file.as_file().sync_all())
                .map_err(|e| BuildError::io("write", file.path(), e))?;
            fs::set_permissions(file.path(), fs::Permissions::from_mode(0o755))
                .map_err(|e| BuildError::io("set permissions of", file.path(), e))?;
            file.persist(&path)
                .map_err(|e| BuildError::io("install", &path, e.error))?;
        }
    }
    Ok(())
}

/// A buildpack resolved to a directory on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolvedBuildpack {
    /// Short name used in messages and container ids (`python`, or the directory's name).
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    /// A per-build copy the build may write to (`$BUILDPACK_DIR/export`), mounted read-write;
    /// otherwise the installed directory, mounted read-only.
    pub(crate) writable: bool,
    /// A built-in's [`BuiltinBuildpack::kept_dirs`]; none for any other buildpack.
    pub(crate) kept_dirs: &'static [&'static str],
}

/// The built-in that detects any app with a Procfile: when it is what auto-detection picks,
/// no language buildpack recognized the app.
pub(crate) const GENERIC_BUILDPACK: &str = "procfile";

/// Resolves one entry of `BuildRequest::buildpacks`.
pub(crate) fn resolve(name: &str, buildpacks_dir: &Path) -> Result<ResolvedBuildpack, BuildError> {
    let short = name
        .strip_prefix("heroku/")
        .or_else(|| name.strip_prefix("heroku-community/"))
        .unwrap_or(name);
    if BUILTIN_BUILDPACKS.contains(&short) {
        return builtin(short, buildpacks_dir);
    }
    let path = Path::new(name);
    if path.is_absolute() && path.join("bin/detect").is_file() && path.join("bin/compile").is_file()
    {
        // Short: it is part of container ids, and a cache directory's name is long.
        let short = path
            .file_name()
            .map(|n| n.to_string_lossy().chars().take(20).collect())
            .unwrap_or_else(|| "buildpack".to_string());
        return Ok(ResolvedBuildpack {
            name: short,
            dir: path.to_path_buf(),
            writable: false,
            kept_dirs: &[],
        });
    }
    Err(BuildError::UnknownBuildpack {
        name: name.to_string(),
        builtins: builtin_names(),
    })
}

/// The installed directory of a built-in buildpack.
pub(crate) fn builtin(name: &str, buildpacks_dir: &Path) -> Result<ResolvedBuildpack, BuildError> {
    let dir = buildpacks_dir.join(name);
    if !dir.join("bin/detect").is_file() {
        return Err(BuildError::BuiltinNotInstalled {
            name: name.to_string(),
            path: dir,
        });
    }
    let kept_dirs = BUILTINS
        .iter()
        .find(|builtin| builtin.name == name)
        .map_or(&[][..], |builtin| builtin.kept_dirs);
    Ok(ResolvedBuildpack {
        name: name.to_string(),
        dir,
        writable: false,
        kept_dirs,
    })
}

/// "requirements.txt, setup.py or pyproject.toml (Python); package.json (Node.js); a
/// Procfile (Procfile-only apps)".
pub(crate) fn looked_for() -> String {
    BUILTINS
        .iter()
        .map(|b| format!("{} ({})", b.looks_for, b.kind_of_app))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Files that mark an app of some language at the root of its source, and that language as
/// the built-ins name it (their `kind_of_app`). When auto-detection picks no language
/// buildpack, a file here whose language no built-in builds fails the build with
/// [`BuildError::LanguageWithoutBuildpack`] instead of deploying an app that cannot start; a
/// built-in added for a language (say `kind_of_app: "Ruby"`) takes its files out of that check
/// with no change here.
pub(crate) const LANGUAGE_FILES: &[(&str, &str)] = &[
    ("Gemfile", "Ruby"),
    ("go.mod", "Go"),
    ("pom.xml", "Java"),
    ("build.gradle", "Java"),
    ("build.gradle.kts", "Java"),
    ("build.sbt", "Scala"),
    ("project.clj", "Clojure"),
    ("composer.json", "PHP"),
    ("Cargo.toml", "Rust"),
    ("mix.exs", "Elixir"),
    ("deno.json", "Deno"),
    ("requirements.txt", "Python"),
    ("pyproject.toml", "Python"),
    ("setup.py", "Python"),
    ("Pipfile", "Python"),
    ("package.json", "Node.js"),
];

/// Whether some built-in buildpack builds apps of `language`.
fn has_builtin_for(language: &str) -> bool {
    BUILTINS.iter().any(|b| b.kind_of_app == language)
}

/// The language files at the root of `source_dir` that no built-in buildpack builds, as
/// (file, language). Presence is enough (`lstat`, nothing is read or followed).
pub(crate) fn unbuildable_language_files(source_dir: &Path) -> Vec<(&'static str, &'static str)> {
    LANGUAGE_FILES
        .iter()
        .filter(|(file, _)| fs::symlink_metadata(source_dir.join(file)).is_ok())
        .filter(|(_, language)| !has_builtin_for(language))
        .copied()
        .collect()
}

/// The most entries a `.buildpacks` file may list.
pub const MAX_DOT_BUILDPACKS: usize = 16;

/// Parses a `.buildpacks` file (heroku-buildpack-multi's format, which Heroku and Dokku still
/// read): one buildpack per line, a built-in name or a URL with an optional `#ref`; blank
/// lines and `#` comment lines are skipped. More than [`MAX_DOT_BUILDPACKS`] entries, or a
/// line with a space or a control character, is refused with the line's number.
pub fn parse_dot_buildpacks(text: &str) -> Result<Vec<String>, String> {
    let mut list = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.chars().any(|c| c.is_whitespace() || c.is_control()) || line.len() > 2048 {
            return Err(format!(
                ".buildpacks line {} is not a buildpack name or URL: write one per line",
                number + 1
            ));
        }
        list.push(line.to_owned());
        if list.len() > MAX_DOT_BUILDPACKS {
            return Err(format!(
                ".buildpacks lists more than {MAX_DOT_BUILDPACKS} buildpacks"
            ));
        }
    }
    Ok(list)
}

#[cfg(test)]
mod tests;
