//! The embedded [`Store`] implementation on SQLite (the default; etcd may follow).
//!
//! # Durability
//! * WAL journal mode, one SQLite transaction (`BEGIN IMMEDIATE`) per [`Store::txn`] call,
//!   so each txn is atomic: all of its writes, its history rows and its revision bump
//!   commit together or not at all — also across `kill -9` (tested).
//! * `synchronous = FULL`: the WAL is fsynced on every commit, so a txn that returned
//!   `Ok` survives power loss, not just a process crash. Slipway's control-plane write
//!   rate is low and a release acknowledged to a user must never disappear, so the extra
//!   fsync per commit is worth it (`NORMAL` would keep the database consistent but could
//!   lose the last acknowledged txns on power failure).
//! * `busy_timeout` (default 5 s) covers other processes (for example an operator's
//!   `sqlite3` shell) briefly holding the lock. One process should own a store: watchers
//!   only see writes made through this process's [`SqliteStore`].
//!
//! # Concurrency
//! One `rusqlite::Connection` behind a `std::sync::Mutex`; every operation runs on tokio's
//! blocking pool (`spawn_blocking`), so a commit's fsync never stalls async worker threads.
//! Operations are therefore serialised, which is what gives revisions their total order.
//!
//! # Revisions and history
//! `meta.revision` is the global revision; every txn that changes at least one key bumps
//! it by exactly one and appends its changes to `log`. History older than
//! [`StoreOptions::history_retention`] revisions is deleted in the same transaction;
//! `watch` from before that point fails with [`StoreError::Compacted`].
//!
//! # Append-only ledgers
//! [`StoreOptions::immutable_prefixes`] are stored in the database and enforced by
//! SQLite triggers (see `schema.rs`): a key under such a prefix can be created once and
//! never updated, replaced or deleted — by this crate or by hand-written SQL. The abort
//! is reported as [`StoreError::Immutable`]; the whole txn is rolled back. Prefixes, once
//! registered, cannot be removed (also enforced by trigger). A determined operator can
//! still `DROP TRIGGER`; the guarantee is against mistakes and bugs, not against a
//! malicious root.
//!
//! # Leases
//! Deadlines are stored as wall-clock time, so leases survive a restart; those whose
//! deadline passed while the store was closed are revoked on open. Expired leases are
//! revoked (their keys deleted, one revision per lease) by a background tokio task when
//! [`SqliteStore::open`] is called inside a runtime, and lazily before every operation.

mod engine;
mod schema;
mod watch;

use crate::{LeaseId, Revision, Store, StoreError, Txn, TxnResponse, Watcher};
use async_trait::async_trait;
use engine::{Engine, Publisher};
use rusqlite::Connection;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::sync::broadcast;

/// Options for [`SqliteStore::open`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Key prefixes whose keys can be created once and never changed or deleted (an
    /// append-only ledger, e.g. `"releases/"`). Added to those already registered in the
    /// database; registered prefixes can never be removed.
    pub immutable_prefixes: Vec<String>,
    /// How many revisions of history to keep for watches (default 10,000). A watch that
    /// asks for an older revision gets [`StoreError::Compacted`].
    pub history_retention: u64,
    /// Live revisions buffered per watcher before it has to catch up from history
    /// (default 1024).
    pub watch_buffer: usize,
    /// How often the background task looks for expired leases (default 500 ms).
    pub lease_check_interval: Duration,
    /// How long to wait for a lock held by another connection (default 5 s).
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            immutable_prefixes: Vec::new(),
            history_retention: 10_000,
            watch_buffer: 1024,
            lease_check_interval: Duration::from_millis(500),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

impl StoreOptions {
    /// Adds an append-only prefix.
    pub fn immutable_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.immutable_prefixes.push(prefix.into());
        self
    }
}

