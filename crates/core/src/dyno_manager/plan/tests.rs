//! Table tests of the planner on injected time: each case is a set of dynos as observed, a
//! desired state and a moment, and the actions the planner must return, in order.

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};

use super::*;
use crate::dyno_manager::clock::{Clock, ManualClock};

const OLD: Uuid = Uuid::from_u128(1);
const NEW: Uuid = Uuid::from_u128(2);
const MINUTE: Duration = Duration::from_secs(60);
const GRACE: Duration = Duration::from_secs(30);

fn clock() -> ManualClock {
    ManualClock::new(Now {
        instant: Instant::now(),
        wall: Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap(),
    })
}

fn config() -> DynoManagerConfig {
    DynoManagerConfig::default()
}

fn check(observed: &AppDynos, desired: Option<&Desired>, now: Now) -> Vec<Action> {
    plan(observed, desired, now, &config())
}

fn wanted(process_type: &str, size: &str) -> Wanted {
    Wanted {
        process_type: process_type.to_owned(),
        command: format!("run {process_type}"),
        size: size.to_owned(),
    }
}

/// The formation on `release`: `(process type, quantity, size)`.
fn desired(release: Uuid, formation: &[(&str, u32, &str)]) -> Desired {
    let mut dynos = BTreeMap::new();
    for (process_type, quantity, size) in formation {
        for number in 1..=*quantity {
            dynos.insert(
                format!("{process_type}.{number}"),
                wanted(process_type, size),
            );
        }
    }
    Desired {
        release_id: release,
        dynos,
        ..Desired::default()
    }
}

/// A dyno that has been up for an hour on `release`, due for cycling in a day.
fn up(name: &str, release: Uuid, size: &str, now: Now) -> Instance {
    let (process_type, _) = name.split_once('.').unwrap();
    let created_at = now.wall - chrono::Duration::hours(1);
    Instance {
        record: Dyno {
            id: Uuid::new_v4(),
            app_id: Uuid::nil(),
            app_name: "app".to_owned(),
            name: name.to_owned(),
            process_type: process_type.to_owned(),
            command: format!("run {process_type}"),
            size: size.to_owned(),
            state: crate::model::DynoState::Up,
            release_id: release,
            release_version: 1,
            port: Some(5000),
            address: None,
            container_id: format!("{name}@{}", release.as_u128()),
            created_at,
            updated_at: created_at,
        },
        lifecycle: Lifecycle::Up,
        container: Container::Ready,
        crashes: 0,
        cycle_at: now.instant + Duration::from_secs(24 * 3600),
        r14_at: None,
    }
}

fn with(mut instance: Instance, lifecycle: Lifecycle, container: Container) -> Instance {
    instance.lifecycle = lifecycle;
    instance.container = container;
    instance
}

fn app(instances: Vec<(Which, Instance)>) -> AppDynos {
    let mut app = AppDynos {
        name: "app".to_owned(),
        ..AppDynos::default()
    };
    for (which, instance) in instances {
        let slot = app.slots.entry(instance.record.name.clone()).or_default();
        match which {
            Which::Current => slot.current = Some(instance),
            Which::Next => slot.next = Some(instance),
        }
    }
    app
}

fn log(dyno: &str, line: Line) -> Action {
    Action::Log {
        dyno: dyno.to_owned(),
        line,
    }
}

fn transition(dyno: &str, which: Which, to: Lifecycle) -> Action {
    Action::Transition {
        dyno: dyno.to_owned(),
        which,
        to,
    }
}

fn start(dyno: &str, which: Which, wanted: Wanted, crashes: u32) -> Action {
    Action::Start {
        dyno: dyno.to_owned(),
        which,
        wanted,
        crashes,
    }
}

fn stop(instance: &Instance, delay: Duration, grace: Duration, sigterm_line: bool) -> Action {
    Action::StopContainer {
        dyno: instance.record.name.clone(),
        container_id: instance.record.container_id.clone(),
        delay,
        grace,
        sigterm_line,
    }
}

