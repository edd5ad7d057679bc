//! Slugs in an S3-compatible object store, by their SHA-256: what `slipway server --slug-store
//! s3://BUCKET[/PREFIX]?endpoint=URL&region=REGION` uploads after each build or slug upload,
//! and what `slipway agent --slug-store` (the same URL) fetches instead of asking the control
//! plane. The store is reached through the `object_store` crate's S3 client.
//!
//! The URL says where; the credentials come from the environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, optionally `AWS_SESSION_TOKEN`), never from the URL (a URL with a
//! user or password is refused), so they do not end up in a process listing, a log line or an
//! error. Objects are named `<prefix>/<digest>.tgz`. Nothing here trusts what the store sends:
//! the agent hashes every byte it downloads and refuses an object whose SHA-256 is not its name.

use std::path::Path;
use std::sync::Arc;

use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use tokio::io::AsyncWriteExt;

#[cfg(feature = "test-support")]
pub mod testing;

#[cfg(test)]
mod tests;

/// The region an S3-compatible server is told when the URL names none (MinIO's and moto's
/// default, and AWS's oldest).
pub const DEFAULT_REGION: &str = "us-east-1";

/// Where slugs are kept, as `--slug-store` gives it. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlugStoreConfig {
    pub bucket: String,
    /// Object names start with this (no leading or trailing `/`); may be empty.
    pub prefix: String,
    /// The S3 API's base URL (`http://127.0.0.1:9000`); `None`: AWS's for the region.
    pub endpoint: Option<String>,
    pub region: String,
}

/// Why the slug store could not be configured or used. Never carries a credential.
#[derive(Debug, thiserror::Error)]
pub enum SlugStoreError {
    #[error("--slug-store {url:?}: {reason}. Give s3://BUCKET[/PREFIX]?endpoint=URL&region=REGION, with the credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")]
    BadUrl { url: String, reason: String },
    #[error("setting up the S3 client for bucket {bucket:?}")]
    Client {
        bucket: String,
        #[source]
        source: object_store::Error,
    },
    #[error("{action} slug {digest} in the slug store")]
    Object {
        action: &'static str,
        digest: String,
        #[source]
        source: object_store::Error,
    },
    #[error("reading slug {digest} to upload it: {source}")]
    Read {
        digest: String,
        #[source]
        source: std::io::Error,
    },
    #[error("slug {digest:?} is not named by a SHA-256 checksum")]
    BadDigest { digest: String },
}

impl SlugStoreError {
    /// Whether the store answered that it has no such object (as opposed to failing).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            SlugStoreError::Object {
                source: object_store::Error::NotFound { .. },
                ..
            }
        )
    }
}

/// Parses `--slug-store`'s URL (pure: no IO, no environment).
pub fn parse_slug_store_url(url: &str) -> Result<SlugStoreConfig, SlugStoreError> {
    let bad = |reason: &str| SlugStoreError::BadUrl {
        // A URL that carries a password is not repeated back.
        url: if url.contains('@') {
            "s3://…".to_owned()
        } else {
            url.to_owned()
        },
        reason: reason.to_owned(),
    };
    let parsed = url::Url::parse(url).map_err(|_| bad("not a URL"))?;
    if parsed.scheme() != "s3" {
        return Err(bad("only s3:// stores are supported"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad(
            "credentials do not go in the URL (it shows in process listings)",
        ));
    }
    let bucket = parsed.host_str().unwrap_or_default().to_owned();
    if bucket.is_empty() || parsed.port().is_some() {
        return Err(bad("name the bucket as the URL's host, without a port"));
    }
    let prefix = parsed.path().trim_matches('/').to_owned();
    let mut endpoint = None;
    let mut region = DEFAULT_REGION.to_owned();
    for (key, value) in parsed.query_pairs() {
        match key.as_ref() {
            "endpoint" => {
                let base = url::Url::parse(&value).map_err(|_| bad("endpoint is not a URL"))?;
                if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
                    return Err(bad("endpoint must be http://HOST[:PORT] or https://…"));
                }
                if !base.username().is_empty() || base.password().is_some() {
                    return Err(bad(
                        "credentials do not go in the URL (it shows in process listings)",
                    ));
                }
                endpoint = Some(value.trim_end_matches('/').to_owned());
            }
            "region" if !value.is_empty() => region = value.into_owned(),
            _ => return Err(bad(&format!("unknown parameter {key:?}"))),
        }
    }
    Ok(SlugStoreConfig {
        bucket,
        prefix,
        endpoint,
        region,
    })
}

