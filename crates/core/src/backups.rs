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
use slipway_store::json::range_json;
use slipway_store::{Compare, Op, Txn};
use std::path::PathBuf;
use uuid::Uuid;

use crate::access::Permission;
use crate::addons::Addon;
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
}

impl Backup {
    /// Heroku's name: `b001`.
    pub fn name(&self) -> String {
        format!("b{:03}", self.number)
    }
}

/// `b001`, `B1` or `1` → 1.
fn parse_backup_name(name: &str) -> Result<u32, CoreError> {
    let digits = name.trim_start_matches(['b', 'B']);
    digits
        .parse::<u32>()
        .ok()
        .filter(|n| *n > 0 && digits.len() <= 6)
        .ok_or_else(|| {
            CoreError::invalid(format!(
                "{name:?} is not a backup name; backups are named b001, b002, ... (see pg:backups)."
            ))
        })
}

impl Platform {
    fn backup_file(&self, addon: Uuid, number: u32) -> PathBuf {
        self.config()
            .data_dir
            .join("blobs")
            .join("backups")
            .join(addon.to_string())
            .join(format!("b{number:03}.dump"))
    }

    /// The PostgreSQL add-on `addon` (a name, an ID, or an attachment name on `app`).
    async fn backup_addon(&self, user: &User, app: &str, addon: &str) -> Result<Addon, CoreError> {
        let view = match self.addon(user, addon).await {
            Ok(view) => view,
            Err(CoreError::NotFound { .. }) => {
                let attached = self.app_addons(user, app).await?.into_iter().find(|view| {
                    view.attachments
                        .iter()
                        .any(|a| a.app_name == app && a.name == addon)
                });
                attached.ok_or_else(|| CoreError::not_found("add-on", addon))?
            }
            Err(other) => return Err(other),
        };
        if view.addon.service != Service::Postgres.name() {
            return Err(CoreError::invalid(format!(
                "{} is not a PostgreSQL add-on; only heroku-postgresql add-ons have backups.",
                view.addon.name
            )));
        }
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
                backups.into_iter().find(|b| b.number == number)
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
    pub async fn capture_backup(
        &self,
        user: &User,
        app: &str,
        addon: &str,
    ) -> Result<Backup, CoreError> {
        let addon = self.backup_addon(user, app, addon).await?;
        // Changing an add-on's data is operating the app that owns it.
        self.app_for(user, &addon.app_name, Permission::Operate)
            .await?;
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
            };
            let key = backup_key(addon.id, number);
            let written = self
                .store()
                .txn(
                    Txn::new()
                        .when(Compare::absent(key.clone()))
                        .then(Op::put_json(key, &backup)?),
                )
                .await?;
            if written.succeeded {
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
    pub async fn restore_backup(
        &self,
        user: &User,
        app: &str,
        addon: &str,
        from: Option<&str>,
        name: Option<&str>,
    ) -> Result<Backup, CoreError> {
        let target = self.backup_addon(user, app, addon).await?;
        self.app_for(user, &target.app_name, Permission::Operate)
            .await?;
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
        Ok(backup)
    }

    /// `pg:backups:delete`: the record and its dump.
    pub async fn delete_backup(
        &self,
        user: &User,
        app: &str,
        addon: &str,
        name: &str,
    ) -> Result<Backup, CoreError> {
        let addon = self.backup_addon(user, app, addon).await?;
        self.app_for(user, &addon.app_name, Permission::Operate)
            .await?;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_names_are_numbers_with_an_optional_b() {
        assert_eq!(parse_backup_name("b001").unwrap(), 1);
        assert_eq!(parse_backup_name("B12").unwrap(), 12);
        assert_eq!(parse_backup_name("7").unwrap(), 7);
        for bad in ["", "b0", "bx", "b-1", "b1234567", "../b001"] {
            assert!(parse_backup_name(bad).is_err(), "{bad}");
        }
    }
}
