//! Formation changes: scaling process types (relative changes resolved inside the
//! compare-and-set) and restarting or stopping dynos, which the dyno manager carries out.

use std::collections::BTreeMap;

use chrono::Utc;
use slipway_model::DynoSize;
use slipway_store::json::get_json_versioned;
use slipway_store::{Compare, Op, Txn};

use crate::command::{FormationChange, RestartTarget};
use crate::error::CoreError;
use crate::model::{self, keys, App, Formation, User};
use crate::platform::Platform;
use crate::telemetry::PlatformEvent;

/// Whether a restart replaces dynos with preboot or stops them first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RestartMode {
    /// Replace every matching dyno; web dynos with preboot (no dropped requests).
    Restart,
    /// `ps:stop`: stop the dynos and let the formation start them again.
    Stop,
}

/// How many times a formation change is retried when another change to the same entries
/// wins the compare-and-set. Every lost race means another writer made progress, so this is
/// only reached under pathological contention.
const SCALE_ATTEMPTS: usize = 1000;

impl Platform {
    /// Restarts (or, in [`RestartMode::Stop`], stops and lets the formation start again) all
    /// of an app's dynos, one process type's or one dyno. The dyno manager replaces every
    /// matching dyno started before now; web dynos restart with preboot (no dropped requests)
    /// unless stopped.
    pub(crate) async fn restart_dynos(
        &self,
        app: &App,
        target: &RestartTarget,
        mode: RestartMode,
    ) -> Result<(), CoreError> {
        let key_target = match target {
            RestartTarget::App => "*".to_owned(),
            RestartTarget::Dyno(name) => {
                let name = name.to_string();
                if !self.dynos(app).await?.iter().any(|d| d.name == name) {
                    return Err(CoreError::not_found("dyno", name));
                }
                name
            }
            RestartTarget::ProcessType(process_type) => {
                if !self
                    .formation(app)
                    .await?
                    .iter()
                    .any(|f| f.process_type == process_type.as_str())
                {
                    return Err(CoreError::not_found("process type", process_type.as_str()));
                }
                process_type.to_string()
            }
        };
        let restart = model::Restart {
            at: Utc::now(),
            stop: mode == RestartMode::Stop,
        };
        self.store()
            .txn(Txn::new().then(Op::put_json(
                model::keys::restart(app.id, &key_target),
                &restart,
            )?))
            .await?;
        Ok(())
    }

    /// Scales process types. A type the current release does not define cannot go above 0.
    ///
    /// Every change is resolved against the entries read in the same attempt, and the
    /// attempt's transaction compares their revisions: a relative change (`web+1`) that loses
    /// the race to another writer is re-resolved on the newer entry, so concurrent relative
    /// changes all count.
    pub(crate) async fn scale(
        &self,
        user: &User,
        app: &App,
        changes: &[FormationChange],
    ) -> Result<Vec<Formation>, CoreError> {
        let process_types = self.process_types(app).await?;
        for _ in 0..SCALE_ATTEMPTS {
            // The entries as this attempt read them, by process type; a type named twice in
            // one batch gets both changes, in order.
            let mut entries: BTreeMap<&str, (Formation, slipway_store::Revision)> = BTreeMap::new();
            for change in changes {
                let process_type = change.process_type.as_str();
                let key = keys::formation(app.id, process_type);
                if !entries.contains_key(process_type) {
                    let Some(found) =
                        get_json_versioned::<Formation, _>(self.store().as_ref(), &key).await?
                    else {
                        return Err(CoreError::not_found("process type", process_type)
                            .with_hint(&process_types));
                    };
                    // A stored size that is not a dyno size is an error, never run as a
                    // default; a change that sets the size replaces it anyway.
                    if change.size.is_none() {
                        stored_size(app, &found.0)?;
                    }
                    entries.insert(process_type, found);
                }
                let Some((entry, _)) = entries.get_mut(process_type) else {
                    continue;
                };
                if let Some(quantity) = change.quantity {
                    let quantity = quantity.apply(entry.quantity);
                    if quantity > 0 && !process_types.contains_key(process_type) {
                        return Err(CoreError::invalid(format!(
                            "Couldn't find that process type ({}): the current release does not define it.",
                            change.process_type
                        )));
                    }
                    if quantity > self.config().dynos.max_dynos_per_app {
                        return Err(CoreError::invalid(format!(
                            "Cannot scale {} to {quantity}: the limit is {} dynos per app.",
                            change.process_type,
                            self.config().dynos.max_dynos_per_app
                        )));
                    }
                    entry.quantity = quantity;
                }
                if let Some(size) = change.size {
                    entry.size = size.as_str().to_owned();
                }
                entry.updated_at = Utc::now();
            }
            let mut txn = Txn::new();
            for (process_type, (entry, revision)) in &entries {
                let key = keys::formation(app.id, process_type);
                txn = txn
                    .when(Compare::mod_revision(key.clone(), *revision))
                    .then(Op::put_json(key, entry)?);
            }
            if !self.store().txn(txn).await?.succeeded {
                // Another change to these entries won; resolve again on what it wrote.
                tokio::task::yield_now().await;
                continue;
            }
            let changed: Vec<Formation> = entries.into_values().map(|(entry, _)| entry).collect();
            let mut shown = Vec::with_capacity(changed.len());
            for entry in &changed {
                let size = stored_size(app, entry)?;
                shown.push(format!(
                    "{}@{}:{}",
                    entry.process_type,
                    entry.quantity,
                    size.display_name()
                ));
            }
            let summary = shown.join(", ");
            self.event(
                &app.name,
                PlatformEvent::Scaled {
                    formation: summary,
                    user: &user.email,
                },
            );
            return Ok(changed);
        }
        Err(CoreError::Conflict {
            message: "The formation kept changing while scaling; try again.".into(),
        })
    }
}

/// The size of a formation entry as read from the store, parsed.
fn stored_size(app: &App, entry: &Formation) -> Result<DynoSize, CoreError> {
    entry.size.parse::<DynoSize>().map_err(|error| {
        CoreError::stored_dyno_size(
            &app.name,
            &format!("process type {}", entry.process_type),
            &error,
        )
    })
}

impl CoreError {
    fn with_hint(self, process_types: &BTreeMap<String, String>) -> CoreError {
        match self {
            CoreError::NotFound { resource, id } if process_types.is_empty() => CoreError::Invalid {
                message: format!(
                    "Couldn't find that process type ({id}): the app has no release with process types yet. Deploy it first ({resource})."
                ),
            },
            other => other,
        }
    }
}
