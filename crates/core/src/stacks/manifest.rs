//! A stack's manifest (`stacks/<name>/packages.txt`): the Debian suite and mirror, and the
//! packages of its run and build images. Parsed once into a [`Manifest`]; nothing here does IO.

use sha2::{Digest, Sha256};

/// The Debian mirror a manifest without a `mirror` line uses.
pub(crate) const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// The most bytes a manifest may have: a package list, not a data file.
pub(crate) const MAX_MANIFEST_BYTES: usize = 64 * 1024;

/// The most packages one image may list (Heroku's heroku-24 lists about 500).
const MAX_PACKAGES: usize = 1000;

/// A parsed manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Manifest {
    /// The Debian suite debootstrap installs, e.g. `bookworm`.
    pub(crate) suite: String,
    /// An `http://` or `https://` Debian mirror.
    pub(crate) mirror: String,
    /// The run image's packages, on top of debootstrap's `minbase` variant.
    pub(crate) run: Vec<String>,
    /// What the build image adds to the run image's packages. Empty: builds use the run image.
    pub(crate) build: Vec<String>,
    /// `sha256:<hex>` of the manifest's text: what a build of it was made from.
    pub(crate) digest: String,
}

/// Why a manifest was refused; the message names the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub(crate) struct ManifestError {
    pub(crate) line: usize,
    pub(crate) reason: String,
}

/// Which list a package line belongs to.
#[derive(Clone, Copy)]
enum Section {
    Header,
    Run,
    Build,
}

/// Debian policy's package name: lowercase letters, digits, `+`, `-`, `.`, at least two
/// characters, starting with a letter or digit (so never an option to debootstrap).
pub(crate) fn is_package_name(name: &str) -> bool {
    name.len() >= 2
        && name.len() <= 100
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.'))
}

/// Parses a manifest: `#` comments, `suite NAME`, `mirror URL`, `[run]` and `[build]` section
/// headers and one package name per line below them.
pub(crate) fn parse_manifest(text: &str) -> Result<Manifest, ManifestError> {
    let fail = |line: usize, reason: String| ManifestError { line, reason };
    if text.len() > MAX_MANIFEST_BYTES {
        return Err(fail(
            0,
            format!("the manifest is larger than {MAX_MANIFEST_BYTES} bytes"),
        ));
    }
    let mut suite = None;
    let mut mirror = None;
    let mut run = Vec::new();
    let mut build = Vec::new();
    let mut section = Section::Header;
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        match line {
            "[run]" => {
                section = Section::Run;
                continue;
            }
            "[build]" => {
                section = Section::Build;
                continue;
            }
            _ => {}
        }
        match section {
            Section::Header => {
                let (key, value) = line.split_once(char::is_whitespace).ok_or_else(|| {
                    fail(
                        number,
                        "expected `suite NAME`, `mirror URL`, `[run]` or `[build]`".into(),
                    )
                })?;
                let value = value.trim();
                match key {
                    "suite" => {
                        if value.is_empty()
                            || value.len() > 32
                            || !value.chars().all(|c| c.is_ascii_lowercase() || c == '-')
                        {
                            return Err(fail(
                                number,
                                "the suite is a Debian codename such as bookworm".into(),
                            ));
                        }
                        suite = Some(value.to_string());
                    }
                    "mirror" => {
                        let ok = (value.starts_with("http://") || value.starts_with("https://"))
                            && value.len() <= 200
                            && value.parse::<url::Url>().is_ok()
                            && !value.contains(char::is_whitespace);
                        if !ok {
                            return Err(fail(
                                number,
                                "the mirror is an http:// or https:// URL".into(),
                            ));
                        }
                        mirror = Some(value.to_string());
                    }
                    other => {
                        let shown: String = other.chars().take(32).collect();
                        return Err(fail(
                            number,
                            format!("unknown setting {shown:?}: use suite or mirror"),
                        ));
                    }
                }
            }
            Section::Run | Section::Build => {
                if !is_package_name(line) {
                    let shown: String = line.chars().take(64).collect();
                    return Err(fail(
                        number,
                        format!(
                            "{shown:?} is not a Debian package name (lowercase letters, digits, \
                             `+`, `-` and `.`)"
                        ),
                    ));
                }
                let list = if matches!(section, Section::Run) {
                    &mut run
                } else {
                    &mut build
                };
                if !list.iter().any(|p| p == line) {
                    list.push(line.to_string());
                }
                if list.len() > MAX_PACKAGES {
                    return Err(fail(
                        number,
                        format!("an image may list at most {MAX_PACKAGES} packages"),
                    ));
                }
            }
        }
    }
    let suite = suite.ok_or_else(|| fail(0, "the manifest names no `suite`".into()))?;
    build.retain(|p| !run.contains(p));
    Ok(Manifest {
        suite,
        mirror: mirror.unwrap_or_else(|| DEFAULT_MIRROR.to_string()),
        run,
        build,
        digest: format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes()))),
    })
}