fn starting(deadline: Instant) -> Lifecycle {
    Lifecycle::Starting {
        boot: Boot::Booting { deadline },
    }
}

const CREATING: Lifecycle = Lifecycle::Starting {
    boot: Boot::Creating,
};

fn exited() -> Container {
    Container::Exited {
        oom_killed: false,
        failure: None,
    }
}

#[test]
fn a_steady_app_needs_nothing() {
    let now = clock().now();
    let observed = app(vec![
        (Which::Current, up("web.1", NEW, "standard-1x", now)),
        (Which::Current, up("worker.1", NEW, "standard-1x", now)),
    ]);
    let want = desired(
        NEW,
        &[("web", 1, "standard-1x"), ("worker", 1, "standard-1x")],
    );
    assert_eq!(check(&observed, Some(&want), now), []);
}

#[test]
fn missing_dynos_start() {
    let now = clock().now();
    let want = desired(NEW, &[("web", 2, "basic")]);
    assert_eq!(
        check(&AppDynos::default(), Some(&want), now),
        [
            start("web.1", Which::Current, wanted("web", "basic"), 0),
            start("web.2", Which::Current, wanted("web", "basic"), 0),
        ]
    );
}

#[test]
fn preboot_brings_the_new_web_dyno_up_before_the_old_one_stops() {
    let clock = clock();
    let now = clock.now();
    let old = up("web.1", OLD, "standard-1x", now);
    let want = desired(NEW, &[("web", 1, "standard-1x")]);

    // A new release: the replacement starts beside the old dyno, which keeps serving.
    let observed = app(vec![(Which::Current, old.clone())]);
    assert_eq!(
        check(&observed, Some(&want), now),
        [
            log("web.1", Line::Restarting),
            start("web.1", Which::Next, wanted("web", "standard-1x"), 0),
        ]
    );

    // Its container runs: its boot deadline starts, the old one still serves.
    let next = with(
        up("web.1", NEW, "standard-1x", now),
        CREATING,
        Container::Running,
    );
    let observed = app(vec![
        (Which::Current, old.clone()),
        (Which::Next, next.clone()),
    ]);
    let deadline = now.instant + config().boot_timeout;
    assert_eq!(
        check(&observed, Some(&want), now),
        [
            transition("web.1", Which::Next, starting(deadline)),
            Action::WakeAt(deadline),
        ]
    );

    // It accepts connections: it is up, traffic moves to it, then the old one drains.
    clock.advance(Duration::from_secs(2));
    let now = clock.now();
    let next = with(next, starting(deadline), Container::Ready);
    let observed = app(vec![(Which::Current, old.clone()), (Which::Next, next)]);
    assert_eq!(
        check(&observed, Some(&want), now),
        [
            transition("web.1", Which::Next, Lifecycle::Up),
            Action::Promote {
                dyno: "web.1".to_owned()
            },
            stop(&old, ROUTE_SWITCH_DELAY, GRACE, true),
        ]
    );
}

#[test]
fn a_replacement_that_crashes_never_takes_traffic_and_is_retried() {
    let now = clock().now();
    let old = up("web.1", OLD, "standard-1x", now);
    let deadline = now.instant + MINUTE;
    let next = with(
        up("web.1", NEW, "standard-1x", now),
        starting(deadline),
        exited(),
    );
    let observed = app(vec![(Which::Current, old), (Which::Next, next)]);
    let want = desired(NEW, &[("web", 1, "standard-1x")]);
    assert_eq!(
        check(&observed, Some(&want), now),
        [
            transition(
                "web.1",
                Which::Next,
                Lifecycle::Crashed {
                    step: 0,
                    restart_at: now.instant
                }
            ),
            start("web.1", Which::Next, wanted("web", "standard-1x"), 1),
        ]
    );
}

