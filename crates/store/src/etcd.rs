//! The [`Store`] on an etcd v3 cluster, for running several `slipway server` processes on
//! one shared state (`slipway server --store etcd://HOST:PORT[,HOST:PORT…]`).
//!
//! # Mapping
//! The store's model is etcd's, so most of it maps one to one: a [`Revision`] is etcd's
//! revision (global to the cluster: it starts at 1, not 0, and other writers advance it
//! too), [`Txn`]s are etcd transactions (`Compare::Exists`/`Absent` compare the key's
//! create revision with 0), ranges and watches are prefix ranges, a [`LeaseId`] is an etcd
//! lease. Every key lives under a namespace ([`EtcdConfig::namespace`], `slipway/` by
//! default), stripped again on the way out, so several platforms (or tests) share a cluster.
//!
//! Differences from the SQLite store, all inherent to etcd:
//! * lease TTLs are whole seconds (rounded up), and etcd raises short ones to its minimum
//!   (about 2 s with default timings);
//! * history is kept until the cluster is compacted (`--auto-compaction-*`, or
//!   [`EtcdStore::compact`]); a watch that asks for compacted history fails with
//!   [`StoreError::Compacted`], as on SQLite;
//! * a txn that writes one key twice is planned into one write per key (see `plan.rs`).
//!
//! # Append-only ledgers
//! etcd has no triggers. Every branch of every txn that would put, delete or range-delete
//! a key under an append-only prefix carries, as a nested etcd transaction, a guard that
//! those keys (and those parts of the prefix) are absent; if one exists the nested txn runs
//! only reads instead, nothing is written, and the call fails with [`StoreError::Immutable`]
//! naming the key, as the SQLite store does. Creating a ledger key is therefore a
//! compare-and-set on its absence. This is a guarantee of this client: another etcd client
//! with write access could still change ledger keys. Where that matters, give Slipway its
//! own etcd user and deny everyone else writes under the namespace with etcd's RBAC (a role
//! with `readwrite` on the namespace for Slipway, `read` for the others).
//!
//! # Connections
//! `etcd-client` balances requests over the members given and reconnects on its own. A
//! watch whose stream breaks yields one error and ends; consumers re-read with `range()` and
//! watch again from its revision, as after compaction.

mod config;
mod plan;
mod watch;

pub use config::{EtcdConfig, DEFAULT_CONNECT_TIMEOUT, DEFAULT_NAMESPACE};

use crate::{Compare, KeyValue, LeaseId, Revision, Store, StoreError, Txn, TxnResponse, Watcher};
use async_trait::async_trait;
use etcd_client::{
    Client, CompareOp, ConnectOptions, DeleteOptions, GetOptions, PutOptions, TxnOp, TxnOpResponse,
};
use plan::{Branch, Guard, Write};
use std::time::Duration;

/// The largest answer accepted from etcd (gRPC's default is 4 MiB).
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// The [`Store`] on etcd. Cheap to share as `Arc<EtcdStore>` / `Arc<dyn Store>`.
pub struct EtcdStore {
    client: Client,
    namespace: String,
    immutable: Vec<String>,
    endpoints: Vec<String>,
    /// Dropped with the store, which ends every watch it started.
    closed: tokio::sync::watch::Sender<()>,
}

