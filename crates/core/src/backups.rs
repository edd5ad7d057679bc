//! PostgreSQL add-on backups (`pg:backups`): a capture runs `pg_dump -Fc` as the add-on's own
//! role into `<data>/blobs/backups/<add-on id>/<b001>.dump` (0600, at most
//! [`MAX_BACKUP_BYTES`]); a restore runs `pg_restore --clean --if-exists --no-owner` of one into
//! an add-on the user can see (its own, or another app's). Records live at
//! `addon-backups/<add-on id>/<number>`, named `b001`, `b002`, ... per add-on.
//!
//! A capture first writes a `running` record, then the dump, then the final record:
//! `completed` with its size, or `failed` with the reason (and no dump file), so a failed
//! capture is listed as failed and never as a good backup.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use slipway_addons::Service;
use slipway_store::json::{apply_if, range_json};
use slipway_store::{Compare, Op, Txn};
use std::path::PathBuf;
use uuid::Uuid;

use crate::access::Permission;
use crate::addons::Addon;
use crate::backup_schedule::{schedule_key, SCHEDULED_KEPT};
use crate::error::CoreError;
use crate::model::User;
use crate::platform::Platform;

const BACKUPS: &str = "addon-backups/";
/// The largest dump kept (1 GiB).
pub(crate) const MAX_BACKUP_BYTES: u64 = 1 << 30;

fn backup_key(addon: Uuid, number: u32) -> String {
    format!("{BACKUPS}{addon}/{number:06}")
}

/// One backup of a PostgreSQL add-on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    pub id: Uuid,
    pub number: u32,
    pub addon_id: Uuid,
    pub addon_name: String,
    pub app_name: String,
    /// `running`, `completed` or `failed`.
    pub status: String,
    pub size: u64,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Taken by the schedule rather than asked for (records from before schedules have none).
    #[serde(default)]
    pub scheduled: bool,
}

impl Backup {
    /// Heroku's name: `b001` for a capture asked for, `a001` for a scheduled one.
    pub fn name(&self) -> String {
        let prefix = if self.scheduled { 'a' } else { 'b' };
        format!("{prefix}{:03}", self.number)
    }
}

/// `b001`, `a002`, `B1` or `1` → the number (numbers are unique per add-on whatever the
/// letter).
fn parse_backup_name(name: &str) -> Result<u32, CoreError> {
    let digits = name.strip_prefix(['a', 'A', 'b', 'B']).unwrap_or(name);
    digits
        .parse::<u32>()
        .ok()
        .filter(|n| *n > 0 && digits.len() <= 6)
        .ok_or_else(|| {
            CoreError::invalid(format!(
                "{name:?} is not a backup name; backups are named b001, a002, ... (see pg:backups)."
            ))
        })
}

impl Platform {
    fn backups_dir(&self) -> PathBuf {
        self.config().data_dir.join("blobs").join("backups")
    }

    /// The dump's file is named by number alone (`b001.dump` whatever the backup's letter),
    /// so a name never has to be looked up to find its file.
    fn backup_file(&self, addon: Uuid, number: u32) -> PathBuf {
        self.backups_dir()
            .join(addon.to_string())
            .join(format!("b{number:03}.dump"))
    }

    /// The PostgreSQL add-on `addon` (a name, an ID, or an attachment name on `app`).
    pub(crate) async fn backup_addon(
        &self,
        user: &User,
        app: &str,
        addon: &str,
    ) -> Result<Addon, CoreError> {
        let addon = self.named_addon(user, app, addon).await?;
        if addon.service != Service::Postgres.name() {
            return Err(CoreError::invalid(format!(
                "{} is not a PostgreSQL add-on; only heroku-postgresql add-ons have backups.",
                addon.name
            )));
        }
        Ok(addon)
    }

    /// [`Platform::backup_addon`], whose data the user is about to change: that is operating
    /// the app that owns it (capture, restore, delete).
    async fn operated_backup_addon(
        &self,
        user: &User,
        app: &str,
        addon: &str,
    ) -> Result<Addon, CoreError> {
        let addon = self.backup_addon(user, app, addon).await?;
        self.app_for(user, &addon.app_name, Permission::Operate)
            .await?;
        Ok(addon)
    }

