//! Self-fencing: an agent that cannot renew its host's lease stops its own dynos before the
//! control plane can give them to another host.
//!
//! The control plane fences a host when its lease has not been renewed for the lease's TTL,
//! counted from when the renewal arrived; the agent counts from when it *sent* its last
//! successful renewal, which is earlier, and gives up after two thirds of the TTL (the leader
//! election's rule). So a cut-off agent has stopped its dynos before their replacements are
//! placed, and at no time do more dynos run than the formation allows.

use std::time::Duration;

use tokio::time::Instant;

#[cfg(test)]
mod tests;

/// Whether the host's lease may still hold, from the agent's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lease {
    /// Not registered yet (or fenced and not registered again): nothing may run.
    None,
    /// The last renewal that succeeded was sent at `sent`, for a lease of `ttl`.
    Held { sent: Instant, ttl: Duration },
}

impl Lease {
    /// After a sync sent at `sent` succeeded with a lease of `ttl`.
    pub(crate) fn renewed(sent: Instant, ttl: Duration) -> Lease {
        Lease::Held { sent, ttl }
    }

    /// When the agent must stop its dynos unless it renews first; `None`: no lease to lose.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self {
            Lease::None => None,
            Lease::Held { sent, ttl } => Some(*sent + *ttl * 2 / 3),
        }
    }

    /// Whether the agent must fence itself at `now`.
    pub(crate) fn must_fence(&self, now: Instant) -> bool {
        self.deadline().is_some_and(|deadline| now >= deadline)
    }
}
