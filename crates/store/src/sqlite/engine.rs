//! Synchronous core of the SQLite store: every operation on the single connection.
//!
//! All methods run on a blocking thread while the caller holds the engine mutex. Writes
//! publish their events to watchers *after* the SQLite commit and *before* the mutex is
//! released, so publication order equals revision order and a watcher subscribed under
//! the mutex at revision R receives exactly the batches for revisions > R.

use super::schema::IMMUTABLE_MARKER;
use crate::{
    Compare, EventKind, KeyValue, LeaseId, Op, Revision, StoreError, Txn, TxnResponse, WatchEvent,
};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast;

/// All events of one revision, as published to watchers.
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) revision: Revision,
    pub(crate) events: Vec<WatchEvent>,
}

pub(crate) type Publisher = broadcast::Sender<Arc<Batch>>;

pub(crate) struct Engine {
    pub(crate) conn: Connection,
    /// Append-only prefixes (also stored in the db, where triggers enforce them).
    pub(crate) immutable: Vec<String>,
    /// Number of revisions of history to keep.
    pub(crate) retention: i64,
}

/// Milliseconds since the Unix epoch (lease deadlines are persisted in wall-clock time).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Smallest string greater than every string starting with `prefix` (None = unbounded).
/// SQLite compares TEXT with memcmp on UTF-8, which orders like code points.
pub(crate) fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        while next <= char::MAX as u32 {
            if let Some(c) = char::from_u32(next) {
                chars.push(c);
                return Some(chars.into_iter().collect());
            }
            next += 1; // skip the surrogate range
        }
    }
    None
}

const KV_COLUMNS: &str = "key, value, create_revision, mod_revision, version, lease";

fn kv_from_row(row: &Row<'_>) -> rusqlite::Result<KeyValue> {
    Ok(KeyValue {
        key: row.get(0)?,
        value: row.get(1)?,
        create_revision: row.get(2)?,
        mod_revision: row.get(3)?,
        version: row.get(4)?,
        lease: row.get(5)?,
    })
}

fn get_kv(conn: &Connection, key: &str) -> Result<Option<KeyValue>, StoreError> {
    conn.query_row(
        &format!("SELECT {KV_COLUMNS} FROM kv WHERE key = ?1"),
        [key],
        kv_from_row,
    )
    .optional()
    .map_err(StoreError::sqlite("reading a key"))
}

fn range_kv(conn: &Connection, prefix: &str) -> Result<Vec<KeyValue>, StoreError> {
    let end = prefix_end(prefix);
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {KV_COLUMNS} FROM kv WHERE key >= ?1 AND (?2 IS NULL OR key < ?2) ORDER BY key"
        ))
        .map_err(StoreError::sqlite("preparing a range read"))?;
    let rows = stmt
        .query_map(params![prefix, end], kv_from_row)
        .map_err(StoreError::sqlite("reading a key range"))?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(StoreError::sqlite("reading a key range"))
}

fn meta(conn: &Connection, name: &str) -> Result<i64, StoreError> {
    conn.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
        r.get(0)
    })
    .map_err(StoreError::sqlite("reading store metadata"))
}

fn set_meta(conn: &Connection, name: &str, value: i64) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE meta SET value = ?2 WHERE name = ?1",
        params![name, value],
    )
    .map_err(StoreError::sqlite("writing store metadata"))?;
    Ok(())
}

/// Maps a failed write of `key` to [`StoreError::Immutable`] when a ledger trigger fired.
fn write_error<'a>(
    key: &'a str,
    action: &'static str,
) -> impl FnOnce(rusqlite::Error) -> StoreError + 'a {
    move |err| {
        if is_immutable_abort(&err) {
            StoreError::Immutable {
                key: key.to_string(),
            }
        } else {
            StoreError::Sqlite {
                action,
                source: err,
            }
        }
    }
}

/// Whether `err` is the abort raised by one of the ledger triggers.
pub(crate) fn is_immutable_abort(err: &rusqlite::Error) -> bool {
    match err {
        rusqlite::Error::SqliteFailure(e, Some(msg)) => {
            e.code == rusqlite::ErrorCode::ConstraintViolation && msg.contains(IMMUTABLE_MARKER)
        }
        _ => false,
    }
}

fn begin_write(conn: &mut Connection) -> Result<Transaction<'_>, StoreError> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::sqlite("starting a write transaction"))
}

impl Engine {
    pub(crate) fn is_immutable_key(&self, key: &str) -> bool {
        self.immutable.iter().any(|p| key.starts_with(p.as_str()))
    }

