//! The store's error type.

use crate::ids::{LeaseId, Revision};
use std::path::PathBuf;

/// Everything that can go wrong talking to the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The write touched a key under an append-only prefix that already exists.
    #[error("key {key} is part of an append-only ledger and cannot be changed or deleted; write a new key instead (e.g. the next release number)")]
    Immutable { key: String },

    /// A watch asked for history that was compacted away.
    #[error("revision {requested} has been compacted (history is only kept after revision {compacted}); re-read the current state with range() and watch from its revision")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },

    /// The lease does not exist (never granted, revoked, or expired).
    #[error("lease {lease} not found: it expired or was revoked; grant a new lease and re-create its keys")]
    LeaseNotFound { lease: LeaseId },

    /// The request itself is malformed.
    #[error("invalid store request: {reason}")]
    InvalidRequest { reason: String },

    /// The database file could not be opened or initialised.
    #[error("cannot open store database {path}: {source}; check the path exists, is writable and is a Slipway store")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    /// The directory for the database file could not be created.
    #[error("cannot create store directory {path}: {source}; check permissions or choose another data directory")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The database was written by an incompatible version of Slipway.
    #[error("store database {path} has schema version {found}, this build understands {expected}; upgrade Slipway or point it at another data directory")]
    SchemaVersion {
        path: PathBuf,
        found: i64,
        expected: i64,
    },

    /// SQLite failed during an operation.
    #[error("store database error while {action}: {source}")]
    Sqlite {
        action: &'static str,
        #[source]
        source: rusqlite::Error,
    },

    /// Stored data violates an invariant of the store (corruption or foreign writes).
    #[error("store database is inconsistent: {detail}")]
    Corrupt { detail: String },

    /// A value could not be (de)serialized as JSON.
    #[error("value of key {key} is not the expected JSON: {source}")]
    Json {
        key: String,
        #[source]
        source: serde_json::Error,
    },

    /// The store was shut down or a background worker died.
    #[error("store is closed or its worker failed: {reason}")]
    Closed { reason: String },

    /// A `--store` URL that does not parse. The reason never quotes the URL: it may carry a
    /// password.
    #[error("invalid store URL: {reason}")]
    InvalidUrl { reason: String },

    /// The CA file for an `etcds://` store could not be read.
    #[error("cannot read the etcd CA file {path}: {source}; pass a readable PEM file")]
    ReadCa {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// No etcd member answered when the store was opened.
    #[error("cannot reach etcd at {endpoints}: {reason}; check that the members run and the addresses, credentials and TLS settings are right")]
    Unreachable { endpoints: String, reason: String },

    /// An etcd request failed.
    #[error("etcd request failed while {action}: {source}")]
    Etcd {
        action: &'static str,
        #[source]
        source: etcd_client::Error,
    },

    /// A write only the leader may make was refused: this process no longer holds `key`
    /// at the revision it was elected with (another process leads now).
    #[error("this server no longer leads (it lost {key}): the write was refused so that only the current leader acts")]
    NotLeader { key: String },

    /// Backend-specific failure (for implementations other than SQLite).
    #[error("store backend error: {0}")]
    Backend(String),
}

impl StoreError {
    pub(crate) fn sqlite(action: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
        move |source| StoreError::Sqlite { action, source }
    }
}
