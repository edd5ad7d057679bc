//! The one-off registry's rules as tables: the cap, names, and a secret that opens its dyno
//! once, within its window, and is told apart when unknown, reused or expired.

use chrono::Utc;

use super::*;
use crate::model::DynoState;

fn record(app: Uuid, name: &str) -> Dyno {
    Dyno {
        id: Uuid::new_v4(),
        app_id: app,
        app_name: "demo".into(),
        name: name.into(),
        process_type: "run".into(),
        command: "bash".into(),
        size: "basic".into(),
        state: DynoState::Starting,
        release_id: Uuid::new_v4(),
        release_version: 1,
        port: None,
        address: None,
        container_id: format!("slipway.demo.{name}.abcd"),
        created_at: Utc::now(),
        updated_at: Utc::now(),
    }
}

fn pending(secret: &str) -> Pending {
    Pending {
        spec: ContainerSpec {
            id: "c".into(),
            labels: Default::default(),
            app_dir: None,
            rootfs: slipway_runtime::Rootfs::Host,
            binds: Vec::new(),
            args: vec!["true".into()],
            env: Vec::new(),
            cwd: "/".into(),
            uid: 1,
            gid: 1,
            hostname: "c".into(),
            limits: Default::default(),
            network: Default::default(),
            allowed_host_ports: Vec::new(),
        },
        slug: crate::model::Slug {
            id: Uuid::new_v4(),
            app_id: Uuid::new_v4(),
            checksum: String::new(),
            size: 0,
            process_types: Default::default(),
            commit: None,
            buildpack_description: String::new(),
            stack: "heroku-24".into(),
            stack_id: None,
            created_at: Utc::now(),
        },
        uid: 1,
        attach: Attach::Pipes,
        secret: digest(secret),
        deadline: Instant::now(),
    }
}

/// Reserves a dyno for `app` with the numbers `numbers` offers in turn.
fn reserve(
    registry: &OneOffs,
    app: Uuid,
    cap: u32,
    taken: &[&str],
    numbers: &[u32],
) -> Result<String, CapReached> {
    let taken: HashSet<String> = taken.iter().map(|s| (*s).to_owned()).collect();
    let mut numbers = numbers.iter().copied().cycle();
    registry
        .reserve(
            app,
            cap,
            &taken,
            || numbers.next().expect("a number"),
            |name| record(app, name),
        )
        .map(|record| record.name)
}

#[test]
fn names_are_unique_per_app_and_the_cap_counts_only_that_app() {
    let registry = OneOffs::default();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    assert_eq!(reserve(&registry, a, 2, &[], &[1234]).unwrap(), "run.1234");
    // A name in use (by a one-off or another dyno) is never given twice.
    assert_eq!(
        reserve(&registry, a, 2, &[], &[1234, 4821]).unwrap(),
        "run.4821"
    );
    assert_eq!(reserve(&registry, a, 2, &[], &[7]), Err(CapReached));
    assert_eq!(
        reserve(&registry, b, 2, &["run.1234"], &[1234, 5]).unwrap(),
        "run.5"
    );
    assert_eq!(registry.count(a), 2);
    registry.remove(a, "run.1234");
    assert_eq!(registry.count(a), 1);
    assert_eq!(reserve(&registry, a, 2, &[], &[9]).unwrap(), "run.9");
}

#[test]
fn a_secret_opens_its_dyno_once() {
    let registry = OneOffs::default();
    let app = Uuid::new_v4();
    let name = reserve(&registry, app, 50, &[], &[1]).unwrap();
    registry.wait_for_claim(app, &name, pending("s3cret"));
    let now = Instant::now();
    let check = |secret: &str, expected: &str| {
        let got = match registry.claim(&digest(secret), now) {
            Ok((record, _)) => format!("ok {}", record.name),
            Err(error) => format!("{error:?}"),
        };
        assert_eq!(got, expected, "claim with {secret}");
    };
    check("wrong", "Unknown");
    check("s3cret", "ok run.1");
    check("s3cret", "AlreadyUsed");
    // Claimed, the dyno is starting: its window's end no longer removes it.
    assert!(registry
        .expire(app, &name, &digest("s3cret"), now)
        .is_none());
    assert_eq!(registry.count(app), 1);
}

#[test]
fn an_unclaimed_dyno_expires_and_its_secret_then_says_so() {
    let registry = OneOffs::default();
    let app = Uuid::new_v4();
    let name = reserve(&registry, app, 50, &[], &[2]).unwrap();
    registry.wait_for_claim(app, &name, pending("late"));
    let now = Instant::now();
    let expired = registry.expire(app, &name, &digest("late"), now);
    assert_eq!(expired.map(|r| r.name), Some("run.2".to_owned()));
    assert_eq!(registry.count(app), 0);
    assert!(matches!(
        registry.claim(&digest("late"), now),
        Err(ClaimError::Expired)
    ));
    // Long after, a spent secret is forgotten and simply unknown.
    assert!(matches!(
        registry.claim(&digest("late"), now + SPENT_MEMORY),
        Err(ClaimError::Unknown)
    ));
}

#[test]
fn stopping_an_unclaimed_dyno_removes_it_and_spends_its_secret() {
    let registry = OneOffs::default();
    let app = Uuid::new_v4();
    let name = reserve(&registry, app, 50, &[], &[3]).unwrap();
    registry.wait_for_claim(app, &name, pending("x"));
    let now = Instant::now();
    assert!(matches!(
        registry.stop(app, &name, now),
        Some(StopFound::Unclaimed(_))
    ));
    assert_eq!(registry.count(app), 0);
    assert!(registry.claim(&digest("x"), now).is_err());
    assert!(registry.stop(app, &name, now).is_none());
}

#[test]
fn a_stop_while_starting_is_remembered_and_a_running_dyno_is_told() {
    let registry = OneOffs::default();
    let app = Uuid::new_v4();
    let starting = reserve(&registry, app, 50, &[], &[4]).unwrap();
    assert!(matches!(
        registry.stop(app, &starting, Instant::now()),
        Some(StopFound::Told)
    ));
    assert!(registry.stop_asked(app, &starting));
    let up = reserve(&registry, app, 50, &[], &[5]).unwrap();
    let notify = registry.mark_up(app, &record(app, &up)).unwrap();
    assert!(!registry.stop_asked(app, &up));
    assert!(matches!(
        registry.stop(app, &up, Instant::now()),
        Some(StopFound::Told)
    ));
    // The permit waits for the supervisor.
    let notified = notify.notified();
    futures_now(notified);
    // A second stop finds it already stopping.
    assert!(matches!(
        registry.stop(app, &up, Instant::now()),
        Some(StopFound::Nothing)
    ));
}

/// Polls a future once, asserting it is ready.
fn futures_now(future: impl std::future::Future<Output = ()>) {
    let waker = std::task::Waker::noop();
    let mut context = std::task::Context::from_waker(waker);
    let mut future = std::pin::pin!(future);
    assert!(future.as_mut().poll(&mut context).is_ready());
}
