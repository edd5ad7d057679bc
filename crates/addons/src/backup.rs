//! PostgreSQL backups: `pg_dump -Fc` and `pg_restore --clean --if-exists --no-owner` run as
//! the add-on's own role (never the admin), against the address its dynos use. The password
//! goes in `PGPASSWORD`, never on a command line; a dump is written to a `.partial` file
//! (0600) and renamed into place only once `pg_dump` succeeded within the size cap, so a
//! failed capture never leaves a half-written dump that looks good.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncReadExt;

use crate::error::{io, AddonsError};

/// Splits a `postgres://role:password@host:port/db` URL into a URL without the password and
/// the password.
fn split_password(url: &str) -> Result<(String, String), AddonsError> {
    let mut parsed = url::Url::parse(url).map_err(|_| AddonsError::Backup {
        detail: "the add-on's URL is not valid".into(),
    })?;
    let password = parsed.password().unwrap_or_default().to_owned();
    let _ = parsed.set_password(None);
    Ok((parsed.to_string(), crate::postgres::url_decode(&password)))
}

/// The last lines of a tool's stderr, with the password removed.
fn detail(stderr: &[u8], password: &str) -> String {
    let text = String::from_utf8_lossy(stderr);
    let mut text = text.trim().lines().last().unwrap_or("").to_owned();
    if !password.is_empty() {
        text = text.replace(password, "[redacted]");
    }
    text.chars().take(300).collect()
}

/// Dumps the database at `url` into `dest` (custom format); returns its size. At most
/// `max_bytes`: a larger dump fails and is removed.
pub(crate) async fn dump(
    bin: &Path,
    url: &str,
    dest: &Path,
    max_bytes: u64,
) -> Result<u64, AddonsError> {
    let (conninfo, password) = split_password(url)?;
    let partial = dest.with_extension("partial");
    let program: PathBuf = bin.join("pg_dump");
    let result = async {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .map_err(io("create", &partial))?;
        let mut child = tokio::process::Command::new(&program)
            .args(["-Fc", "--no-password", "-d", &conninfo])
            .env("PGPASSWORD", &password)
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| AddonsError::Spawn {
                program: program.clone(),
                source,
            })?;
        let mut stdout = child.stdout.take().ok_or_else(|| AddonsError::Backup {
            detail: "pg_dump gave no output".into(),
        })?;
        let mut stderr = child.stderr.take().ok_or_else(|| AddonsError::Backup {
            detail: "pg_dump gave no error stream".into(),
        })?;
        let errors = tokio::spawn(async move {
            let mut buf = Vec::new();
            let _ = (&mut stderr).take(64 * 1024).read_to_end(&mut buf).await;
            buf
        });
        let mut written: u64 = 0;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = stdout
                .read(&mut buf)
                .await
                .map_err(io("read pg_dump's output for", &partial))?;
            if n == 0 {
                break;
            }
            written += n as u64;
            if written > max_bytes {
                let _ = child.kill().await;
                return Err(AddonsError::Backup {
                    detail: format!(
                        "the dump is larger than the backup size limit ({max_bytes} bytes)"
                    ),
                });
            }
            std::io::Write::write_all(&mut file, &buf[..n]).map_err(io("write", &partial))?;
        }
        let status = child
            .wait()
            .await
            .map_err(io("wait for pg_dump of", &partial))?;
        let stderr = errors.await.unwrap_or_default();
        if !status.success() {
            return Err(AddonsError::Backup {
                detail: format!("pg_dump failed: {}", detail(&stderr, &password)),
            });
        }
        file.sync_all().map_err(io("sync", &partial))?;
        Ok(written)
    }
    .await;
    match result {
        Ok(size) => {
            std::fs::rename(&partial, dest).map_err(io("store", dest))?;
            Ok(size)
        }
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            Err(error)
        }
    }
}

/// Restores `dump` into the database at `url`, replacing the objects it holds.
pub(crate) async fn restore(bin: &Path, url: &str, dump: &Path) -> Result<(), AddonsError> {
    let (conninfo, password) = split_password(url)?;
    let program: PathBuf = bin.join("pg_restore");
    let output = tokio::process::Command::new(&program)
        .args([
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-acl",
            "--no-password",
            "--exit-on-error",
            "-d",
            &conninfo,
        ])
        .arg(dump)
        .env("PGPASSWORD", &password)
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| AddonsError::Spawn {
            program: program.clone(),
            source,
        })?;
    if !output.status.success() {
        return Err(AddonsError::Backup {
            detail: format!("pg_restore failed: {}", detail(&output.stderr, &password)),
        });
    }
    Ok(())
}