    pub(crate) fn current_revision(&self) -> Result<Revision, StoreError> {
        meta(&self.conn, "revision")
    }

    pub(crate) fn compact_revision(&self) -> Result<Revision, StoreError> {
        meta(&self.conn, "compact_revision")
    }

    pub(crate) fn get(&mut self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        get_kv(&self.conn, key)
    }

    pub(crate) fn range(&mut self, prefix: &str) -> Result<(Vec<KeyValue>, Revision), StoreError> {
        let tx = self
            .conn
            .transaction()
            .map_err(StoreError::sqlite("starting a read transaction"))?;
        let rev = meta(&tx, "revision")?;
        let kvs = range_kv(&tx, prefix)?;
        tx.commit()
            .map_err(StoreError::sqlite("finishing a read transaction"))?;
        Ok((kvs, rev))
    }

    pub(crate) fn txn(
        &mut self,
        txn: &Txn,
        publish: &Publisher,
    ) -> Result<TxnResponse, StoreError> {
        txn.validate(|key| self.is_immutable_key(key))?;
        let retention = self.retention;
        let tx = begin_write(&mut self.conn)?;
        let rev = meta(&tx, "revision")?;
        let mut succeeded = true;
        for c in &txn.compares {
            if !eval_compare(&tx, c)? {
                succeeded = false;
                break;
            }
        }
        let ops = if succeeded {
            &txn.success
        } else {
            &txn.failure
        };
        let new_rev = rev + 1;
        let mut events = Vec::new();
        for op in ops {
            apply_op(&tx, op, new_rev, &mut events)?;
        }
        if events.is_empty() {
            // Nothing changed: no new revision (like etcd).
            tx.commit()
                .map_err(StoreError::sqlite("committing a transaction"))?;
            return Ok(TxnResponse {
                succeeded,
                revision: rev,
            });
        }
        finish_write(tx, new_rev, events, retention, publish)?;
        Ok(TxnResponse {
            succeeded,
            revision: new_rev,
        })
    }

    pub(crate) fn grant_lease(&mut self, ttl_ms: i64) -> Result<LeaseId, StoreError> {
        let now = now_ms();
        self.conn
            .execute(
                "INSERT INTO leases(ttl_ms, expires_at_ms) VALUES (?1, ?2)",
                params![ttl_ms, now.saturating_add(ttl_ms)],
            )
            .map_err(StoreError::sqlite("granting a lease"))?;
        Ok(self.conn.last_insert_rowid())
    }

    pub(crate) fn keep_alive(&mut self, lease: LeaseId) -> Result<(), StoreError> {
        let now = now_ms();
        let n = self
            .conn
            .execute(
                "UPDATE leases SET expires_at_ms = ?2 + ttl_ms WHERE id = ?1 AND expires_at_ms > ?2",
                params![lease, now],
            )
            .map_err(StoreError::sqlite("renewing a lease"))?;
        if n == 0 {
            return Err(StoreError::LeaseNotFound { lease });
        }
        Ok(())
    }

