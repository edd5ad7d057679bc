//! Fetches buildpacks named by URL into a cache under the data directory, content-addressed:
//! a git repository by the commit its ref resolves to, a tarball by its SHA-256. A build
//! asks the remote which commit (or fetches which tarball) every time, so a moved branch is
//! seen at once, and reuses the unpacked directory when that content is already cached.
//!
//! Everything fetched is tenant content. Connections go through the platform's outbound
//! policy: a tarball with its checked client (every redirect checked), git with the address
//! the policy checked pinned (`http.curloptResolve`), redirects off, only the `http(s)`
//! transports, no credential helper, no hooks, no system or global git config, no proxy, a
//! per-file size limit (`ulimit -f`) and a time limit. Trees are size-capped, unpacked with
//! `slipway_build::unpack_source`'s rules, and `bin/compile` must be a regular file.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use futures::TryStreamExt;
use sha2::Digest;
use slipway_outbound::{OutboundError, OutboundPolicy};
use tokio::io::AsyncWriteExt;
use url::Url;
use uuid::Uuid;

use super::{display_buildpack, BuildpackRef};

/// How long fetching one buildpack may take (the open-source slug compiler's buildpack fetch
/// timeout is 90 s).
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(90);
/// The largest buildpack tarball fetched, compressed.
pub(crate) const MAX_TARBALL_BYTES: u64 = 100 * 1024 * 1024;
/// The largest buildpack tree kept (a checkout, or an unpacked tarball).
pub(crate) const MAX_TREE_BYTES: u64 = 300 * 1024 * 1024;

/// Why a buildpack could not be fetched: a sentence for the tenant, naming the buildpack
/// without credentials. What went wrong underneath goes to the server's log.
#[derive(Debug, thiserror::Error)]
#[error("Could not fetch buildpack {buildpack}: {reason}")]
pub(crate) struct FetchError {
    buildpack: String,
    reason: String,
}

/// Fetches buildpacks into `cache_dir`.
pub(crate) struct BuildpackFetcher {
    pub(crate) policy: OutboundPolicy,
    pub(crate) cache_dir: PathBuf,
    pub(crate) timeout: Duration,
}

