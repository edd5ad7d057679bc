//! Passwords for add-ons and their admins: 32 bytes from the OS RNG, hex (64 characters, so
//! they need no quoting in SQL, URLs or Redis' configuration), and files written 0600 from
//! the first byte.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rand::RngCore;

use crate::error::{io, AddonsError};

pub(crate) fn password() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Writes `contents` to a new file readable by its owner alone (replacing any older file).
pub(crate) fn write_private(path: &Path, contents: &str) -> Result<(), AddonsError> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io("create", &tmp))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io("write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("rename", path))
}

/// Hides `secret` in text that goes to a user or a log (a server's error message may quote
/// the statement that carried it).
pub(crate) fn redact(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        text.to_owned()
    } else {
        text.replace(secret, "[REDACTED]")
    }
}
