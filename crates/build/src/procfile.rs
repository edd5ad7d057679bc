//! Parses a `Procfile`: the map from process type (`web`, `worker`, ...) to the shell command
//! that runs it.
//!
//! Heroku's classic parser is only "loosely defined" by the regex
//! `^[[:space:]]*([a-zA-Z0-9_-]+):?\s+(.*)`. Slipway accepts the same names, comments (`#` as
//! the first visible character) and blank lines, but is stricter about the rest so mistakes
//! surface at push time instead of as a dyno that never boots:
//!
//! - the colon is required (`web python app.py` is an error, not a process called `web`);
//! - the command must not be empty;
//! - any other line is an error naming its line number.
//!
//! A duplicate process type is allowed and the last one wins (Heroku's behaviour), with a
//! warning. Names that the strict Cloud Native Buildpacks rules would reject or rename
//! (uppercase, `_`, leading/trailing `-`, more than 63 characters, leading whitespace) are
//! accepted with a warning too.

use std::collections::BTreeMap;

use slipway_model::{ProcessType, ProcessTypeError};

/// A parsed Procfile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Procfile {
    /// Process type → command, e.g. `web` → `gunicorn app:app`.
    pub processes: BTreeMap<String, String>,
    /// Human-readable warnings, e.g. about duplicates or names CNB would reject.
    pub warnings: Vec<String>,
}

/// Why a Procfile could not be parsed. `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcfileError {
    #[error(
        "Procfile line {line}: expected `<process type>: <command>` (e.g. `web: python app.py`), \
         found {found:?}"
    )]
    Malformed { line: usize, found: String },
    #[error(
        "Procfile line {line}: invalid process type {name:?}; use only letters, digits, `_` \
         and `-`"
    )]
    InvalidName { line: usize, name: String },
    #[error("Procfile line {line}: process type `{name}` has an empty command")]
    EmptyCommand { line: usize, name: String },
    #[error(
        "Procfile line {line}: process type `{name}` is {len} characters long; the limit is \
         {MAX_NAME_LEN}"
    )]
    NameTooLong {
        line: usize,
        name: String,
        len: usize,
    },
}

impl ProcfileError {
    /// The 1-based line number the error is about.
    pub fn line(&self) -> usize {
        match self {
            Self::Malformed { line, .. }
            | Self::InvalidName { line, .. }
            | Self::EmptyCommand { line, .. }
            | Self::NameTooLong { line, .. } => *line,
        }
    }
}

/// The Platform API's limit on formation types (`^[-\w]{1,128}$`), [`ProcessType`]'s rule.
pub const MAX_NAME_LEN: usize = ProcessType::MAX_LEN;

/// The strict CNB limit; longer names are accepted with a warning.
const CNB_MAX_NAME_LEN: usize = 63;

/// Parses the text of a Procfile. Never panics.
pub fn parse(text: &str) -> Result<Procfile, ProcfileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut procfile = Procfile::default();
    for (index, raw_line) in text.lines().enumerate() {
        let line_no = index + 1;
        // `lines()` already strips "\r\n"; a lone trailing '\r' (old Mac editors) is whitespace.
        let trimmed_start = raw_line.trim_start();
        if trimmed_start.is_empty() || trimmed_start.starts_with('#') {
            continue;
        }
        let Some((name_part, command_part)) = trimmed_start.split_once(':') else {
            return Err(ProcfileError::Malformed {
                line: line_no,
                found: raw_line.to_string(),
            });
        };
        let name = name_part.trim_end();
        if name.len() != name_part.len() {
            procfile.warnings.push(format!(
                "Procfile line {line_no}: whitespace between `{name}` and `:` is tolerated but \
                 not allowed by the Cloud Native Buildpacks rules"
            ));
        }
        // The name's rule is `ProcessType`'s, so every process type a slug declares is one
        // the formation, the API and the CLI accept.
        if let Err(error) = name.parse::<ProcessType>() {
            let name = name.to_string();
            return Err(match error {
                ProcessTypeError::Empty => ProcfileError::Malformed {
                    line: line_no,
                    found: raw_line.to_string(),
                },
                ProcessTypeError::InvalidCharacter { .. } => ProcfileError::InvalidName {
                    line: line_no,
                    name,
                },
                ProcessTypeError::TooLong { .. } => ProcfileError::NameTooLong {
                    line: line_no,
                    len: name.len(),
                    name,
                },
            });
        }
        let command = command_part.trim();
        if command.is_empty() {
            return Err(ProcfileError::EmptyCommand {
                line: line_no,
                name: name.to_string(),
            });
        }
        if trimmed_start.len() != raw_line.len() {
            procfile.warnings.push(format!(
                "Procfile line {line_no}: leading whitespace before `{name}` is tolerated but \
                 not allowed by the Cloud Native Buildpacks rules"
            ));
        }
        procfile
            .warnings
            .extend(strict_name_warnings(line_no, name));
        if procfile
            .processes
            .insert(name.to_string(), command.to_string())
            .is_some()
        {
            procfile.warnings.push(format!(
                "Procfile line {line_no}: process type `{name}` is declared more than once; \
                 the last declaration wins"
            ));
        }
    }
    if procfile.processes.is_empty() {
        procfile
            .warnings
            .push("the Procfile declares no process types".to_string());
    }
    Ok(procfile)
}

/// Warnings for a name the classic parser accepts but the strict CNB rules (lowercase
/// `[a-z0-9]`, `-` only in the middle, at most 63 characters) would reject or rename.
fn strict_name_warnings(line_no: usize, name: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    if name.chars().any(|c| c.is_ascii_uppercase() || c == '_') {
        let renamed = name.to_ascii_lowercase().replace('_', "-");
        warnings.push(format!(
            "Procfile line {line_no}: process type `{name}` contains uppercase letters or `_`; \
             Cloud Native Buildpacks would rename it to `{renamed}`"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        warnings.push(format!(
            "Procfile line {line_no}: process type `{name}` starts or ends with `-`, which \
             Cloud Native Buildpacks reject"
        ));
    }
    if name.len() > CNB_MAX_NAME_LEN {
        warnings.push(format!(
            "Procfile line {line_no}: process type `{name}` is longer than \
             {CNB_MAX_NAME_LEN} characters, which Cloud Native Buildpacks reject"
        ));
    }
    warnings
}

#[cfg(test)]
mod tests;
