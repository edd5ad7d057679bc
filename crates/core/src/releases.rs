//! The release ledger's reads, rollbacks and releases of an existing slug.
//!
//! A release record (`releases/<app id>/<version>`) is written once and never changed: the
//! store's triggers refuse updates and deletes under `releases/`. A release whose slug declares
//! a `release:` process is written only once its release phase has finished, with its final
//! status (`succeeded` or `failed`, see `release_phase.rs`), so the ledger never holds a
//! `pending` release that a crash could leave behind. The current release is the newest
//! `succeeded` one.

use slipway_store::json::{get_json, get_json_versioned, range_json};
use slipway_store::{Compare, Op};
use uuid::Uuid;

use std::collections::BTreeMap;

use crate::app_json::InitialFormation;
use crate::apps::NewRelease;
use crate::error::CoreError;
use crate::model::{keys, App, ConfigVars, Release, Slug, User};
use crate::output::{quiet, DeployOutput};
use crate::platform::Platform;

/// What a new release runs: a slug's process types, for the release phase.
pub(crate) fn release_command(slug: &Slug) -> Option<&str> {
    slug.process_types
        .get("release")
        .map(String::as_str)
        .filter(|command| !command.trim().is_empty())
}

/// What a release takes besides its slug.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReleaseInputs {
    /// The config vars to release with; `None`: the app's current ones.
    pub(crate) config: Option<ConfigVars>,
    /// Added to those config vars where unset (an app.json's `env` defaults), in the same
    /// transaction as the release.
    pub(crate) config_defaults: ConfigVars,
    /// Quantity and size of the process types whose formation entries this release creates
    /// (an app.json's `formation`).
    pub(crate) formation: BTreeMap<String, InitialFormation>,
}

impl Platform {
    /// Every release of the app, oldest first.
    pub(crate) async fn ledger(&self, app: &App) -> Result<Vec<Release>, CoreError> {
        let (releases, _) =
            range_json::<Release, _>(self.store().as_ref(), &keys::releases(app.id)).await?;
        Ok(releases.into_iter().map(|(_, release)| release).collect())
    }

    /// One release by version.
    pub(crate) async fn ledger_entry(
        &self,
        app: &App,
        version: u32,
    ) -> Result<Option<Release>, CoreError> {
        Ok(get_json::<Release, _>(self.store().as_ref(), &keys::release(app.id, version)).await?)
    }

    /// Checks that a slug can run: its record exists and its archive is still on disk.
    pub(crate) async fn runnable_slug(
        &self,
        app: &App,
        slug_id: Uuid,
        what: &str,
    ) -> Result<Slug, CoreError> {
        let slug = self.slug(app, slug_id).await.map_err(|_| {
            CoreError::invalid(format!(
                "Cannot use {what}: its slug {slug_id} no longer exists. Deploy the app again or pick another release."
            ))
        })?;
        let archive = self
            .config()
            .slugs_dir()
            .join(format!("{}.tgz", slug.digest()));
        if !tokio::fs::try_exists(&archive).await.unwrap_or(false) {
            return Err(CoreError::invalid(format!(
                "Cannot use {what}: its slug archive ({}) is gone from the slug store. Deploy the app again or pick another release.",
                slug.checksum
            )));
        }
        Ok(slug)
    }

    /// Rolls back to a release: a new release with that release's slug and config vars (not
    /// its add-ons). Refused, with nothing changed, if the target has no slug or its slug is
    /// gone.
    pub(crate) async fn rollback(
        &self,
        user: &User,
        app: &App,
        target: &str,
    ) -> Result<Release, CoreError> {
        let target = self.release(app, target).await?;
        let Some(slug_id) = target.slug_id else {
            return Err(CoreError::invalid(format!(
                "Cannot roll back to v{}: it has no slug (it was created before the app's first deploy). Roll back to a release created by a deploy.",
                target.version
            )));
        };
        let slug = self
            .runnable_slug(app, slug_id, &format!("v{}", target.version))
            .await?;
        self.release_with_config(
            user,
            app,
            &slug,
            format!("Rollback to v{}", target.version),
            ReleaseInputs {
                config: Some(target.config_vars.clone()),
                ..ReleaseInputs::default()
            },
            Vec::new(),
            quiet(),
        )
        .await
    }

    /// Releases an existing slug (`POST /apps/{app}/releases {slug}`) with the app's current
    /// config vars.
    pub(crate) async fn release_slug(
        &self,
        user: &User,
        app: &App,
        slug_id: &str,
        description: Option<String>,
    ) -> Result<Release, CoreError> {
        let slug_id: Uuid = slug_id
            .parse()
            .map_err(|_| CoreError::not_found("slug", slug_id))?;
        let slug = self
            .runnable_slug(app, slug_id, &format!("slug {slug_id}"))
            .await?;
        let description = description.unwrap_or_else(|| match &slug.commit {
            Some(commit) => format!("Deploy {}", commit.chars().take(7).collect::<String>()),
            None => format!("Deploy slug {}", &slug_id.simple().to_string()[..7]),
        });
        self.release_with_config(
            user,
            app,
            &slug,
            description,
            ReleaseInputs::default(),
            Vec::new(),
            quiet(),
        )
        .await
    }

    /// Writes a release of `slug` with `inputs.config` (or the app's current config vars, plus
    /// `inputs.config_defaults` where unset), setting
    /// the app's config vars to it and adding formation entries for process types the slug
    /// introduces, all with `extra_ops` in one transaction. The config vars are read and
    /// compared in that transaction, so a config change made meanwhile (e.g. during a build)
    /// is never lost: the write is retried on the newer config.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn release_with_config(
        &self,
        user: &User,
        app: &App,
        slug: &Slug,
        description: String,
        inputs: ReleaseInputs,
        extra_ops: Vec<Op>,
        output: DeployOutput,
    ) -> Result<Release, CoreError> {
        let _phase_lock = self.lock_release_phase(app, Some(slug)).await;
        loop {
            let key = keys::config(app.id);
            let current = get_json_versioned::<ConfigVars, _>(self.store().as_ref(), &key).await?;
            let (current, revision) = current.unwrap_or_default();
            let mut config_vars = inputs.config.clone().unwrap_or(current);
            for (key, value) in &inputs.config_defaults {
                config_vars
                    .entry(key.clone())
                    .or_insert_with(|| value.clone());
            }
            let failure = self
                .run_release_phase(app, Some(slug), &config_vars, output.clone())
                .await?;
            let mut compares = vec![Compare::mod_revision(key.clone(), revision)];
            let mut ops = extra_ops.clone();
            ops.push(Op::put_json(key.clone(), &config_vars)?);
            for (compare, op) in self
                .formation_ops_for(app, &slug.process_types, &inputs.formation)
                .await?
            {
                compares.push(compare);
                ops.push(op);
            }
            let new_release = NewRelease {
                description: description.clone(),
                slug_id: Some(slug.id),
                config_vars,
                ops,
                compares,
                failure: failure.clone(),
            };
            if let Some(release) = self.try_create_release(user, app, new_release).await? {
                return self.release_phase_outcome(app, release, failure, &output);
            }
        }
    }
}
