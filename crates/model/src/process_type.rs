//! Process types: the names on the left of a Procfile (`web`, `worker`, `release`).

use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

/// A process type: 1 to 128 ASCII letters, digits, `_` and `-` (the Platform API's
/// `^[-\w]{1,128}$`, and the names Heroku's classic Procfile parser accepts). Case matters:
/// `Web` and `web` are different process types, as on Heroku.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProcessType(String);

/// Why a string is not a process type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessTypeError {
    #[error("The process type is empty. Use a name like web or worker.")]
    Empty,
    #[error(
        "Invalid process type {name:?}: use only letters, digits, `_` and `-` (e.g. web, worker)."
    )]
    InvalidCharacter { name: String },
    #[error(
        "Process type {name:?} is {} characters long; the limit is {}.",
        name.len(),
        ProcessType::MAX_LEN
    )]
    TooLong { name: String },
}

impl ProcessType {
    /// The Platform API's limit on a formation type's length.
    pub const MAX_LEN: usize = 128;

    /// The process type of web dynos, the only one the router sends requests to.
    pub fn web() -> ProcessType {
        ProcessType("web".to_owned())
    }

    /// Whether this is the `web` process type.
    pub fn is_web(&self) -> bool {
        self.0 == "web"
    }

    fn canonicalize(name: String) -> Result<String, ProcessTypeError> {
        if name.is_empty() {
            return Err(ProcessTypeError::Empty);
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(ProcessTypeError::InvalidCharacter { name });
        }
        if name.len() > Self::MAX_LEN {
            return Err(ProcessTypeError::TooLong { name });
        }
        Ok(name)
    }
}

string_type!(ProcessType, ProcessTypeError);
