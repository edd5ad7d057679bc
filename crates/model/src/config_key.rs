//! Config var keys: names that work as shell variables in every dyno.

use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

/// A config var key: `^[A-Za-z_][A-Za-z0-9_]*$`. Config vars become environment variables of
/// every dyno and are read by shell scripts (`.profile.d`, `bin/compile`), so a key that is not
/// a valid shell variable name (`1A`, `A-B`) would be set but unusable.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConfigKey(String);

/// Why a string is not a config var key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "Invalid config var key {key:?}: keys must match ^[A-Za-z_][A-Za-z0-9_]*$ (start with a letter or underscore, then only letters, digits and underscores)."
)]
pub struct ConfigKeyError {
    pub key: String,
}

impl ConfigKey {
    fn canonicalize(key: String) -> Result<String, ConfigKeyError> {
        let bytes = key.as_bytes();
        let valid = bytes
            .first()
            .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'_');
        if valid {
            Ok(key)
        } else {
            Err(ConfigKeyError { key })
        }
    }
}

string_type!(ConfigKey, ConfigKeyError);