/// Keeps only the members that accept connections in the client's balancer: `etcd-client`'s
/// balancer keeps sending requests to a member that died, and they fail ("tcp connect
/// error") although the others could answer (etcdv3/etcd-client#39). Every second each
/// member is probed with a TCP connection; one that refuses (or does not answer within a
/// second) is removed, and added back once it accepts again. When no member accepts, all
/// stay in: there is nothing better to send to. Ends with the store.
async fn balance_live_members(
    client: Client,
    endpoints: Vec<String>,
    tls: bool,
    mut closed: tokio::sync::watch::Receiver<()>,
) {
    // Endpoints are `HOST:PORT` or URLs; the balancer knows them by URL.
    let url = |endpoint: &str| match endpoint.contains("://") {
        true => endpoint.to_owned(),
        false => format!("{}://{endpoint}", if tls { "https" } else { "http" }),
    };
    let address = |endpoint: &str| {
        let rest = endpoint
            .split_once("://")
            .map_or(endpoint, |(_, rest)| rest);
        rest.trim_end_matches('/').to_owned()
    };
    let mut removed = std::collections::BTreeSet::new();
    loop {
        tokio::select! {
            _ = closed.changed() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let mut live = Vec::new();
        for endpoint in &endpoints {
            let probe = tokio::net::TcpStream::connect(address(endpoint));
            let up = matches!(
                tokio::time::timeout(Duration::from_secs(1), probe).await,
                Ok(Ok(_))
            );
            live.push((endpoint, up));
        }
        let any_up = live.iter().any(|(_, up)| *up);
        for (endpoint, up) in live {
            if (up || !any_up) && removed.remove(endpoint) {
                tracing::info!(%endpoint, "etcd member reachable again");
                let _ = client.add_endpoint(url(endpoint)).await;
            } else if !up && any_up && removed.insert(endpoint.clone()) {
                tracing::warn!(%endpoint, "etcd member unreachable: sending requests to the others");
                let _ = client.remove_endpoint(url(endpoint)).await;
            }
        }
    }
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.endpoints)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl EtcdStore {
    /// Connects to the cluster and checks that it answers.
    pub async fn connect(config: EtcdConfig) -> Result<std::sync::Arc<EtcdStore>, StoreError> {
        for p in &config.immutable_prefixes {
            if p.is_empty() || p.contains('\0') {
                return Err(StoreError::InvalidRequest {
                    reason: format!(
                        "immutable prefix {p:?} must be non-empty and contain no NUL character"
                    ),
                });
            }
        }
        if config.endpoints.is_empty() {
            return Err(StoreError::InvalidUrl {
                reason: "no etcd member given: name at least one HOST:PORT".into(),
            });
        }
        let mut options = ConnectOptions::new()
            .with_connect_timeout(config.connect_timeout)
            // Dead connections are noticed by HTTP/2 pings, so a watch on a member that
            // vanished ends with an error instead of waiting forever.
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
            .with_keep_alive_while_idle(true);
        if let Some((name, password)) = &config.user {
            options = options.with_user(name.clone(), password.clone());
        }
        if config.tls {
            // etcd clusters run on their own CA, not a public one: it must be named.
            let path = config.ca_file.as_ref().ok_or_else(|| StoreError::InvalidUrl {
                reason: "an etcds:// store needs the CA that signed the members' certificates: pass --store-ca-file".into(),
            })?;
            let pem = std::fs::read(path).map_err(|source| StoreError::ReadCa {
                path: path.clone(),
                source,
            })?;
            options = options.with_tls(
                etcd_client::TlsOptions::new()
                    .ca_certificate(etcd_client::Certificate::from_pem(pem)),
            );
        }
        let endpoints = config.endpoints.clone();
        let connect = Client::connect(endpoints.clone(), Some(options));
        let client = tokio::time::timeout(config.connect_timeout, connect)
            .await
            .map_err(|_| StoreError::Unreachable {
                endpoints: endpoints.join(","),
                reason: format!("no answer within {:?}", config.connect_timeout),
            })?
            .map_err(|e| StoreError::Unreachable {
                endpoints: endpoints.join(","),
                reason: e.to_string(),
            })?;
        let (closed, _) = tokio::sync::watch::channel(());
        if endpoints.len() > 1 {
            tokio::spawn(balance_live_members(
                client.clone(),
                endpoints.clone(),
                config.tls,
                closed.subscribe(),
            ));
        }
        let store = EtcdStore {
            client,
            namespace: config.namespace,
            immutable: config.immutable_prefixes,
            endpoints,
            closed,
        };
        // The channel connects lazily: ask once, so a wrong address fails here, at start.
        tokio::time::timeout(config.connect_timeout, store.current_revision())
            .await
            .map_err(|_| StoreError::Unreachable {
                endpoints: store.endpoints.join(","),
                reason: format!("no answer within {:?}", config.connect_timeout),
            })?
            .map_err(|e| StoreError::Unreachable {
                endpoints: store.endpoints.join(","),
                reason: e.to_string(),
            })?;
        Ok(std::sync::Arc::new(store))
    }

    /// A KV client that accepts large answers: a range of every release of a big platform
    /// can pass gRPC's default 4 MiB.
    fn kv(&self) -> etcd_client::KvClient {
        self.client
            .kv_client()
            .max_decoding_message_size(MAX_RESPONSE_BYTES)
    }

    /// The namespace every key lives under.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Compacts the cluster's history up to `revision` (for the whole cluster, not only this
    /// namespace): watches from before it fail with [`StoreError::Compacted`] afterwards.
    pub async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.kv()
            .compact(
                revision,
                Some(etcd_client::CompactionOptions::new().with_physical()),
            )
            .await
            .map_err(etcd_error("compacting history"))?;
        Ok(())
    }

    fn full_key(&self, key: &str) -> Vec<u8> {
        [self.namespace.as_bytes(), key.as_bytes()].concat()
    }

    fn is_immutable_key(&self, key: &str) -> bool {
        self.immutable.iter().any(|p| key.starts_with(p.as_str()))
    }

    fn key_value(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
        convert_kv(&self.namespace, kv)
    }

    fn compare(&self, c: &Compare) -> etcd_client::Compare {
        let key = self.full_key(c.key());
        match c {
            Compare::ModRevision { revision, .. } => {
                etcd_client::Compare::mod_revision(key, CompareOp::Equal, *revision)
            }
            Compare::Exists { .. } => {
                etcd_client::Compare::create_revision(key, CompareOp::Greater, 0)
            }
            Compare::Absent { .. } => {
                etcd_client::Compare::create_revision(key, CompareOp::Equal, 0)
            }
            Compare::ValueEquals { value, .. } => {
                etcd_client::Compare::value(key, CompareOp::Equal, value.clone())
            }
        }
    }

    /// The etcd ops of one planned branch: the writes, or, with guards, one nested txn that
    /// writes only if the guarded parts of the ledger are empty and otherwise reads them.
    fn branch_ops(branch: &Branch) -> Vec<TxnOp> {
        let writes: Vec<TxnOp> = branch.writes.iter().map(write_op).collect();
        if branch.guards.is_empty() {
            return writes;
        }
        let mut compares = Vec::new();
        let mut reads = Vec::new();
        for guard in &branch.guards {
            match guard {
                Guard::Key(key) => {
                    compares.push(etcd_client::Compare::create_revision(
                        key.clone(),
                        CompareOp::Equal,
                        0,
                    ));
                    reads.push(TxnOp::get(
                        key.clone(),
                        Some(GetOptions::new().with_keys_only().with_limit(1)),
                    ));
                }
                Guard::Range { from, to } => {
                    let end = to.clone().unwrap_or_else(|| vec![0]);
                    compares.push(
                        etcd_client::Compare::create_revision(
                            plan::range_start(from),
                            CompareOp::Equal,
                            0,
                        )
                        .with_range(end.clone()),
                    );
                    reads.push(TxnOp::get(
                        plan::range_start(from),
                        Some(
                            GetOptions::new()
                                .with_range(end)
                                .with_keys_only()
                                .with_limit(1),
                        ),
                    ));
                }
            }
        }
        vec![TxnOp::txn(
            etcd_client::Txn::new()
                .when(compares)
                .and_then(writes)
                .or_else(reads),
        )]
    }

    /// The ledger key a refused guard found, if the branch's guard refused.
    fn refused_key(
        &self,
        branch: &Branch,
        responses: &[TxnOpResponse],
    ) -> Result<Option<String>, StoreError> {
        if branch.guards.is_empty() {
            return Ok(None);
        }
        let Some(TxnOpResponse::Txn(nested)) = responses.first() else {
            return Err(StoreError::Corrupt {
                detail: "etcd answered a guarded transaction without its nested result".into(),
            });
        };
        if nested.succeeded() {
            return Ok(None);
        }
        for response in nested.op_responses() {
            if let TxnOpResponse::Get(get) = response {
                if let Some(kv) = get.kvs().first() {
                    return Ok(Some(self.key_value(kv)?.key));
                }
            }
        }
        // The guard failed but the reads found nothing: the key was deleted in between
        // (impossible within one etcd revision, but say something true if it happens).
        Err(StoreError::Corrupt {
            detail: "an append-only guard refused a write but no ledger key was found".into(),
        })
    }
}