#[test]
fn crash_backoff_restarts_at_once_then_waits_on_the_ladder() {
    let clock = clock();
    let now = clock.now();
    let want = desired(NEW, &[("worker", 1, "standard-1x")]);
    let worker = up("worker.1", NEW, "standard-1x", now);

    // A dyno that ran for longer than the boot timeout starts the ladder again: at once.
    let crashed = with(worker.clone(), Lifecycle::Up, exited());
    let observed = app(vec![(Which::Current, crashed)]);
    assert_eq!(
        check(&observed, Some(&want), now),
        [
            transition(
                "worker.1",
                Which::Current,
                Lifecycle::Crashed {
                    step: 0,
                    restart_at: now.instant
                }
            ),
            start(
                "worker.1",
                Which::Current,
                wanted("worker", "standard-1x"),
                1
            ),
        ]
    );

    // Its restart fails too: the second step waits 20 minutes.
    let mut restarted = with(
        worker.clone(),
        CREATING,
        Container::Exited {
            oom_killed: false,
            failure: Some("no space left".to_owned()),
        },
    );
    restarted.crashes = 1;
    let restart_at = now.instant + Duration::from_secs(1200);
    let observed = app(vec![(Which::Current, restarted)]);
    assert_eq!(
        check(&observed, Some(&want), now),
        [
            log(
                "worker.1",
                Line::StartFailed {
                    reason: "no space left".to_owned()
                }
            ),
            transition(
                "worker.1",
                Which::Current,
                Lifecycle::Crashed {
                    step: 1,
                    restart_at
                }
            ),
            Action::WakeAt(restart_at),
        ]
    );

    // Nothing happens until the backoff is over, then it starts with the next step.
    let waiting = with(
        worker,
        Lifecycle::Crashed {
            step: 1,
            restart_at,
        },
        exited(),
    );
    let observed = app(vec![(Which::Current, waiting)]);
    clock.advance(Duration::from_secs(1199));
    assert_eq!(check(&observed, Some(&want), clock.now()), []);
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        check(&observed, Some(&want), clock.now()),
        [start(
            "worker.1",
            Which::Current,
            wanted("worker", "standard-1x"),
            2
        )]
    );
}

#[test]
fn the_backoff_ladder_in_minutes_and_its_last_step_repeats() {
    let now = clock().now();
    let want = desired(NEW, &[("worker", 1, "standard-1x")]);
    let table = [
        (0, 0),
        (1, 20),
        (2, 40),
        (3, 60),
        (4, 180),
        (5, 320),
        (6, 320),
        (40, 320),
    ];
    for (crashes, minutes) in table {
        let mut instance = with(
            up("worker.1", NEW, "standard-1x", now),
            starting(now.instant + MINUTE),
            exited(),
        );
        instance.crashes = crashes;
        let actions = check(&app(vec![(Which::Current, instance)]), Some(&want), now);
        let restart_at = now.instant + MINUTE * minutes;
        assert_eq!(
            actions[0],
            transition(
                "worker.1",
                Which::Current,
                Lifecycle::Crashed {
                    step: crashes,
                    restart_at
                }
            ),
            "after {crashes} crashes"
        );
    }
}

#[test]
fn a_web_dyno_that_came_up_crashes_as_a_first_crash() {
    let now = clock().now();
    let mut web = with(up("web.1", NEW, "basic", now), Lifecycle::Up, exited());
    web.crashes = 4;
    web.record.created_at = now.wall - chrono::Duration::seconds(5);
    let want = desired(NEW, &[("web", 1, "basic")]);
    assert_eq!(
        check(&app(vec![(Which::Current, web)]), Some(&want), now)[0],
        transition(
            "web.1",
            Which::Current,
            Lifecycle::Crashed {
                step: 0,
                restart_at: now.instant
            }
        )
    );
}