    /// Deletes a lease and its keys in one revision.
    pub(crate) fn revoke(&mut self, lease: LeaseId, publish: &Publisher) -> Result<(), StoreError> {
        let retention = self.retention;
        let tx = begin_write(&mut self.conn)?;
        require_lease(&tx, lease)?;
        let keys: Vec<KeyValue> = {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT {KV_COLUMNS} FROM kv WHERE lease = ?1 ORDER BY key"
                ))
                .map_err(StoreError::sqlite("finding a lease's keys"))?;
            let rows = stmt
                .query_map([lease], kv_from_row)
                .map_err(StoreError::sqlite("finding a lease's keys"))?;
            rows.collect::<rusqlite::Result<_>>()
                .map_err(StoreError::sqlite("finding a lease's keys"))?
        };
        let new_rev = meta(&tx, "revision")? + 1;
        let mut events = Vec::with_capacity(keys.len());
        for prev in keys {
            delete_existing(&tx, prev, new_rev, &mut events)?;
        }
        tx.execute("DELETE FROM leases WHERE id = ?1", [lease])
            .map_err(StoreError::sqlite("deleting a lease"))?;
        if events.is_empty() {
            tx.commit()
                .map_err(StoreError::sqlite("committing a lease revocation"))?;
            return Ok(());
        }
        finish_write(tx, new_rev, events, retention, publish)
    }

    /// Revokes every lease whose deadline has passed. Cheap when none are due.
    pub(crate) fn expire_due(&mut self, publish: &Publisher) -> Result<(), StoreError> {
        let now = now_ms();
        let due: Vec<LeaseId> = {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT id FROM leases WHERE expires_at_ms <= ?1 ORDER BY expires_at_ms, id",
                )
                .map_err(StoreError::sqlite("finding expired leases"))?;
            let rows = stmt
                .query_map([now], |r| r.get(0))
                .map_err(StoreError::sqlite("finding expired leases"))?;
            rows.collect::<rusqlite::Result<_>>()
                .map_err(StoreError::sqlite("finding expired leases"))?
        };
        for lease in due {
            tracing::debug!(lease, "lease expired; deleting its keys");
            match self.revoke(lease, publish) {
                Ok(()) | Err(StoreError::LeaseNotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// History for keys under `prefix` with `after < revision <= upto`, where `upto` is
    /// `min(after + page, limit.unwrap_or(current))`. Returns (events, upto, current).
    pub(crate) fn history_page(
        &mut self,
        prefix: &str,
        after: Revision,
        limit: Option<Revision>,
        page: i64,
    ) -> Result<(Vec<WatchEvent>, Revision, Revision), StoreError> {
        let tx = self
            .conn
            .transaction()
            .map_err(StoreError::sqlite("starting a history read"))?;
        let current = meta(&tx, "revision")?;
        let compacted = meta(&tx, "compact_revision")?;
        if after < compacted {
            return Err(StoreError::Compacted {
                requested: after,
                compacted,
            });
        }
        let upto = after
            .saturating_add(page)
            .min(limit.unwrap_or(current))
            .min(current)
            .max(after);
        let end = prefix_end(prefix);
        let events = {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT revision, key, kind, value, create_revision, version, lease,
                            prev_value, prev_create_revision, prev_mod_revision, prev_version, prev_lease
                     FROM log
                     WHERE revision > ?1 AND revision <= ?2 AND key >= ?3 AND (?4 IS NULL OR key < ?4)
                     ORDER BY revision, seq",
                )
                .map_err(StoreError::sqlite("preparing a history read"))?;
            let rows = stmt
                .query_map(params![after, upto, prefix, end], event_from_row)
                .map_err(StoreError::sqlite("reading history"))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(StoreError::sqlite("reading history"))?
        };
        tx.commit()
            .map_err(StoreError::sqlite("finishing a history read"))?;
        let events = events.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok((events, upto, current))
    }
}

fn event_from_row(row: &Row<'_>) -> rusqlite::Result<Result<WatchEvent, StoreError>> {
    let revision: Revision = row.get(0)?;
    let key: String = row.get(1)?;
    let kind: i64 = row.get(2)?;
    let value: Option<Vec<u8>> = row.get(3)?;
    let prev_mod: Option<Revision> = row.get(9)?;
    let prev = match prev_mod {
        Some(mod_revision) => Some(KeyValue {
            key: key.clone(),
            value: row.get::<_, Option<Vec<u8>>>(7)?.unwrap_or_default(),
            create_revision: row.get::<_, Option<i64>>(8)?.unwrap_or_default(),
            mod_revision,
            version: row.get::<_, Option<i64>>(10)?.unwrap_or_default(),
            lease: row.get(11)?,
        }),
        None => None,
    };
    let event = match kind {
        0 => WatchEvent {
            kind: EventKind::Put,
            kv: KeyValue {
                key,
                value: value.unwrap_or_default(),
                create_revision: row.get(4)?,
                mod_revision: revision,
                version: row.get(5)?,
                lease: row.get(6)?,
            },
            prev,
        },
        1 => WatchEvent {
            kind: EventKind::Delete,
            kv: KeyValue::tombstone(&key, revision),
            prev,
        },
        other => {
            return Ok(Err(StoreError::Corrupt {
                detail: format!(
                    "history row for key {key} at revision {revision} has unknown kind {other}"
                ),
            }))
        }
    };
    Ok(Ok(event))
}

fn eval_compare(conn: &Connection, c: &Compare) -> Result<bool, StoreError> {
    let kv = get_kv(conn, c.key())?;
    Ok(match c {
        Compare::ModRevision { revision, .. } => match kv {
            None => *revision == 0,
            Some(kv) => kv.mod_revision == *revision,
        },
        Compare::Exists { .. } => kv.is_some(),
        Compare::Absent { .. } => kv.is_none(),
        Compare::ValueEquals { value, .. } => kv.is_some_and(|kv| &kv.value == value),
    })
}

/// `Err(LeaseNotFound)` unless the lease exists (it may have expired and been revoked).
fn require_lease(conn: &Connection, lease: LeaseId) -> Result<(), StoreError> {
    let exists = conn
        .query_row("SELECT 1 FROM leases WHERE id = ?1", [lease], |_| Ok(()))
        .optional()
        .map_err(StoreError::sqlite("looking up a lease"))?
        .is_some();
    if exists {
        Ok(())
    } else {
        Err(StoreError::LeaseNotFound { lease })
    }
}

fn apply_op(
    tx: &Transaction<'_>,
    op: &Op,
    rev: Revision,
    events: &mut Vec<WatchEvent>,
) -> Result<(), StoreError> {
    match op {
        Op::Put { key, value, lease } => {
            if let Some(lease) = lease {
                require_lease(tx, *lease)?;
            }
            let prev = get_kv(tx, key)?;
            let kv = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: prev.as_ref().map_or(rev, |p| p.create_revision),
                mod_revision: rev,
                version: prev.as_ref().map_or(1, |p| p.version + 1),
                lease: *lease,
            };
            if prev.is_some() {
                tx.prepare_cached(
                    "UPDATE kv SET value = ?2, mod_revision = ?3, version = ?4, lease = ?5 WHERE key = ?1",
                )
                .and_then(|mut s| s.execute(params![key, value, rev, kv.version, lease]))
                .map_err(write_error(key, "updating a key"))?;
            } else {
                tx.prepare_cached(&format!(
                    "INSERT INTO kv({KV_COLUMNS}) VALUES (?1, ?2, ?3, ?3, 1, ?4)"
                ))
                .and_then(|mut s| s.execute(params![key, value, rev, lease]))
                .map_err(write_error(key, "inserting a key"))?;
            }
            events.push(WatchEvent {
                kind: EventKind::Put,
                kv,
                prev,
            });
        }
        Op::Delete { key } => {
            if let Some(prev) = get_kv(tx, key)? {
                delete_existing(tx, prev, rev, events)?;
            }
        }
        Op::DeletePrefix { prefix } => {
            for prev in range_kv(tx, prefix)? {
                delete_existing(tx, prev, rev, events)?;
            }
        }
    }
    Ok(())
}

