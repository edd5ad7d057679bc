//! The host agent: `slipway agent --server URL[,URL…] --name NAME` on every host of a cluster.
//!
//! It registers its host with the control plane (capacity, dyno subnet, the address other
//! hosts reach it on) and keeps the host's lease by syncing every second or so over the
//! control plane's API (`wire.rs`): each sync reports the states of the containers the agent
//! runs and answers with the containers assigned to the host, which the agent starts (fetching
//! slugs by checksum from the control plane or an S3-compatible slug store, `slugs.rs`) or stops with its local runc runtime, with the same isolation
//! as a single-host platform's dynos. Dyno output goes to the control plane in bounded batches
//! (`logs.rs`). An agent that cannot renew its lease for two thirds of its TTL stops every dyno
//! itself (`fence.rs`), so no dyno of a lost host keeps serving after the control plane has
//! replaced it. A restarted agent re-adopts its running containers (runc's `list`/`adopt`) and
//! keeps those its host is still assigned.
//!
//! With several control planes (`--server a,b`) it syncs with one and fails over to the next,
//! and sends its log batches to every one of them (`agent.rs` says why).
//!
//! The agent knows the control planes' URLs and the cluster token, nothing else: never the
//! store.

mod agent;
mod error;
mod fence;
mod logs;
mod slugs;
pub mod wire;

use std::net::IpAddr;
use std::path::PathBuf;

pub use agent::run;
pub use error::AgentError;
pub use slipway_model::HostName;
pub use slipway_runtime::Ipv4Subnet;
pub use slipway_slugstore::{SlugStore, SlugStoreError};

/// Defaults of `slipway agent`'s flags.
pub mod defaults {
    /// Where an agent keeps its runtime state, slugs and unpacked slugs.
    pub const DATA_DIR: &str = "/var/lib/slipway-agent";
    /// Every host needs a dyno subnet of its own, routed to it; this one differs from the
    /// single-host server's default (172.30.0.0/16) so an agent can run beside a server.
    pub const DYNO_SUBNET: &str = "172.31.0.0/16";
    /// The server's `--max-slug-size-mb` default (Heroku's 500 MB slug limit).
    pub const MAX_SLUG_SIZE_MB: u64 = 500;
    /// The token file's name in the control plane's and, by default, the agent's data
    /// directory.
    pub const TOKEN_FILE: &str = "cluster-token";
}

/// What `slipway agent` was asked to do.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The control planes' APIs, `http(s)://host:port`, separated by commas.
    pub server: String,
    pub name: HostName,
    pub data_dir: PathBuf,
    pub dyno_subnet: Ipv4Subnet,
    /// Memory offered to dynos; `None`: the host's total memory.
    pub memory_mb: Option<u64>,
    /// The cluster token's file; `None`: `<data>/cluster-token`.
    pub token_file: Option<PathBuf>,
    /// The address routers reach this host's dynos through; `None`: the address this host
    /// uses towards the control plane.
    pub address: Option<IpAddr>,
    /// Networks whose hosts may open connections to this host's dynos (routers, control
    /// planes); `None`: the control plane's address only.
    pub routed_from: Vec<Ipv4Subnet>,
    /// The CA that signs the control plane's certificate (its `<data>/tls/router-ca.pem`) for an
    /// `https://` server.
    pub ca_file: Option<PathBuf>,
    pub max_slug_size_mb: u64,
    /// The S3-compatible store slugs are fetched from instead of the control plane
    /// (`--slug-store`, the control planes' own).
    pub slug_store: Option<SlugStore>,
}

/// `--slug-store`'s URL as an opened store (credentials from the environment).
pub fn open_slug_store(url: &str) -> Result<SlugStore, slipway_slugstore::SlugStoreError> {
    SlugStore::open(slipway_slugstore::parse_slug_store_url(url)?)
}