fn write_op(write: &Write) -> TxnOp {
    match write {
        Write::Put { key, value, lease } => TxnOp::put(
            key.clone(),
            value.clone(),
            lease.map(|l| PutOptions::new().with_lease(l)),
        ),
        Write::Delete { key } => TxnOp::delete(key.clone(), None),
        Write::DeleteRange { from, to } => TxnOp::delete(
            plan::range_start(from),
            Some(DeleteOptions::new().with_range(to.clone().unwrap_or_else(|| vec![0]))),
        ),
    }
}

/// An etcd key-value as the store's, with the namespace stripped.
fn convert_kv(namespace: &str, kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
    Ok(KeyValue {
        key: strip_namespace(namespace, kv.key())?,
        value: kv.value().to_vec(),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
        version: kv.version(),
        lease: (kv.lease() != 0).then_some(kv.lease()),
    })
}

fn strip_namespace(namespace: &str, key: &[u8]) -> Result<String, StoreError> {
    let rest = key
        .strip_prefix(namespace.as_bytes())
        .ok_or_else(|| StoreError::Corrupt {
            detail: format!(
                "etcd returned a key outside the namespace {namespace:?}: {}",
                String::from_utf8_lossy(key)
            ),
        })?;
    String::from_utf8(rest.to_vec()).map_err(|_| StoreError::Corrupt {
        detail: format!(
            "key {} in etcd is not UTF-8 (written by another client?)",
            String::from_utf8_lossy(key)
        ),
    })
}

