//! The client half of the pre-receive hook, run by git inside `git receive-pack`.
//!
//! Git gives the hook one `<old> <new> <ref>` line per updated ref on stdin and shows whatever
//! it prints to the pushing user as `remote:` lines. For a push to `main` (or `master`) the
//! hook streams `git archive <new>` to the server's hook endpoint and prints the build output
//! the server streams back. The server's last line is a status line ([`status_line`]); anything
//! but success, or a broken connection, rejects the push.

use std::io::Write;
use std::process::Stdio;

use futures::StreamExt;
use tokio::io::AsyncBufReadExt;

/// Environment variable naming the binary the hook execs (set by the server for git).
pub const ENV_HOOK_BIN: &str = "SLIPWAY_HOOK_BIN";
/// Environment variable with the URL the hook posts the pushed tree to.
pub const ENV_HOOK_URL: &str = "SLIPWAY_HOOK_URL";
/// Environment variable with the secret that authenticates the hook to the server.
pub const ENV_HOOK_TOKEN: &str = "SLIPWAY_HOOK_TOKEN";
/// Header carrying that secret.
pub const HOOK_TOKEN_HEADER: &str = "x-slipway-hook-token";

const STATUS_PREFIX: &str = "\u{1}slipway-status:";
const ZERO_SHA: &str = "0000000000000000000000000000000000000000";

/// The final line of the server's response to the hook.
pub fn status_line(success: bool) -> String {
    format!("{STATUS_PREFIX}{}\n", if success { "ok" } else { "failed" })
}

/// One updated ref, as git passes it to the hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    pub old: String,
    pub new: String,
    pub name: String,
}

impl RefUpdate {
    /// Parses one `<old> <new> <ref>` line.
    pub fn parse(line: &str) -> Option<RefUpdate> {
        let mut parts = line.split_whitespace();
        let (old, new, name) = (parts.next()?, parts.next()?, parts.next()?);
        let is_sha = |s: &str| s.len() >= 40 && s.bytes().all(|b| b.is_ascii_hexdigit());
        if parts.next().is_some() || !is_sha(old) || !is_sha(new) {
            return None;
        }
        Some(RefUpdate {
            old: old.to_owned(),
            new: new.to_owned(),
            name: name.to_owned(),
        })
    }

    /// Pushes to `main` or `master` deploy; other branches are only stored.
    pub fn deploys(&self) -> bool {
        matches!(self.name.as_str(), "refs/heads/main" | "refs/heads/master")
            && self.new != ZERO_SHA
    }
}

/// Runs the pre-receive hook; returns the process exit code.
pub async fn run_pre_receive() -> i32 {
    match pre_receive().await {
        Ok(code) => code,
        Err(message) => {
            println!(" !     {message}");
            1
        }
    }
}

async fn pre_receive() -> Result<i32, String> {
    let url = std::env::var(ENV_HOOK_URL).map_err(|_| format!("{ENV_HOOK_URL} is not set"))?;
    let token =
        std::env::var(ENV_HOOK_TOKEN).map_err(|_| format!("{ENV_HOOK_TOKEN} is not set"))?;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut deploy = None;
    while let Ok(Some(line)) = lines.next_line().await {
        let Some(update) = RefUpdate::parse(&line) else {
            return Err(format!("git passed an unexpected ref line: {line:?}"));
        };
        if update.deploys() {
            deploy.get_or_insert(update);
        } else if update.new == ZERO_SHA {
            println!("Deleted {}; nothing to deploy.", update.name);
        } else {
            println!(
                "Pushed to {}: only pushes to main or master are deployed.",
                update.name.trim_start_matches("refs/heads/")
            );
        }
    }
    let Some(update) = deploy else {
        return Ok(0);
    };

    let mut archive = tokio::process::Command::new("git")
        .args(["archive", "--format=tar", &update.new])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| format!("could not run git archive: {error}"))?;
    let tarball = archive
        .stdout
        .take()
        .ok_or("git archive has no output pipe")?;
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(tarball));
    let response = reqwest::Client::new()
        .post(&url)
        .query(&[
            ("commit", update.new.as_str()),
            ("ref", update.name.as_str()),
        ])
        .header(HOOK_TOKEN_HEADER, token)
        .header("content-type", "application/x-tar")
        .body(body)
        .send()
        .await
        .map_err(|error| format!("could not reach the Slipway server: {error}"))?;
    if !response.status().is_success() {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        return Err(format!(
            "the Slipway server refused the push ({status}): {}",
            text.trim()
        ));
    }

    // Print the build output line by line as it arrives, so git relays it live.
    let mut stream = response.bytes_stream();
    let mut pending: Vec<u8> = Vec::new();
    let mut succeeded = false;
    let stdout = std::io::stdout();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|error| format!("lost the connection to the Slipway server: {error}"))?;
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line);
            if let Some(status) = text.strip_prefix(STATUS_PREFIX) {
                succeeded = status.trim_end() == "ok";
                continue;
            }
            let mut out = stdout.lock();
            let _ = out.write_all(&line);
            let _ = out.flush();
        }
    }
    if !pending.is_empty() {
        let mut out = stdout.lock();
        let _ = out.write_all(&pending);
        let _ = out.write_all(b"\n");
    }
    let _ = archive.wait().await;
    Ok(if succeeded { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ref_lines() {
        let sha = "a".repeat(40);
        let line = format!("{ZERO_SHA} {sha} refs/heads/main");
        let update = RefUpdate::parse(&line).expect("valid line");
        assert!(update.deploys());
        let other = RefUpdate::parse(&format!("{ZERO_SHA} {sha} refs/heads/feature")).unwrap();
        assert!(!other.deploys());
        let delete = RefUpdate::parse(&format!("{sha} {ZERO_SHA} refs/heads/main")).unwrap();
        assert!(!delete.deploys());
        assert_eq!(RefUpdate::parse("garbage"), None);
        assert_eq!(RefUpdate::parse(&format!("{sha} {sha} a b")), None);
    }

    #[test]
    fn status_lines_are_recognisable() {
        assert!(status_line(true).starts_with(STATUS_PREFIX));
        assert_ne!(status_line(true), status_line(false));
    }
}
