//! Applies a top-level `.slugignore` before the buildpacks run.
//!
//! The format follows Heroku's slug compiler: roughly `.gitignore` without `!` negation.
//! Blank lines and `#` comments are ignored (a `#` anywhere starts a comment, as in the slug
//! compiler). A pattern containing `/` is anchored at the app root; a bare pattern matches at
//! any depth. `*` and `?` do not cross `/`; `**` does. A trailing `/` matches directories only.
//! Matched directories are removed with their contents.

use std::path::Path;

use crate::fsutil::{remove_path, sorted_entries};
use crate::BuildError;

/// One `.slugignore` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    glob: String,
    /// Matched against the whole relative path (contains `/`), else against the file name.
    anchored: bool,
    directories_only: bool,
}

/// Parses `.slugignore` text into patterns.
pub(crate) fn parse(text: &str) -> Vec<Pattern> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                return None;
            }
            let directories_only = line.ends_with('/');
            let line = line.trim_end_matches('/');
            let anchored = line.contains('/');
            let glob = line.trim_start_matches('/').to_string();
            // "/" alone would mean "the whole app": nothing sensible to do with it.
            (!glob.is_empty()).then_some(Pattern {
                glob,
                anchored,
                directories_only,
            })
        })
        .collect()
}

impl Pattern {
    /// Whether `relative` (with `/` separators, no leading `/`) is matched.
    pub(crate) fn matches(&self, relative: &str, is_dir: bool) -> bool {
        if self.directories_only && !is_dir {
            return false;
        }
        let subject = if self.anchored {
            relative
        } else {
            relative.rsplit('/').next().unwrap_or(relative)
        };
        glob_match(self.glob.as_bytes(), subject.as_bytes())
    }
}

/// Shell-style glob: `*` and `?` within one path component, `**` across components.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) if rest.first() == Some(&b'*') => {
            // `**`, optionally followed by `/`, matches zero or more whole or partial
            // components.
            let mut rest = &rest[1..];
            if rest.first() == Some(&b'/') {
                rest = &rest[1..];
                if glob_match(rest, text) {
                    return true;
                }
            }
            (0..=text.len()).any(|i| glob_match(rest, &text[i..]))
        }
        Some((b'*', rest)) => {
            for i in 0..=text.len() {
                if glob_match(rest, &text[i..]) {
                    return true;
                }
                if text.get(i) == Some(&b'/') {
                    break;
                }
            }
            false
        }
        Some((b'?', rest)) => match text.split_first() {
            Some((c, text_rest)) if *c != b'/' => glob_match(rest, text_rest),
            _ => false,
        },
        Some((c, rest)) => match text.split_first() {
            Some((t, text_rest)) if t == c => glob_match(rest, text_rest),
            _ => false,
        },
    }
}

/// Removes everything under `root` that a pattern matches. Returns the removed paths,
/// relative to `root`. Symlinks are removed, never followed.
pub(crate) fn apply(root: &Path, patterns: &[Pattern]) -> Result<Vec<String>, BuildError> {
    let mut removed = Vec::new();
    if !patterns.is_empty() {
        walk(root, "", patterns, &mut removed)?;
    }
    Ok(removed)
}

fn walk(
    dir: &Path,
    prefix: &str,
    patterns: &[Pattern],
    removed: &mut Vec<String>,
) -> Result<(), BuildError> {
    for entry in sorted_entries(dir)? {
        let name = entry.file_name().to_string_lossy().into_owned();
        let relative = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let path = entry.path();
        let is_dir = entry
            .file_type()
            .map_err(|e| BuildError::io("inspect", &path, e))?
            .is_dir();
        if patterns.iter().any(|p| p.matches(&relative, is_dir)) {
            remove_path(&path)?;
            removed.push(relative);
        } else if is_dir {
            walk(&path, &relative, patterns, removed)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
