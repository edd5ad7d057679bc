//! Placement: which host a new dyno goes to. Pure: hosts and what is placed on them in, a host
//! name out; no IO, clock or randomness, so every rule is a table test.
//!
//! The rules, in order: a container already placed anywhere (a live host or a fenced one whose
//! assignments are not yet released) is never placed again, so a dyno never runs on two hosts;
//! a host must have the dyno's memory free (its registered capacity minus what is placed on
//! it); among those, the host with the fewest dynos of the same app and process type wins
//! (spread), then the one with the most free memory, then the first by name (determinism).

#[cfg(test)]
mod tests;

/// A live host: registered, its lease held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Host {
    pub(crate) name: String,
    pub(crate) memory_mb: u64,
}

/// A container placed on a host (live or fenced).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placed {
    pub(crate) host: String,
    pub(crate) container: String,
    pub(crate) app: String,
    pub(crate) process_type: String,
    pub(crate) memory_mb: u64,
}

/// The dyno to place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) container: String,
    pub(crate) app: String,
    pub(crate) process_type: String,
    pub(crate) memory_mb: u64,
}

/// The host for `request`, or `None` when it is already placed or no live host has room.
pub(crate) fn place(hosts: &[Host], placed: &[Placed], request: &Request) -> Option<String> {
    if placed.iter().any(|p| p.container == request.container) {
        return None;
    }
    hosts
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
}
