//! Every pair of lifecycle states, checked against the transitions the machine allows.

use std::time::{Duration, Instant};

use super::*;

fn all(now: Instant) -> Vec<Lifecycle> {
    let later = now + Duration::from_secs(60);
    vec![
        Lifecycle::Starting {
            boot: Boot::Creating,
        },
        Lifecycle::Starting {
            boot: Boot::Booting { deadline: later },
        },
        Lifecycle::Starting {
            boot: Boot::TimedOut,
        },
        Lifecycle::Up,
        Lifecycle::Crashed {
            step: 1,
            restart_at: later,
        },
        Lifecycle::Stopping {
            deadline: later,
            then: AfterStop::Down,
        },
        Lifecycle::Stopping {
            deadline: later,
            then: AfterStop::Idle,
        },
        Lifecycle::Down,
        Lifecycle::Idle,
    ]
}

/// The allowed transitions, by index into `all` (from → to).
const ALLOWED: &[(usize, usize)] = &[
    (0, 1), // the container runs: the boot deadline begins
    (1, 2), // R10
    (0, 3), // up
    (1, 3),
    (0, 4), // crashed while starting (a failed start, an exit)
    (1, 4),
    (2, 4), // killed after R10
    (3, 4), // crashed while up
    (0, 5), // scaled down
    (1, 5),
    (2, 5),
    (3, 5),
    (3, 6), // put to sleep
    (4, 7), // a crashed dyno scaled down
    (5, 7), // a stopped one gone
    (8, 7), // a sleeping one scaled down
    (6, 8), // asleep once its container is gone
    (6, 0), // woken while falling asleep
    (8, 0), // woken
];

#[test]
fn only_allowed_transitions_pass_their_check() {
    let now = Instant::now();
    let states = all(now);
    for (i, from) in states.iter().enumerate() {
        for (j, to) in states.iter().enumerate() {
            let mut lifecycle = *from;
            let result = lifecycle.transition(*to);
            if ALLOWED.contains(&(i, j)) {
                assert_eq!(result, Ok(()), "{from:?} → {to:?}");
                assert_eq!(lifecycle, *to);
            } else {
                assert_eq!(
                    result,
                    Err(LifecycleError {
                        from: *from,
                        to: *to
                    }),
                    "{from:?} → {to:?} must be refused"
                );
                assert_eq!(lifecycle, *from, "a refused transition changes nothing");
            }
        }
    }
}

#[test]
fn states_are_herokus() {
    let now = Instant::now();
    let shown: Vec<&str> = all(now).iter().map(|l| l.state().as_str()).collect();
    assert_eq!(
        shown,
        ["starting", "starting", "starting", "up", "crashed", "down", "idle", "down", "idle"]
    );
}

#[test]
fn a_crash_restarts_only_once_its_backoff_is_over() {
    let now = Instant::now();
    let crashed = Lifecycle::Crashed {
        step: 1,
        restart_at: now + Duration::from_secs(1200),
    };
    assert!(!crashed.can_restart(now));
    assert!(!crashed.can_restart(now + Duration::from_secs(1199)));
    assert!(crashed.can_restart(now + Duration::from_secs(1200)));
    assert!(!Lifecycle::Up.can_restart(now));
}
