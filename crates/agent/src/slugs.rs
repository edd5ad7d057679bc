//! Slugs on an agent's host: fetched by their SHA-256 from the control plane, or from the
//! S3-compatible slug store both are configured with (`--slug-store`), verified while they
//! stream in (a store whose object is not what its name says is refused, never used), capped
//! in size, cached under the agent's data directory, and unpacked once per slug and uid with
//! the build crate's defensive unpacking (no entry outside the tree, no write through a link).
//!
//! Layout under the data directory: `slugs/<digest>.tgz` (only ever a verified file: it is
//! written as `slugs/.<digest>.<random>.partial` and renamed into place) and
//! `unpacked/<digest>-<uid>/app` (complete when `.complete` exists beside `app`).

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use slipway_slugstore::SlugStore;

use crate::error::AgentError;
use crate::wire;

#[cfg(test)]
mod tests;

/// Where and how slugs are fetched.
pub(crate) struct Slugs {
    data_dir: PathBuf,
    client: reqwest::Client,
    server: url::Url,
    token: String,
    max_bytes: u64,
    /// Where slugs come from instead of the control plane, if configured.
    store: Option<SlugStore>,
    /// One lock per slug and uid, so a slug is fetched and unpacked once however many dynos
    /// of it start together.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Slugs {
    pub(crate) fn new(
        data_dir: PathBuf,
        client: reqwest::Client,
        server: url::Url,
        token: String,
        max_bytes: u64,
        store: Option<SlugStore>,
    ) -> Slugs {
        Slugs {
            data_dir,
            client,
            server,
            token,
            max_bytes,
            store,
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// The unpacked slug `digest` as `uid` owns it, fetching and unpacking it first if needed.
    pub(crate) async fn app_dir(&self, digest: &str, uid: u32) -> Result<PathBuf, AgentError> {
        if !wire::is_slug_digest(digest) {
            return Err(AgentError::Slug {
                digest: digest.chars().take(80).collect(),
                reason: "not a SHA-256 checksum".into(),
            });
        }
        let key = format!("{digest}-{uid}");
        let lock = self
            .locks
            .lock()
            .expect("the slug lock table is never poisoned: no code panics holding it")
            .entry(key.clone())
            .or_default()
            .clone();
        let _held = lock.lock().await;
        let dir = self.data_dir.join("unpacked").join(&key);
        if dir.join(".complete").exists() {
            return Ok(dir.join("app"));
        }
        let tarball = self.fetch(digest).await?;
        let unpacked = self.data_dir.join("unpacked");
        let temporary = unpacked.join(format!(".{key}.{}", uuid::Uuid::new_v4().simple()));
        let (final_dir, digest_owned) = (dir.clone(), digest.to_owned());
        tokio::task::spawn_blocking(move || -> Result<(), AgentError> {
            let io = |source: std::io::Error| AgentError::Slug {
                digest: digest_owned.clone(),
                reason: format!("unpacking: {source}"),
            };
            std::fs::create_dir_all(temporary.join("app")).map_err(io)?;
            if let Err(error) =
                slipway_build::unpack_slug(&tarball, &temporary.join("app"), uid, uid)
            {
                let _ = std::fs::remove_dir_all(&temporary);
                return Err(AgentError::Slug {
                    digest: digest_owned.clone(),
                    reason: error.to_string(),
                });
            }
            std::fs::write(temporary.join(".complete"), b"").map_err(io)?;
            let _ = std::fs::remove_dir_all(&final_dir);
            std::fs::rename(&temporary, &final_dir).map_err(io)
        })
        .await
        .map_err(|error| AgentError::Slug {
            digest: digest.to_owned(),
            reason: format!("the unpacking task failed: {error}"),
        })??;
        Ok(dir.join("app"))
    }

    /// The verified tarball of slug `digest`, downloaded unless cached.
    pub(crate) async fn fetch(&self, digest: &str) -> Result<PathBuf, AgentError> {
        let slugs = self.data_dir.join("slugs");
        let path = slugs.join(format!("{digest}.tgz"));
        if path.exists() {
            return Ok(path);
        }
        let failed = |reason: String| AgentError::Slug {
            digest: digest.to_owned(),
            reason,
        };
        std::fs::create_dir_all(&slugs)
            .map_err(|e| failed(format!("creating {}: {e}", slugs.display())))?;
        // A slug the store does not have (one built before the platform had a store) comes
        // from the control plane; one it has is used or refused, never replaced by another.
        let from_store = match &self.store {
            Some(store) => match store.get(digest).await {
                Ok(found) => Some(found),
                Err(error) if error.is_not_found() => {
                    tracing::info!(
                        digest,
                        "the slug store has no such slug; fetching it from the control plane"
                    );
                    None
                }
                Err(error) => {
                    return Err(failed(format!("fetching it from the slug store: {error}")))
                }
            },
            None => None,
        };
        let source = if from_store.is_some() {
            "slug store"
        } else {
            "control plane"
        };
        let (size, chunks) = match from_store {
            Some((size, chunks)) => (
                Some(size),
                chunks.map(|c| c.map_err(|e| e.to_string())).boxed(),
            ),
            None => {
                let url = self
                    .server
                    .join(&wire::slug_path(digest))
                    .map_err(|e| failed(e.to_string()))?;
                let response = self
                    .client
                    .get(url)
                    .bearer_auth(&self.token)
                    .send()
                    .await
                    .map_err(|e| failed(format!("requesting it from the control plane: {e}")))?;
                if !response.status().is_success() {
                    return Err(failed(format!(
                        "the control plane answered {}",
                        response.status()
                    )));
                }
                let size = response.content_length();
                let chunks = response
                    .bytes_stream()
                    .map(|c| c.map(|b| b.to_vec()).map_err(|e| e.to_string()))
                    .boxed();
                (size, chunks)
            }
        };
        if size.is_some_and(|n| n > self.max_bytes) {
            return Err(failed(format!(
                "larger than the {} byte cap",
                self.max_bytes
            )));
        }
        let partial = slugs.join(format!(
            ".{digest}.{}.partial",
            uuid::Uuid::new_v4().simple()
        ));
        let result = self.download(chunks, &partial, digest, source).await;
        match result {
            Ok(()) => {
                std::fs::rename(&partial, &path).map_err(|e| {
                    let _ = std::fs::remove_file(&partial);
                    failed(format!("renaming it into the cache: {e}"))
                })?;
                Ok(path)
            }
            Err(error) => {
                let _ = std::fs::remove_file(&partial);
                Err(error)
            }
        }
    }

    /// Streams `chunks` (from `source`, for the error) into `partial`, hashing and counting as
    /// it goes.
    async fn download(
        &self,
        chunks: impl Stream<Item = Result<Vec<u8>, String>> + Unpin,
        partial: &Path,
        digest: &str,
        source: &str,
    ) -> Result<(), AgentError> {
        let failed = |reason: String| AgentError::Slug {
            digest: digest.to_owned(),
            reason,
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(partial)
            .map_err(|e| failed(format!("creating {}: {e}", partial.display())))?;
        let mut hasher = Sha256::new();
        let mut total: u64 = 0;
        let mut body = chunks;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| failed(format!("downloading: {e}")))?;
            total = total.saturating_add(chunk.len() as u64);
            if total > self.max_bytes {
                return Err(failed(format!(
                    "larger than the {} byte cap",
                    self.max_bytes
                )));
            }
            hasher.update(&chunk);
            file.write_all(&chunk)
                .map_err(|e| failed(format!("writing {}: {e}", partial.display())))?;
        }
        let got = hex::encode(hasher.finalize());
        if got != digest {
            return Err(failed(format!(
                "the download's SHA-256 is {got}: the {source} sent another file; refused"
            )));
        }
        file.sync_all()
            .map_err(|e| failed(format!("writing {}: {e}", partial.display())))
    }
}
