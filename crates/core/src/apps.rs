//! Creating and destroying apps, config vars, and the release ledger's single write path.

use std::collections::BTreeMap;

use chrono::Utc;
use slipway_model::{AppName, ConfigKey};
use slipway_store::json::get_json_versioned;
use slipway_store::{Compare, Op, Txn};
use uuid::Uuid;

use crate::error::CoreError;
use crate::model::{keys, App, ConfigVars, Formation, Release, ReleaseStatus};
use crate::platform::Platform;
use crate::telemetry::PlatformEvent;

/// The most config (keys plus values) an app may have.
pub(crate) const CONFIG_VARS_MAX_BYTES: usize = 32 * 1024;

/// What a new release is made of; the version is allocated when it is written.
pub(crate) struct NewRelease {
    pub(crate) description: String,
    pub(crate) slug_id: Option<Uuid>,
    pub(crate) config_vars: ConfigVars,
    /// Extra writes that must happen atomically with the release.
    pub(crate) ops: Vec<Op>,
    pub(crate) compares: Vec<Compare>,
    /// Why its release phase failed: the release is written `failed` and never goes live.
    pub(crate) failure: Option<String>,
}

impl Platform {
    pub(crate) async fn create_app(
        &self,
        user: &crate::model::User,
        name: Option<AppName>,
    ) -> Result<App, CoreError> {
        let name = match name {
            Some(name) => name.to_string(),
            None => random_app_name(),
        };
        let now = Utc::now();
        let mut app = App {
            id: Uuid::new_v4(),
            name: name.clone(),
            owner_email: user.email.clone(),
            stack: self.config().stack.clone(),
            maintenance: false,
            created_at: now,
            updated_at: now,
            uid: None,
        };
        // The app and its uid claim are written together: a lost race for the uid (another
        // create took it first) is retried with the next free one.
        for _ in 0..20 {
            if self.store().get(&keys::app(&name)).await?.is_some() {
                return Err(CoreError::NameTaken { name });
            }
            let claim = self.uid_claim(app.id).await?;
            app.uid = Some(claim.uid);
            let txn = claim.apply(
                Txn::new()
                    .when(Compare::absent(keys::app(&name)))
                    .then(Op::put_json(keys::app(&name), &app)?),
            );
            if self.store().txn(txn).await?.succeeded {
                // The app's repository comes with it: an app without one could not be
                // pushed to, so a failure here takes the app back out.
                if let Err(error) = self.git_repos().ensure(&name).await {
                    let mut undo = Txn::new().then(Op::delete(keys::app(&name)));
                    for release in self.uid_releases(app.id).await? {
                        undo = undo.then(release);
                    }
                    self.store().txn(undo).await?;
                    return Err(CoreError::Git {
                        app: name,
                        action: "create the git repository",
                        source: error,
                    });
                }
                return Ok(app);
            }
            if self.store().get(&keys::app(&name)).await?.is_some() {
                return Err(CoreError::NameTaken { name });
            }
        }
        Err(CoreError::Conflict {
            message:
                "Could not give the app a uid: too many apps are being created at once. Try again."
                    .into(),
        })
    }