/// Whether `digest` is a SHA-256 checksum in lowercase hex, the only names slugs have.
pub fn is_digest(digest: &str) -> bool {
    digest.len() == 64
        && digest
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// An opened slug store.
#[derive(Clone)]
pub struct SlugStore {
    store: Arc<dyn ObjectStore>,
    config: SlugStoreConfig,
}

impl std::fmt::Debug for SlugStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client holds the credentials: only the location is shown.
        f.debug_struct("SlugStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SlugStore {
    /// A client for `config`, with the credentials from the environment. Makes no request:
    /// a wrong endpoint or credential shows at the first upload or download.
    pub fn open(config: SlugStoreConfig) -> Result<SlugStore, SlugStoreError> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region);
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                // S3-compatible servers (MinIO, moto, Ceph) take the bucket in the path.
                .with_virtual_hosted_style_request(false);
        }
        let store = builder.build().map_err(|source| SlugStoreError::Client {
            bucket: config.bucket.clone(),
            source,
        })?;
        Ok(SlugStore {
            store: Arc::new(store),
            config,
        })
    }

    pub fn config(&self) -> &SlugStoreConfig {
        &self.config
    }

    /// The object name of slug `digest`.
    pub fn object_name(&self, digest: &str) -> String {
        if self.config.prefix.is_empty() {
            format!("{digest}.tgz")
        } else {
            format!("{}/{digest}.tgz", self.config.prefix)
        }
    }

    fn path(&self, digest: &str) -> Result<ObjectPath, SlugStoreError> {
        if !is_digest(digest) {
            return Err(SlugStoreError::BadDigest {
                digest: digest.chars().take(80).collect(),
            });
        }
        Ok(ObjectPath::from(self.object_name(digest)))
    }

    /// Uploads the slug file at `path` as `digest`, streaming it in parts; an object already
    /// there with the same size is left alone (slugs are content-addressed).
    pub async fn put_file(&self, digest: &str, path: &Path) -> Result<(), SlugStoreError> {
        let name = self.path(digest)?;
        let read = |source| SlugStoreError::Read {
            digest: digest.to_owned(),
            source,
        };
        let size = tokio::fs::metadata(path).await.map_err(read)?.len();
        match self.store.head(&name).await {
            Ok(meta) if meta.size == size => return Ok(()),
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
            Err(source) => {
                return Err(SlugStoreError::Object {
                    action: "checking",
                    digest: digest.to_owned(),
                    source,
                })
            }
        }
        let mut file = tokio::fs::File::open(path).await.map_err(read)?;
        let mut writer = object_store::buffered::BufWriter::new(self.store.clone(), name);
        let copied = tokio::io::copy(&mut file, &mut writer).await;
        let finished = match copied {
            Ok(_) => writer.shutdown().await,
            Err(error) => {
                let _ = writer.abort().await;
                Err(error)
            }
        };
        finished.map_err(|error| SlugStoreError::Object {
            action: "uploading",
            digest: digest.to_owned(),
            source: object_store::Error::Generic {
                store: "S3",
                source: Box::new(error),
            },
        })?;
        tracing::info!(digest, object = %self.object_name(digest), bucket = %self.config.bucket, "slug uploaded to the slug store");
        Ok(())
    }

    /// Starts downloading slug `digest`. The caller verifies what arrives: the store is not
    /// trusted to hold what the name says.
    pub async fn get(
        &self,
        digest: &str,
    ) -> Result<(u64, BoxStream<'static, Result<Vec<u8>, SlugStoreError>>), SlugStoreError> {
        let name = self.path(digest)?;
        let failed = |action, source| SlugStoreError::Object {
            action,
            digest: digest.to_owned(),
            source,
        };
        let result = self
            .store
            .get(&name)
            .await
            .map_err(|source| failed("fetching", source))?;
        let size = result.meta.size;
        let owned = digest.to_owned();
        let chunks = result
            .into_stream()
            .map(move |chunk| {
                chunk
                    .map(|bytes| bytes.to_vec())
                    .map_err(|source| SlugStoreError::Object {
                        action: "downloading",
                        digest: owned.clone(),
                        source,
                    })
            })
            .boxed();
        Ok((size, chunks))
    }

    /// Overwrites slug `digest`'s object with `bytes`, as someone with write access to the
    /// bucket could: for tests that check the agent refuses it.
    #[cfg(feature = "test-support")]
    pub async fn overwrite(&self, digest: &str, bytes: Vec<u8>) -> Result<(), SlugStoreError> {
        let name = self.path(digest)?;
        self.store
            .put(&name, bytes.into())
            .await
            .map(|_| ())
            .map_err(|source| SlugStoreError::Object {
                action: "overwriting",
                digest: digest.to_owned(),
                source,
            })
    }
}
