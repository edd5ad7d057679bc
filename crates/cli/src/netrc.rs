//! `~/.netrc`, where the heroku CLI keeps its logins (`machine <api host:port>` with `login
//! <email>` and `password <token>`), so `slipway login` and `heroku login` share one.
//!
//! Edits keep every other entry, comment and blank line as they were: the file is split into
//! blocks that each start at a `machine`/`default` line, and only the blocks of the host
//! being changed are replaced. Writes go to a temporary file (mode 0600) renamed over the
//! old one, so a crash never leaves half a file.

use std::io::Write;
use std::path::{Path, PathBuf};

#[cfg(test)]
mod tests;

/// A `.netrc` larger than this is not one a person keeps; refuse rather than read it all.
const MAX_NETRC_BYTES: u64 = 1024 * 1024;

/// Why the netrc file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NetrcError {
    #[error("Could not read {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("Could not write {}: {reason}", path.display())]
    Write { path: PathBuf, reason: String },
    #[error("{} is larger than 1 MiB; it is not a netrc file Slipway will edit.", path.display())]
    TooLarge { path: PathBuf },
    #[error("A netrc {what} cannot contain whitespace.")]
    Whitespace { what: &'static str },
}

/// The login stored for a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) login: Option<String>,
    pub(crate) password: Option<String>,
}

/// One `machine` (or `default`) block and the text it came from, or the text before the
/// first block.
#[derive(Debug, Clone)]
struct Block {
    host: Option<String>,
    text: String,
}

/// The contents of a netrc file.
#[derive(Debug, Clone, Default)]
pub(crate) struct Netrc {
    blocks: Vec<Block>,
}

/// `$HOME/.netrc`, where the heroku CLI looks.
pub(crate) fn default_path() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".netrc")
}

fn first_token(line: &str) -> Option<&str> {
    let line = line.trim_start();
    if line.starts_with('#') {
        return None;
    }
    line.split_whitespace().next()
}

impl Netrc {
    /// Parses netrc text.
    pub(crate) fn parse(text: &str) -> Netrc {
        let mut blocks = vec![Block {
            host: None,
            text: String::new(),
        }];
        for line in text.split_inclusive('\n') {
            match first_token(line) {
                Some("machine") => {
                    let host = line.split_whitespace().nth(1).map(str::to_owned);
                    blocks.push(Block {
                        host,
                        text: line.to_owned(),
                    });
                }
                Some("default") => blocks.push(Block {
                    host: None,
                    text: line.to_owned(),
                }),
                _ => {
                    if let Some(last) = blocks.last_mut() {
                        last.text.push_str(line);
                    }
                }
            }
        }
        Netrc { blocks }
    }

    /// Reads `path`; a missing file is an empty netrc.
    pub(crate) fn read(path: &Path) -> Result<Netrc, NetrcError> {
        let read_error = |e: std::io::Error| NetrcError::Read {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.len() > MAX_NETRC_BYTES => {
                return Err(NetrcError::TooLarge {
                    path: path.to_owned(),
                })
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Netrc::default()),
            Err(e) => return Err(read_error(e)),
        }
        let text = std::fs::read_to_string(path).map_err(read_error)?;
        Ok(Netrc::parse(&text))
    }

    /// The login stored for `host` (the first block naming it, as the heroku CLI reads it).
    pub(crate) fn get(&self, host: &str) -> Option<Entry> {
        let block = self
            .blocks
            .iter()
            .find(|b| b.host.as_deref() == Some(host))?;
        let mut tokens = block
            .text
            .lines()
            .filter(|line| !line.trim_start().starts_with('#'))
            .flat_map(str::split_whitespace);
        let mut entry = Entry {
            login: None,
            password: None,
        };
        while let Some(token) = tokens.next() {
            match token {
                "login" => entry.login = tokens.next().map(str::to_owned),
                "password" => entry.password = tokens.next().map(str::to_owned),
                _ => {}
            }
        }
        Some(entry)
    }

    /// Sets `host`'s login, replacing any block of that host in place (or appending one).
    pub(crate) fn set(
        &mut self,
        host: &str,
        login: &str,
        password: &str,
    ) -> Result<(), NetrcError> {
        for (what, value) in [("host", host), ("login", login), ("password", password)] {
            if value.is_empty() || value.chars().any(char::is_whitespace) {
                return Err(NetrcError::Whitespace { what });
            }
        }
        let text = format!("machine {host}\n  login {login}\n  password {password}\n");
        match self
            .blocks
            .iter()
            .position(|b| b.host.as_deref() == Some(host))
        {
            Some(index) => {
                self.blocks[index].text = text;
                let mut seen = 0;
                self.blocks.retain(|b| {
                    if b.host.as_deref() == Some(host) {
                        seen += 1;
                        seen == 1
                    } else {
                        true
                    }
                });
            }
            None => {
                if let Some(last) = self.blocks.last_mut() {
                    if !last.text.is_empty() && !last.text.ends_with('\n') {
                        last.text.push('\n');
                    }
                }
                self.blocks.push(Block {
                    host: Some(host.to_owned()),
                    text,
                });
            }
        }
        Ok(())
    }

    /// Removes every block of `host`; whether there was one.
    pub(crate) fn remove(&mut self, host: &str) -> bool {
        let before = self.blocks.len();
        self.blocks.retain(|b| b.host.as_deref() != Some(host));
        self.blocks.len() != before
    }

    /// The netrc text.
    pub(crate) fn render(&self) -> String {
        self.blocks.iter().map(|b| b.text.as_str()).collect()
    }

    /// Writes the file with mode 0600 through a temporary file renamed over it.
    pub(crate) fn write(&self, path: &Path) -> Result<(), NetrcError> {
        use std::os::unix::fs::OpenOptionsExt;
        let write_error = |e: std::io::Error| NetrcError::Write {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        let temp = dir.join(format!(".netrc.slipway-{}", std::process::id()));
        let result = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)?;
            file.write_all(self.render().as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&temp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        result.map_err(write_error)
    }
}

/// The netrc machine name of an API URL as the heroku CLI writes it: the host, with the port
/// when the URL names one (`127.0.0.1:5000`).
pub(crate) fn machine_for(url: &url::Url) -> Option<String> {
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}
