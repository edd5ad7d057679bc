//! Storage limits of PostgreSQL add-ons, enforced as Heroku does for Essential plans: a
//! periodic check (every [`ADDON_SIZE_CHECK_SECS`] by default, and after each
//! `pg:backups:restore`) measures `pg_database_size`; past the plan's limit (or the
//! operator's lower `--addon-postgres-max-mb`) the add-on's role loses `INSERT`, `UPDATE` and
//! `CREATE` and starts read-only, and gets them back once it is under again (deleting rows
//! is how a tenant gets there). Each change writes a platform log line to every app the
//! add-on is attached to, and `pg:info` shows the state.

use std::sync::Arc;
use std::time::Duration;

use slipway_addons::Service;

use crate::addons::Addon;
use crate::platform::Platform;
use crate::telemetry::PlatformEvent;

/// How often sizes are checked, in seconds: five minutes, so a database that grows past its
/// limit is read-only within minutes while an idle platform runs one small query per
/// database that often.
pub const ADDON_SIZE_CHECK_SECS: u64 = 300;

impl Platform {
    /// Starts the periodic storage check. It runs until the returned handle is aborted; a
    /// platform without add-on servers checks nothing.
    pub fn start_addon_size_checks(
        self: &Arc<Self>,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let platform = self.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every.max(Duration::from_secs(1)));
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                platform.check_addon_sizes().await;
            }
        })
    }

    /// One pass over every PostgreSQL add-on. Failures are logged: there is nobody to answer,
    /// and the next pass tries again.
    async fn check_addon_sizes(&self) {
        if self.config().addons.is_none() {
            return;
        }
        let addons = match self.all_addons().await {
            Ok(addons) => addons,
            Err(error) => {
                tracing::warn!(%error, "storage check skipped: the add-ons could not be read");
                return;
            }
        };
        for addon in addons {
            if addon.service == Service::Postgres.name() && addon.partner.is_none() {
                self.check_addon_size(&addon).await;
            }
        }
    }

    /// Checks one add-on's size and says so in its apps' logs when its state changed.
    pub(crate) async fn check_addon_size(&self, addon: &Addon) {
        let (Ok(servers), Some(plan)) = (self.addon_servers(), addon.plan()) else {
            return;
        };
        let check = match servers.enforce_postgres_size(&addon.resource, plan).await {
            Ok(check) => check,
            Err(error) => {
                tracing::warn!(%error, addon = %addon.name, "storage check failed");
                return;
            }
        };
        if !check.changed {
            return;
        }
        tracing::info!(
            addon = %addon.name,
            size = check.size_bytes,
            limit = check.size_limit_bytes,
            read_only = check.read_only,
            "storage limit enforcement changed"
        );
        let mut apps = vec![addon.app_name.clone()];
        if let Ok(attachments) = self.all_attachments().await {
            apps.extend(
                attachments
                    .into_iter()
                    .filter(|a| a.addon_id == addon.id)
                    .map(|a| a.app_name),
            );
        }
        apps.sort();
        apps.dedup();
        let event = if check.read_only {
            PlatformEvent::DatabaseOverLimit {
                addon: &addon.name,
                size_bytes: check.size_bytes,
                limit_bytes: check.size_limit_bytes,
            }
        } else {
            PlatformEvent::DatabaseUnderLimit {
                addon: &addon.name,
                size_bytes: check.size_bytes,
                limit_bytes: check.size_limit_bytes,
            }
        };
        for app in apps {
            self.event(&app, event.clone());
        }
    }
}
