//! The one-off dynos of every app as the core holds them in memory: their records, where each
//! is in its life ([`Phase`]), the secrets attached ones wait for, and the cap per app. Pure
//! bookkeeping under one lock, with time passed in, so its rules are tested without
//! containers; `oneoff.rs` does the IO around it. The platform holds one ([`OneOffs`]).
//!
//! Secrets are kept only as their SHA-256: a lookup compares digests, so how long a failed
//! lookup takes says nothing about the secret, and a memory dump holds no usable secret. A
//! claimed or expired secret is remembered (as its digest) for [`SPENT_MEMORY`], so that a
//! second use is told "already used" or "expired" rather than "unknown".

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use slipway_rendezvous::ClaimError;
use slipway_runtime::{Attach, ContainerSpec};
use uuid::Uuid;

use crate::model::{Dyno, Slug};

/// How long a spent secret is remembered as such.
pub(crate) const SPENT_MEMORY: Duration = Duration::from_secs(15 * 60);

/// The digest a secret is known by.
pub(crate) type SecretDigest = [u8; 32];

pub(crate) fn digest(secret: &str) -> SecretDigest {
    Sha256::digest(secret.as_bytes()).into()
}

/// What an attached one-off dyno needs to start once its client claims it.
#[derive(Debug)]
pub(crate) struct Pending {
    /// Complete but for its `app_dir` (the slug is unpacked when the dyno starts).
    pub(crate) spec: ContainerSpec,
    pub(crate) slug: Slug,
    pub(crate) uid: u32,
    pub(crate) attach: Attach,
    pub(crate) secret: SecretDigest,
    /// When its time to live runs out (counted from its creation).
    pub(crate) deadline: Instant,
}

/// Where a one-off dyno is in its life. Never restarted: it only moves forward.
#[derive(Debug)]
pub(crate) enum Phase {
    /// Attached, waiting for its client to claim the secret.
    Waiting(Box<Pending>),
    /// Its container is being started.
    Starting,
    /// Its process runs.
    Up,
    /// A stop was asked for (`ps:stop`, time to live, R16); the exit is awaited.
    Stopping,
}

impl Phase {
    pub(crate) fn can_start(&self) -> bool {
        matches!(self, Phase::Waiting(_))
    }

    pub(crate) fn can_stop(&self) -> bool {
        matches!(self, Phase::Starting | Phase::Up)
    }
}

/// One one-off dyno.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) record: Dyno,
    pub(crate) phase: Phase,
    /// Told when the dyno should end (`ps:stop`); its supervisor listens.
    pub(crate) stop: Arc<tokio::sync::Notify>,
}

/// Why a secret was spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spent {
    Claimed,
    Expired,
}

/// What stopping a one-off dyno found.
#[derive(Debug)]
pub(crate) enum StopFound {
    /// An attached dyno nobody claimed yet: it is gone from the registry (no container).
    Unclaimed(Box<Dyno>),
    /// A running one: its supervisor has been told.
    Told,
    /// It is already stopping or not started yet: nothing more to do.
    Nothing,
}

#[derive(Debug, Default)]
struct Inner {
    /// By app, by dyno name.
    dynos: HashMap<Uuid, BTreeMap<String, Entry>>,
    /// Secrets waiting for their claim: the dyno each opens.
    waiting: HashMap<SecretDigest, (Uuid, String)>,
    spent: HashMap<SecretDigest, (Spent, Instant)>,
}

/// The platform's one-off dynos.
#[derive(Debug, Default)]
pub(crate) struct OneOffs {
    inner: Mutex<Inner>,
    /// Slugs unpacked for one-off dynos (as the dyno manager keeps its own).
    pub(crate) unpacked: tokio::sync::Mutex<HashSet<String>>,
}

/// The cap was reached.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct CapReached;

