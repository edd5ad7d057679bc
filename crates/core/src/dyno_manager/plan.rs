//! The dyno planner: what the dyno manager does next for one app, decided without IO, clocks
//! or randomness, so that every rule is a table test on plain `now` values.
//!
//! [`plan`] takes the app's dynos as last observed (each one's [`Lifecycle`] and what its
//! container did: created, running, ready, exited, gone), the desired state (formation on the
//! current release, restarts asked, a wake-up asked, the last web request), the time and the
//! configuration, and returns [`Action`]s that the executor (`dyno_manager.rs`) runs in order.
//! It first turns observations into transitions (up, R10, crashed, down, idle), then makes the
//! slots match the formation (start, replace with preboot, restart after the backoff, scale
//! down highest number first), and, when there is nothing else to do, puts an idle eco app to
//! sleep. Randomness (the cycling jitter) is data: each instance carries its `cycle_at`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use slipway_model::DynoSize;
use uuid::Uuid;

use super::lifecycle::{AfterStop, Boot, Lifecycle};
use crate::config::DynoManagerConfig;
use crate::model::{Dyno, Restart};

/// After the route table switched to a new dyno, the old one gets SIGTERM this much later, so
/// that requests the router sent it just before the switch are in its hands.
pub(crate) const ROUTE_SWITCH_DELAY: Duration = Duration::from_millis(1000);

/// The size that sleeps.
pub(crate) const SLEEPING_SIZE: &str = "eco";

/// A moment on both clocks: `instant` for deadlines, `wall` to compare with the timestamps of
/// records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Now {
    pub(crate) instant: Instant,
    pub(crate) wall: DateTime<Utc>,
}

/// One app's dynos as the manager last saw them.
#[derive(Debug, Clone, Default)]
pub(crate) struct AppDynos {
    pub(crate) name: String,
    pub(crate) slots: BTreeMap<String, Slot>,
}

/// A dyno name (`web.1`) and what runs under it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Slot {
    /// The one recorded in the store (and routed to once up).
    pub(crate) current: Option<Instance>,
    /// A web replacement booting beside it (preboot), not in the store.
    pub(crate) next: Option<Instance>,
}

/// Which instance of a slot an action is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    Current,
    Next,
}

/// One dyno process: its record, its lifecycle and the last word on its container.
#[derive(Debug, Clone)]
pub(crate) struct Instance {
    pub(crate) record: Dyno,
    pub(crate) lifecycle: Lifecycle,
    pub(crate) container: Container,
    /// The slot's consecutive crashes before this instance started: its place on the backoff
    /// ladder if it crashes before it counts as a successful start.
    pub(crate) crashes: u32,
    /// When it is due for its daily restart (`Cycling`); the random jitter is already in it.
    pub(crate) cycle_at: Instant,
    /// The last R14 logged for it, to log one every few minutes at most.
    pub(crate) r14_at: Option<Instant>,
}

/// What the runtime last said about an instance's container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Container {
    /// Being created (slug unpacking, `runc run`).
    Creating,
    /// Its process runs.
    Running,
    /// It is ready: a web dyno accepts connections on `$PORT`; other types as soon as they run.
    Ready,
    /// Its process exited (or never started: `failure`); `oom_killed` when the kernel killed it
    /// at its hard memory limit (R15).
    Exited {
        oom_killed: bool,
        failure: Option<String>,
    },
    /// There is no such container (any more): stopped, or already gone when asked to stop.
    Gone,
}

/// What should run for an app.
#[derive(Debug, Clone, Default)]
pub(crate) struct Desired {
    /// The current release (nil when the app has none that can run).
    pub(crate) release_id: Uuid,
    /// Every formation dyno by name (`web.1`).
    pub(crate) dynos: BTreeMap<String, Wanted>,
    /// Restarts asked for, by target: `*`, a process type or a dyno name.
    pub(crate) restarts: BTreeMap<String, Restart>,
    /// A request is waiting for the app: wake it if it sleeps.
    pub(crate) wake: bool,
    /// When the app last had a web request, if it had one since the server started.
    pub(crate) last_request: Option<DateTime<Utc>>,
}

/// One formation dyno as the release defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wanted {
    pub(crate) process_type: String,
    pub(crate) command: String,
    pub(crate) size: String,
}

