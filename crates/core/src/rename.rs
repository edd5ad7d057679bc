//! Renaming an app (`heroku apps:rename`, `PATCH /apps/{app} {"name"}`) and the rest of
//! `PATCH /apps/{app}` (maintenance, stack), checked before anything changes.
//!
//! Only `apps/<name>` is keyed by the app's name; every other record is keyed by its id or,
//! for domains, by hostname, so it stays. Records that carry the name as a field (add-ons,
//! their attachments and backups, drains) are rewritten in the same transaction that moves
//! the app, so no reader ever sees the app under two names or a record naming a missing
//! app. The default hostname is derived from the name by the route publisher, so
//! `NEW.<domain>` takes over routing and `OLD.<domain>` stops in that same instant.
//!
//! Around the transaction: the bare git repository is renamed before it (and renamed back if
//! the transaction fails), and the log hub's history, tails and drains move after it. The
//! app is marked as building for the whole rename, so a push cannot start meanwhile and a
//! rename cannot start during a build. Running dynos keep serving (routing is by app id) and
//! are then restarted, web ones with preboot, so their log lines and `$DYNO` environment
//! carry the new name.

use chrono::Utc;
use slipway_model::AppName;
use slipway_store::json::get_json_versioned;
use slipway_store::{Compare, Op, Txn};
use uuid::Uuid;

use crate::command::{AppChanges, RestartTarget};
use crate::error::CoreError;
use crate::formation::RestartMode;
use crate::model::{keys, App, User};
use crate::platform::Platform;

/// Holds the app in the set of apps being built while it is renamed.
struct RenameGuard<'a> {
    platform: &'a Platform,
    app: Uuid,
}

impl Drop for RenameGuard<'_> {
    fn drop(&mut self) {
        self.platform
            .building()
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .remove(&self.app);
    }
}

/// A stored record that names an app in its `app_name` field.
struct NamedRecord {
    key: String,
    revision: i64,
    value: serde_json::Value,
}

impl Platform {
    /// `PATCH /apps/{app}`: everything asked is checked before anything changes; then
    /// maintenance is set and the app renamed (`rename.rs`).
    pub(crate) async fn update_app(
        &self,
        actor: &User,
        app: App,
        changes: AppChanges,
    ) -> Result<App, CoreError> {
        let stack = match &changes.stack {
            Some(stack) => Some(self.check_stack(stack)?),
            None => None,
        };
        let new_name = match &changes.name {
            Some(name) => Some(
                name.parse::<AppName>()
                    .map_err(|error| CoreError::invalid(error.to_string()))?,
            ),
            None => None,
        };
        let mut app = app;
        if let Some(stack) = stack {
            app = self.set_app_stack(app, stack).await?;
        }
        if let Some(on) = changes.maintenance {
            app = self.set_maintenance(&app, on).await?;
        }
        if let Some(name) = new_name {
            app = self.rename_app(actor, &app, &name).await?;
        }
        Ok(app)
    }

    /// Renames `app` to `new`; see the module's documentation for what moves and when.
    pub(crate) async fn rename_app(
        &self,
        actor: &User,
        app: &App,
        new: &AppName,
    ) -> Result<App, CoreError> {
        let old = app.name.clone();
        let new = new.to_string();
        if new == old {
            return Ok(app.clone());
        }
        {
            let mut building = self.building().lock().unwrap_or_else(|p| p.into_inner());
            if !building.insert(app.id) {
                return Err(CoreError::Conflict {
                    message: format!(
                        "A build is running for {old}. Wait for it to finish, then rename the app."
                    ),
                });
            }
        }
        let _guard = RenameGuard {
            platform: self,
            app: app.id,
        };
        if self.store().get(&keys::app(&new)).await?.is_some() {
            return Err(CoreError::NameTaken { name: new });
        }
        // A repository without an app is a leftover of a destroyed app of that name.
        if let Err(error) = self.git_repos().remove(&new).await {
            tracing::warn!(%error, app = %new, "could not remove a leftover repository");
        }
        self.git_repos()
            .rename(&old, &new)
            .await
            .map_err(|source| CoreError::Git {
                app: old.clone(),
                action: "rename the git repository",
                source,
            })?;
        let renamed = match self.move_app_records(app, &new).await {
            Ok(renamed) => renamed,
            Err(error) => {
                if let Err(undo) = self.git_repos().rename(&new, &old).await {
                    tracing::error!(%undo, app = %old, "could not move the repository back after a failed rename");
                }
                return Err(error);
            }
        };
        self.logs().rename(&old, &new);
        for drain in self.drains(&renamed).await? {
            // Restarted under the new name, so their own reports (L10) reach its log.
            let _ = self.logs().remove_drain(&new, &drain.config.id);
            if let Err(error) = self.logs().add_drain(&new, drain.config.clone()) {
                tracing::warn!(%error, app = %new, "could not restart a log drain after a rename");
            }
        }
        self.restart_dynos(&renamed, &RestartTarget::App, RestartMode::Restart)
            .await?;
        self.event(
            &new,
            crate::telemetry::PlatformEvent::Changed {
                description: &format!("Rename {old} to {new}"),
                user: &actor.email,
            },
        );
        Ok(renamed)
    }