impl OneOffs {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .expect("the one-off registry's lock is never held across a panic")
    }

    /// Picks a free `run.N` for `app` and records `make(name)` under it as `Starting`, unless
    /// the app already has `cap` one-off dynos. `taken` are names the app's other dynos have.
    pub(crate) fn reserve(
        &self,
        app: Uuid,
        cap: u32,
        taken: &HashSet<String>,
        mut number: impl FnMut() -> u32,
        make: impl FnOnce(&str) -> Dyno,
    ) -> Result<Dyno, CapReached> {
        let mut inner = self.lock();
        let dynos = inner.dynos.entry(app).or_default();
        if dynos.len() >= cap as usize {
            return Err(CapReached);
        }
        let name = loop {
            let name = format!("run.{}", number());
            if !dynos.contains_key(&name) && !taken.contains(&name) {
                break name;
            }
        };
        let record = make(&name);
        dynos.insert(
            name,
            Entry {
                record: record.clone(),
                phase: Phase::Starting,
                stop: Arc::new(tokio::sync::Notify::new()),
            },
        );
        Ok(record)
    }

    /// How many one-off dynos `app` has.
    pub(crate) fn count(&self, app: Uuid) -> usize {
        self.lock().dynos.get(&app).map_or(0, BTreeMap::len)
    }

    /// The names of `app`'s one-off dynos.
    pub(crate) fn names(&self, app: Uuid) -> Vec<String> {
        self.lock()
            .dynos
            .get(&app)
            .map(|dynos| dynos.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// A started dyno's record as it is now (`Up`), and its stop signal.
    pub(crate) fn mark_up(&self, app: Uuid, record: &Dyno) -> Option<Arc<tokio::sync::Notify>> {
        let mut inner = self.lock();
        let entry = inner.dynos.get_mut(&app)?.get_mut(&record.name)?;
        if matches!(entry.phase, Phase::Starting) {
            entry.phase = Phase::Up;
        }
        entry.record = record.clone();
        Some(entry.stop.clone())
    }

    /// Makes an attached dyno wait for its client's secret.
    pub(crate) fn wait_for_claim(&self, app: Uuid, name: &str, pending: Pending) {
        let mut inner = self.lock();
        let secret = pending.secret;
        let Some(entry) = inner.dynos.get_mut(&app).and_then(|d| d.get_mut(name)) else {
            return;
        };
        entry.phase = Phase::Waiting(Box::new(pending));
        inner.waiting.insert(secret, (app, name.to_owned()));
    }

    /// Claims the dyno waiting for `secret` (once): it moves to `Starting` and its start is
    /// the caller's.
    pub(crate) fn claim(
        &self,
        secret: &SecretDigest,
        now: Instant,
    ) -> Result<(Dyno, Box<Pending>), ClaimError> {
        let mut inner = self.lock();
        inner
            .spent
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < SPENT_MEMORY);
        if let Some((spent, _)) = inner.spent.get(secret) {
            return Err(match spent {
                Spent::Claimed => ClaimError::AlreadyUsed,
                Spent::Expired => ClaimError::Expired,
            });
        }
        let Some((app, name)) = inner.waiting.remove(secret) else {
            return Err(ClaimError::Unknown);
        };
        inner.spent.insert(*secret, (Spent::Claimed, now));
        let Some(entry) = inner.dynos.get_mut(&app).and_then(|d| d.get_mut(&name)) else {
            return Err(ClaimError::Unknown);
        };
        if !entry.phase.can_start() {
            return Err(ClaimError::AlreadyUsed);
        }
        let Phase::Waiting(pending) = std::mem::replace(&mut entry.phase, Phase::Starting) else {
            return Err(ClaimError::AlreadyUsed);
        };
        Ok((entry.record.clone(), pending))
    }

    /// Ends the wait of an attached dyno nobody claimed: returns its record (now removed) if
    /// it was still waiting for `secret`.
    pub(crate) fn expire(
        &self,
        app: Uuid,
        name: &str,
        secret: &SecretDigest,
        now: Instant,
    ) -> Option<Dyno> {
        let mut inner = self.lock();
        if inner.waiting.get(secret) != Some(&(app, name.to_owned())) {
            return None;
        }
        inner.waiting.remove(secret);
        inner.spent.insert(*secret, (Spent::Expired, now));
        let dynos = inner.dynos.get_mut(&app)?;
        let entry = dynos.remove(name)?;
        if dynos.is_empty() {
            inner.dynos.remove(&app);
        }
        Some(entry.record)
    }

    /// Asks a one-off dyno to stop (see [`StopFound`]); `None`: `app` has no such dyno.
    pub(crate) fn stop(&self, app: Uuid, name: &str, now: Instant) -> Option<StopFound> {
        let mut inner = self.lock();
        let entry = inner.dynos.get_mut(&app)?.get_mut(name)?;
        if let Phase::Waiting(pending) = &entry.phase {
            let secret = pending.secret;
            inner.waiting.remove(&secret);
            inner.spent.insert(secret, (Spent::Expired, now));
            let dynos = inner.dynos.get_mut(&app)?;
            let entry = dynos.remove(name)?;
            if dynos.is_empty() {
                inner.dynos.remove(&app);
            }
            return Some(StopFound::Unclaimed(Box::new(entry.record)));
        }
        if !entry.phase.can_stop() {
            return Some(StopFound::Nothing);
        }
        let was_up = matches!(entry.phase, Phase::Up);
        entry.phase = Phase::Stopping;
        // A dyno still starting is stopped by its starter once it is up (it checks).
        if was_up {
            entry.stop.notify_one();
        }
        Some(StopFound::Told)
    }

    /// Whether a dyno was asked to stop while it was starting.
    pub(crate) fn stop_asked(&self, app: Uuid, name: &str) -> bool {
        self.lock()
            .dynos
            .get(&app)
            .and_then(|d| d.get(name))
            .is_some_and(|entry| matches!(entry.phase, Phase::Stopping))
    }

    /// Forgets a dyno (it exited, or its start failed).
    pub(crate) fn remove(&self, app: Uuid, name: &str) {
        let mut inner = self.lock();
        if let Some(dynos) = inner.dynos.get_mut(&app) {
            dynos.remove(name);
            if dynos.is_empty() {
                inner.dynos.remove(&app);
            }
        }
    }
}

#[cfg(test)]
mod tests;
