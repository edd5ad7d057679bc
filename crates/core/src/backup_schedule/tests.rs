//! The schedule's arithmetic as tables (`--at` parsing, the latest local hour across
//! daylight-saving changes), and the scheduler loop on injected time (a clock and ticks that
//! step a minute at a time through days, without waiting) against the real SQLite store: it
//! fires once a day at the given hour in the given zone, across a daylight-saving change, and
//! stops for a removed schedule.

use std::sync::Mutex;

use chrono::TimeZone;

use super::*;

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

#[test]
fn at_takes_a_whole_hour_and_an_optional_zone() {
    fn check(at: &str, expected: Option<(u32, &str)>) {
        let parsed = parse_at(at).ok().map(|(h, tz)| (h, tz.name().to_owned()));
        assert_eq!(parsed, expected.map(|(h, tz)| (h, tz.to_owned())), "{at:?}");
    }
    check("02:00 America/New_York", Some((2, "America/New_York")));
    check("2:00 america/new_york", Some((2, "America/New_York")));
    check("23:00", Some((23, "UTC")));
    check("7 Europe/Paris", Some((7, "Europe/Paris")));
    check(" 00:00   UTC ", Some((0, "UTC")));
    check("24:00 UTC", None);
    check("02:30 UTC", None);
    check("02:00 Mars/Olympus", None);
    check("02:00 UTC extra", None);
    check("", None);
    check("-1:00", None);
    check("002:00", None);
    check("+2:00", None);
}

#[test]
fn the_latest_local_hour_follows_daylight_saving() {
    let ny: Tz = "America/New_York".parse().unwrap();
    fn check(hour: u32, tz: Tz, now: DateTime<Utc>, expected: DateTime<Utc>) {
        assert_eq!(
            last_occurrence(hour, tz, now),
            Some(expected),
            "{hour}:00 {tz} at {now}"
        );
    }
    // 02:00 EST is 07:00 UTC; before it, the day before's.
    check(2, ny, utc(2026, 1, 10, 7, 0), utc(2026, 1, 10, 7, 0));
    check(2, ny, utc(2026, 1, 10, 6, 59), utc(2026, 1, 9, 7, 0));
    // 2026-03-08: 02:00 does not exist in New York; the run is at 03:00 EDT (07:00 UTC).
    check(2, ny, utc(2026, 3, 8, 12, 0), utc(2026, 3, 8, 7, 0));
    // After the change, 02:00 EDT is 06:00 UTC.
    check(2, ny, utc(2026, 3, 9, 12, 0), utc(2026, 3, 9, 6, 0));
    // 2026-11-01: 01:00 happens twice; the first (EDT, 05:00 UTC) counts.
    check(1, ny, utc(2026, 11, 1, 7, 0), utc(2026, 11, 1, 5, 0));
    check(0, Tz::UTC, utc(2026, 5, 5, 0, 0), utc(2026, 5, 5, 0, 0));
}

#[test]
fn a_schedule_is_due_once_per_day_and_not_before_it_was_made() {
    let schedule = BackupSchedule {
        addon_id: Uuid::nil(),
        addon_name: "postgresql-x".into(),
        app_name: "a".into(),
        name: "DATABASE_URL".into(),
        hour: 2,
        timezone: "UTC".into(),
        created_at: utc(2026, 1, 1, 3, 0),
        last_run: None,
    };
    // Made after today's hour: nothing until tomorrow's.
    assert_eq!(schedule.due(utc(2026, 1, 1, 23, 0)), None);
    assert_eq!(
        schedule.due(utc(2026, 1, 2, 2, 0)),
        Some(utc(2026, 1, 2, 2, 0))
    );
    let ran = BackupSchedule {
        last_run: Some(utc(2026, 1, 2, 2, 0)),
        ..schedule.clone()
    };
    assert_eq!(ran.due(utc(2026, 1, 2, 20, 0)), None);
    // A server down for three days runs one catch-up, not three.
    assert_eq!(ran.due(utc(2026, 1, 5, 9, 0)), Some(utc(2026, 1, 5, 2, 0)));
    let unknown_zone = BackupSchedule {
        timezone: "Nowhere/Else".into(),
        ..schedule
    };
    assert_eq!(unknown_zone.due(utc(2026, 1, 9, 9, 0)), None);
}

