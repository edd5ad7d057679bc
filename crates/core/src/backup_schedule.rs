//! Daily automatic backups of PostgreSQL add-ons (`pg:backups:schedule --at '02:00
//! America/New_York'`, `pg:backups:schedules`, `pg:backups:unschedule`).
//!
//! A schedule is one record per add-on (`addon-backup-schedules/<add-on id>`): the hour and
//! the IANA time zone it was given, and the moment of its last run. One tokio task, started
//! with the platform ([`Platform::start_backup_scheduler`]), looks at every schedule once a
//! minute; a schedule whose latest local `HOUR:00` is past and later than its last run (and
//! than its creation) is claimed by compare-and-set on its record, then captured as a
//! scheduled backup (`a001`, as on Heroku), after which the oldest scheduled backups beyond
//! [`SCHEDULED_KEPT`] are pruned. A server that was down at the hour catches up once when it
//! comes back, never more than once per day. When the hour does not exist locally (a
//! daylight-saving gap) the backup runs at the first instant after the gap; when it exists
//! twice, at the first.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use slipway_store::json::{apply_if, get_json, range_json};
use slipway_store::{Compare, Op, Store, Txn};
use uuid::Uuid;

use crate::addons::Addon;
use crate::error::CoreError;
use crate::model::User;
use crate::platform::Platform;

const SCHEDULES: &str = "addon-backup-schedules/";
/// The add-on records' prefix (`addons.rs`): the scheduler reads an add-on afresh at each run,
/// since its URL changes when its credentials are rotated.
const ADDONS: &str = "addons/";
/// How often the scheduler looks at the schedules: a backup starts within a minute of its hour.
const TICK: Duration = Duration::from_secs(60);
/// Heroku keeps the last 7 daily scheduled backups on its essential plans.
pub(crate) const SCHEDULED_KEPT: usize = 7;

pub(crate) fn schedule_key(addon: Uuid) -> String {
    format!("{SCHEDULES}{addon}")
}

/// A PostgreSQL add-on's daily backup schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupSchedule {
    pub addon_id: Uuid,
    pub addon_name: String,
    pub app_name: String,
    /// The config var it was scheduled by (`DATABASE_URL`), as `pg:backups:schedules` shows it.
    pub name: String,
    /// The local hour, 0 to 23.
    pub hour: u32,
    /// An IANA time zone name (`America/New_York`, `UTC`).
    pub timezone: String,
    pub created_at: DateTime<Utc>,
    /// The scheduled moment of the last run (not when it finished).
    pub last_run: Option<DateTime<Utc>>,
}

impl BackupSchedule {
    /// The moment a run is due at `now`, if one is: the latest local `hour:00` at or before
    /// `now`, when it is later than both the schedule's creation and its last run.
    pub(crate) fn due(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let tz: Tz = self.timezone.parse().ok()?;
        let due = last_occurrence(self.hour, tz, now)?;
        let after_last = self.last_run.is_none_or(|last| last < due);
        (due >= self.created_at && after_last).then_some(due)
    }
}