/// One step for the executor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Writes a platform line into the app's log.
    Log { dyno: String, line: Line },
    /// Moves an instance to another lifecycle state: logs `State changed from … to …` when its
    /// Heroku state changes, and records it when it is the slot's current one.
    Transition {
        dyno: String,
        which: Which,
        to: Lifecycle,
    },
    /// Starts a new instance in the slot, in place of whatever instance is there.
    Start {
        dyno: String,
        which: Which,
        wanted: Wanted,
        crashes: u32,
    },
    /// The slot's next instance becomes its current one; its record replaces the old one in
    /// the store, so traffic moves to it.
    Promote { dyno: String },
    /// Forgets an instance (its container is stopped by a `StopContainer` of its own).
    Retire { dyno: String, which: Which },
    /// Stops a container in the background after `delay`: SIGTERM, SIGKILL after `grace` (at
    /// once when zero). The manager hears when it is gone.
    StopContainer {
        dyno: String,
        container_id: String,
        delay: Duration,
        grace: Duration,
        /// Log `Stopping all processes with SIGTERM` (not for crashed dynos or kills).
        sigterm_line: bool,
    },
    /// Removes the slot's record from the store and forgets the slot.
    DeleteRecord { dyno: String },
    /// Plan this app again at this moment (a backoff or a boot deadline ends).
    WakeAt(Instant),
}

/// A platform log line the planner decides on (the executor adds `Starting process`,
/// `State changed`, `Process exited` and stop lines itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Line {
    Restarting,
    Cycling,
    Idling,
    Unidling,
    /// R10.
    BootTimeout {
        seconds: u64,
    },
    Sigkill,
    StartFailed {
        reason: String,
    },
    /// `Process running mem=…` at the hard limit, before R15.
    MemoryAtLimit {
        mb: u64,
        per_mille: u64,
    },
    /// R15.
    MemoryQuotaVastlyExceeded,
}

/// Decides what to do next for one app; `desired` is `None` when the app no longer exists.
pub(crate) fn plan(
    observed: &AppDynos,
    desired: Option<&Desired>,
    now: Now,
    config: &DynoManagerConfig,
) -> Vec<Action> {
    let mut planner = Planner {
        actions: Vec::new(),
        now,
        config,
    };
    let Some(desired) = desired else {
        // The app is gone: stop everything it had.
        for (name, slot) in &observed.slots {
            for instance in [&slot.current, &slot.next].into_iter().flatten() {
                planner.stop_container(name, instance, Duration::ZERO);
            }
            planner.push(Action::DeleteRecord { dyno: name.clone() });
        }
        return planner.actions;
    };
    let mut slots = observed.slots.clone();
    for (name, slot) in &mut slots {
        planner.observe(name, slot);
    }

    // Stop dynos that are no longer wanted, highest numbers first.
    let mut unwanted: Vec<&String> = slots
        .keys()
        .filter(|name| !desired.dynos.contains_key(*name))
        .collect();
    unwanted.sort_by_key(|name| std::cmp::Reverse(dyno_order(name)));
    for name in unwanted {
        planner.scale_down(name, &slots[name]);
    }

    // Start what is missing, replace what is outdated, restart crashes.
    for (name, wanted) in &desired.dynos {
        let slot = slots.get(name).cloned().unwrap_or_default();
        planner.converge(name, slot, wanted, desired);
    }

    if planner.actions.is_empty() {
        planner.sleep_if_idle(&slots, desired);
    }
    planner.actions
}

struct Planner<'a> {
    actions: Vec<Action>,
    now: Now,
    config: &'a DynoManagerConfig,
}

