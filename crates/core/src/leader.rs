//! Leader election for the platform's singletons (the dyno manager, the backup scheduler)
//! when several `slipway server` processes share one store, using only the [`Store`] trait:
//! a lease, and a leader key created under it with a compare-and-set on its absence.
//!
//! A server campaigns by granting a lease and creating [`LEADER_KEY`] under it if nobody
//! holds it; otherwise it watches the key and tries again when it is deleted (its holder
//! resigned, or its lease expired because the holder died or lost the store). The leader
//! renews its lease every third of the TTL and steps down, stopping its singletons, as soon
//! as a renewal fails for LeaseNotFound, the key is no longer its own, or it has not managed
//! to renew for two thirds of the TTL: by then it cannot be sure the lease still holds, and
//! stepping down before the lease can expire is what keeps two leaders from acting at once.
//! [`Term::fence`] is the leader's fencing token: a compare on the leader key's
//! `mod_revision`, which a deposed leader's writes fail; the singletons get the store as a
//! [`FencedStore`], which adds it to every write.

use slipway_store::{Compare, EventKind, LeaseId, Op, Revision, Store, StoreError, Txn};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The key the leader of the singletons holds; its value is the leader's identity.
pub const LEADER_KEY: &str = "leader/singletons";

/// The leader's lease (Kubernetes' controllers use 15 s; shorter here so that the platform
/// takes over a dead server's dyno manager within 10 s).
pub const LEADER_TTL: Duration = Duration::from_secs(5);

/// One term of leadership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    /// The lease the leader key lives under.
    pub lease: LeaseId,
    /// The revision that created the leader key: unique to this term.
    pub revision: Revision,
}

impl Term {
    /// A compare that holds only while this term lasts: add it to a write that only the
    /// leader may make.
    pub fn fence(&self) -> Compare {
        Compare::mod_revision(LEADER_KEY, self.revision)
    }
}

/// A candidate for leadership of the singletons.
pub struct Election {
    store: Arc<dyn Store>,
    identity: String,
    ttl: Duration,
}

impl Election {
    /// A candidate named `identity` (shown as the leader key's value) with leases of `ttl`.
    pub fn new(store: Arc<dyn Store>, identity: impl Into<String>, ttl: Duration) -> Election {
        Election {
            store,
            identity: identity.into(),
            ttl,
        }
    }

    /// Waits until this candidate is elected; returns its term.
    pub async fn campaign(&self) -> Result<Term, StoreError> {
        loop {
            let lease = self.store.grant_lease(self.ttl).await?;
            let created = self
                .store
                .txn(
                    Txn::new()
                        .when(Compare::absent(LEADER_KEY))
                        .then(Op::put_with_lease(
                            LEADER_KEY,
                            self.identity.as_bytes().to_vec(),
                            lease,
                        )),
                )
                .await;
            match created {
                Ok(response) if response.succeeded => {
                    return Ok(Term {
                        lease,
                        revision: response.revision,
                    })
                }
                Ok(_) => {}
                Err(error) => {
                    let _ = self.store.revoke(lease).await;
                    return Err(error);
                }
            }
            // Someone else leads: the unused lease goes, and the key is watched until it
            // vanishes (or for a TTL, after which the attempt is simply made again).
            let _ = self.store.revoke(lease).await;
            self.wait_for_vacancy().await?;
        }
    }

    async fn wait_for_vacancy(&self) -> Result<(), StoreError> {
        let (held, revision) = self.store.range(LEADER_KEY).await?;
        if !held.iter().any(|kv| kv.key == LEADER_KEY) {
            return Ok(());
        }
        let mut watcher = self.store.watch(LEADER_KEY, Some(revision)).await?;
        let vacated = async {
            while let Some(event) = watcher.next().await {
                let event = event?;
                if event.kv.key == LEADER_KEY && event.kind == EventKind::Delete {
                    return Ok(());
                }
            }
            Ok(())
        };
        tokio::time::timeout(self.ttl, vacated)
            .await
            .unwrap_or(Ok(()))
    }

    /// Keeps `term` alive; returns once it is over (see the module doc for when).
    pub async fn hold(&self, term: Term) {
        let renew_every = self.ttl / 3;
        let give_up_after = self.ttl * 2 / 3;
        let mut renewed = Instant::now();
        let mut tick = tokio::time::interval(renew_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            let next = tick.tick();
            let deadline = tokio::time::sleep_until(renewed + give_up_after);
            tokio::select! {
                _ = next => {}
                _ = deadline => {
                    tracing::warn!(lease = term.lease, "could not renew the leader lease in time; stepping down");
                    return;
                }
            }
            let attempt = Instant::now();
            // An attempt is cut short after half the renewal interval (and at the deadline),
            // then retried at once: a request sent to a store member that just became
            // unreachable (its host cut off) hangs until the connection is declared dead, long
            // after the lease expired, while a retry goes to a member that answers.
            let budget =
                (renew_every / 2).min((renewed + give_up_after).saturating_duration_since(attempt));
            match tokio::time::timeout(budget, self.still_leading(term)).await {
                Ok(Ok(true)) => renewed = attempt,
                Ok(Ok(false)) => return,
                Ok(Err(error)) => {
                    tracing::warn!(%error, "renewing the leader lease failed; retrying");
                }
                Err(_) => {
                    tracing::warn!(
                        ?budget,
                        "renewing the leader lease did not answer in time; retrying"
                    );
                    tick.reset_immediately();
                }
            }
        }
    }

