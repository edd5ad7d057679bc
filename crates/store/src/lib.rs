//! Slipway's platform state store: a revisioned key-value store with the shape of etcd v3.
//!
//! All platform state (apps, releases, slugs, formation, dyno states, routes) lives in one
//! [`Store`]. The model is etcd v3's (the same one k3s's Kine serves from SQLite):
//!
//! * every successful write transaction that changes something creates exactly one new,
//!   global, monotonically increasing [`Revision`]; each key records the revision that
//!   created it, the revision that last modified it and how many times it was written;
//! * [`Store::txn`] is compare-and-set: a list of [`Compare`]s picks either the `success`
//!   or the `failure` list of [`Op`]s, all applied atomically;
//! * [`Store::range`] reads every key under a prefix together with the revision the read
//!   was taken at, and [`Store::watch`] resumes from exactly that revision, so
//!   "list then watch" never misses or repeats an event;
//! * leases ([`Store::grant_lease`]) give keys a time to live; when a lease expires or is
//!   revoked its keys are deleted (and watchers see delete events).
//!
//! Two implementations: the embedded default, [`SqliteStore`] (see the [`sqlite`] module
//! docs for durability and enforcement details), and [`EtcdStore`] on an etcd v3 cluster,
//! for several control planes sharing one state (see the [`etcd`] module docs).
//! [`json`] has small helpers for storing serde values.

mod error;
pub mod etcd;
mod ids;
pub mod json;
pub mod sqlite;
#[cfg(feature = "test-support")]
pub mod testing;
mod types;
mod watch;

pub use error::StoreError;
pub use etcd::{EtcdConfig, EtcdStore};
pub use ids::{LeaseId, Revision};
pub use sqlite::{SqliteStore, StoreOptions};
pub use types::{Compare, EventKind, KeyValue, Op, Txn, TxnResponse, WatchEvent};
pub use watch::Watcher;

use async_trait::async_trait;
use std::time::Duration;

/// A revisioned, transactional key-value store with prefix reads, watches and leases.
///
/// Implementations must be safe to share (`Arc<dyn Store>`) between tasks.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads one key; `None` if it does not exist.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;

    /// Reads every key starting with `prefix` (`""` = everything), sorted by key, together
    /// with the store revision the read was taken at. Pass that revision to
    /// [`Store::watch`] to follow changes without missing any.
    async fn range(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError>;

    /// Runs a compare-and-set transaction atomically (all-or-nothing).
    ///
    /// If it writes anything the store revision advances by exactly one and
    /// [`TxnResponse::revision`] is the new revision; otherwise it is the current one.
    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError>;

    /// Unconditionally writes `key`; returns the revision of the write.
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<Revision, StoreError> {
        Ok(self
            .txn(Txn::new().then(Op::put(key, value)))
            .await?
            .revision)
    }

    /// Deletes `key` if present; returns the revision of the delete (the current revision
    /// if the key did not exist and nothing changed).
    async fn delete(&self, key: &str) -> Result<Revision, StoreError> {
        Ok(self.txn(Txn::new().then(Op::delete(key))).await?.revision)
    }

    /// Events for keys under `prefix` with revision > `after` (`None` = from now on).
    ///
    /// Must not miss events between a [`Store::range`] at revision R and
    /// `watch(prefix, Some(R))`. Asking for a revision whose history has been compacted
    /// fails with [`StoreError::Compacted`].
    async fn watch(&self, prefix: &str, after: Option<Revision>) -> Result<Watcher, StoreError>;

    /// Creates a lease that expires `ttl` after its grant or its last keep-alive.
    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StoreError>;

    /// Restarts a lease's TTL. Fails with [`StoreError::LeaseNotFound`] if it has expired
    /// or been revoked.
    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError>;

    /// Revokes a lease now, deleting the keys attached to it (observable as delete events).
    async fn revoke(&self, lease: LeaseId) -> Result<(), StoreError>;

    /// The store's current revision (0 for a store that has never been written).
    async fn current_revision(&self) -> Result<Revision, StoreError>;
}
