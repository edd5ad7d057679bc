//! The built-in buildpacks' `bin/detect` rules, evaluated in Rust against the source tree, so
//! that auto-detection starts no container per built-in (nine of them, in order).
//!
//! Each rule is the file check its script makes (`[[ -f "$BUILD_DIR/package.json" ]]`, and
//! Ruby's look into `Gemfile.lock`), made without following a symbolic link: every path is
//! walked from the source's root with `lstat`, and a file is read only through
//! [`read_tenant_file`](crate::read_tenant_file). Where the script would follow a link (or read
//! a file larger than a tenant file may be) the answer is [`Detected::Unsure`] and the
//! buildpack's own `bin/detect` runs in a build container, as before: the two agree on every
//! tree, which `detect/tests.rs` checks by running the scripts against a table of trees.

use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::fsutil::{read_tenant_file, TenantFileError, TENANT_FILE_CAP};

/// What a built-in's detect rule says about a source tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Detected {
    /// The buildpack applies; the framework name its script prints.
    Yes(&'static str),
    No,
    /// A path the rule looks at is a symbolic link (or a file too large to read here): only
    /// the script itself can say.
    Unsure,
}

/// What is at a path below the source's root, without following links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    Missing,
    Regular,
    /// A directory, FIFO, socket or device: never `-f`.
    Other,
    /// A symbolic link, at the path or on the way to it.
    Link,
}

/// The rule of built-in `name` against `source_dir`; `None` for a name that has none here (the
/// script decides). Blocking.
pub(crate) fn builtin(name: &str, source_dir: &Path) -> Option<Detected> {
    let checks = Checks { root: source_dir };
    Some(match name {
        "python" => checks.any_file(
            &[
                "requirements.txt",
                "setup.py",
                "pyproject.toml",
                "Pipfile",
                "Pipfile.lock",
                "poetry.lock",
                "uv.lock",
            ],
            "Python",
        ),
        "nodejs" => checks.any_file(&["package.json"], "Node.js"),
        "ruby" => checks.ruby(),
        "php" => checks.any_file(&["composer.json", "index.php"], "PHP"),
        "go" => checks.any_file(&["go.mod"], "Go"),
        "java" => match checks.any_file(&["pom.xml"], "Java") {
            Detected::No => checks.any_file(&["build.gradle", "build.gradle.kts"], "Java (Gradle)"),
            other => other,
        },
        "rust" => checks.any_file(&["Cargo.toml"], "Rust"),
        "static" => checks.any_file(&["static.json"], "Static HTML"),
        "procfile" => checks.any_file(&["Procfile"], "Procfile"),
        _ => return None,
    })
}

struct Checks<'a> {
    root: &'a Path,
}

impl Checks<'_> {
    /// `[[ -f a || -f b ... ]]` in order: the first regular file decides; a link met before
    /// one makes the answer the script's.
    fn any_file(&self, files: &[&str], framework: &'static str) -> Detected {
        for file in files {
            match self.entry(file) {
                Entry::Regular => return Detected::Yes(framework),
                Entry::Link => return Detected::Unsure,
                Entry::Missing | Entry::Other => {}
            }
        }
        Detected::No
    }

    /// Ruby's script: a Gemfile, then Rails (config/application.rb and "rails" in
    /// Gemfile.lock), else Rack (config.ru), else plain Ruby.
    fn ruby(&self) -> Detected {
        match self.any_file(&["Gemfile"], "Ruby") {
            Detected::Yes(_) => {}
            other => return other,
        }
        let rails = match self.entry("config/application.rb") {
            Entry::Regular => match read_tenant_file(self.root, "Gemfile.lock", TENANT_FILE_CAP) {
                Ok(Some(lock)) => lock.windows(5).any(|w| w == b"rails"),
                // grep reads what is not there, or not a file, as no match.
                Ok(None) => false,
                Err(TenantFileError::NotRegular { .. }) => false,
                Err(_) => return Detected::Unsure,
            },
            Entry::Link => return Detected::Unsure,
            Entry::Missing | Entry::Other => false,
        };
        if rails {
            return Detected::Yes("Ruby/Rails");
        }
        match self.any_file(&["config.ru"], "Ruby/Rack") {
            Detected::No => Detected::Yes("Ruby"),
            other => other,
        }
    }

    /// What is at `rel` below the root, walked component by component with `lstat`.
    fn entry(&self, rel: &str) -> Entry {
        let Ok(mut dir) = rustix::fs::open(
            self.root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            return Entry::Missing;
        };
        let parts: Vec<&str> = rel.split('/').collect();
        for (index, part) in parts.iter().enumerate() {
            let stat = match rustix::fs::statat(&dir, *part, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => stat,
                Err(_) => return Entry::Missing,
            };
            let kind = FileType::from_raw_mode(stat.st_mode);
            if kind == FileType::Symlink {
                return Entry::Link;
            }
            if index + 1 == parts.len() {
                return if kind == FileType::RegularFile {
                    Entry::Regular
                } else {
                    Entry::Other
                };
            }
            if kind != FileType::Directory {
                return Entry::Missing;
            }
            dir = match rustix::fs::openat(
                &dir,
                *part,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(dir) => dir,
                Err(rustix::io::Errno::LOOP) => return Entry::Link,
                Err(_) => return Entry::Missing,
            };
        }
        Entry::Missing
    }
}

#[cfg(test)]
mod tests;