#[test]
fn an_oom_kill_is_r15() {
    let now = clock().now();
    let worker = with(
        up("worker.1", NEW, "standard-2x", now),
        Lifecycle::Up,
        Container::Exited {
            oom_killed: true,
            failure: None,
        },
    );
    let want = desired(NEW, &[("worker", 1, "standard-2x")]);
    let actions = check(&app(vec![(Which::Current, worker)]), Some(&want), now);
    assert_eq!(
        actions[..3],
        [
            log(
                "worker.1",
                Line::MemoryAtLimit {
                    mb: 2048,
                    per_mille: 2000
                }
            ),
            log("worker.1", Line::MemoryQuotaVastlyExceeded),
            log("worker.1", Line::Sigkill),
        ]
    );
}

#[test]
fn cycling_replaces_dynos_due_after_a_day_and_its_jitter() {
    let clock = clock();
    let now = clock.now();
    let want = desired(
        NEW,
        &[("web", 1, "standard-1x"), ("worker", 1, "standard-1x")],
    );
    // The jitter is data: each dyno carries its own moment.
    let mut web = up("web.1", NEW, "standard-1x", now);
    web.cycle_at = now.instant + Duration::from_secs(24 * 3600 + 600);
    let mut worker = up("worker.1", NEW, "standard-1x", now);
    worker.cycle_at = now.instant + Duration::from_secs(24 * 3600 + 1200);
    let observed = app(vec![
        (Which::Current, web.clone()),
        (Which::Current, worker.clone()),
    ]);

    clock.advance(Duration::from_secs(24 * 3600 + 599));
    assert_eq!(check(&observed, Some(&want), clock.now()), []);

    // The web dyno first, with preboot.
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        check(&observed, Some(&want), clock.now()),
        [
            log("web.1", Line::Cycling),
            start("web.1", Which::Next, wanted("web", "standard-1x"), 0),
        ]
    );

    // Then the worker, stopped and started.
    clock.advance(Duration::from_secs(600));
    let actions = check(&observed, Some(&want), clock.now());
    assert_eq!(
        actions[2..],
        [
            log("worker.1", Line::Cycling),
            stop(&worker, Duration::ZERO, GRACE, true),
            start(
                "worker.1",
                Which::Current,
                wanted("worker", "standard-1x"),
                0
            ),
        ]
    );
}

#[test]
fn a_sleeping_dyno_is_not_cycled() {
    let now = clock().now();
    let mut idle = with(
        up("web.1", NEW, "eco", now),
        Lifecycle::Idle,
        Container::Gone,
    );
    idle.cycle_at = now.instant;
    let want = desired(NEW, &[("web", 1, "eco")]);
    assert_eq!(
        check(&app(vec![(Which::Current, idle)]), Some(&want), now),
        []
    );
}

#[test]
fn an_idle_eco_app_sleeps_and_wakes() {
    let clock = clock();
    let now = clock.now();
    let want = desired(NEW, &[("web", 1, "eco")]);
    let web = up("web.1", NEW, "eco", now);
    let observed = app(vec![(Which::Current, web.clone())]);

    // Up for an hour, a request 10 minutes ago: awake.
    let recent = Desired {
        last_request: Some(now.wall - chrono::Duration::minutes(10)),
        ..want.clone()
    };
    assert_eq!(check(&observed, Some(&recent), now), []);

    // No request for 30 minutes: it sleeps.
    let quiet = Desired {
        last_request: Some(now.wall - chrono::Duration::minutes(30)),
        ..want.clone()
    };
    let falling_asleep = Lifecycle::Stopping {
        deadline: now.instant + GRACE,
        then: AfterStop::Idle,
    };
    assert_eq!(
        check(&observed, Some(&quiet), now),
        [
            log("web.1", Line::Idling),
            transition("web.1", Which::Current, falling_asleep),
            stop(&web, Duration::ZERO, GRACE, true),
        ]
    );

    // Its container is gone: idle.
    let stopped = with(web.clone(), falling_asleep, Container::Gone);
    assert_eq!(
        check(&app(vec![(Which::Current, stopped)]), Some(&quiet), now),
        [transition("web.1", Which::Current, Lifecycle::Idle)]
    );

    // Asleep, it stays so until a request wakes it.
    let asleep = app(vec![(
        Which::Current,
        with(web, Lifecycle::Idle, Container::Gone),
    )]);
    clock.advance(Duration::from_secs(3600));
    assert_eq!(check(&asleep, Some(&quiet), clock.now()), []);
    let woken = Desired {
        wake: true,
        ..quiet
    };
    assert_eq!(
        check(&asleep, Some(&woken), clock.now()),
        [
            log("web.1", Line::Unidling),
            transition("web.1", Which::Current, CREATING),
            start("web.1", Which::Current, wanted("web", "eco"), 0),
        ]
    );
}

