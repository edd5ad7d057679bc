//! SQL schema of the SQLite store, including the triggers that make ledger keys immutable.
//!
//! Tables (all stable; tests and operators may read them with plain SQL):
//! * `meta(name, value)`: `revision` (current store revision) and `compact_revision`
//!   (history is kept only for revisions greater than it);
//! * `kv(key, value, create_revision, mod_revision, version, lease)`: current state;
//! * `log(revision, seq, key, kind, value, create_revision, version, lease, prev_*)`: one
//!   row per change (kind 0 = put, 1 = delete), `seq` orders changes within a revision;
//! * `leases(id, ttl_ms, expires_at_ms)`: deadlines are wall-clock milliseconds since the
//!   Unix epoch so leases survive a restart;
//! * `immutable_prefixes(prefix)`: append-only ledger prefixes, enforced by triggers.

/// Schema version stored in `PRAGMA user_version`.
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// Marker in the trigger's RAISE message used to recognise immutability aborts.
pub(crate) const IMMUTABLE_MARKER: &str = "slipway-immutable";

/// Idempotent DDL run on every open.
pub(crate) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta(name, value) VALUES ('revision', 0), ('compact_revision', 0);

CREATE TABLE IF NOT EXISTS kv (
    key             TEXT PRIMARY KEY NOT NULL,
    value           BLOB NOT NULL,
    create_revision INTEGER NOT NULL,
    mod_revision    INTEGER NOT NULL,
    version         INTEGER NOT NULL,
    lease           INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_by_lease ON kv(lease) WHERE lease IS NOT NULL;

CREATE TABLE IF NOT EXISTS log (
    revision             INTEGER NOT NULL,
    seq                  INTEGER NOT NULL,
    key                  TEXT NOT NULL,
    kind                 INTEGER NOT NULL,
    value                BLOB,
    create_revision      INTEGER NOT NULL,
    version              INTEGER NOT NULL,
    lease                INTEGER,
    prev_value           BLOB,
    prev_create_revision INTEGER,
    prev_mod_revision    INTEGER,
    prev_version         INTEGER,
    prev_lease           INTEGER,
    PRIMARY KEY (revision, seq)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS leases (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    ttl_ms        INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS leases_by_expiry ON leases(expires_at_ms);

CREATE TABLE IF NOT EXISTS immutable_prefixes (
    prefix TEXT PRIMARY KEY NOT NULL CHECK (length(prefix) > 0)
) WITHOUT ROWID;

-- Append-only ledger enforcement, inside the database so that no code path (not even
-- hand-written SQL) can rewrite history. Keys under an immutable prefix may be inserted
-- once; updating (including renaming a key into or out of a prefix), deleting, or
-- INSERT OR REPLACE-ing them aborts the statement.
CREATE TRIGGER IF NOT EXISTS kv_immutable_no_update BEFORE UPDATE ON kv
WHEN EXISTS (SELECT 1 FROM immutable_prefixes p
             WHERE substr(OLD.key, 1, length(p.prefix)) = p.prefix
                OR substr(NEW.key, 1, length(p.prefix)) = p.prefix)
BEGIN
    SELECT RAISE(ABORT, 'slipway-immutable: key is part of an append-only ledger and cannot be changed or deleted');
END;

CREATE TRIGGER IF NOT EXISTS kv_immutable_no_delete BEFORE DELETE ON kv
WHEN EXISTS (SELECT 1 FROM immutable_prefixes p
             WHERE substr(OLD.key, 1, length(p.prefix)) = p.prefix)
BEGIN
    SELECT RAISE(ABORT, 'slipway-immutable: key is part of an append-only ledger and cannot be changed or deleted');
END;

-- REPLACE conflict resolution does not fire delete triggers (recursive_triggers is off),
-- so refuse an insert over an existing ledger key before the conflict is resolved.
CREATE TRIGGER IF NOT EXISTS kv_immutable_no_replace BEFORE INSERT ON kv
WHEN EXISTS (SELECT 1 FROM kv k WHERE k.key = NEW.key)
 AND EXISTS (SELECT 1 FROM immutable_prefixes p
             WHERE substr(NEW.key, 1, length(p.prefix)) = p.prefix)
BEGIN
    SELECT RAISE(ABORT, 'slipway-immutable: key is part of an append-only ledger and cannot be changed or deleted');
END;

-- Once a prefix is declared append-only it stays so.
CREATE TRIGGER IF NOT EXISTS immutable_prefixes_no_delete BEFORE DELETE ON immutable_prefixes
BEGIN
    SELECT RAISE(ABORT, 'slipway-immutable: append-only prefixes cannot be removed');
END;
CREATE TRIGGER IF NOT EXISTS immutable_prefixes_no_update BEFORE UPDATE ON immutable_prefixes
BEGIN
    SELECT RAISE(ABORT, 'slipway-immutable: append-only prefixes cannot be changed');
END;
"#;