/// `02:00 America/New_York`, `2:00`, `14:00 UTC` → the hour and the zone (UTC when none is
/// given). Only whole hours, as on Heroku.
pub(crate) fn parse_at(at: &str) -> Result<(u32, Tz), CoreError> {
    let bad = || {
        CoreError::invalid(format!(
            "{at:?} is not a schedule; give a whole hour and an optional time zone: --at '02:00 America/New_York'."
        ))
    };
    let mut words = at.split_whitespace();
    let time = words.next().ok_or_else(bad)?;
    let zone = words.next();
    if words.next().is_some() || at.len() > 64 {
        return Err(bad());
    }
    let (hour, minutes) = time.split_once(':').unwrap_or((time, "00"));
    let hour: u32 = hour
        .parse()
        .ok()
        .filter(|h| *h < 24 && hour.len() <= 2 && hour.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(bad)?;
    if minutes != "00" {
        return Err(CoreError::invalid(format!(
            "{at:?}: backups are scheduled on the hour; use {hour:02}:00."
        )));
    }
    let tz = match zone {
        None => Tz::UTC,
        Some(zone) => zone
            .parse::<Tz>()
            .ok()
            .or_else(|| {
                chrono_tz::TZ_VARIANTS
                    .iter()
                    .copied()
                    .find(|tz| tz.name().eq_ignore_ascii_case(zone))
            })
            .ok_or_else(|| {
                CoreError::invalid(format!(
                    "{zone:?} is not a time zone; use an IANA name such as America/New_York or UTC."
                ))
            })?,
    };
    Ok((hour, tz))
}

/// The instant `hour:00` happens on local `date` in `tz`: the first of two in a fold, the end
/// of the gap in a daylight-saving gap.
fn occurrence(hour: u32, tz: Tz, date: NaiveDate) -> Option<DateTime<Utc>> {
    let local = date.and_hms_opt(hour, 0, 0)?;
    if let Some(at) = tz.from_local_datetime(&local).earliest() {
        return Some(at.with_timezone(&Utc));
    }
    // No such local time: the clocks jumped over it. The first whole hour after it is the
    // end of the gap (gaps are whole hours in every zone Heroku users schedule in; the loop
    // bounds the odd ones).
    (1..=3).find_map(|h| {
        let later = local + chrono::Duration::hours(h);
        tz.from_local_datetime(&later)
            .earliest()
            .map(|at| at.with_timezone(&Utc))
    })
}

/// The latest instant at or before `now` at which it is `hour:00` in `tz`.
pub(crate) fn last_occurrence(hour: u32, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let today = now.with_timezone(&tz).date_naive();
    (0..3).find_map(|back| {
        let date = today.checked_sub_days(chrono::Days::new(back))?;
        occurrence(hour, tz, date).filter(|at| *at <= now)
    })
}

/// Where the scheduler reads the time.
pub(crate) trait WallClock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SystemWallClock;

impl WallClock for SystemWallClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// When the scheduler looks again: time is injected, so tests step through days of ticks
/// without waiting.
pub(crate) trait Ticks: Send {
    /// Waits for the next tick; `false` stops the scheduler.
    fn tick(&mut self) -> impl Future<Output = bool> + Send;
}

/// Every [`TICK`] of tokio's clock, forever.
pub(crate) struct Interval(tokio::time::Interval);

impl Interval {
    pub(crate) fn new() -> Interval {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Interval(interval)
    }
}

impl Ticks for Interval {
    async fn tick(&mut self) -> bool {
        self.0.tick().await;
        true
    }
}

/// Looks at every schedule at each tick and runs `capture` for each due one, after claiming
/// the run on its record (so a schedule removed or changed meanwhile is not run from a stale
/// copy, and no run happens twice). Runs until `ticks` stops or the task is aborted.
pub(crate) async fn run_scheduler<C, T, F, Fut>(
    store: Arc<dyn Store>,
    clock: C,
    mut ticks: T,
    mut capture: F,
) where
    C: WallClock,
    T: Ticks,
    F: FnMut(BackupSchedule) -> Fut,
    Fut: Future<Output = ()>,
{
    while ticks.tick().await {
        let schedules = match range_json::<BackupSchedule, _>(store.as_ref(), SCHEDULES).await {
            Ok((schedules, _)) => schedules,
            Err(error) => {
                tracing::warn!(%error, "could not read the backup schedules; trying again in a minute");
                continue;
            }
        };
        for (kv, schedule) in schedules {
            let Some(due) = schedule.due(clock.now()) else {
                continue;
            };
            let mut claimed = schedule;
            claimed.last_run = Some(due);
            let op = match Op::put_json(kv.key.clone(), &claimed) {
                Ok(op) => op,
                Err(error) => {
                    tracing::warn!(%error, addon = %claimed.addon_name, "could not claim a scheduled backup");
                    continue;
                }
            };
            let txn = Txn::new()
                .when(Compare::mod_revision(kv.key.clone(), kv.mod_revision))
                .then(op);
            match store.txn(txn).await {
                Ok(written) if written.succeeded => capture(claimed).await,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, addon = %claimed.addon_name, "could not claim a scheduled backup");
                }
            }
        }
    }
}