    /// The add-on `addon` names: an add-on's name or ID the user may manage, or an
    /// attachment's name on `app` (`DATABASE`, or `DATABASE_URL` as Heroku's CLI allows).
    pub(crate) async fn named_addon(
        &self,
        user: &User,
        app: &str,
        addon: &str,
    ) -> Result<Addon, CoreError> {
        let view = match self.addon(user, addon).await {
            Ok(view) => view,
            Err(CoreError::NotFound { .. }) => {
                // `DATABASE_URL` names the attachment `DATABASE`, as in Heroku's CLI.
                let addon = addon.strip_suffix("_URL").unwrap_or(addon);
                let attached = self.app_addons(user, app).await?.into_iter().find(|view| {
                    view.attachments
                        .iter()
                        .any(|a| a.app_name == app && a.name == addon)
                });
                attached.ok_or_else(|| CoreError::not_found("add-on", addon))?
            }
            Err(other) => return Err(other),
        };
        Ok(view.addon)
    }

    async fn addon_backups(&self, addon: Uuid) -> Result<Vec<Backup>, CoreError> {
        let (found, _) =
            range_json::<Backup, _>(self.store().as_ref(), &format!("{BACKUPS}{addon}/")).await?;
        Ok(found.into_iter().map(|(_, b)| b).collect())
    }

    /// `pg:backups`: the add-on's backups, oldest first.
    pub async fn backups(
        &self,
        user: &User,
        app: &str,
        addon: &str,
    ) -> Result<Vec<Backup>, CoreError> {
        let addon = self.backup_addon(user, app, addon).await?;
        self.addon_backups(addon.id).await
    }

    async fn find_backup(&self, addon: &Addon, name: Option<&str>) -> Result<Backup, CoreError> {
        let backups = self.addon_backups(addon.id).await?;
        let found = match name {
            Some(name) => {
                let number = parse_backup_name(name)?;
                // `a003` is not `b003`'s other name: a letter given must match.
                let letter = name
                    .chars()
                    .next()
                    .filter(char::is_ascii_alphabetic)
                    .map(|c| c.to_ascii_lowercase());
                backups
                    .into_iter()
                    .find(|b| b.number == number && letter.is_none_or(|l| b.name().starts_with(l)))
            }
            None => backups.into_iter().rev().find(|b| b.status == "completed"),
        };
        found.ok_or_else(|| CoreError::not_found("backup", name.unwrap_or("latest")))
    }

    /// One backup (`None`: the latest completed one).
    pub async fn backup(
        &self,
        user: &User,
        app: &str,
        addon: &str,
        name: Option<&str>,
    ) -> Result<Backup, CoreError> {
        let addon = self.backup_addon(user, app, addon).await?;
        self.find_backup(&addon, name).await
    }

    /// A completed backup's dump file, for `pg:backups:download`.
    pub async fn backup_dump(
        &self,
        user: &User,
        app: &str,
        addon: &str,
        name: Option<&str>,
    ) -> Result<(Backup, PathBuf), CoreError> {
        let addon = self.backup_addon(user, app, addon).await?;
        let backup = self.find_backup(&addon, name).await?;
        if backup.status != "completed" {
            return Err(CoreError::invalid(format!(
                "Backup {} is {}; only a completed backup can be downloaded or restored.",
                backup.name(),
                backup.status
            )));
        }
        Ok((backup.clone(), self.backup_file(addon.id, backup.number)))
    }

    /// `pg:backups:capture`: dumps the add-on now. A failed dump leaves a `failed` record and
    /// returns the reason.
    pub(crate) async fn capture_backup(
        &self,
        user: &User,
        app: &str,
        addon: &str,
    ) -> Result<Backup, CoreError> {
        let addon = self.operated_backup_addon(user, app, addon).await?;
        self.capture(&addon, false).await
    }

    /// Dumps `addon` now (`scheduled`: for its schedule, named `a…`).
    pub(crate) async fn capture(
        &self,
        addon: &Addon,
        scheduled: bool,
    ) -> Result<Backup, CoreError> {
        let servers = self.addon_servers()?;
        let mut backup = loop {
            let number = self
                .addon_backups(addon.id)
                .await?
                .iter()
                .map(|b| b.number)
                .max()
                .unwrap_or(0)
                + 1;
            let backup = Backup {
                id: Uuid::new_v4(),
                number,
                addon_id: addon.id,
                addon_name: addon.name.clone(),
                app_name: addon.app_name.clone(),
                status: "running".into(),
                size: 0,
                error: None,
                created_at: Utc::now(),
                finished_at: None,
                scheduled,
            };
            let key = backup_key(addon.id, number);
            let applied = apply_if(
                self.store().as_ref(),
                Compare::absent(key.clone()),
                Op::put_json(key, &backup)?,
            )
            .await?;
            if applied {
                break backup;
            }
        };
        let file = self.backup_file(addon.id, backup.number);
        let dumped = match file.parent() {
            Some(dir) => match tokio::fs::create_dir_all(dir).await {
                Ok(()) => servers
                    .pg_dump(&addon.url, &file, MAX_BACKUP_BYTES)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(format!("cannot create the backup directory: {e}")),
            },
            None => Err("no backup directory".to_owned()),
        };
        backup.finished_at = Some(Utc::now());
        let outcome = match dumped {
            Ok(size) => {
                backup.status = "completed".into();
                backup.size = size;
                Ok(())
            }
            Err(reason) => {
                backup.status = "failed".into();
                backup.error = Some(reason.clone());
                Err(reason)
            }
        };
        let key = backup_key(addon.id, backup.number);
        self.store()
            .txn(Txn::new().then(Op::put_json(key, &backup)?))
            .await?;
        match outcome {
            Ok(()) => Ok(backup),
            Err(reason) => Err(CoreError::invalid(format!(
                "Backup {} of {} failed: {reason}. It is listed as failed; capture again once the database is reachable.",
                backup.name(),
                addon.name
            ))),
        }
    }