impl Planner<'_> {
    fn push(&mut self, action: Action) {
        self.actions.push(action);
    }

    fn log(&mut self, dyno: &str, line: Line) {
        self.push(Action::Log {
            dyno: dyno.to_owned(),
            line,
        });
    }

    /// Proposes a transition and follows it in the planner's own copy of the slot.
    fn transition(&mut self, dyno: &str, which: Which, instance: &mut Instance, to: Lifecycle) {
        instance.lifecycle = to;
        self.push(Action::Transition {
            dyno: dyno.to_owned(),
            which,
            to,
        });
    }

    /// Stops an instance's container, if it has one that is not already being stopped.
    fn stop_container(&mut self, dyno: &str, instance: &Instance, delay: Duration) {
        let has_container = match instance.lifecycle {
            Lifecycle::Starting { boot } => boot != Boot::TimedOut,
            // A crashed dyno's container still needs removing.
            Lifecycle::Up | Lifecycle::Crashed { .. } => true,
            Lifecycle::Stopping { .. } | Lifecycle::Down | Lifecycle::Idle => false,
        };
        // A container still being created cannot be stopped yet (stopping it would race
        // with `runc run`): the manager stops it as soon as it reports it started.
        if !has_container || matches!(instance.container, Container::Gone | Container::Creating) {
            return;
        }
        self.push(Action::StopContainer {
            dyno: dyno.to_owned(),
            container_id: instance.record.container_id.clone(),
            delay,
            grace: self.config.stop_grace,
            sigterm_line: !matches!(instance.lifecycle, Lifecycle::Crashed { .. }),
        });
    }

    /// Turns what the containers did into transitions.
    fn observe(&mut self, dyno: &str, slot: &mut Slot) {
        for which in [Which::Current, Which::Next] {
            let instance = match which {
                Which::Current => slot.current.as_mut(),
                Which::Next => slot.next.as_mut(),
            };
            let Some(instance) = instance else { continue };
            self.observe_instance(dyno, which, instance);
        }
        let next_is_up = slot
            .next
            .as_ref()
            .is_some_and(|next| next.lifecycle == Lifecycle::Up);
        if next_is_up {
            // Preboot: the replacement is up, traffic moves to it, then the old one drains.
            self.push(Action::Promote {
                dyno: dyno.to_owned(),
            });
            if let Some(old) = slot.current.take() {
                self.stop_container(dyno, &old, ROUTE_SWITCH_DELAY);
            }
            slot.current = slot.next.take();
        }
    }

    fn observe_instance(&mut self, dyno: &str, which: Which, instance: &mut Instance) {
        let running = matches!(instance.container, Container::Running | Container::Ready);
        if running && instance.lifecycle.can_boot() {
            let deadline = self.now.instant + self.config.boot_timeout;
            let booting = Lifecycle::Starting {
                boot: Boot::Booting { deadline },
            };
            self.transition(dyno, which, instance, booting);
            self.push(Action::WakeAt(deadline));
        }
        match (&instance.container, instance.lifecycle) {
            (Container::Ready, lifecycle) if lifecycle.can_mark_up() => {
                self.transition(dyno, which, instance, Lifecycle::Up);
            }
            (
                Container::Running,
                Lifecycle::Starting {
                    boot: Boot::Booting { deadline },
                },
            ) if deadline <= self.now.instant => {
                self.log(
                    dyno,
                    Line::BootTimeout {
                        seconds: self.config.boot_timeout.as_secs(),
                    },
                );
                self.log(dyno, Line::Sigkill);
                let timed_out = Lifecycle::Starting {
                    boot: Boot::TimedOut,
                };
                self.transition(dyno, which, instance, timed_out);
                // The exit that follows is a crash.
                self.push(Action::StopContainer {
                    dyno: dyno.to_owned(),
                    container_id: instance.record.container_id.clone(),
                    delay: Duration::ZERO,
                    grace: Duration::ZERO,
                    sigterm_line: false,
                });
            }
            (Container::Exited { .. } | Container::Gone, lifecycle) if lifecycle.can_crash() => {
                self.crash(dyno, which, instance);
            }
            (Container::Exited { .. } | Container::Gone, Lifecycle::Stopping { then, .. }) => {
                match then {
                    AfterStop::Idle => self.transition(dyno, which, instance, Lifecycle::Idle),
                    // `scale_down` removes its record.
                    AfterStop::Down => self.transition(dyno, which, instance, Lifecycle::Down),
                }
            }
            _ => {}
        }
    }

    /// An instance's process exited unasked: log why, and set its restart on the ladder.
    fn crash(&mut self, dyno: &str, which: Which, instance: &mut Instance) {
        if let Container::Exited {
            oom_killed,
            failure,
        } = &instance.container
        {
            if *oom_killed {
                // The kernel killed it at the hard limit, twice the quota: R15.
                // A dyno whose stored size is not a dyno size never started (the start
                // refuses it), so it cannot have been OOM-killed; should one appear anyway,
                // the memory line is left out rather than computed from a default quota.
                if let Ok(size) = instance.record.size.parse::<DynoSize>() {
                    let quota = size.memory_bytes();
                    let limit = crate::dyno_spec::hard_memory_limit(quota);
                    self.log(
                        dyno,
                        Line::MemoryAtLimit {
                            mb: limit / (1024 * 1024),
                            per_mille: limit.saturating_mul(1000) / quota.max(1),
                        },
                    );
                }
                self.log(dyno, Line::MemoryQuotaVastlyExceeded);
                self.log(dyno, Line::Sigkill);
            }
            if let Some(reason) = failure {
                self.log(
                    dyno,
                    Line::StartFailed {
                        reason: reason.clone(),
                    },
                );
            }
        }
        // A web dyno that came up, or any dyno that ran for longer than the boot timeout,
        // had started successfully: its crash is a first crash again.
        let ran_for = (self.now.wall - instance.record.created_at)
            .to_std()
            .unwrap_or(Duration::ZERO);
        let started_well = instance.lifecycle == Lifecycle::Up
            && (instance.record.process_type == "web" || ran_for > self.config.boot_timeout);
        let step = if started_well { 0 } else { instance.crashes };
        let backoff = &self.config.crash_backoff;
        let wait = backoff
            .get(step as usize)
            .or(backoff.last())
            .copied()
            .unwrap_or(Duration::ZERO);
        let restart_at = self.now.instant + wait;
        self.transition(
            dyno,
            which,
            instance,
            Lifecycle::Crashed { step, restart_at },
        );
        if !wait.is_zero() {
            self.push(Action::WakeAt(restart_at));
        }
    }

    /// A slot the formation no longer has: stop it and remove its record once it is down.
    fn scale_down(&mut self, dyno: &str, slot: &Slot) {
        if let Some(next) = &slot.next {
            self.stop_container(dyno, next, Duration::ZERO);
            self.push(Action::Retire {
                dyno: dyno.to_owned(),
                which: Which::Next,
            });
        }
        let Some(current) = &slot.current else {
            self.push(Action::DeleteRecord {
                dyno: dyno.to_owned(),
            });
            return;
        };
        let mut current = current.clone();
        match current.lifecycle {
            lifecycle if lifecycle.can_stop() => {
                self.stop_container(dyno, &current, Duration::ZERO);
                let stopping = Lifecycle::Stopping {
                    deadline: self.now.instant + self.config.stop_grace,
                    then: AfterStop::Down,
                };
                self.transition(dyno, Which::Current, &mut current, stopping);
            }
            Lifecycle::Crashed { .. } | Lifecycle::Idle => {
                // A crashed dyno's container still needs removing; a sleeping one has none.
                self.stop_container(dyno, &current, Duration::ZERO);
                self.transition(dyno, Which::Current, &mut current, Lifecycle::Down);
                self.push(Action::DeleteRecord {
                    dyno: dyno.to_owned(),
                });
            }
            Lifecycle::Down => self.push(Action::DeleteRecord {
                dyno: dyno.to_owned(),
            }),
            // Being stopped: it goes down once its container is gone.
            _ => {}
        }
    }

    /// Makes one wanted slot run the wanted dyno on the current release.
    fn converge(&mut self, dyno: &str, mut slot: Slot, wanted: &Wanted, desired: &Desired) {
        let now = self.now;
        let restart = desired.restart_for(dyno, &wanted.process_type);
        let outdated = |i: &Instance| {
            i.record.release_id != desired.release_id
                || i.record.size != wanted.size
                || restart.is_some_and(|r| i.record.created_at < r.at)
                // A sleeping dyno has nothing to cycle.
                || (i.cycle_at <= now.instant && !i.asleep())
        };
        if slot.next.as_ref().is_some_and(outdated) {
            if let Some(next) = slot.next.take() {
                self.stop_container(dyno, &next, Duration::ZERO);
                self.push(Action::Retire {
                    dyno: dyno.to_owned(),
                    which: Which::Next,
                });
            }
        }
        let start = |crashes: u32, which: Which| Action::Start {
            dyno: dyno.to_owned(),
            which,
            wanted: wanted.clone(),
            crashes,
        };
        // A dyno stopping for good (scaled down, then up again) makes room for a new one.
        let current = slot
            .current
            .take()
            .filter(|c| !matches!(c.lifecycle.state(), crate::model::DynoState::Down));
        // An empty current place goes to the replacement when there is one, else to a new
        // dyno.
        let fill_current = |next: &Option<Instance>| match next {
            Some(_) => Action::Promote {
                dyno: dyno.to_owned(),
            },
            None => start(0, Which::Current),
        };
        let Some(mut current) = current else {
            self.push(fill_current(&slot.next));
            return;
        };
        if outdated(&current) {
            let cycling = current.cycle_at <= now.instant
                && current.record.release_id == desired.release_id
                && restart.is_none_or(|r| current.record.created_at >= r.at);
            let by_stop = restart.is_some_and(|r| r.stop && current.record.created_at < r.at);
            let web_up = wanted.process_type == "web" && current.lifecycle == Lifecycle::Up;
            let why = if cycling {
                Line::Cycling
            } else {
                Line::Restarting
            };
            if self.config.preboot && web_up && !by_stop {
                match slot.next.as_ref().map(|next| next.lifecycle) {
                    None => {
                        self.log(dyno, why);
                        self.push(start(0, Which::Next));
                    }
                    Some(next @ Lifecycle::Crashed { step, .. })
                        if next.can_restart(now.instant) =>
                    {
                        self.push(start(step + 1, Which::Next));
                    }
                    Some(_) => {}
                }
            } else {
                if !matches!(current.lifecycle, Lifecycle::Crashed { .. }) {
                    self.log(dyno, why);
                }
                self.stop_container(dyno, &current, Duration::ZERO);
                self.push(fill_current(&slot.next));
            }
            return;
        }
        match current.lifecycle {
            // Asleep: started again by a request, or by a deploy, restart or resize (above).
            lifecycle if lifecycle.can_wake() && desired.wake => {
                self.log(dyno, Line::Unidling);
                let starting = Lifecycle::Starting {
                    boot: Boot::Creating,
                };
                self.transition(dyno, Which::Current, &mut current, starting);
                self.push(start(current.crashes, Which::Current));
            }
            Lifecycle::Crashed { step, .. } if current.lifecycle.can_restart(now.instant) => {
                self.push(start(step + 1, Which::Current));
            }
            _ => {}
        }
    }

    /// Puts an eco app to sleep when its web dynos had no traffic for `idle_after`: every web
    /// dyno must be an eco dyno that is up, with no replacement under way.
    fn sleep_if_idle(&mut self, slots: &BTreeMap<String, Slot>, desired: &Desired) {
        let Ok(idle_after) = chrono::Duration::from_std(self.config.idle_after) else {
            return;
        };
        let web: Vec<(&String, &Slot, &Instance)> = slots
            .iter()
            .filter_map(|(name, slot)| {
                let instance = slot.current.as_ref()?;
                (instance.record.process_type == "web").then_some((name, slot, instance))
            })
            .collect();
        let sleepy = !web.is_empty()
            && web.iter().all(|(_, slot, instance)| {
                slot.next.is_none()
                    && instance.lifecycle.can_sleep()
                    && instance.record.size == SLEEPING_SIZE
            });
        if !sleepy {
            return;
        }
        let started = web
            .iter()
            .map(|(_, _, instance)| instance.record.created_at)
            .max()
            .unwrap_or(self.now.wall);
        let active_at = desired.last_request.map_or(started, |at| at.max(started));
        if self.now.wall - active_at < idle_after {
            return;
        }
        for (name, _, instance) in web {
            let mut instance = instance.clone();
            self.log(name, Line::Idling);
            let stopping = Lifecycle::Stopping {
                deadline: self.now.instant + self.config.stop_grace,
                then: AfterStop::Idle,
            };
            self.transition(name, Which::Current, &mut instance, stopping);
            self.push(Action::StopContainer {
                dyno: name.clone(),
                container_id: instance.record.container_id.clone(),
                delay: Duration::ZERO,
                grace: self.config.stop_grace,
                sigterm_line: true,
            });
        }
    }
}

impl Instance {
    /// Asleep, or on its way to sleep.
    fn asleep(&self) -> bool {
        self.lifecycle.can_wake()
    }
}

impl Desired {
    /// The latest restart that applies to a dyno.
    fn restart_for(&self, name: &str, process_type: &str) -> Option<&Restart> {
        ["*", process_type, name]
            .iter()
            .filter_map(|target| self.restarts.get(*target))
            .max_by_key(|restart| restart.at)
    }
}

/// Sorts `web.10` after `web.9`.
pub(crate) fn dyno_order(name: &str) -> (String, u32) {
    match name.rsplit_once('.') {
        Some((process_type, number)) => (process_type.to_owned(), number.parse().unwrap_or(0)),
        None => (name.to_owned(), 0),
    }
}

#[cfg(test)]
mod tests;