/// State shared between the store and its watchers (which must not keep the event
/// sender alive, so that dropping the store ends every watch).
pub(crate) struct Shared {
    engine: Mutex<Engine>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Engine> {
        // A panic while holding the lock leaves no half-applied write: the open SQLite
        // transaction is rolled back when it is dropped during unwinding.
        self.engine
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The SQLite-backed [`Store`]. Cheap to share as `Arc<SqliteStore>` / `Arc<dyn Store>`.
pub struct SqliteStore {
    shared: Arc<Shared>,
    events: Publisher,
    path: PathBuf,
    lease_task: Mutex<Option<tokio::task::AbortHandle>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        let task = self
            .lease_task
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(task) = task {
            task.abort();
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`, creating missing parent
    /// directories. Blocks briefly; call it at startup. If called inside a tokio runtime,
    /// a background task revokes expired leases every `lease_check_interval`.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Arc<SqliteStore>, StoreError> {
        if options.history_retention == 0 {
            return Err(StoreError::InvalidRequest {
                reason: "history_retention must be at least 1 revision".into(),
            });
        }
        if options.watch_buffer == 0 {
            return Err(StoreError::InvalidRequest {
                reason: "watch_buffer must be at least 1".into(),
            });
        }
        for p in &options.immutable_prefixes {
            if p.is_empty() || p.contains('\0') {
                return Err(StoreError::InvalidRequest {
                    reason: format!(
                        "immutable prefix {p:?} must be non-empty and contain no NUL character"
                    ),
                });
            }
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let engine = open_engine(path, &options)?;
        let (events, _) = broadcast::channel(options.watch_buffer);
        let store = Arc::new(SqliteStore {
            shared: Arc::new(Shared {
                engine: Mutex::new(engine),
            }),
            events,
            path: path.to_path_buf(),
            lease_task: Mutex::new(None),
        });
        // Leases whose deadline passed while the store was closed expire now.
        store.shared.lock().expire_due(&store.events)?;
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&store);
            let task = handle.spawn(lease_reaper(weak, options.lease_check_interval));
            *store.lease_task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task.abort_handle());
        }
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Revokes every lease whose deadline has passed (normally done automatically).
    pub async fn expire_leases(&self) -> Result<(), StoreError> {
        self.run(|_, _| Ok(())).await
    }

    /// The revision up to which history has been compacted (watches must start at or
    /// after it).
    pub async fn compact_revision(&self) -> Result<Revision, StoreError> {
        self.run(|eng, _| eng.compact_revision()).await
    }

    /// Runs `f` on the engine on the blocking pool, after revoking due leases.
    async fn run<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Engine, &Publisher) -> Result<R, StoreError> + Send + 'static,
    {
        let shared = self.shared.clone();
        let events = self.events.clone();
        tokio::task::spawn_blocking(move || {
            let mut eng = shared.lock();
            eng.expire_due(&events)?;
            f(&mut eng, &events)
        })
        .await
        .map_err(|e| StoreError::Closed {
            reason: format!("store worker failed: {e}"),
        })?
    }
}

fn open_engine(path: &Path, options: &StoreOptions) -> Result<Engine, StoreError> {
    let open_err = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let mut conn = Connection::open(path).map_err(open_err)?;
    conn.busy_timeout(options.busy_timeout).map_err(open_err)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(open_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Corrupt {
            detail: format!(
                "{} could not be switched to WAL journal mode (got {mode}); is it on a filesystem without shared-memory support?",
                path.display()
            ),
        });
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(open_err)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(open_err)?;
    if version > schema::SCHEMA_VERSION {
        return Err(StoreError::SchemaVersion {
            path: path.to_path_buf(),
            found: version,
            expected: schema::SCHEMA_VERSION,
        });
    }
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(open_err)?;
    tx.execute_batch(schema::SCHEMA).map_err(open_err)?;
    tx.pragma_update(None, "user_version", schema::SCHEMA_VERSION)
        .map_err(open_err)?;
    for p in &options.immutable_prefixes {
        tx.execute(
            "INSERT OR IGNORE INTO immutable_prefixes(prefix) VALUES (?1)",
            [p],
        )
        .map_err(open_err)?;
    }
    let immutable = {
        let mut stmt = tx
            .prepare("SELECT prefix FROM immutable_prefixes ORDER BY prefix")
            .map_err(open_err)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(open_err)?;
        rows.collect::<rusqlite::Result<Vec<String>>>()
            .map_err(open_err)?
    };
    tx.commit().map_err(open_err)?;
    Ok(Engine {
        conn,
        immutable,
        retention: i64::try_from(options.history_retention).unwrap_or(i64::MAX),
    })
}

async fn lease_reaper(store: Weak<SqliteStore>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(store) = store.upgrade() else { break };
        if let Err(e) = store.expire_leases().await {
            tracing::warn!(error = %e, path = %store.path.display(), "expiring leases failed; will retry");
        }
    }
}

fn ttl_ms(ttl: Duration) -> Result<i64, StoreError> {
    let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    if ms < 1 {
        return Err(StoreError::InvalidRequest {
            reason: format!("lease TTL {ttl:?} is too short; use at least 1 ms"),
        });
    }
    Ok(ms)
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, key: &str) -> Result<Option<crate::KeyValue>, StoreError> {
        crate::types::validate_key(key)?;
        let key = key.to_string();
        self.run(move |eng, _| eng.get(&key)).await
    }

    async fn range(&self, prefix: &str) -> Result<(Vec<crate::KeyValue>, Revision), StoreError> {
        let prefix = prefix.to_string();
        self.run(move |eng, _| eng.range(&prefix)).await
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse, StoreError> {
        self.run(move |eng, events| eng.txn(&txn, events)).await
    }

    async fn watch(&self, prefix: &str, after: Option<Revision>) -> Result<Watcher, StoreError> {
        let prefix_owned = prefix.to_string();
        let (rx, current) = self
            .run(move |eng, events| {
                // Subscribing while holding the engine lock: every revision > current
                // will be published to `rx`; everything <= current is in the log.
                let rx = events.subscribe();
                let current = eng.current_revision()?;
                if let Some(after) = after {
                    let compacted = eng.compact_revision()?;
                    if after < compacted {
                        return Err(StoreError::Compacted {
                            requested: after,
                            compacted,
                        });
                    }
                }
                Ok((rx, current))
            })
            .await?;
        let last = after.unwrap_or(current);
        Ok(watch::WatchState {
            shared: self.shared.clone(),
            prefix: prefix_owned,
            rx,
            last,
            target: current,
            pending: VecDeque::new(),
            held: None,
            finished: false,
        }
        .into_watcher())
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        let ms = ttl_ms(ttl)?;
        self.run(move |eng, _| eng.grant_lease(ms)).await
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.run(move |eng, _| eng.keep_alive(lease)).await
    }

    async fn revoke(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.run(move |eng, events| eng.revoke(lease, events)).await
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        self.run(|eng, _| eng.current_revision()).await
    }
}
