//! Where a build's source blob comes from: the [`SourceFetcher`] seam the core is given.
//!
//! The core decides when a source is fetched (inside the build's task, after the build is
//! recorded) and what is done with it (capped, hashed, checked, deployed); the fetcher only
//! turns a URL into a byte stream. [`OutboundSourceFetcher`] is the real one: every connection
//! goes through `slipway-outbound`'s policy (checked addresses, checked redirects). Logic tests
//! give the platform a fake that serves bytes from memory.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::TryStreamExt;
use slipway_outbound::OutboundPolicy;
use tokio::io::AsyncRead;

/// Where a build's source comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceBlob {
    pub url: String,
    /// `SHA256:<hex>` of the tarball as fetched.
    pub checksum: Option<String>,
    /// The source's version (a commit), shown in the release's description.
    pub version: Option<String>,
}

/// The body of a source tarball, or why it could not be fetched.
pub type SourceBody = Box<dyn AsyncRead + Send + Unpin>;
/// Fetches a build's source; run inside the build's task.
pub type SourceFetch = Pin<Box<dyn Future<Output = Result<SourceBody, String>> + Send>>;

/// What a tenant is told when a source blob cannot be fetched, whatever the reason (refused
/// connection, timeout, TLS failure, HTTP error status, a body cut short): telling them apart
/// would turn the server into a port scanner. The reason goes to the server's log.
pub fn source_blob_unreachable(host: &str) -> String {
    format!("Could not fetch the source blob from {host}: the URL is not reachable or did not return the file")
}

/// How long connecting to a source blob's server may take.
const FETCH_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a source blob's server may stay silent mid-transfer.
const FETCH_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Fetches source blobs for builds.
#[async_trait::async_trait]
pub trait SourceFetcher: Send + Sync {
    /// Checks a URL before anything is recorded, so a refused one is a 422 at once. The error
    /// is the reason, in words a tenant reads.
    async fn check(&self, url: &url::Url) -> Result<(), String>;

    /// The future that fetches `url`'s body, at most `max_bytes` compressed, run inside the
    /// build's task. Its error is the whole sentence the tenant sees.
    fn fetch(&self, url: url::Url, max_bytes: u64) -> SourceFetch;
}

/// The real fetcher: HTTP(S) through the platform's [`OutboundPolicy`].
#[derive(Debug, Clone)]
pub(crate) struct OutboundSourceFetcher {
    policy: OutboundPolicy,
}

impl OutboundSourceFetcher {
    pub(crate) fn new(policy: OutboundPolicy) -> OutboundSourceFetcher {
        OutboundSourceFetcher { policy }
    }
}

#[async_trait::async_trait]
impl SourceFetcher for OutboundSourceFetcher {
    async fn check(&self, url: &url::Url) -> Result<(), String> {
        self.policy
            .check_url(url)
            .await
            .map_err(|error| error.to_string())
    }

    fn fetch(&self, url: url::Url, max_bytes: u64) -> SourceFetch {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = url.host_str().unwrap_or("that URL").to_owned();
            let unreachable = |detail: &dyn std::fmt::Display| {
                tracing::warn!(host, %detail, "could not fetch a source blob");
                source_blob_unreachable(&host)
            };
            let client = policy
                .http_client(
                    reqwest::Client::builder()
                        .connect_timeout(FETCH_CONNECT_TIMEOUT)
                        .read_timeout(FETCH_READ_TIMEOUT),
                )
                .build()
                .map_err(|error| unreachable(&error))?;
            let response = match policy.get(&client, url).await {
                Ok(response) => response,
                // A refusal says nothing about what listens there: say why.
                Err(error) if error.is_refused() => {
                    return Err(format!(
                        "Could not fetch the source blob from {host}: {error}"
                    ))
                }
                Err(error) => return Err(unreachable(&error)),
            };
            let status = response.status();
            if !status.is_success() {
                return Err(unreachable(&format!("answered {status}")));
            }
            if let Some(length) = response.content_length().filter(|l| *l > max_bytes) {
                return Err(format!(
                    "The source blob from {host} is {length} bytes, more than the limit of {} MB; make the tarball smaller (leave out dependencies and build output)",
                    max_bytes / (1024 * 1024)
                ));
            }
            let stream = response.bytes_stream().map_err(std::io::Error::other);
            Ok(Box::new(tokio_util::io::StreamReader::new(stream)) as SourceBody)
        })
    }
}