impl Platform {
    /// Starts the backup scheduler. It runs until the returned handle is aborted.
    pub fn start_backup_scheduler(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let platform = self.clone();
        tokio::spawn(run_scheduler(
            self.store().clone(),
            SystemWallClock,
            Interval::new(),
            move |schedule| {
                let platform = platform.clone();
                async move { platform.run_scheduled_backup(schedule).await }
            },
        ))
    }

    /// One scheduled capture and the pruning after it. Failures are logged and listed (a
    /// `failed` backup): there is nobody to answer.
    async fn run_scheduled_backup(&self, schedule: BackupSchedule) {
        let key = format!("{ADDONS}{}", schedule.addon_name);
        let addon = match get_json::<Addon, _>(self.store().as_ref(), &key).await {
            Ok(Some(addon)) if addon.id == schedule.addon_id => addon,
            Ok(_) => return,
            Err(error) => {
                tracing::warn!(%error, addon = %schedule.addon_name, "scheduled backup skipped: the add-on could not be read");
                return;
            }
        };
        match self.capture(&addon, true).await {
            Ok(backup) => {
                tracing::info!(addon = %addon.name, backup = %backup.name(), "scheduled backup completed");
            }
            Err(error) => {
                tracing::warn!(%error, addon = %addon.name, "scheduled backup failed");
            }
        }
        if let Err(error) = self.prune_scheduled_backups(addon.id).await {
            tracing::warn!(%error, addon = %addon.name, "could not prune old scheduled backups");
        }
    }

    /// `pg:backups:schedule`: daily at `at`, replacing any earlier schedule of the add-on.
    pub(crate) async fn schedule_backups(
        &self,
        user: &User,
        app: &str,
        addon: &str,
        at: &str,
    ) -> Result<BackupSchedule, CoreError> {
        let (hour, tz) = parse_at(at)?;
        let target = self.backup_addon(user, app, addon).await?;
        let schedule = BackupSchedule {
            addon_id: target.id,
            addon_name: target.name.clone(),
            app_name: app.to_owned(),
            name: config_var_name(addon, &target),
            hour,
            timezone: tz.name().to_owned(),
            created_at: Utc::now(),
            last_run: None,
        };
        self.store()
            .txn(Txn::new().then(Op::put_json(schedule_key(target.id), &schedule)?))
            .await?;
        Ok(schedule)
    }

    /// `pg:backups:unschedule`: the schedule as it was.
    pub(crate) async fn unschedule_backups(
        &self,
        user: &User,
        app: &str,
        addon: &str,
    ) -> Result<BackupSchedule, CoreError> {
        let target = self.backup_addon(user, app, addon).await?;
        let key = schedule_key(target.id);
        let schedule = get_json::<BackupSchedule, _>(self.store().as_ref(), &key)
            .await?
            .ok_or_else(|| {
                CoreError::invalid(format!(
                    "No backup schedule for {} on {app}; see pg:backups:schedules.",
                    target.name
                ))
            })?;
        apply_if(
            self.store().as_ref(),
            Compare::exists(key.clone()),
            Op::delete(key),
        )
        .await?;
        Ok(schedule)
    }

    /// `pg:backups:schedules`: the schedules of the PostgreSQL add-ons attached to `app`.
    pub async fn backup_schedules(
        &self,
        user: &User,
        app: &str,
    ) -> Result<Vec<BackupSchedule>, CoreError> {
        let mut out = Vec::new();
        for view in self.app_addons(user, app).await? {
            let key = schedule_key(view.addon.id);
            if let Some(schedule) =
                get_json::<BackupSchedule, _>(self.store().as_ref(), &key).await?
            {
                out.push(schedule);
            }
        }
        Ok(out)
    }
}

/// The config var a schedule is shown by: what the user named (`DATABASE` →
/// `DATABASE_URL`), or the add-on's own name when they gave that.
fn config_var_name(given: &str, addon: &Addon) -> String {
    if given == addon.name || given == addon.id.to_string() {
        addon.name.clone()
    } else if given.ends_with("_URL") {
        given.to_owned()
    } else {
        format!("{given}_URL")
    }
}

#[cfg(test)]
mod tests;