    /// `pg:backups:restore`: restores `backup` of `from` (an add-on the user can see; `None`:
    /// the target itself) into the target add-on.
    pub(crate) async fn restore_backup(
        &self,
        user: &User,
        app: &str,
        addon: &str,
        from: Option<&str>,
        name: Option<&str>,
        confirm: Option<&str>,
    ) -> Result<Backup, CoreError> {
        check_confirm(app, confirm, || {
            format!("This command will overwrite the data of {addon} on {app}.")
        })?;
        let target = self.operated_backup_addon(user, app, addon).await?;
        // `from` is an add-on (name, ID, or attachment on `app`) or, as in Heroku's
        // `other-app::b001`, an app whose DATABASE it is.
        let source = match from {
            Some(from) => match self.backup_addon(user, app, from).await {
                Err(CoreError::NotFound { .. }) => self
                    .backup_addon(user, from, "DATABASE")
                    .await
                    .map_err(|_| CoreError::not_found("add-on", from))?,
                other => other?,
            },
            None => target.clone(),
        };
        let (backup, file) = self
            .backup_dump(user, &source.app_name, &source.name, name)
            .await?;
        self.addon_servers()?
            .pg_restore(&target.url, &file)
            .await
            .map_err(|e| {
                CoreError::invalid(format!(
                    "Restoring {} into {} failed: {e}",
                    backup.name(),
                    target.name
                ))
            })?;
        // A restore may take the database past its storage limit, or back under it.
        self.check_addon_size(&target).await;
        Ok(backup)
    }

    /// `pg:backups:delete`: the record and its dump.
    pub(crate) async fn delete_backup(
        &self,
        user: &User,
        app: &str,
        addon: &str,
        name: &str,
        confirm: Option<&str>,
    ) -> Result<Backup, CoreError> {
        check_confirm(app, confirm, || {
            format!("This command will delete backup {name} of {app}.")
        })?;
        let addon = self.operated_backup_addon(user, app, addon).await?;
        let backup = self.find_backup(&addon, Some(name)).await?;
        let file = self.backup_file(addon.id, backup.number);
        match tokio::fs::remove_file(&file).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(CoreError::invalid(format!(
                    "Cannot delete backup {}: {e}",
                    backup.name()
                )))
            }
        }
        self.store()
            .txn(Txn::new().then(Op::delete(backup_key(addon.id, backup.number))))
            .await?;
        Ok(backup)
    }

    /// Deletes the oldest scheduled backups of `addon` beyond [`SCHEDULED_KEPT`], records
    /// and dumps; backups asked for are kept until deleted.
    pub(crate) async fn prune_scheduled_backups(&self, addon: Uuid) -> Result<(), CoreError> {
        let scheduled: Vec<Backup> = self
            .addon_backups(addon)
            .await?
            .into_iter()
            .filter(|b| b.scheduled)
            .collect();
        let extra = scheduled.len().saturating_sub(SCHEDULED_KEPT);
        for backup in &scheduled[..extra] {
            remove_dump(&self.backup_file(addon, backup.number)).await?;
            self.store()
                .txn(Txn::new().then(Op::delete(backup_key(addon, backup.number))))
                .await?;
        }
        Ok(())
    }

    /// Deletes every backup of `addon` (records, dumps and schedule): called once its
    /// database has been dropped, when the add-on or its app is destroyed. Failures are
    /// logged; the add-on's records are already gone, so nothing could reach these again.
    pub(crate) async fn forget_addon_backups(&self, addon: Uuid) {
        let dir = self.backups_dir().join(addon.to_string());
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::error!(%error, %addon, dir = %dir.display(), "could not delete a destroyed add-on's backups");
            }
        }
        let removed = self
            .store()
            .txn(
                Txn::new()
                    .then(Op::delete_prefix(format!("{BACKUPS}{addon}/")))
                    .then(Op::delete(schedule_key(addon))),
            )
            .await;
        if let Err(error) = removed {
            tracing::error!(%error, %addon, "could not delete a destroyed add-on's backup records");
        }
    }
}