    /// Destroys an app: its dynos stop (the dyno manager sees the formation vanish), its
    /// mutable records and its git repository are deleted; the release ledger stays, keyed by
    /// the app's id.
    pub(crate) async fn delete_app(&self, app: &App) -> Result<(), CoreError> {
        let mut txn = Txn::new()
            .then(Op::delete(keys::app(&app.name)))
            .then(Op::delete(keys::config(app.id)))
            .then(Op::delete_prefix(keys::formations(app.id)))
            .then(crate::access::delete_collaborators(app.id))
            .then(Op::delete(crate::buildpacks::buildpacks_key(app.id)));
        for release in self.uid_releases(app.id).await? {
            txn = txn.then(release);
        }
        let (addon_ops, addons) = self.addons_deleted_with(app).await?;
        for op in addon_ops {
            txn = txn.then(op);
        }
        self.store().txn(txn).await?;
        self.deprovision_orphans(addons).await;
        self.logs().forget(&app.name);
        // The app is gone whatever happens to its repository: a leftover one is only disk,
        // and `ensure` reuses it if an app of that name is created again.
        if let Err(error) = self.git_repos().remove(&app.name).await {
            tracing::warn!(%error, app = %app.name, "could not remove the app's repository");
        }
        // So is its build cache (and the slug runs and directories kept beside it).
        let cache_dir = self.config().cache_dir(app.id);
        match tokio::task::spawn_blocking(move || slipway_build::remove_build_cache(&cache_dir))
            .await
        {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, app = %app.name, "could not remove the app's build cache")
            }
            Err(error) => {
                tracing::warn!(%error, app = %app.name, "could not remove the app's build cache")
            }
        }
        Ok(())
    }

    /// Sets (`Some`) and unsets (`None`) config vars, creating one release for the change.
    pub(crate) async fn update_config_vars(
        &self,
        user: &crate::model::User,
        app: &App,
        changes: BTreeMap<ConfigKey, Option<String>>,
    ) -> Result<(ConfigVars, Release), CoreError> {
        if changes.is_empty() {
            return Err(CoreError::invalid(
                "No config vars given to set or unset. Pass KEY=value pairs or a JSON object.",
            ));
        }
        for (key, value) in &changes {
            if value.as_deref().is_some_and(|v| v.contains('\0')) {
                return Err(CoreError::invalid(format!(
                    "Invalid value for config var {key}: values cannot contain NUL bytes."
                )));
            }
        }
        loop {
            let key = keys::config(app.id);
            let current = get_json_versioned::<ConfigVars, _>(self.store().as_ref(), &key).await?;
            let (mut config, revision) = current.unwrap_or_default();
            let mut set = Vec::new();
            let mut removed = Vec::new();
            for (name, value) in &changes {
                match value {
                    Some(value) => {
                        config.insert(name.to_string(), value.clone());
                        set.push(name.as_str());
                    }
                    None => {
                        config.remove(name.as_str());
                        removed.push(name.as_str());
                    }
                }
            }
            let size: usize = config.iter().map(|(k, v)| k.len() + v.len()).sum();
            if size > CONFIG_VARS_MAX_BYTES {
                let largest = set
                    .iter()
                    .max_by_key(|name| config.get(**name).map_or(0, String::len))
                    .copied()
                    .unwrap_or_default();
                return Err(CoreError::invalid(format!(
                    "Config vars would take {size} bytes after setting {largest}; the limit is {CONFIG_VARS_MAX_BYTES} bytes (keys plus values) per app. Remove or shorten some values."
                )));
            }
            let description = match (set.is_empty(), removed.is_empty()) {
                (false, true) => format!("Set {} config vars", set.join(", ")),
                (true, false) => format!("Remove {} config vars", removed.join(", ")),
                _ => format!(
                    "Set {} and remove {} config vars",
                    set.join(", "),
                    removed.join(", ")
                ),
            };
            // A config change keeps the slug that runs now, and runs its release phase.
            let slug_id = self.current_release(app).await?.and_then(|r| r.slug_id);
            let slug = match slug_id {
                Some(slug_id) => Some(self.slug(app, slug_id).await?),
                None => None,
            };
            let _phase_lock = self.lock_release_phase(app, slug.as_ref()).await;
            if _phase_lock.is_some()
                && get_json_versioned::<ConfigVars, _>(self.store().as_ref(), &key)
                    .await?
                    .map(|(_, r)| r)
                    .unwrap_or_default()
                    != revision
            {
                continue; // The config changed while waiting for the lock.
            }
            let output = crate::output::quiet();
            let failure = self
                .run_release_phase(app, slug.as_ref(), &config, output.clone())
                .await?;
            let new_release = NewRelease {
                description,
                slug_id,
                config_vars: config.clone(),
                ops: vec![Op::put_json(key.clone(), &config)?],
                compares: vec![Compare::mod_revision(key.clone(), revision)],
                failure: failure.clone(),
            };
            if let Some(release) = self.try_create_release(user, app, new_release).await? {
                let release = self.release_phase_outcome(app, release, failure, &output)?;
                return Ok((config, release));
            }
        }
    }

    /// Writes release vN+1 atomically with `release.ops`, retrying the version allocation.
    /// Returns `None` if one of `release.compares` failed (the caller re-reads and retries).
    pub(crate) async fn try_create_release(
        &self,
        user: &crate::model::User,
        app: &App,
        release: NewRelease,
    ) -> Result<Option<Release>, CoreError> {
        loop {
            let latest = self
                .releases(app)
                .await?
                .last()
                .map(|r| r.version)
                .unwrap_or(0);
            let record = Release {
                id: Uuid::new_v4(),
                app_id: app.id,
                version: latest + 1,
                description: release.description.clone(),
                slug_id: release.slug_id,
                config_vars: release.config_vars.clone(),
                user_email: user.email.clone(),
                status: if release.failure.is_some() {
                    ReleaseStatus::Failed
                } else {
                    ReleaseStatus::Succeeded
                },
                created_at: Utc::now(),
            };
            let release_key = keys::release(app.id, record.version);
            let mut txn = Txn::new()
                .when(Compare::absent(release_key.clone()))
                .when(Compare::exists(keys::app(&app.name)))
                .then(Op::put_json(release_key.clone(), &record)?);
            for compare in &release.compares {
                txn = txn.when(compare.clone());
            }
            for op in &release.ops {
                txn = txn.then(op.clone());
            }
            if self.store().txn(txn).await?.succeeded {
                // Deploys say `Deploy <commit> by …` themselves, once the build is released.
                if !record.description.starts_with("Deploy ") {
                    self.event(
                        &app.name,
                        PlatformEvent::Changed {
                            description: &record.description,
                            user: &user.email,
                        },
                    );
                }
                self.event(
                    &app.name,
                    PlatformEvent::ReleaseCreated {
                        version: record.version,
                        user: &user.email,
                    },
                );
                return Ok(Some(record));
            }
            // Find out which condition failed: a taken version is retried here.
            if self.store().get(&release_key).await?.is_none() {
                if self.store().get(&keys::app(&app.name)).await?.is_none() {
                    return Err(CoreError::not_found("app", app.name.clone()));
                }
                return Ok(None);
            }
        }
    }

    /// Formation entries for process types a release introduces: web starts at 1, others at 0,
    /// unless `initial` (an app.json's `formation`) says otherwise.
    pub(crate) async fn formation_ops_for(
        &self,
        app: &App,
        process_types: &BTreeMap<String, String>,
        initial: &BTreeMap<String, crate::app_json::InitialFormation>,
    ) -> Result<Vec<(Compare, Op)>, CoreError> {
        let existing = self.formation(app).await?;
        let mut ops = Vec::new();
        for process_type in process_types.keys() {
            if process_type == "release" || existing.iter().any(|f| &f.process_type == process_type)
            {
                continue;
            }
            let now = Utc::now();
            let initial = initial.get(process_type);
            let entry = Formation {
                id: Uuid::new_v4(),
                app_id: app.id,
                process_type: process_type.clone(),
                quantity: initial
                    .and_then(|f| f.quantity)
                    .unwrap_or(u32::from(process_type == "web")),
                size: initial
                    .and_then(|f| f.size.clone())
                    .unwrap_or_else(|| "standard-1x".into()),
                created_at: now,
                updated_at: now,
            };
            let key = keys::formation(app.id, process_type);
            ops.push((Compare::absent(key.clone()), Op::put_json(key, &entry)?));
        }
        Ok(ops)
    }
}