    async fn still_leading(&self, term: Term) -> Result<bool, StoreError> {
        match self.store.keep_alive(term.lease).await {
            Ok(()) => {}
            Err(StoreError::LeaseNotFound { .. }) => {
                tracing::warn!(
                    lease = term.lease,
                    "the leader lease expired; stepping down"
                );
                return Ok(false);
            }
            Err(error) => return Err(error),
        }
        let ours = self
            .store
            .get(LEADER_KEY)
            .await?
            .is_some_and(|kv| kv.mod_revision == term.revision);
        if !ours {
            tracing::warn!("the leader key is no longer this server's; stepping down");
        }
        Ok(ours)
    }

    /// Gives up `term` at once, so that another server takes over without waiting for the
    /// lease to expire.
    pub async fn resign(&self, term: Term) -> Result<(), StoreError> {
        match self.store.revoke(term.lease).await {
            Ok(()) | Err(StoreError::LeaseNotFound { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// The store as a leader's singletons see it: reads, watches and leases pass through; every
/// write carries the term's fence, so a deposed leader's write fails with
/// [`StoreError::NotLeader`] instead of landing.
///
/// A txn's own compares decide between its branches as usual; the fence is checked with
/// them. When the txn does not succeed, the fence is read again: if it failed, the write is
/// refused; if it held, the user's compares failed and the failure branch runs in a second,
/// fenced, txn (so a failure branch is not atomic with the compares; the singletons'
/// writes have none).
pub struct FencedStore {
    inner: Arc<dyn Store>,
    term: Term,
}

impl FencedStore {
    /// `inner`, fenced by `term`.
    pub fn new(inner: Arc<dyn Store>, term: Term) -> FencedStore {
        FencedStore { inner, term }
    }

    async fn fence_holds(&self) -> Result<bool, StoreError> {
        Ok(self
            .inner
            .get(LEADER_KEY)
            .await?
            .is_some_and(|kv| kv.mod_revision == self.term.revision))
    }

    fn not_leader() -> StoreError {
        StoreError::NotLeader {
            key: LEADER_KEY.to_owned(),
        }
    }
}

#[async_trait::async_trait]
impl Store for FencedStore {
    async fn get(&self, key: &str) -> Result<Option<slipway_store::KeyValue>, StoreError> {
        self.inner.get(key).await
    }

    async fn range(
        &self,
        prefix: &str,
    ) -> Result<(Vec<slipway_store::KeyValue>, Revision), StoreError> {
        self.inner.range(prefix).await
    }

    async fn txn(&self, txn: Txn) -> Result<slipway_store::TxnResponse, StoreError> {
        let Txn {
            compares,
            success,
            failure,
        } = txn;
        let mut fenced = Txn::new().when(self.term.fence());
        fenced.compares.extend(compares);
        fenced.success = success;
        let response = self.inner.txn(fenced).await?;
        if response.succeeded {
            return Ok(response);
        }
        if !self.fence_holds().await? {
            return Err(Self::not_leader());
        }
        if failure.is_empty() {
            return Ok(response);
        }
        let mut otherwise = Txn::new().when(self.term.fence());
        otherwise.success = failure;
        let second = self.inner.txn(otherwise).await?;
        if !second.succeeded {
            return Err(Self::not_leader());
        }
        Ok(slipway_store::TxnResponse {
            succeeded: false,
            revision: second.revision,
        })
    }

    async fn watch(
        &self,
        prefix: &str,
        after: Option<Revision>,
    ) -> Result<slipway_store::Watcher, StoreError> {
        self.inner.watch(prefix, after).await
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        self.inner.grant_lease(ttl).await
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.inner.keep_alive(lease).await
    }

    async fn revoke(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.inner.revoke(lease).await
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        self.inner.current_revision().await
    }
}

/// Tasks that end when this is dropped.
struct AbortOnDrop(Vec<JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Runs the singletons `start` starts only while this server leads: campaigns, starts them
/// when elected (giving them the store fenced by the term), stops them when the term ends,
/// and campaigns again. Aborting the returned task stops them too (and lets the lease
/// expire).
pub fn run_while_leader<F>(election: Election, start: F) -> JoinHandle<()>
where
    F: Fn(Arc<dyn Store>) -> Vec<JoinHandle<()>> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let term = match election.campaign().await {
                Ok(term) => term,
                Err(error) => {
                    tracing::error!(%error, "campaigning for leadership failed; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            tracing::info!(
                identity = %election.identity,
                revision = term.revision,
                "this server leads: starting the dyno manager and the other singletons"
            );
            let fenced: Arc<dyn Store> = Arc::new(FencedStore::new(election.store.clone(), term));
            let singletons = AbortOnDrop(start(fenced));
            election.hold(term).await;
            drop(singletons);
            tracing::warn!("this server no longer leads: its singletons are stopped");
        }
    })
}

#[cfg(test)]
mod tests;
