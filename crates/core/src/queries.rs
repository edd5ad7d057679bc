//! Reads: narrow query methods on [`Platform`] for what the API shows (apps, releases,
//! slugs, config vars, formation, dynos). Only changes go through `Command`s.

use std::collections::BTreeMap;

use slipway_store::json::{get_json, range_json};
use uuid::Uuid;

use crate::access::Permission;
use crate::error::CoreError;
use crate::model::{keys, App, ConfigVars, Dyno, Formation, Release, ReleaseStatus, Slug, User};
use crate::platform::Platform;

impl Platform {
    /// Finds an app by name or id that `user` may see (`view`: its owner, a collaborator or
    /// an administrator); `access.rs` decides. Changes ask `app_for` a stronger permission.
    pub async fn app(&self, user: &User, name_or_id: &str) -> Result<App, CoreError> {
        self.app_for(user, name_or_id, Permission::View).await
    }

    pub(crate) async fn find_app(&self, name_or_id: &str) -> Result<App, CoreError> {
        if let Some(app) = get_json::<App, _>(self.store().as_ref(), &keys::app(name_or_id)).await?
        {
            return Ok(app);
        }
        if let Ok(id) = name_or_id.parse::<Uuid>() {
            let (apps, _) = range_json::<App, _>(self.store().as_ref(), keys::APPS).await?;
            if let Some((_, app)) = apps.into_iter().find(|(_, app)| app.id == id) {
                return Ok(app);
            }
        }
        Err(CoreError::not_found("app", name_or_id))
    }

    /// The apps `user` may see: those they own or collaborate on; every app for an admin.
    pub async fn apps(&self, user: &User) -> Result<Vec<App>, CoreError> {
        let (apps, _) = range_json::<App, _>(self.store().as_ref(), keys::APPS).await?;
        let collaborations = if user.admin {
            Default::default()
        } else {
            self.collaborations(user).await?
        };
        Ok(apps
            .into_iter()
            .map(|(_, app)| app)
            .filter(|app| {
                user.admin || app.owner_email == user.email || collaborations.contains(&app.id)
            })
            .collect())
    }

    /// All releases, oldest first.
    pub async fn releases(&self, app: &App) -> Result<Vec<Release>, CoreError> {
        self.ledger(app).await
    }

    /// A release by id or version (`3` or `v3`).
    pub async fn release(&self, app: &App, id_or_version: &str) -> Result<Release, CoreError> {
        let version = id_or_version.trim_start_matches('v').parse::<u32>().ok();
        if let Some(version) = version {
            if let Some(release) = self.ledger_entry(app, version).await? {
                return Ok(release);
            }
        }
        self.releases(app)
            .await?
            .into_iter()
            .find(|release| release.id.to_string() == id_or_version)
            .ok_or_else(|| CoreError::not_found("release", id_or_version))
    }

    /// The release that runs: the newest one that succeeded.
    pub async fn current_release(&self, app: &App) -> Result<Option<Release>, CoreError> {
        Ok(self
            .releases(app)
            .await?
            .into_iter()
            .rev()
            .find(|release| release.status == ReleaseStatus::Succeeded))
    }

    pub async fn slug(&self, app: &App, slug_id: Uuid) -> Result<Slug, CoreError> {
        get_json::<Slug, _>(self.store().as_ref(), &keys::slug(app.id, slug_id))
            .await?
            .ok_or_else(|| CoreError::not_found("slug", slug_id.to_string()))
    }

    pub async fn config_vars(&self, app: &App) -> Result<ConfigVars, CoreError> {
        Ok(
            get_json::<ConfigVars, _>(self.store().as_ref(), &keys::config(app.id))
                .await?
                .unwrap_or_default(),
        )
    }

    pub async fn formation(&self, app: &App) -> Result<Vec<Formation>, CoreError> {
        let (formation, _) =
            range_json::<Formation, _>(self.store().as_ref(), &keys::formations(app.id)).await?;
        Ok(formation.into_iter().map(|(_, entry)| entry).collect())
    }

    pub async fn dynos(&self, app: &App) -> Result<Vec<Dyno>, CoreError> {
        let (dynos, _) = range_json::<Dyno, _>(self.store().as_ref(), &keys::dynos(app.id)).await?;
        Ok(dynos.into_iter().map(|(_, dyno)| dyno).collect())
    }

    /// The command of each process type in the current release.
    pub async fn process_types(&self, app: &App) -> Result<BTreeMap<String, String>, CoreError> {
        let Some(release) = self.current_release(app).await? else {
            return Ok(BTreeMap::new());
        };
        let Some(slug_id) = release.slug_id else {
            return Ok(BTreeMap::new());
        };
        Ok(self.slug(app, slug_id).await?.process_types)
    }
}