impl BuildpackFetcher {
    /// The directory of the buildpack `reference` names (a URL reference), fetched or cached.
    pub(crate) async fn fetch(
        &self,
        given: &str,
        reference: &BuildpackRef,
    ) -> Result<PathBuf, FetchError> {
        let error = |reason: String| FetchError {
            buildpack: display_buildpack(given),
            reason,
        };
        tokio::fs::create_dir_all(&self.cache_dir)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, dir = %self.cache_dir.display(), "could not create the buildpack cache");
                error("the buildpack cache could not be created".into())
            })?;
        let work = async {
            match reference {
                BuildpackRef::Git { url, reference } => {
                    self.fetch_git(url, reference.as_deref()).await
                }
                BuildpackRef::Tarball { url } => self.fetch_tarball(url).await,
                BuildpackRef::Builtin(name) => Err(format!("{name} is a built-in buildpack")),
            }
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(result) => result.map_err(error),
            Err(_) => Err(error(format!(
                "it took longer than {} seconds",
                self.timeout.as_secs()
            ))),
        }
    }

    /// A fresh scratch path inside the cache (same filesystem, so it can be renamed in).
    fn scratch(&self, what: &str) -> PathBuf {
        self.cache_dir
            .join(format!(".tmp-{what}-{}", Uuid::new_v4().simple()))
    }

    async fn fetch_git(&self, url: &Url, reference: Option<&str>) -> Result<PathBuf, String> {
        let host = slipway_outbound::url_host(url).map_err(|e| e.to_string())?;
        let addrs = self.policy.resolve(&host).await.map_err(|e| {
            unreachable_reason(
                e,
                "could not resolve a buildpack's host",
                "its host is not reachable",
            )
        })?;
        let port = url.port_or_known_default().unwrap_or(443);
        let git = GitCommand {
            url: url.clone(),
            pin: format!(
                "{}:{port}:{}",
                url.host_str().unwrap_or(&host),
                bracketed(addrs[0])
            ),
        };
        let url_key = hex::encode(sha2::Sha256::digest(url.as_str().as_bytes()));
        let url_key = &url_key[..16];
        // A full commit id names the content already; a branch or tag is asked for.
        let wanted = reference.unwrap_or("HEAD");
        let commit = if is_full_sha(wanted) {
            Some(wanted.to_ascii_lowercase())
        } else {
            let scratch = self.scratch("ls");
            tokio::fs::create_dir_all(&scratch).await.map_err(io)?;
            let listed = git
                .run(&scratch, &["ls-remote", "--", url.as_str(), wanted])
                .await;
            let _ = tokio::fs::remove_dir_all(&scratch).await;
            let listed = listed?;
            let commit = pick_ref(&listed, wanted);
            if commit.is_none() {
                return Err(format!("the repository has no branch or tag {wanted:?}"));
            }
            commit
        };
        if let Some(commit) = &commit {
            let cached = self.cache_dir.join(format!("git-{url_key}-{commit}"));
            if is_buildpack_dir(&cached) {
                return Ok(cached);
            }
        }
        let scratch = self.scratch("git");
        let result = async {
            tokio::fs::create_dir_all(&scratch).await.map_err(io)?;
            git.run(&scratch, &["init", "-q"]).await?;
            // A branch or tag is fetched by its name (servers need not serve a commit by id
            // unless asked for one); the cache key is what was actually checked out.
            let target = wanted;
            git.run(
                &scratch,
                &["fetch", "-q", "--depth", "1", "--", url.as_str(), target],
            )
            .await
            .map_err(|e| format!("{e} (fetching {target})"))?;
            git.run(&scratch, &["checkout", "-q", "--detach", "FETCH_HEAD"])
                .await?;
            let head = git.run(&scratch, &["rev-parse", "HEAD"]).await?;
            let head = head.trim().to_owned();
            if !is_full_sha(&head) {
                return Err("git did not report the commit it checked out".to_owned());
            }
            let final_dir = self.cache_dir.join(format!("git-{url_key}-{head}"));
            finish_tree(&scratch, &final_dir, true).await?;
            Ok(final_dir)
        }
        .await;
        let _ = tokio::fs::remove_dir_all(&scratch).await;
        result
    }

    async fn fetch_tarball(&self, url: &Url) -> Result<PathBuf, String> {
        let client = self
            .policy
            .http_client(
                reqwest::Client::builder()
                    .connect_timeout(Duration::from_secs(30))
                    .read_timeout(Duration::from_secs(60)),
            )
            .build()
            .map_err(|e| {
                tracing::warn!(error = %e, "could not build an HTTP client for a buildpack");
                "the download could not start".to_owned()
            })?;
        let response = self.policy.get(&client, url.clone()).await.map_err(|e| {
            unreachable_reason(
                e,
                "could not fetch a buildpack tarball",
                "the URL is not reachable or did not return the file",
            )
        })?;
        if !response.status().is_success() {
            return Err(format!("the server answered {}", response.status()));
        }
        if response
            .content_length()
            .is_some_and(|length| length > MAX_TARBALL_BYTES)
        {
            return Err(format!(
                "it is larger than {} MB",
                MAX_TARBALL_BYTES / (1024 * 1024)
            ));
        }
        let partial = self.scratch("tgz");
        let stored = async {
            let mut file = tokio::fs::File::create(&partial).await.map_err(io)?;
            let mut hasher = sha2::Sha256::new();
            let mut size = 0u64;
            let mut stream = response.bytes_stream();
            while let Some(chunk) = stream.try_next().await.map_err(|e| {
                tracing::warn!(error = %e, "a buildpack tarball was cut short");
                "the download was cut short".to_owned()
            })? {
                size += chunk.len() as u64;
                if size > MAX_TARBALL_BYTES {
                    return Err(format!(
                        "it is larger than {} MB",
                        MAX_TARBALL_BYTES / (1024 * 1024)
                    ));
                }
                hasher.update(&chunk);
                file.write_all(&chunk).await.map_err(io)?;
            }
            file.sync_all().await.map_err(io)?;
            Ok(hex::encode(hasher.finalize()))
        }
        .await;
        let result = async {
            let sha256 = stored?;
            let final_dir = self.cache_dir.join(format!("tgz-{sha256}"));
            if is_buildpack_dir(&final_dir) {
                return Ok(final_dir);
            }
            let scratch = self.scratch("unpack");
            let unpacked = {
                let (partial, scratch) = (partial.clone(), scratch.clone());
                tokio::task::spawn_blocking(move || unpack_tarball(&partial, &scratch))
                    .await
                    .map_err(|_| "unpacking it failed".to_owned())?
            };
            let result = match unpacked {
                Ok(root) => finish_tree(&root, &final_dir, false)
                    .await
                    .map(|()| final_dir),
                Err(reason) => Err(reason),
            };
            let _ = tokio::fs::remove_dir_all(&scratch).await;
            result
        }
        .await;
        let _ = tokio::fs::remove_file(&partial).await;
        result
    }
}

