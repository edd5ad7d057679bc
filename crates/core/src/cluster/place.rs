//! Placement: which host a new dyno goes to. Pure: hosts and what is placed on them in, a host
//! name or the reason for a refusal out; no IO, clock or randomness (how long ago a lost host's
//! lease expired is an argument), so every rule is a table test.
//!
//! The rules, in order: a container already placed anywhere (a live host or a fenced one whose
//! assignments are not yet released) is never placed again, so a dyno never runs on two hosts;
//! the formation cap holds (below); a host must have the dyno's memory free (its registered
//! capacity minus what is placed on it); among those, the host with the fewest dynos of the
//! same app and process type wins (spread), then the one with the most free memory, then the
//! first by name (determinism).
//!
//! The formation cap: at no time do more dynos of a type run than its formation allows,
//! counting those of a lost host that may still be running. A live host's dynos count once per
//! dyno name (`web.3`): the dyno manager replaces a web dyno with preboot, its replacement
//! booting beside it under the same name, and that pair is one slot of the formation; a dyno
//! with a stop order does not count (it is on its way out, and a restart must not wait for it).
//! A lost host's dynos each count, whatever their names, until its lease has been expired for
//! the fencing margin: its agent stops them itself at two thirds of the lease's TTL, so by then
//! they are gone. A lost host whose expiry this control plane did not see (it started later)
//! counts as lost just now.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

#[cfg(test)]
mod tests;

/// A live host: registered, its lease held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Host {
    pub(crate) name: String,
    pub(crate) memory_mb: u64,
}

/// A container placed on a host (live or lost).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placed {
    pub(crate) host: String,
    pub(crate) container: String,
    pub(crate) app: String,
    pub(crate) process_type: String,
    /// Its dyno's name (`web.3`).
    pub(crate) dyno: String,
    pub(crate) memory_mb: u64,
    /// It has a stop order.
    pub(crate) stopping: bool,
}

/// The dyno to place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) container: String,
    pub(crate) app: String,
    pub(crate) process_type: String,
    pub(crate) dyno: String,
    pub(crate) memory_mb: u64,
    /// Its process type's formation quantity; `None`: unknown, no cap.
    pub(crate) formation: Option<u32>,
}

/// What placement knows of the cluster's hosts.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fleet<'a> {
    /// The live hosts.
    pub(crate) hosts: &'a [Host],
    /// How long ago each lost host's lease expired, as this control plane saw it.
    pub(crate) lost: BTreeMap<String, Duration>,
    /// How long past its lease's expiry a lost host's dynos may still run.
    pub(crate) margin: Duration,
}

/// Why a dyno was not placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("it is already placed on host {host}")]
    AlreadyPlaced { host: String },
    #[error(
        "{running} {process_type} dynos may still run (lost hosts' included) and the formation allows {formation}"
    )]
    FormationFull {
        process_type: String,
        running: u32,
        formation: u32,
    },
    #[error("no cluster host has {memory_mb} MB free for it ({hosts} hosts registered)")]
    NoRoom { memory_mb: u64, hosts: usize },
}

/// The host for `request`, or why there is none.
pub(crate) fn place(
    fleet: &Fleet<'_>,
    placed: &[Placed],
    request: &Request,
) -> Result<String, Refusal> {
    if let Some(already) = placed.iter().find(|p| p.container == request.container) {
        return Err(Refusal::AlreadyPlaced {
            host: already.host.clone(),
        });
    }
    if let Some(formation) = request.formation {
        let (running, new_slot) = may_run(fleet, placed, request);
        if running.saturating_add(u32::from(new_slot)) > formation {
            return Err(Refusal::FormationFull {
                process_type: request.process_type.clone(),
                running,
                formation,
            });
        }
    }
    fleet
        .hosts
        .iter()
        .filter_map(|host| {
            let on_host = placed.iter().filter(|p| p.host == host.name);
            let used: u64 = on_host.clone().map(|p| p.memory_mb).sum();
            let free = host.memory_mb.saturating_sub(used);
            let same = on_host
                .filter(|p| p.app == request.app && p.process_type == request.process_type)
                .count();
            (free >= request.memory_mb).then_some((same, std::cmp::Reverse(free), &host.name))
        })
        .min()
        .map(|(_, _, name)| name.clone())
        .ok_or(Refusal::NoRoom {
            memory_mb: request.memory_mb,
            hosts: fleet.hosts.len(),
        })
}

/// How many dynos of the request's app and process type may run now (see the module doc for
/// what counts), and whether the request takes a slot of its own (a new dyno name rather than
/// a preboot replacement).
fn may_run(fleet: &Fleet<'_>, placed: &[Placed], request: &Request) -> (u32, bool) {
    let same = placed
        .iter()
        .filter(|p| p.app == request.app && p.process_type == request.process_type);
    let mut slots: BTreeSet<&str> = BTreeSet::new();
    let mut lost: u32 = 0;
    for p in same {
        if fleet.hosts.iter().any(|h| h.name == p.host) {
            if !p.stopping {
                slots.insert(&p.dyno);
            }
        } else if fleet
            .lost
            .get(&p.host)
            .is_none_or(|since| *since < fleet.margin)
        {
            lost = lost.saturating_add(1);
        }
    }
    let running = u32::try_from(slots.len())
        .unwrap_or(u32::MAX)
        .saturating_add(lost);
    (running, !slots.contains(request.dyno.as_str()))
}
