//! What control planes and standalone routers share: the cluster token and the route table's
//! wire shape.
//!
//! The cluster token (`<data>/cluster-token`, 0600 from its first byte) is what a standalone
//! router (and a host agent) presents to a control plane. Every control plane of one platform
//! must accept the same token, so on a shared store (etcd) the first server to start puts its
//! token under `cluster/token` (created once, by compare-and-set on its absence) and every
//! later one adopts it into its own file. Like config vars, the token is then in etcd's
//! keyspace, which the operator protects (etcd's auth or TLS client certificates).
//!
//! [`snapshot_of`] and [`table_of`] convert the router's `RouteTable` to and from
//! `slipway_api_types::cluster::RouteSnapshot`, what `GET /slipway/cluster/routes` streams.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use slipway_api_types::cluster::{HostRoute, RouteBackend, RouteSnapshot, RouteStatus as Wire};
use slipway_model::SecretToken;
use slipway_router::{AppRoute, Backend, RouteStatus, RouteTable};
use slipway_store::{Compare, Op, Store, Txn};
use tokio::sync::watch;

#[cfg(test)]
mod tests;

/// The cluster token's file name in the data directory.
pub const CLUSTER_TOKEN_FILE: &str = "cluster-token";

/// The store key every control plane of a shared store takes its token from.
const CLUSTER_TOKEN_KEY: &str = "cluster/token";

/// Why the cluster token could not be read, made or shared. Never shows the token.
#[derive(Debug, thiserror::Error)]
pub enum ClusterTokenError {
    #[error("reading the cluster token {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing the cluster token {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{} does not hold a cluster token; copy <data-dir>/cluster-token from a control plane",
        path.display()
    )]
    Invalid {
        path: PathBuf,
        source: slipway_model::SecretTokenError,
    },
    #[error("the cluster token in the shared store (cluster/token) is not a token; remove the key and restart a control plane to make a new one")]
    InvalidShared,
    #[error("sharing the cluster token through the store")]
    Store(#[source] slipway_store::StoreError),
}

/// Reads a cluster token from `path` (surrounding whitespace ignored), for `slipway router
/// --token-file`.
pub fn read_cluster_token(path: &Path) -> Result<SecretToken, ClusterTokenError> {
    let text = std::fs::read_to_string(path).map_err(|source| ClusterTokenError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    text.trim()
        .parse()
        .map_err(|source| ClusterTokenError::Invalid {
            path: path.to_path_buf(),
            source,
        })
}

/// `<data_dir>/cluster-token`: read, or made (a new random token, 0600) the first time.
pub fn cluster_token(data_dir: &Path) -> Result<SecretToken, ClusterTokenError> {
    let path = data_dir.join(CLUSTER_TOKEN_FILE);
    match read_cluster_token(&path) {
        Err(ClusterTokenError::Read { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            let token = SecretToken::generate();
            write_token(&path, &token)?;
            Ok(token)
        }
        other => other,
    }
}

/// The token every control plane on `store` shares: the one already in the store, else this
/// server's own (put there now). `<data_dir>/cluster-token` ends up holding it.
pub(crate) async fn shared_cluster_token(
    store: &dyn Store,
    data_dir: &Path,
) -> Result<SecretToken, ClusterTokenError> {
    let own = cluster_token(data_dir)?;
    let created = store
        .txn(
            Txn::new()
                .when(Compare::absent(CLUSTER_TOKEN_KEY))
                .then(Op::put(CLUSTER_TOKEN_KEY, own.expose().as_bytes().to_vec())),
        )
        .await
        .map_err(ClusterTokenError::Store)?;
    if created.succeeded {
        return Ok(own);
    }
    let shared = store
        .get(CLUSTER_TOKEN_KEY)
        .await
        .map_err(ClusterTokenError::Store)?
        .ok_or(ClusterTokenError::InvalidShared)?;
    let shared: SecretToken = std::str::from_utf8(&shared.value)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or(ClusterTokenError::InvalidShared)?;
    if shared != own {
        write_token(&data_dir.join(CLUSTER_TOKEN_FILE), &shared)?;
    }
    Ok(shared)
}

/// Writes `token` to `path` through a temporary file renamed into place, readable by its
/// owner alone from the first byte.
fn write_token(path: &Path, token: &SecretToken) -> Result<(), ClusterTokenError> {
    let error = |source| ClusterTokenError::Write {
        path: path.to_path_buf(),
        source,
    };
    let partial = path.with_extension("partial");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .map_err(error)?;
    file.write_all(token.expose().as_bytes()).map_err(error)?;
    file.sync_all().map_err(error)?;
    std::fs::rename(&partial, path).map_err(error)
}

/// The wire shape of `table`, hostnames in order.
pub(crate) fn snapshot_of(table: &RouteTable) -> RouteSnapshot {
    let mut routes: Vec<HostRoute> = table
        .iter()
        .map(|(hostname, route)| HostRoute {
            hostname: hostname.to_owned(),
            app: route.app.clone(),
            status: match route.status {
                RouteStatus::Serving => Wire::Serving,
                RouteStatus::NoWebDynos => Wire::NoWebDynos,
                RouteStatus::Crashed => Wire::Crashed,
                RouteStatus::NoRelease => Wire::NoRelease,
                RouteStatus::Maintenance => Wire::Maintenance,
                RouteStatus::Idle => Wire::Idle,
            },
            backends: route
                .backends
                .iter()
                .map(|backend| RouteBackend {
                    dyno: backend.dyno.clone(),
                    addr: backend.addr,
                })
                .collect(),
        })
        .collect();
    routes.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    RouteSnapshot { routes }
}

/// The route table a snapshot describes; hostnames of one app with the same route share it.
pub(crate) fn table_of(snapshot: &RouteSnapshot) -> RouteTable {
    let mut table = RouteTable::new();
    let mut shared: HashMap<&str, Arc<AppRoute>> = HashMap::new();
    for host in &snapshot.routes {
        let route = AppRoute {
            app: host.app.clone(),
            status: match host.status {
                Wire::Serving => RouteStatus::Serving,
                Wire::NoWebDynos => RouteStatus::NoWebDynos,
                Wire::Crashed => RouteStatus::Crashed,
                Wire::NoRelease => RouteStatus::NoRelease,
                Wire::Maintenance => RouteStatus::Maintenance,
                Wire::Idle => RouteStatus::Idle,
            },
            backends: host
                .backends
                .iter()
                .map(|backend| Backend {
                    dyno: backend.dyno.clone(),
                    addr: backend.addr,
                })
                .collect(),
        };
        let route = match shared.get(host.app.as_str()) {
            Some(known) if **known == route => known.clone(),
            _ => {
                let route = Arc::new(route);
                shared.insert(&host.app, route.clone());
                route
            }
        };
        table.insert(host.hostname.clone(), route);
    }
    table
}

/// Follows `routes`, publishing each table's wire shape on the returned channel (what the
/// API streams to standalone routers).
pub(crate) fn spawn_snapshots(
    mut routes: watch::Receiver<Arc<RouteTable>>,
) -> watch::Receiver<Arc<RouteSnapshot>> {
    let first = snapshot_of(&routes.borrow_and_update());
    let (sender, receiver) = watch::channel(Arc::new(first));
    tokio::spawn(async move {
        while routes.changed().await.is_ok() {
            let snapshot = snapshot_of(&routes.borrow_and_update());
            if sender.send(Arc::new(snapshot)).is_err() {
                return;
            }
        }
    });
    receiver
}