/// How a fetched tree's unexpected IO error reads to the tenant (the detail is logged).
fn io(error: std::io::Error) -> String {
    tracing::warn!(%error, "buildpack cache IO failed");
    "the buildpack cache could not be written".to_owned()
}

fn bracketed(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// A 40-digit hex commit id.
pub(crate) fn is_full_sha(text: &str) -> bool {
    text.len() == 40 && text.chars().all(|c| c.is_ascii_hexdigit())
}

/// The commit `git ls-remote` lists for `wanted`: `HEAD`, then a branch, then a tag (its
/// peeled commit when annotated).
pub(crate) fn pick_ref(listing: &str, wanted: &str) -> Option<String> {
    let refs: Vec<(&str, &str)> = listing
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .filter(|(sha, _)| is_full_sha(sha))
        .collect();
    let find = |name: &str| {
        refs.iter()
            .find(|(_, r)| *r == name)
            .map(|(sha, _)| sha.to_ascii_lowercase())
    };
    if wanted == "HEAD" {
        return find("HEAD");
    }
    find(&format!("refs/heads/{wanted}"))
        .or_else(|| find(&format!("refs/tags/{wanted}^{{}}")))
        .or_else(|| find(&format!("refs/tags/{wanted}")))
}

/// Whether `dir` is a cached buildpack: `bin/compile` a regular file (not a link).
fn is_buildpack_dir(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir.join("bin/compile")).is_ok_and(|m| m.is_file())
        && std::fs::symlink_metadata(dir.join("bin")).is_ok_and(|m| m.is_dir())
}

/// Checks a fetched tree (size, `bin/compile`), drops `.git`, and renames it into the cache.
/// Another build that cached the same content first wins; this copy is dropped.
async fn finish_tree(tree: &Path, final_dir: &Path, drop_git: bool) -> Result<(), String> {
    if drop_git {
        let _ = tokio::fs::remove_dir_all(tree.join(".git")).await;
    }
    let measured = {
        let tree = tree.to_path_buf();
        tokio::task::spawn_blocking(move || tree_size(&tree, MAX_TREE_BYTES))
            .await
            .map_err(|_| "measuring it failed".to_owned())?
    };
    if measured.is_none() {
        return Err(format!(
            "it is larger than {} MB",
            MAX_TREE_BYTES / (1024 * 1024)
        ));
    }
    if !is_buildpack_dir(tree) {
        return Err(
            "it is not a classic buildpack: there is no bin/compile at its top level".to_owned(),
        );
    }
    if is_buildpack_dir(final_dir) {
        return Ok(());
    }
    let _ = tokio::fs::remove_dir_all(final_dir).await;
    tokio::fs::rename(tree, final_dir).await.map_err(io)
}

/// The bytes under `dir` without following links, or `None` past `cap`.
fn tree_size(dir: &Path, cap: u64) -> Option<u64> {
    let mut total = 0u64;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        let metadata = std::fs::symlink_metadata(&path).ok()?;
        total += metadata.len();
        if total > cap {
            return None;
        }
        if metadata.is_dir() {
            for entry in std::fs::read_dir(&path).ok()? {
                pending.push(entry.ok()?.path());
            }
        }
    }
    Some(total)
}

