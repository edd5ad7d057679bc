//! What can go wrong on an agent, with the context to fix it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("reading the cluster token from {path}: {source}")]
    ReadToken {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the cluster token in {path} is empty: copy the control plane's <data>/cluster-token there"
    )]
    EmptyToken { path: PathBuf },
    #[error("the control plane URL {url:?} is not an http(s) URL with a host")]
    ServerUrl { url: String },
    #[error("reading the platform CA from {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("creating the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("finding this host's address towards {server}: {source}; pass --address")]
    Address {
        server: String,
        #[source]
        source: std::io::Error,
    },
    #[error("starting the runc runtime (are `runc`, `iproute2` and `nftables` installed, and are you root?): {0}")]
    Runtime(#[source] slipway_runtime::RuntimeError),
    #[error("the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("slug {digest}: {reason}")]
    Slug { digest: String, reason: String },
    #[error("the control plane refused the sync: {status} {message}")]
    Refused { status: u16, message: String },
    #[error("the control plane did not answer: {0}")]
    Unreachable(#[source] reqwest::Error),
}