#[test]
fn only_eco_apps_sleep() {
    let now = clock().now();
    for (size, sleeps) in [("eco", true), ("basic", false), ("standard-1x", false)] {
        let observed = app(vec![(Which::Current, up("web.1", NEW, size, now))]);
        let want = desired(NEW, &[("web", 1, size)]);
        let actions = check(&observed, Some(&want), now);
        assert_eq!(
            actions.contains(&log("web.1", Line::Idling)),
            sleeps,
            "{size}"
        );
    }
}

#[test]
fn scaling_down_stops_the_highest_numbers_first_and_shows_them_down() {
    let now = clock().now();
    let dynos: Vec<Instance> = ["web.1", "web.2", "web.3", "web.10"]
        .iter()
        .map(|name| up(name, NEW, "basic", now))
        .collect();
    let observed = app(dynos
        .iter()
        .map(|dyno| (Which::Current, dyno.clone()))
        .collect());
    let want = desired(NEW, &[("web", 2, "basic")]);
    let down = Lifecycle::Stopping {
        deadline: now.instant + GRACE,
        then: AfterStop::Down,
    };
    assert_eq!(down.state(), crate::model::DynoState::Down);
    assert_eq!(
        check(&observed, Some(&want), now),
        [
            stop(&dynos[3], Duration::ZERO, GRACE, true),
            transition("web.10", Which::Current, down),
            stop(&dynos[2], Duration::ZERO, GRACE, true),
            transition("web.3", Which::Current, down),
        ]
    );

    // Once its container is gone it is down and its record goes.
    let gone = with(dynos[2].clone(), down, Container::Gone);
    let observed = app(vec![
        (Which::Current, dynos[0].clone()),
        (Which::Current, dynos[1].clone()),
        (Which::Current, gone),
    ]);
    assert_eq!(
        check(&observed, Some(&want), now),
        [
            transition("web.3", Which::Current, Lifecycle::Down),
            Action::DeleteRecord {
                dyno: "web.3".to_owned()
            },
        ]
    );
}

#[test]
fn a_release_switch_replaces_dynos_on_the_old_release() {
    let now = clock().now();
    let want = desired(NEW, &[("web", 1, "basic"), ("worker", 1, "basic")]);
    let web = up("web.1", OLD, "basic", now);
    let worker = up("worker.1", OLD, "basic", now);
    let crashed = with(
        up("worker.1", OLD, "basic", now),
        Lifecycle::Crashed {
            step: 2,
            restart_at: now.instant + MINUTE * 40,
        },
        exited(),
    );
    let observed = app(vec![
        (Which::Current, web.clone()),
        (Which::Current, worker.clone()),
    ]);
    // Web dynos with preboot; other types are stopped and started.
    assert_eq!(
        check(&observed, Some(&want), now),
        [
            log("web.1", Line::Restarting),
            start("web.1", Which::Next, wanted("web", "basic"), 0),
            log("worker.1", Line::Restarting),
            stop(&worker, Duration::ZERO, GRACE, true),
            start("worker.1", Which::Current, wanted("worker", "basic"), 0),
        ]
    );
    // Without preboot, web dynos too.
    let no_preboot = DynoManagerConfig {
        preboot: false,
        ..config()
    };
    assert_eq!(
        plan(
            &app(vec![(Which::Current, web.clone())]),
            Some(&desired(NEW, &[("web", 1, "basic")])),
            now,
            &no_preboot
        )[1..],
        [
            stop(&web, Duration::ZERO, GRACE, true),
            start("web.1", Which::Current, wanted("web", "basic"), 0),
        ]
    );
    // A crashed dyno is replaced at once, its backoff forgotten, without "Restarting".
    assert_eq!(
        check(
            &app(vec![(Which::Current, crashed.clone())]),
            Some(&desired(NEW, &[("worker", 1, "basic")])),
            now
        ),
        [
            stop(&crashed, Duration::ZERO, GRACE, false),
            start("worker.1", Which::Current, wanted("worker", "basic"), 0),
        ]
    );
}