    /// The one transaction of a rename: `apps/<old>` becomes `apps/<new>` and every record
    /// naming the app in `app_name` names it anew. Retried when one of them changed meanwhile.
    async fn move_app_records(&self, app: &App, new: &str) -> Result<App, CoreError> {
        for _ in 0..10 {
            let Some((current, revision)) =
                get_json_versioned::<App, _>(self.store().as_ref(), &keys::app(&app.name)).await?
            else {
                return Err(CoreError::not_found("app", app.name.clone()));
            };
            let mut renamed = current;
            renamed.name = new.to_owned();
            renamed.updated_at = Utc::now();
            let mut txn = Txn::new()
                .when(Compare::mod_revision(keys::app(&app.name), revision))
                .when(Compare::absent(keys::app(new)))
                .then(Op::delete(keys::app(&app.name)))
                .then(Op::put_json(keys::app(new), &renamed)?);
            for mut record in self.records_naming(app).await? {
                record.value["app_name"] = serde_json::Value::String(new.to_owned());
                txn = txn
                    .when(Compare::mod_revision(record.key.clone(), record.revision))
                    .then(Op::put_json(record.key, &record.value)?);
            }
            if self.store().txn(txn).await?.succeeded {
                return Ok(renamed);
            }
            if self.store().get(&keys::app(new)).await?.is_some() {
                return Err(CoreError::NameTaken {
                    name: new.to_owned(),
                });
            }
        }
        Err(CoreError::Conflict {
            message: format!(
                "{} is changing too often to be renamed now. Try again.",
                app.name
            ),
        })
    }

    /// Every stored record whose `app_name` names `app`: its add-ons (billed to it), its
    /// add-on attachments, its add-ons' backups and its drains.
    async fn records_naming(&self, app: &App) -> Result<Vec<NamedRecord>, CoreError> {
        let id = app.id.to_string();
        let mut found = Vec::new();
        let mut addon_ids = Vec::new();
        for (prefix, by_id) in [
            ("addons/".to_owned(), true),
            (format!("addon-attachments/{id}/"), false),
            (format!("drains/{id}/"), false),
            ("addon-backups/".to_owned(), false),
        ] {
            let (entries, _) = self.store().range(&prefix).await?;
            for entry in entries {
                let Ok(value) = serde_json::from_slice::<serde_json::Value>(&entry.value) else {
                    continue;
                };
                let names_app = value["app_name"].as_str() == Some(app.name.as_str());
                let belongs = if by_id {
                    value["app_id"].as_str() == Some(id.as_str())
                } else if prefix == "addon-backups/" {
                    value["addon_id"]
                        .as_str()
                        .is_some_and(|addon| addon_ids.iter().any(|a| a == addon))
                } else {
                    true
                };
                if !belongs {
                    continue;
                }
                if by_id {
                    if let Some(addon) = value["id"].as_str() {
                        addon_ids.push(addon.to_owned());
                    }
                }
                if names_app {
                    found.push(NamedRecord {
                        key: entry.key,
                        revision: entry.mod_revision,
                        value,
                    });
                }
            }
        }
        Ok(found)
    }
}