/// Wall time that moves only when the ticks move it.
#[derive(Clone)]
struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl WallClock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// `left` ticks, each a minute after the last, then stop.
struct MinuteTicks {
    clock: ManualClock,
    left: u32,
}

impl Ticks for MinuteTicks {
    async fn tick(&mut self) -> bool {
        if self.left == 0 {
            return false;
        }
        self.left -= 1;
        *self.clock.0.lock().unwrap() += chrono::Duration::seconds(60);
        true
    }
}

type Runs = Arc<Mutex<Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>>>;

/// Runs the scheduler for `minutes` ticks; what it captured: when, and for which due moment.
async fn run_for(store: &Arc<dyn Store>, clock: &ManualClock, minutes: u32, runs: &Runs) {
    let ticks = MinuteTicks {
        clock: clock.clone(),
        left: minutes,
    };
    let (runs, now) = (runs.clone(), clock.clone());
    run_scheduler(store.clone(), clock.clone(), ticks, move |s| {
        let runs = runs.clone();
        let at = now.now();
        async move { runs.lock().unwrap().push((at, s.last_run)) }
    })
    .await;
}

#[tokio::test]
async fn the_scheduler_fires_once_a_day_at_the_local_hour() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        slipway_store::SqliteStore::open(&dir.path().join("db"), Default::default()).unwrap();
    // Friday 2026-03-06 12:00 UTC; New York moves to summer time on Sunday the 8th.
    let clock = ManualClock(Arc::new(Mutex::new(utc(2026, 3, 6, 12, 0))));
    let addon = Uuid::new_v4();
    let schedule = BackupSchedule {
        addon_id: addon,
        addon_name: "postgresql-x".into(),
        app_name: "a".into(),
        name: "DATABASE_URL".into(),
        hour: 2,
        timezone: "America/New_York".into(),
        created_at: clock.now(),
        last_run: None,
    };
    store
        .txn(Txn::new().then(Op::put_json(schedule_key(addon), &schedule).unwrap()))
        .await
        .unwrap();

    // Four days, a minute at a time: to Tuesday the 10th at 12:00 UTC.
    let runs: Runs = Arc::default();
    run_for(&store, &clock, 4 * 24 * 60, &runs).await;
    let seen = runs.lock().unwrap().clone();
    let expected = [
        utc(2026, 3, 7, 7, 0),  // 02:00 EST
        utc(2026, 3, 8, 7, 0),  // 03:00 EDT: 02:00 does not exist that night
        utc(2026, 3, 9, 6, 0),  // 02:00 EDT
        utc(2026, 3, 10, 6, 0), // 02:00 EDT
    ];
    assert_eq!(seen.len(), expected.len(), "{seen:?}");
    for ((at, due), expected) in seen.iter().zip(expected) {
        assert_eq!(*due, Some(expected));
        // At the first tick at or after the hour.
        assert_eq!(*at, expected, "{seen:?}");
    }
    let stored: BackupSchedule = get_json(store.as_ref(), &schedule_key(addon))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.last_run, Some(utc(2026, 3, 10, 6, 0)));

    // A restarted scheduler does not run the day's backup again.
    run_for(&store, &clock, 60, &runs).await;
    assert_eq!(runs.lock().unwrap().len(), expected.len());

    // Unscheduled: no more runs.
    store
        .txn(Txn::new().then(Op::delete(schedule_key(addon))))
        .await
        .unwrap();
    run_for(&store, &clock, 3 * 24 * 60, &runs).await;
    assert_eq!(runs.lock().unwrap().len(), expected.len());
}