/// Unpacks a gzip'd buildpack tarball into `dest` with the source rules (no entry outside the
/// tree, no write through a link, expanded size capped); returns the buildpack's root: `dest`,
/// or its single top-level directory when `dest` has no `bin` (as in GitHub's archives).
fn unpack_tarball(tarball: &Path, dest: &Path) -> Result<PathBuf, String> {
    let file = std::fs::File::open(tarball).map_err(io)?;
    let reader = flate2::read::GzDecoder::new(std::io::BufReader::new(file));
    std::fs::create_dir_all(dest).map_err(io)?;
    slipway_build::unpack_source(reader, dest, 0, 0, MAX_TREE_BYTES).map_err(
        |error| match error {
            slipway_build::BuildError::Io { .. } => "it is not a gzip'd tar archive".to_owned(),
            other => other.to_string(),
        },
    )?;
    if std::fs::symlink_metadata(dest.join("bin")).is_ok() {
        return Ok(dest.to_path_buf());
    }
    let entries: Vec<PathBuf> = std::fs::read_dir(dest)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    match entries.as_slice() {
        [only] if std::fs::symlink_metadata(only).is_ok_and(|m| m.is_dir()) => Ok(only.clone()),
        _ => Ok(dest.to_path_buf()),
    }
}

/// The `git` client as the fetcher runs it: a clean environment, the checked address pinned.
struct GitCommand {
    url: Url,
    /// `host:port:address` for `http.curloptResolve`.
    pin: String,
}

impl GitCommand {
    /// Runs `git <args>` in `dir`; returns its stdout, or a sentence (git's last error line,
    /// without the URL's credentials).
    async fn run(&self, dir: &Path, args: &[&str]) -> Result<String, String> {
        // `ulimit -f` (512-byte blocks) caps each file git writes: a hostile repository
        // cannot fill the disk with one object before the tree's size is checked.
        let blocks = MAX_TREE_BYTES / 512;
        let mut command = tokio::process::Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(format!("ulimit -f {blocks} && exec git \"$@\""))
            .arg("git")
            .args([
                "-c",
                "protocol.allow=never",
                "-c",
                "protocol.https.allow=always",
                "-c",
                "protocol.http.allow=always",
                "-c",
                "http.followRedirects=false",
                "-c",
                "credential.helper=",
                "-c",
                "core.hooksPath=/dev/null",
                "-c",
                "core.symlinks=true",
                "-c",
                "http.proxy=",
                "-c",
                "advice.detachedHead=false",
                "-c",
            ])
            .arg(format!("http.curloptResolve={}", self.pin))
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", dir)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_ASKPASS", "/bin/false")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let output = command.output().await.map_err(|e| {
            tracing::warn!(error = %e, "could not run git");
            "git could not be run on the server".to_owned()
        })?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        tracing::warn!(url = %display_buildpack(self.url.as_str()), %stderr, "git failed fetching a buildpack");
        let secret = self.url.password().map(str::to_owned);
        let user = Some(self.url.username()).filter(|u| !u.is_empty());
        let last = stderr
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty())
            .unwrap_or("git failed")
            .chars()
            .filter(|c| !c.is_control())
            .take(300)
            .collect::<String>();
        let mut last = last.replace(self.url.as_str(), &display_buildpack(self.url.as_str()));
        for secret in [secret.as_deref(), user].into_iter().flatten() {
            last = last.replace(secret, "***");
        }
        Err(format!("git said: {}", last.trim()))
    }
}

/// What the app's owner is told when a buildpack's URL cannot be reached: the policy's refusal
/// as it words it, or else `said`, with the cause only in the server's log (`logged`), so a
/// failure does not describe the network behind the policy.
fn unreachable_reason(error: OutboundError, logged: &str, said: &str) -> String {
    if error.is_refused() {
        error.to_string()
    } else {
        tracing::warn!(error = %error, "{logged}");
        said.to_owned()
    }
}

#[cfg(test)]
mod tests;
