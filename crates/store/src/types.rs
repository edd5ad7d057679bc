//! Plain data types of the store model: key-values, compares, ops, transactions, events.

use crate::ids::{LeaseId, Revision};

/// One stored key with its metadata (etcd's `mvccpb.KeyValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// Revision of the write that created the key (since its last deletion).
    pub create_revision: Revision,
    /// Revision of the last write to the key.
    pub mod_revision: Revision,
    /// Number of writes since the key was created (1 after creation).
    pub version: i64,
    /// Lease the key is attached to, if any.
    pub lease: Option<LeaseId>,
}

impl KeyValue {
    /// Decodes the value as JSON (see [`crate::json`]).
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, crate::StoreError> {
        serde_json::from_slice(&self.value).map_err(|source| crate::StoreError::Json {
            key: self.key.clone(),
            source,
        })
    }

    /// What a watcher sees of a deleted key: its name and the deleting revision, no value
    /// (both stores answer deletes this way).
    pub(crate) fn tombstone(key: &str, revision: Revision) -> Self {
        KeyValue {
            key: key.to_string(),
            value: Vec::new(),
            create_revision: 0,
            mod_revision: revision,
            version: 0,
            lease: None,
        }
    }
}

/// A key is non-empty and has no NUL character (the rule of both stores).
pub(crate) fn validate_key(key: &str) -> Result<(), crate::StoreError> {
    if key.is_empty() {
        return Err(crate::StoreError::InvalidRequest {
            reason: "key must not be empty".into(),
        });
    }
    if key.contains('\0') {
        return Err(crate::StoreError::InvalidRequest {
            reason: format!("key {key:?} contains a NUL character"),
        });
    }
    Ok(())
}

/// A condition of a [`Txn`]. All compares must hold for the `success` branch to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key's mod_revision equals `revision` (0 means the key must not exist).
    ModRevision { key: String, revision: Revision },
    /// The key exists.
    Exists { key: String },
    /// The key does not exist.
    Absent { key: String },
    /// The key exists and its value equals `value`.
    ValueEquals { key: String, value: Vec<u8> },
}

impl Compare {
    pub fn mod_revision(key: impl Into<String>, revision: Revision) -> Self {
        Compare::ModRevision {
            key: key.into(),
            revision,
        }
    }
    pub fn exists(key: impl Into<String>) -> Self {
        Compare::Exists { key: key.into() }
    }
    pub fn absent(key: impl Into<String>) -> Self {
        Compare::Absent { key: key.into() }
    }
    pub fn value_equals(key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Compare::ValueEquals {
            key: key.into(),
            value: value.into(),
        }
    }
    /// The key this compare looks at.
    pub fn key(&self) -> &str {
        match self {
            Compare::ModRevision { key, .. }
            | Compare::Exists { key }
            | Compare::Absent { key }
            | Compare::ValueEquals { key, .. } => key,
        }
    }
}

/// A write inside a [`Txn`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Creates or overwrites `key`. With `lease`, the key is deleted when the lease ends.
    Put {
        key: String,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    },
    /// Deletes `key` if it exists (no-op otherwise).
    Delete { key: String },
    /// Deletes every key starting with `prefix`.
    DeletePrefix { prefix: String },
}

impl Op {
    pub fn put(key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Op::Put {
            key: key.into(),
            value: value.into(),
            lease: None,
        }
    }
    pub fn put_with_lease(
        key: impl Into<String>,
        value: impl Into<Vec<u8>>,
        lease: LeaseId,
    ) -> Self {
        Op::Put {
            key: key.into(),
            value: value.into(),
            lease: Some(lease),
        }
    }
    /// A put of `value` serialized as JSON.
    pub fn put_json<T: serde::Serialize + ?Sized>(
        key: impl Into<String>,
        value: &T,
    ) -> Result<Self, crate::StoreError> {
        let key = key.into();
        let value = serde_json::to_vec(value).map_err(|source| crate::StoreError::Json {
            key: key.clone(),
            source,
        })?;
        Ok(Op::Put {
            key,
            value,
            lease: None,
        })
    }
    pub fn delete(key: impl Into<String>) -> Self {
        Op::Delete { key: key.into() }
    }
    pub fn delete_prefix(prefix: impl Into<String>) -> Self {
        Op::DeletePrefix {
            prefix: prefix.into(),
        }
    }
}

/// A compare-and-set transaction: if every compare holds, `success` runs, else `failure`.
///
/// ```
/// use slipway_store::{Compare, Op, Txn};
/// let txn = Txn::new()
///     .when(Compare::absent("apps/web"))
///     .then(Op::put("apps/web", b"{}".to_vec()))
///     .otherwise(Op::delete("tmp/x"));
/// assert_eq!(txn.success.len(), 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    pub compares: Vec<Compare>,
    pub success: Vec<Op>,
    pub failure: Vec<Op>,
}

impl Txn {
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a compare (all must hold).
    pub fn when(mut self, compare: Compare) -> Self {
        self.compares.push(compare);
        self
    }
    /// Adds an op to the success branch.
    pub fn then(mut self, op: Op) -> Self {
        self.success.push(op);
        self
    }
    /// Adds an op to the failure branch.
    pub fn otherwise(mut self, op: Op) -> Self {
        self.failure.push(op);
        self
    }

    /// Checks every key the transaction names, and refuses a lease on a key under an
    /// append-only prefix (`is_immutable`): the one rule both stores apply before writing.
    pub(crate) fn validate(
        &self,
        is_immutable: impl Fn(&str) -> bool,
    ) -> Result<(), crate::StoreError> {
        for c in &self.compares {
            validate_key(c.key())?;
        }
        for op in self.success.iter().chain(&self.failure) {
            match op {
                Op::Put { key, lease, .. } => {
                    validate_key(key)?;
                    if lease.is_some() && is_immutable(key) {
                        return Err(crate::StoreError::InvalidRequest {
                            reason: format!(
                                "key {key} is under an append-only prefix and cannot be attached to a lease (lease expiry would delete it)"
                            ),
                        });
                    }
                }
                Op::Delete { key } => validate_key(key)?,
                Op::DeletePrefix { prefix } => {
                    if prefix.contains('\0') {
                        return Err(crate::StoreError::InvalidRequest {
                            reason: format!("prefix {prefix:?} contains a NUL character"),
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

/// Result of [`crate::Store::txn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnResponse {
    /// Whether all compares held (the `success` branch ran).
    pub succeeded: bool,
    /// The new revision if the txn wrote something, otherwise the current revision.
    pub revision: Revision,
}

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change seen by a [`crate::Watcher`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: EventKind,
    /// The key after the change. For `Delete`: the key, `mod_revision` = revision of the
    /// delete, empty value, `create_revision`/`version` 0 and no lease.
    pub kv: KeyValue,
    /// The key before the change, if it existed.
    pub prev: Option<KeyValue>,
}

impl WatchEvent {
    /// The revision at which this change happened.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}
