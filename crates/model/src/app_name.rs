//! App names: Heroku's rule, `^[a-z][a-z0-9-]{1,28}[a-z0-9]$`.

use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

/// An app's name: 3 to 30 lowercase letters, digits and dashes, starting with a letter and
/// ending with a letter or digit (Heroku's rule). It is also the first label of the app's
/// hostname, so it is a valid DNS label.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AppName(String);

/// Why a string is not an app name. Every message ends with the whole rule (Heroku's
/// wording), so whoever reads it can fix the name in one go.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppNameError {
    #[error(
        "Name {name:?} is too short (minimum is {} characters). {}",
        AppName::MIN_LEN,
        AppName::RULE
    )]
    TooShort { name: String },
    #[error(
        "Name {name:?} is too long (maximum is {} characters). {}",
        AppName::MAX_LEN,
        AppName::RULE
    )]
    TooLong { name: String },
    #[error("Name {name:?} is invalid. {}", AppName::RULE)]
    Malformed { name: String },
}

impl AppName {
    /// The shortest name Heroku accepts.
    pub const MIN_LEN: usize = 3;
    /// The longest name Heroku accepts.
    pub const MAX_LEN: usize = 30;
    /// The rule, as Heroku states it.
    pub const RULE: &'static str = "Name must start with a letter, end with a letter or digit and can only contain lowercase letters, digits, and dashes, and be 3 to 30 characters long.";

    fn canonicalize(name: String) -> Result<String, AppNameError> {
        let bytes = name.as_bytes();
        // The character rule is checked first so that `"Ab"` is called malformed, not short:
        // fixing the length alone would not make it valid.
        let well_formed = bytes.first().is_some_and(u8::is_ascii_lowercase)
            && bytes
                .last()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        if !well_formed && !bytes.is_empty() {
            return Err(AppNameError::Malformed { name });
        }
        if bytes.len() < Self::MIN_LEN {
            return Err(AppNameError::TooShort { name });
        }
        if bytes.len() > Self::MAX_LEN {
            return Err(AppNameError::TooLong { name });
        }
        Ok(name)
    }
}

string_type!(AppName, AppNameError);
