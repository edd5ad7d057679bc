//! DNS hostnames, optionally wildcards (`*.example.com`), and which hosts a certificate name
//! covers.

use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

/// A DNS hostname in canonical form: lowercase, without a trailing dot, at most 253
/// characters of dot-separated labels of 1 to 63 letters, digits and dashes, no label starting
/// or ending with a dash. A wildcard, `*.example.com`, has `*` as its whole first label.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Hostname(String);

/// Why a string is not a hostname.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{hostname:?} is not a valid hostname. Use a name like www.example.com: labels of letters, digits and dashes separated by dots, optionally starting with a `*.` wildcard."
)]
pub struct HostnameError {
    pub hostname: String,
}

impl Hostname {
    /// The longest name DNS allows, without the trailing dot.
    pub const MAX_LEN: usize = 253;
    /// The longest label DNS allows.
    pub const MAX_LABEL_LEN: usize = 63;

    /// Whether this is a wildcard (`*.example.com`).
    pub fn is_wildcard(&self) -> bool {
        self.0.starts_with("*.")
    }

    /// Whether a certificate for this name is valid for `host` (RFC 6125 §6.4.3, the way
    /// browsers apply it): an exact match, or for a wildcard one label in place of the `*`, so
    /// `*.example.com` covers `www.example.com` but neither `example.com` nor
    /// `a.b.example.com`. `host` is compared in canonical form; a string that is not a
    /// hostname is covered by nothing.
    pub fn covers(&self, host: &str) -> bool {
        let Ok(host) = host.parse::<Hostname>() else {
            return false;
        };
        if host == *self {
            return true;
        }
        match (self.0.strip_prefix("*."), host.is_wildcard()) {
            (Some(parent), false) => host
                .0
                .split_once('.')
                .is_some_and(|(_, rest)| rest == parent),
            _ => false,
        }
    }

    /// Whether this name is `domain` or any name under it (`a.b.example.com` is within
    /// `example.com`; `badexample.com` is not). A wildcard is within its parent's domains.
    pub fn is_within(&self, domain: &Hostname) -> bool {
        self.0 == domain.0
            || self
                .0
                .strip_suffix(domain.0.as_str())
                .is_some_and(|rest| rest.ends_with('.'))
    }

    fn canonicalize(hostname: String) -> Result<String, HostnameError> {
        let trimmed = hostname.strip_suffix('.').unwrap_or(&hostname);
        let (wildcard, rest) = match trimmed.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let label_ok = |label: &str| {
            (1..=Self::MAX_LABEL_LEN).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if trimmed.len() > Self::MAX_LEN || !rest.split('.').all(label_ok) {
            return Err(HostnameError { hostname });
        }
        let canonical = if wildcard {
            format!("*.{}", rest.to_ascii_lowercase())
        } else {
            rest.to_ascii_lowercase()
        };
        Ok(canonical)
    }
}

string_type!(Hostname, HostnameError);