/// Refuses a destructive backup command unless `confirm` is the app's name.
fn check_confirm(
    app: &str,
    confirm: Option<&str>,
    what: impl FnOnce() -> String,
) -> Result<(), CoreError> {
    if confirm == Some(app) {
        return Ok(());
    }
    Err(CoreError::invalid(format!(
        "{} To proceed, confirm with the app's name: --confirm {app} (the API's `confirm` field).",
        what()
    )))
}

async fn remove_dump(file: &std::path::Path) -> Result<(), CoreError> {
    match tokio::fs::remove_file(file).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CoreError::invalid(format!(
            "Cannot delete the backup's dump: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn platform(dir: &std::path::Path) -> std::sync::Arc<Platform> {
        let store = slipway_store::SqliteStore::open(&dir.join("db"), Default::default()).unwrap();
        Platform::open(
            crate::PlatformConfig::new(dir.join("data")),
            store,
            std::sync::Arc::new(slipway_runtime::ProcessRuntime::new()),
            slipway_logplex::LogHub::default(),
        )
        .await
        .unwrap()
    }

    /// Writes a completed backup's record and dump as a capture would.
    async fn stored(platform: &Platform, addon: Uuid, number: u32, scheduled: bool) {
        let backup = Backup {
            id: Uuid::new_v4(),
            number,
            addon_id: addon,
            addon_name: "postgresql-x".into(),
            app_name: "a".into(),
            status: "completed".into(),
            size: 5,
            error: None,
            created_at: Utc::now(),
            finished_at: Some(Utc::now()),
            scheduled,
        };
        let file = platform.backup_file(addon, number);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, b"PGDMP").unwrap();
        platform
            .store()
            .txn(Txn::new().then(Op::put_json(backup_key(addon, number), &backup).unwrap()))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn pruning_keeps_seven_scheduled_and_every_manual_backup() {
        let dir = tempfile::tempdir().unwrap();
        let platform = platform(dir.path()).await;
        let addon = Uuid::new_v4();
        for number in 1..=12 {
            // b001 and b006 asked for; ten scheduled, of which a002-a004 are the oldest three.
            stored(&platform, addon, number, number != 1 && number != 6).await;
        }
        platform.prune_scheduled_backups(addon).await.unwrap();
        let names: Vec<String> = platform
            .addon_backups(addon)
            .await
            .unwrap()
            .iter()
            .map(Backup::name)
            .collect();
        assert_eq!(
            names,
            ["b001", "a005", "b006", "a007", "a008", "a009", "a010", "a011", "a012"]
        );
        for number in 1..=12 {
            let kept = number == 1 || number >= 5;
            assert_eq!(
                platform.backup_file(addon, number).exists(),
                kept,
                "{number}"
            );
        }

        // Forgetting the add-on's backups leaves no record, dump or schedule.
        let other = Uuid::new_v4();
        stored(&platform, other, 1, false).await;
        platform
            .store()
            .txn(Txn::new().then(Op::put(schedule_key(addon), b"{}".to_vec())))
            .await
            .unwrap();
        platform.forget_addon_backups(addon).await;
        assert!(platform.addon_backups(addon).await.unwrap().is_empty());
        assert!(!platform.backups_dir().join(addon.to_string()).exists());
        let schedule = platform.store().get(&schedule_key(addon)).await.unwrap();
        assert!(schedule.is_none());
        // Another add-on's are untouched.
        assert_eq!(platform.addon_backups(other).await.unwrap().len(), 1);
        assert!(platform.backup_file(other, 1).exists());
    }

    #[test]
    fn backup_names_are_numbers_with_an_optional_b() {
        assert_eq!(parse_backup_name("b001").unwrap(), 1);
        assert_eq!(parse_backup_name("B12").unwrap(), 12);
        assert_eq!(parse_backup_name("7").unwrap(), 7);
        assert_eq!(parse_backup_name("a002").unwrap(), 2);
        assert_eq!(parse_backup_name("A10").unwrap(), 10);
        for bad in [
            "", "b0", "bx", "b-1", "b1234567", "../b001", "c001", "ab001",
        ] {
            assert!(parse_backup_name(bad).is_err(), "{bad}");
        }
    }
}