#[test]
fn a_restart_asked_replaces_dynos_started_before_it() {
    let now = clock().now();
    let worker = up("worker.1", NEW, "basic", now);
    let mut want = desired(NEW, &[("worker", 1, "basic")]);
    want.restarts.insert(
        "worker".to_owned(),
        Restart {
            at: worker.record.created_at - chrono::Duration::seconds(1),
            stop: false,
        },
    );
    let observed = app(vec![(Which::Current, worker.clone())]);
    assert_eq!(check(&observed, Some(&want), now), []);
    want.restarts.insert(
        "worker.1".to_owned(),
        Restart {
            at: now.wall,
            stop: false,
        },
    );
    assert_eq!(
        check(&observed, Some(&want), now),
        [
            log("worker.1", Line::Restarting),
            stop(&worker, Duration::ZERO, GRACE, true),
            start("worker.1", Which::Current, wanted("worker", "basic"), 0),
        ]
    );
}

#[test]
fn ps_stop_of_a_web_dyno_skips_preboot() {
    let now = clock().now();
    let web = up("web.1", NEW, "basic", now);
    let mut want = desired(NEW, &[("web", 1, "basic")]);
    want.restarts.insert(
        "web.1".to_owned(),
        Restart {
            at: now.wall,
            stop: true,
        },
    );
    assert_eq!(
        check(&app(vec![(Which::Current, web.clone())]), Some(&want), now),
        [
            log("web.1", Line::Restarting),
            stop(&web, Duration::ZERO, GRACE, true),
            start("web.1", Which::Current, wanted("web", "basic"), 0),
        ]
    );
}

#[test]
fn a_boot_timeout_is_r10_then_a_crash() {
    let clock = clock();
    let now = clock.now();
    let want = desired(NEW, &[("web", 1, "basic")]);
    let deadline = now.instant + MINUTE;
    let booting = with(
        up("web.1", NEW, "basic", now),
        starting(deadline),
        Container::Running,
    );
    let observed = app(vec![(Which::Current, booting.clone())]);
    clock.advance(MINUTE - Duration::from_millis(1));
    assert_eq!(check(&observed, Some(&want), clock.now()), []);
    clock.advance(Duration::from_millis(1));
    let timed_out = Lifecycle::Starting {
        boot: Boot::TimedOut,
    };
    assert_eq!(
        check(&observed, Some(&want), clock.now()),
        [
            log("web.1", Line::BootTimeout { seconds: 60 }),
            log("web.1", Line::Sigkill),
            transition("web.1", Which::Current, timed_out),
            stop(&booting, Duration::ZERO, Duration::ZERO, false),
        ]
    );
    // Killed, it is crashed (`State changed from starting to crashed`) and restarted.
    let killed = with(booting, timed_out, exited());
    let now = clock.now();
    assert_eq!(
        check(&app(vec![(Which::Current, killed)]), Some(&want), now),
        [
            transition(
                "web.1",
                Which::Current,
                Lifecycle::Crashed {
                    step: 0,
                    restart_at: now.instant
                }
            ),
            start("web.1", Which::Current, wanted("web", "basic"), 1),
        ]
    );
}