fn delete_existing(
    tx: &Transaction<'_>,
    prev: KeyValue,
    rev: Revision,
    events: &mut Vec<WatchEvent>,
) -> Result<(), StoreError> {
    tx.prepare_cached("DELETE FROM kv WHERE key = ?1")
        .and_then(|mut s| s.execute([&prev.key]))
        .map_err(write_error(&prev.key, "deleting a key"))?;
    events.push(WatchEvent {
        kind: EventKind::Delete,
        kv: KeyValue::tombstone(&prev.key, rev),
        prev: Some(prev),
    });
    Ok(())
}

/// Appends `events` to the history, advances the revision, compacts, commits and then
/// publishes the batch to watchers.
fn finish_write(
    tx: Transaction<'_>,
    rev: Revision,
    events: Vec<WatchEvent>,
    retention: i64,
    publish: &Publisher,
) -> Result<(), StoreError> {
    {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO log(revision, seq, key, kind, value, create_revision, version, lease,
                                 prev_value, prev_create_revision, prev_mod_revision, prev_version, prev_lease)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )
            .map_err(StoreError::sqlite("preparing a history write"))?;
        for (seq, ev) in events.iter().enumerate() {
            let (kind, value) = match ev.kind {
                EventKind::Put => (0, Some(&ev.kv.value)),
                EventKind::Delete => (1, None),
            };
            let p = ev.prev.as_ref();
            stmt.execute(params![
                rev,
                seq as i64,
                ev.kv.key,
                kind,
                value,
                ev.kv.create_revision,
                ev.kv.version,
                ev.kv.lease,
                p.map(|p| &p.value),
                p.map(|p| p.create_revision),
                p.map(|p| p.mod_revision),
                p.map(|p| p.version),
                p.and_then(|p| p.lease),
            ])
            .map_err(StoreError::sqlite("writing history"))?;
        }
    }
    set_meta(&tx, "revision", rev)?;
    let floor = rev - retention;
    if floor > meta(&tx, "compact_revision")? {
        tx.execute("DELETE FROM log WHERE revision <= ?1", [floor])
            .map_err(StoreError::sqlite("compacting history"))?;
        set_meta(&tx, "compact_revision", floor)?;
    }
    tx.commit()
        .map_err(StoreError::sqlite("committing a transaction"))?;
    // No receivers is fine: nobody is watching.
    let _ = publish.send(Arc::new(Batch {
        revision: rev,
        events,
    }));
    Ok(())
}

#[cfg(test)]
mod tests;
