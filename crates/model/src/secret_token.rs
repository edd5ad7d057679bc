//! Secret tokens: the unguessable strings in URLs the API hands out (log sessions, build
//! output streams, slug uploads), git push tokens and app.json's generated secrets.

use std::fmt;
use std::str::FromStr;

use rand::RngCore;
use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

/// A secret: lowercase hex. [`SecretToken::generate`] makes one from 32 bytes of the operating
/// system's random number generator. `Debug` does not print it, so a token in a logged struct
/// does not leak; [`SecretToken::expose`] is the one way to read it. Equality takes the same
/// time wherever the first difference is, so comparing a guess leaks nothing.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SecretToken(String);

/// Why a string is not a secret token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "Invalid secret token: expected {} to {} lowercase hex digits.",
    SecretToken::MIN_LEN,
    SecretToken::MAX_LEN
)]
pub struct SecretTokenError;

impl SecretToken {
    /// How many random bytes a generated token has.
    pub const BYTES: usize = 32;
    /// The shortest token accepted: 128 bits. Versions before this crate generated 24 bytes
    /// (48 hex digits), which still parse.
    pub const MIN_LEN: usize = 32;
    /// The longest token accepted: 512 bits.
    pub const MAX_LEN: usize = 128;

    /// A new token: 32 bytes from the OS's random number generator, as 64 hex digits.
    pub fn generate() -> SecretToken {
        let mut bytes = [0u8; Self::BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let hex = bytes
            .iter()
            .flat_map(|byte| {
                [
                    DIGITS[usize::from(byte >> 4)],
                    DIGITS[usize::from(byte & 0xf)],
                ]
            })
            .map(char::from)
            .collect();
        SecretToken(hex)
    }

    /// The secret itself, to put in a URL or compare with what a client sent.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl PartialEq for SecretToken {
    fn eq(&self, other: &SecretToken) -> bool {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        // Lengths are public (every generated token has the same), the contents are not.
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
    }
}

impl Eq for SecretToken {}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken(<redacted>)")
    }
}

impl FromStr for SecretToken {
    type Err = SecretTokenError;

    fn from_str(token: &str) -> Result<SecretToken, SecretTokenError> {
        let valid = (Self::MIN_LEN..=Self::MAX_LEN).contains(&token.len())
            && token
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if valid {
            Ok(SecretToken(token.to_owned()))
        } else {
            Err(SecretTokenError)
        }
    }
}

impl TryFrom<String> for SecretToken {
    type Error = SecretTokenError;

    fn try_from(token: String) -> Result<SecretToken, SecretTokenError> {
        token.parse()
    }
}

impl From<SecretToken> for String {
    fn from(token: SecretToken) -> String {
        token.0
    }
}
