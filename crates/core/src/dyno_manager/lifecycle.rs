//! A dyno's lifecycle as an explicit state machine: what state it is in, with the data that
//! state needs (a boot deadline, a crash's place on the backoff ladder, a stop's deadline), and
//! `can_*` checks that guard every transition.
//!
//! The planner only proposes transitions; the executor applies them through
//! [`Lifecycle::transition`], so a transition the machine does not allow is a typed error and
//! never silently accepted. Each variant shows as one of Heroku's dyno states
//! ([`Lifecycle::state`]): `starting`, `up`, `crashed`, `down` or `idle`.

use std::time::Instant;

use crate::model::DynoState;

/// Where a dyno is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// Its container is being created or its process is booting.
    Starting { boot: Boot },
    /// Running; a web dyno accepts connections on `$PORT`.
    Up,
    /// Its process exited without being asked to. It is started again at `restart_at`, which
    /// the `step`th entry (from 0) of the crash backoff ladder set.
    Crashed { step: u32, restart_at: Instant },
    /// Asked to stop (SIGTERM; SIGKILL at `deadline`); once its container is gone it becomes
    /// `then`'s state.
    Stopping { deadline: Instant, then: AfterStop },
    /// Stopped for good (scaled down); its record is removed next.
    Down,
    /// Asleep (an eco app without traffic): no container, woken by the next request.
    Idle,
}

/// How far a starting dyno got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Boot {
    /// The slug is being unpacked and the container created: nothing runs yet.
    Creating,
    /// The process runs; a web dyno must accept connections on `$PORT` before `deadline` (R10).
    Booting { deadline: Instant },
    /// It missed its deadline and is being killed; its exit is a crash.
    TimedOut,
}

/// What a stopping dyno becomes once its container is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterStop {
    /// Scaled down: `down`, then its record is removed.
    Down,
    /// Put to sleep: `idle`, until a request wakes it.
    Idle,
}

/// A transition the lifecycle does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a dyno cannot go from {from:?} to {to:?}")]
pub(crate) struct LifecycleError {
    pub(crate) from: Lifecycle,
    pub(crate) to: Lifecycle,
}

impl Lifecycle {
    /// The state Heroku shows for it (in the store, the API and `State changed` lines).
    pub(crate) fn state(&self) -> DynoState {
        match self {
            Lifecycle::Starting { .. } => DynoState::Starting,
            Lifecycle::Up => DynoState::Up,
            Lifecycle::Crashed { .. } => DynoState::Crashed,
            Lifecycle::Stopping {
                then: AfterStop::Down,
                ..
            }
            | Lifecycle::Down => DynoState::Down,
            Lifecycle::Stopping {
                then: AfterStop::Idle,
                ..
            }
            | Lifecycle::Idle => DynoState::Idle,
        }
    }

    /// Its container started: the boot deadline begins.
    pub(crate) fn can_boot(&self) -> bool {
        matches!(
            self,
            Lifecycle::Starting {
                boot: Boot::Creating
            }
        )
    }

    /// It is up (a web dyno accepted a connection), unless it is already being killed.
    pub(crate) fn can_mark_up(&self) -> bool {
        matches!(
            self,
            Lifecycle::Starting {
                boot: Boot::Creating | Boot::Booting { .. }
            }
        )
    }

    /// It missed its boot deadline (R10).
    pub(crate) fn can_time_out(&self) -> bool {
        matches!(
            self,
            Lifecycle::Starting {
                boot: Boot::Booting { .. }
            }
        )
    }

    /// Its process exited unasked.
    pub(crate) fn can_crash(&self) -> bool {
        matches!(self, Lifecycle::Starting { .. } | Lifecycle::Up)
    }

    /// It has a container that may be asked to stop.
    pub(crate) fn can_stop(&self) -> bool {
        matches!(self, Lifecycle::Starting { .. } | Lifecycle::Up)
    }

    /// It may go to sleep: only an `up` dyno does.
    pub(crate) fn can_sleep(&self) -> bool {
        matches!(self, Lifecycle::Up)
    }

    /// It may be woken: asleep, or on its way to sleep.
    pub(crate) fn can_wake(&self) -> bool {
        matches!(
            self,
            Lifecycle::Idle
                | Lifecycle::Stopping {
                    then: AfterStop::Idle,
                    ..
                }
        )
    }

    /// Its crash backoff is over at `now`: it may be started again.
    pub(crate) fn can_restart(&self, now: Instant) -> bool {
        matches!(self, Lifecycle::Crashed { restart_at, .. } if *restart_at <= now)
    }

    /// It may become `down`: nothing of it runs, or it was being stopped for good.
    pub(crate) fn can_go_down(&self) -> bool {
        matches!(
            self,
            Lifecycle::Crashed { .. }
                | Lifecycle::Idle
                | Lifecycle::Stopping {
                    then: AfterStop::Down,
                    ..
                }
        )
    }

    /// Applies a transition if the lifecycle allows it.
    pub(crate) fn transition(&mut self, to: Lifecycle) -> Result<(), LifecycleError> {
        let allowed = match to {
            Lifecycle::Starting {
                boot: Boot::Creating,
            } => self.can_wake(),
            Lifecycle::Starting {
                boot: Boot::Booting { .. },
            } => self.can_boot(),
            Lifecycle::Starting {
                boot: Boot::TimedOut,
            } => self.can_time_out(),
            Lifecycle::Up => self.can_mark_up(),
            Lifecycle::Crashed { .. } => self.can_crash(),
            Lifecycle::Stopping {
                then: AfterStop::Down,
                ..
            } => self.can_stop(),
            Lifecycle::Stopping {
                then: AfterStop::Idle,
                ..
            } => self.can_sleep(),
            Lifecycle::Down => self.can_go_down(),
            Lifecycle::Idle => matches!(
                self,
                Lifecycle::Stopping {
                    then: AfterStop::Idle,
                    ..
                }
            ),
        };
        if !allowed {
            return Err(LifecycleError { from: *self, to });
        }
        *self = to;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