fn etcd_error(action: &'static str) -> impl FnOnce(etcd_client::Error) -> StoreError {
    move |source| StoreError::Etcd { action, source }
}

fn is_lease_not_found(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::GRpcStatus(status) => {
            status.message().contains("requested lease not found")
        }
        etcd_client::Error::LeaseKeepAliveError(msg) => msg.contains("lease not found"),
        _ => false,
    }
}

fn is_compacted(e: &etcd_client::Error) -> bool {
    matches!(e, etcd_client::Error::GRpcStatus(status)
        if status.message().contains("required revision has been compacted"))
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Result<Revision, StoreError> {
    header
        .map(|h| h.revision())
        .ok_or_else(|| StoreError::Corrupt {
            detail: "etcd answered without a response header".into(),
        })
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        crate::types::validate_key(key)?;
        let response = self
            .kv()
            .get(self.full_key(key), None)
            .await
            .map_err(etcd_error("reading a key"))?;
        response
            .kvs()
            .first()
            .map(|kv| self.key_value(kv))
            .transpose()
    }

    async fn range(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError> {
        let from = self.full_key(prefix);
        let end = plan::prefix_end(&from).unwrap_or_else(|| vec![0]);
        let response = self
            .kv()
            .get(
                plan::range_start(&from),
                Some(GetOptions::new().with_range(end)),
            )
            .await
            .map_err(etcd_error("reading a key range"))?;
        let revision = header_revision(response.header())?;
        let kvs = response
            .kvs()
            .iter()
            .map(|kv| self.key_value(kv))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((kvs, revision))
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError> {
        txn.validate(|key| self.is_immutable_key(key))?;
        let success = plan::plan_branch(&self.namespace, &self.immutable, &txn.success);
        let failure = plan::plan_branch(&self.namespace, &self.immutable, &txn.failure);
        let request = etcd_client::Txn::new()
            .when(
                txn.compares
                    .iter()
                    .map(|c| self.compare(c))
                    .collect::<Vec<_>>(),
            )
            .and_then(Self::branch_ops(&success))
            .or_else(Self::branch_ops(&failure));
        let response = match self.kv().txn(request).await {
            Ok(response) => response,
            Err(e) if is_lease_not_found(&e) => {
                let lease = txn
                    .success
                    .iter()
                    .chain(&txn.failure)
                    .find_map(|op| match op {
                        crate::Op::Put { lease, .. } => *lease,
                        _ => None,
                    })
                    .unwrap_or_default();
                return Err(StoreError::LeaseNotFound { lease });
            }
            Err(e) => return Err(etcd_error("running a transaction")(e)),
        };
        let succeeded = response.succeeded();
        let branch = if succeeded { &success } else { &failure };
        if let Some(key) = self.refused_key(branch, &response.op_responses())? {
            return Err(StoreError::Immutable { key });
        }
        Ok(TxnResponse {
            succeeded,
            revision: header_revision(response.header())?,
        })
    }

    async fn watch(&self, prefix: &str, after: Option<Revision>) -> Result<Watcher, StoreError> {
        watch::start(self, prefix, after).await
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        if ttl.is_zero() {
            return Err(StoreError::InvalidRequest {
                reason: format!("lease TTL {ttl:?} is too short; use at least 1 ms"),
            });
        }
        // etcd counts TTLs in whole seconds: round up, never down to nothing.
        let seconds = i64::try_from(ttl.as_millis().div_ceil(1000)).unwrap_or(i64::MAX);
        let response = self
            .client
            .lease_client()
            .grant(seconds, None)
            .await
            .map_err(etcd_error("granting a lease"))?;
        Ok(response.id())
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError> {
        match self.client.lease_client().keep_alive(lease).await {
            Ok(_) => Ok(()),
            Err(e) if is_lease_not_found(&e) => Err(StoreError::LeaseNotFound { lease }),
            Err(e) => Err(etcd_error("renewing a lease")(e)),
        }
    }

    async fn revoke(&self, lease: LeaseId) -> Result<(), StoreError> {
        match self.client.lease_client().revoke(lease).await {
            Ok(_) => Ok(()),
            Err(e) if is_lease_not_found(&e) => Err(StoreError::LeaseNotFound { lease }),
            Err(e) => Err(etcd_error("revoking a lease")(e)),
        }
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        let response = self
            .kv()
            .get(
                plan::range_start(&self.full_key("")),
                Some(GetOptions::new().with_count_only().with_limit(1)),
            )
            .await
            .map_err(etcd_error("reading the current revision"))?;
        header_revision(response.header())
    }
}

#[cfg(test)]
mod tests;
