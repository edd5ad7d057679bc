//! Host names: what a cluster host (`slipway agent --name`) is called in the platform's state.

use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

/// A host's name: 1 to 63 lowercase ASCII letters, digits and `-`, starting with a letter or a
/// digit (a DNS label, so it can name the host in a URL, a store key and a log line alike).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HostName(String);

/// Why a string is not a host name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostNameError {
    #[error("The host name is empty. Use a name like host-1.")]
    Empty,
    #[error(
        "Invalid host name {name:?}: use lowercase letters, digits and `-`, starting with a letter or digit (e.g. host-1)."
    )]
    InvalidCharacter { name: String },
    #[error("Host name {name:?} is {} characters long; the limit is {}.", name.len(), HostName::MAX_LEN)]
    TooLong { name: String },
}

impl HostName {
    /// A DNS label's limit.
    pub const MAX_LEN: usize = 63;

    fn canonicalize(name: String) -> Result<String, HostNameError> {
        if name.is_empty() {
            return Err(HostNameError::Empty);
        }
        if name.len() > Self::MAX_LEN {
            return Err(HostNameError::TooLong { name });
        }
        let valid = name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-');
        if !valid {
            return Err(HostNameError::InvalidCharacter { name });
        }
        Ok(name)
    }
}

string_type!(HostName, HostNameError);
