//! A uid (and gid, the same number) per app, so that no two tenants share a kernel identity:
//! not their files in `/tmp` or the ephemeral layer, not their keyrings, not their per-user
//! limits (inotify instances and watches, processes, message queues).
//!
//! Uids come from `PlatformConfig::app_uids` (`slipway server --dyno-uid-range`). An app's uid
//! is claimed in the store under `uids/<uid>` (value: the app's id) in the same transaction
//! that writes the app, with a compare that the claim is absent: two concurrent creates can
//! never get the same uid, whatever the number of servers. The app record keeps its uid
//! (`App::uid`) for its lifetime; deleting the app deletes the claim. `uid-cursor` remembers
//! where the last allocation stopped, so a destroyed app's uid is handed out again only after
//! the whole range has been used once (files it left in a host directory are not inherited
//! by the next app straight away).
//!
//! Apps created before uids per app have no uid; [`Platform::app_uid`] gives them one on
//! first use (a dyno start, a release phase, a build), compare-and-set on the app record.

use std::collections::HashSet;

use slipway_store::{Compare, Op, Txn};
use uuid::Uuid;

use crate::dyno_manager::AppUids;
use crate::error::CoreError;
use crate::model::{keys, App};
use crate::platform::Platform;

/// How often an allocation is retried when another one took the same uid first.
const ATTEMPTS: usize = 20;

/// A uid to claim for an app, and what the transaction writing the app must also do.
pub(crate) struct UidClaim {
    pub(crate) uid: u32,
    pub(crate) compares: Vec<Compare>,
    pub(crate) ops: Vec<Op>,
}

impl UidClaim {
    pub(crate) fn apply(self, mut txn: Txn) -> Txn {
        for compare in self.compares {
            txn = txn.when(compare);
        }
        for op in self.ops {
            txn = txn.then(op);
        }
        txn
    }
}

impl Platform {
    /// The uid (and gid) `app`'s containers run as; gives an app from before uids per app
    /// its own now.
    pub(crate) async fn app_uid(&self, app: &App) -> Result<u32, CoreError> {
        if let Some(uid) = app.uid {
            return Ok(uid);
        }
        let key = keys::app(&app.name);
        for _ in 0..ATTEMPTS {
            let (current, revision) = self.app_record(app).await?;
            if let Some(uid) = current.uid {
                return Ok(uid);
            }
            let claim = self.uid_claim(app.id).await?;
            let uid = claim.uid;
            let updated = App {
                uid: Some(uid),
                ..current
            };
            let txn = claim.apply(
                Txn::new()
                    .when(Compare::mod_revision(key.clone(), revision))
                    .then(Op::put_json(key.clone(), &updated)?),
            );
            if self.store().txn(txn).await?.succeeded {
                tracing::info!(app = %app.name, uid, "gave an app from before uids per app its own uid");
                return Ok(uid);
            }
        }
        Err(uid_contention())
    }

    /// Picks a uid for the app `app_id`: the one it already holds a claim on (a claim whose
    /// app record was written without it), else the first free one from the cursor on,
    /// wrapping around the range. The claim is only made by the transaction it is applied to.
    pub(crate) async fn uid_claim(&self, app_id: Uuid) -> Result<UidClaim, CoreError> {
        let range = self.config().app_uids.clone();
        let (claims, _) = self.store().range(keys::UIDS).await?;
        let mut taken = HashSet::with_capacity(claims.len());
        for claim in &claims {
            let Some(uid) = claim
                .key
                .strip_prefix(keys::UIDS)
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if claim.value == app_id.to_string().as_bytes() {
                // Already ours: write it into the app record again, changing nothing.
                return Ok(UidClaim {
                    uid,
                    compares: vec![Compare::value_equals(
                        keys::uid(uid),
                        app_id.to_string().into_bytes(),
                    )],
                    ops: Vec::new(),
                });
            }
            taken.insert(uid);
        }
        let cursor = self
            .store()
            .get(keys::UID_CURSOR)
            .await?
            .and_then(|kv| {
                std::str::from_utf8(&kv.value)
                    .ok()?
                    .trim()
                    .parse::<u32>()
                    .ok()
            })
            .filter(|c| range.contains(c))
            .unwrap_or(*range.start());
        let uid = (cursor..=*range.end())
            .chain(*range.start()..cursor)
            .find(|uid| !taken.contains(uid))
            .ok_or_else(|| CoreError::Conflict {
                message: format!(
                    "No uid is free for a new app: all {} uids of the range {}-{} are in use. Destroy apps you no longer need, or restart the server with a wider --dyno-uid-range.",
                    u64::from(*range.end()) - u64::from(*range.start()) + 1,
                    range.start(),
                    range.end()
                ),
            })?;
        let next = if uid >= *range.end() {
            *range.start()
        } else {
            uid + 1
        };
        Ok(UidClaim {
            uid,
            compares: vec![Compare::absent(keys::uid(uid))],
            ops: vec![
                Op::put(keys::uid(uid), app_id.to_string().into_bytes()),
                Op::put(keys::UID_CURSOR, next.to_string().into_bytes()),
            ],
        })
    }

    /// The deletes of every uid claim `app_id` holds, for the transaction deleting the app.
    pub(crate) async fn uid_releases(&self, app_id: Uuid) -> Result<Vec<Op>, CoreError> {
        let (claims, _) = self.store().range(keys::UIDS).await?;
        Ok(claims
            .into_iter()
            .filter(|claim| claim.value == app_id.to_string().as_bytes())
            .map(|claim| Op::delete(claim.key))
            .collect())
    }
}

fn uid_contention() -> CoreError {
    CoreError::Conflict {
        message:
            "Could not give the app a uid: too many apps are being created at once. Try again."
                .into(),
    }
}

/// Parses `--dyno-uid-range` (`FIRST-LAST`): at least one uid, none below 1000 (system users)
/// and none at or above 2^31 - 1 (`nobody`-style and overflow-prone ids).
pub fn parse_uid_range(text: &str) -> Result<std::ops::RangeInclusive<u32>, String> {
    let bad = || {
        format!(
            "invalid uid range {text:?}: write FIRST-LAST, e.g. 100000-165535, with 1000 <= FIRST <= LAST < 2147483647"
        )
    };
    let (first, last) = text.split_once('-').ok_or_else(bad)?;
    let first: u32 = first.trim().parse().map_err(|_| bad())?;
    let last: u32 = last.trim().parse().map_err(|_| bad())?;
    if first < 1000 || first > last || last >= i32::MAX as u32 {
        return Err(bad());
    }
    Ok(first..=last)
}

/// The dyno manager asks for uids through this trait, so it holds no [`Platform`].
#[async_trait::async_trait]
impl AppUids for Platform {
    async fn app_uid(&self, app: &App) -> Result<u32, CoreError> {
        Platform::app_uid(self, app).await
    }
}

#[cfg(test)]
mod tests;
