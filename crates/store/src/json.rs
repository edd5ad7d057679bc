//! Convenience helpers for keeping serde values (as JSON) in a [`Store`].

use crate::{Compare, KeyValue, Op, Revision, Store, StoreError, Txn};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Reads `key` and decodes it as JSON; `None` if absent.
pub async fn get_json<T, S>(store: &S, key: &str) -> Result<Option<T>, StoreError>
where
    T: DeserializeOwned,
    S: Store + ?Sized,
{
    Ok(get_json_versioned(store, key).await?.map(|(v, _)| v))
}

/// Reads `key` as JSON together with its `mod_revision`, for a later compare-and-set
/// (`Compare::mod_revision(key, rev)`).
pub async fn get_json_versioned<T, S>(
    store: &S,
    key: &str,
) -> Result<Option<(T, Revision)>, StoreError>
where
    T: DeserializeOwned,
    S: Store + ?Sized,
{
    match store.get(key).await? {
        Some(kv) => Ok(Some((kv.json()?, kv.mod_revision))),
        None => Ok(None),
    }
}

/// Writes `value` as JSON under `key`; returns the revision of the write.
pub async fn put_json<T, S>(store: &S, key: &str, value: &T) -> Result<Revision, StoreError>
where
    T: Serialize + ?Sized,
    S: Store + ?Sized,
{
    let bytes = serde_json::to_vec(value).map_err(|source| StoreError::Json {
        key: key.to_string(),
        source,
    })?;
    store.put(key, bytes).await
}

/// Applies `op` if `compare` holds, in one transaction: the compare-and-set of one record
/// (create if absent, change if it still exists or is still at the revision read). Whether
/// `compare` held, so the caller can say what changed meanwhile.
pub async fn apply_if<S>(store: &S, compare: Compare, op: Op) -> Result<bool, StoreError>
where
    S: Store + ?Sized,
{
    Ok(store
        .txn(Txn::new().when(compare).then(op))
        .await?
        .succeeded)
}

/// Reads every key under `prefix` and decodes each as JSON, with the read revision.
pub async fn range_json<T, S>(
    store: &S,
    prefix: &str,
) -> Result<(Vec<(KeyValue, T)>, Revision), StoreError>
where
    T: DeserializeOwned,
    S: Store + ?Sized,
{
    let (kvs, rev) = store.range(prefix).await?;
    let mut out = Vec::with_capacity(kvs.len());
    for kv in kvs {
        let v = kv.json()?;
        out.push((kv, v));
    }
    Ok((out, rev))
}