fn random_app_name() -> String {
    use rand::seq::SliceRandom;
    const ADJECTIVES: &[&str] = &[
        "calm", "brisk", "quiet", "sunny", "gentle", "swift", "bold", "misty",
    ];
    const NOUNS: &[&str] = &[
        "harbor", "river", "meadow", "summit", "forest", "canyon", "island", "valley",
    ];
    let mut rng = rand::thread_rng();
    format!(
        "{}-{}-{:05}",
        ADJECTIVES.choose(&mut rng).unwrap_or(&"calm"),
        NOUNS.choose(&mut rng).unwrap_or(&"harbor"),
        rand::Rng::gen_range(&mut rng, 0..100_000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Heroku's rule for app names, [`AppName`]'s: whether `name` is one.
    fn app_name_is_valid(name: &str) -> bool {
        name.parse::<AppName>().is_ok()
    }

    #[test]
    fn app_names_follow_herokus_rule() {
        for (name, valid) in [
            ("demo", true),
            ("my-app-2", true),
            ("ab", false),
            ("a".repeat(31).as_str(), false),
            (&"a".repeat(30), true),
            ("Demo", false),
            ("1demo", false),
            ("demo-", false),
            ("de_mo", false),
            ("de.mo", false),
            ("", false),
        ] {
            assert_eq!(app_name_is_valid(name), valid, "{name:?}");
        }
        for _ in 0..20 {
            assert!(app_name_is_valid(&random_app_name()));
        }
    }

    #[test]
    fn config_keys_look_like_shell_variables() {
        for (key, valid) in [
            ("FOO", true),
            ("_x1", true),
            ("1X", false),
            ("A-B", false),
            ("", false),
            ("A B", false),
        ] {
            // Config var keys look like shell variable names, `ConfigKey`'s rule.
            assert_eq!(key.parse::<ConfigKey>().is_ok(), valid, "{key:?}");
        }
    }
}