#[test]
fn an_already_gone_container_is_an_observation_not_an_error() {
    let now = clock().now();
    let want = desired(NEW, &[("web", 1, "basic")]);
    let down = Lifecycle::Stopping {
        deadline: now.instant + GRACE,
        then: AfterStop::Down,
    };

    // Scaled down, and the runtime had no such container when asked to stop it: down.
    let web = up("web.1", NEW, "basic", now);
    let stopped = with(up("web.2", NEW, "basic", now), down, Container::Gone);
    let observed = app(vec![
        (Which::Current, web.clone()),
        (Which::Current, stopped),
    ]);
    assert_eq!(
        check(&observed, Some(&want), now),
        [
            transition("web.2", Which::Current, Lifecycle::Down),
            Action::DeleteRecord {
                dyno: "web.2".to_owned()
            },
        ]
    );

    // A crashed dyno whose container is gone is scaled down without stopping anything.
    let crashed = with(
        up("web.2", NEW, "basic", now),
        Lifecycle::Crashed {
            step: 1,
            restart_at: now.instant,
        },
        Container::Gone,
    );
    let observed = app(vec![(Which::Current, web), (Which::Current, crashed)]);
    assert_eq!(
        check(&observed, Some(&want), now),
        [
            transition("web.2", Which::Current, Lifecycle::Down),
            Action::DeleteRecord {
                dyno: "web.2".to_owned()
            },
        ]
    );

    // A running dyno whose container vanished crashed.
    let vanished = with(
        up("web.1", NEW, "basic", now),
        Lifecycle::Up,
        Container::Gone,
    );
    assert_eq!(
        check(&app(vec![(Which::Current, vanished)]), Some(&want), now)[0],
        transition(
            "web.1",
            Which::Current,
            Lifecycle::Crashed {
                step: 0,
                restart_at: now.instant
            }
        )
    );

    // The app was deleted: only containers that still exist are stopped.
    let running = up("web.1", NEW, "basic", now);
    let gone = with(
        up("web.2", NEW, "basic", now),
        Lifecycle::Up,
        Container::Gone,
    );
    assert_eq!(
        check(
            &app(vec![
                (Which::Current, running.clone()),
                (Which::Current, gone)
            ]),
            None,
            now
        ),
        [
            stop(&running, Duration::ZERO, GRACE, true),
            Action::DeleteRecord {
                dyno: "web.1".to_owned()
            },
            Action::DeleteRecord {
                dyno: "web.2".to_owned()
            },
        ]
    );
}

#[test]
fn scaling_back_up_while_a_dyno_stops_starts_a_new_one() {
    let now = clock().now();
    let stopping = with(
        up("web.2", NEW, "basic", now),
        Lifecycle::Stopping {
            deadline: now.instant + GRACE,
            then: AfterStop::Down,
        },
        Container::Ready,
    );
    let want = desired(NEW, &[("web", 2, "basic")]);
    let observed = app(vec![
        (Which::Current, up("web.1", NEW, "basic", now)),
        (Which::Current, stopping),
    ]);
    assert_eq!(
        check(&observed, Some(&want), now),
        [start("web.2", Which::Current, wanted("web", "basic"), 0)]
    );
}

#[test]
fn a_container_still_being_created_is_not_stopped_yet() {
    let now = clock().now();
    let creating = with(
        up("web.2", NEW, "basic", now),
        CREATING,
        Container::Creating,
    );
    let observed = app(vec![
        (Which::Current, up("web.1", NEW, "basic", now)),
        (Which::Current, creating),
    ]);
    let want = desired(NEW, &[("web", 1, "basic")]);
    // The manager stops it when it reports it started.
    assert_eq!(
        check(&observed, Some(&want), now),
        [transition(
            "web.2",
            Which::Current,
            Lifecycle::Stopping {
                deadline: now.instant + GRACE,
                then: AfterStop::Down
            }
        )]
    );
}
