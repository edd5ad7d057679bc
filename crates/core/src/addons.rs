//! Add-ons of apps: the records (an add-on, its attachments to apps), and the commands that
//! create, attach, detach, upgrade, rotate and destroy them on `slipway-addons`' servers.
//!
//! An add-on belongs to the app that created it (its billing app) and is attached to one or
//! more apps, each attachment under a name that is the prefix of the config var it sets
//! (`DATABASE` → `DATABASE_URL`). Every attach and detach is one release of the app that
//! changes, written with the attachment record in the same transaction; as on Heroku,
//! add-on config changes skip the release phase. Order keeps failures clean:
//! - create: provision first, then the release; a failed release deprovisions, so a failure
//!   leaves no record, no config var, no release and nothing on the server;
//! - destroy: the release that detaches first, then the drop on the server;
//! - an add-on attached to another app is not destroyed (detach it there first).
//!
//! Third-party add-ons (a registered provider's service, `addons/partner.rs`) follow the same
//! records and orders; their provider is called over the Partner API where the built-in
//! servers are called here, and an asynchronous provision writes its attach release only
//! when the provider calls back.
//!
//! Keys: `addons/<name>` (names are global) and `addon-attachments/<app id>/<name>`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use slipway_addons::{parse_plan, Addons, Plan, Service};
use slipway_store::json::{get_json, range_json};
use slipway_store::{Compare, Op};
use std::sync::Arc;
use uuid::Uuid;

use crate::app_json::{self, valid_attachment_name, ManifestAddon};
use crate::apps::NewRelease;
use crate::config::PlatformConfig;
use crate::error::CoreError;
use crate::model::{keys, App, ConfigVars, Release, User};
use crate::output::DeployOutput;
use crate::platform::Platform;

use crate::addons_reach::{addon_key, attachment_key, PendingReach, ADDONS, ATTACHMENTS};

/// An add-on: a resource on one of the platform's servers.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addon {
    pub id: Uuid,
    /// Globally unique (`postgresql-shaped-12345`).
    pub name: String,
    /// The billing app.
    pub app_id: Uuid,
    pub app_name: String,
    /// `heroku-postgresql`.
    pub service: String,
    /// `essential-0`.
    pub plan: String,
    /// The database, role or Redis server's name on the server.
    pub resource: String,
    /// The connection URL (a secret, like every config var).
    pub url: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set for a registered third-party service's add-on (`None`: a built-in server's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner: Option<PartnerAddon>,
}

impl std::fmt::Debug for Addon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Addon")
            .field("name", &self.name)
            .field("app", &self.app_name)
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

impl Addon {
    /// The catalog plan it is on.
    pub fn plan(&self) -> Option<&'static Plan> {
        parse_plan(&format!("{}:{}", self.service, self.plan)).ok()
    }

    /// True for a third-party add-on stored by a first deploy that has not released it yet.
    pub(crate) fn awaits_deploy(&self) -> bool {
        self.partner.as_ref().is_some_and(|p| p.for_deploy)
    }

    /// `provisioning` (a third-party add-on whose provider has not called back yet) or
    /// `provisioned`, as the schema names the states.
    pub fn state(&self) -> &'static str {
        match &self.partner {
            Some(partner) if partner.state == PartnerState::Provisioning => "provisioning",
            _ => "provisioned",
        }
    }

    /// The config vars an attachment named `attachment` sets, with their values: `<name>_URL`
    /// for a built-in server's add-on; for a third-party one, each var the provider returned
    /// with its prefix replaced by the attachment name (`FAST_DB_URL` as `CACHE` is
    /// `CACHE_URL`), as Heroku renames them.
    pub fn attachment_vars(&self, attachment: &str) -> BTreeMap<String, String> {
        match &self.partner {
            None => BTreeMap::from([(format!("{attachment}_URL"), self.url.clone())]),
            Some(partner) => partner
                .config
                .iter()
                .map(|(name, value)| (partner.rename(name, attachment), value.clone()))
                .collect(),
        }
    }
}

/// An add-on attached to an app under a name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddonAttachment {
    pub id: Uuid,
    /// `DATABASE`: the config var is `<name>_URL`.
    pub name: String,
    pub addon_id: Uuid,
    pub addon_name: String,
    pub app_id: Uuid,
    pub app_name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl AddonAttachment {
    pub fn config_var(&self) -> String {
        format!("{}_URL", self.name)
    }
}

/// An add-on with its attachments, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddonView {
    pub addon: Addon,
    pub attachments: Vec<AddonAttachment>,
}

impl AddonView {
    /// The names of the config vars the add-on sets on its own (billing) app.
    pub fn config_vars(&self) -> Vec<String> {
        self.attachments
            .iter()
            .filter(|a| a.app_id == self.addon.app_id)
            .flat_map(|a| self.addon.attachment_vars(&a.name).into_keys())
            .collect()
    }
}

/// Where an add-on's `web_url` points, below the platform's public API URL:
/// `/addons-sso/apps/{app id}/addons/{add-on id}`, as Heroku's
/// `https://addons-sso.heroku.com/apps/{app id}/addons/{add-on id}`.
pub const ADDON_WEB_PATH: &str = "/addons-sso/apps";

/// The add-on's `web_url` in the context of the app `app_id` (its billing app for the
/// add-on, the attached app for an attachment): Slipway's own page, which signs the browser's
/// user in with their Slipway email and password and then posts Heroku's SSO form to a
/// third-party provider's dashboard (see [`Platform::addon_sso`]), or shows what a built-in
/// add-on is (plan, limits, attachments; no dashboard of its own exists). Like Heroku's it is
/// the same URL for every viewer and no credential: the page asks who is looking.
pub fn addon_web_url(config: &PlatformConfig, app_id: Uuid, addon_id: Uuid) -> String {
    format!(
        "{}{ADDON_WEB_PATH}/{app_id}/addons/{addon_id}",
        public_api_url(config)
    )
}

/// The platform's public API base URL: its HTTPS one when it has one (what a browser and a
/// provider should use), else the API's own.
pub(crate) fn public_api_url(config: &PlatformConfig) -> String {
    config
        .api_https_url
        .as_deref()
        .unwrap_or(&config.api_url)
        .trim_end_matches('/')
        .to_owned()
}

/// Heroku Postgres' colors for the second and later databases of an app.
const COLORS: &[&str] = &[
    "AMBER", "AQUA", "BLACK", "BLUE", "BRONZE", "BROWN", "CHARCOAL", "COBALT", "COPPER", "CRIMSON",
    "CYAN", "GOLD", "GRAY", "GREEN", "IVORY", "JADE", "LIME", "MAROON", "MAUVE", "NAVY", "OLIVE",
    "ONYX", "ORANGE", "PINK", "PURPLE", "RED", "ROSE", "SILVER", "TEAL", "VIOLET", "WHITE",
    "YELLOW",
];

const WORDS: &[&str] = &[
    "amorphous",
    "angular",
    "animate",
    "asymmetrical",
    "clean",
    "closed",
    "concentric",
    "convex",
    "cubed",
    "curly",
    "curved",
    "deep",
    "defined",
    "dimensional",
    "elliptical",
    "encircled",
    "flat",
    "fluffy",
    "infinite",
    "octagonal",
    "opaque",
    "parallel",
    "polished",
    "rectangular",
    "regular",
    "round",
    "shaped",
    "sinuous",
    "solid",
    "spherical",
    "symmetrical",
    "tapered",
    "transparent",
    "triangular",
    "vertical",
];

fn check_attachment_name(name: &str) -> Result<(), CoreError> {
    if valid_attachment_name(name) {
        Ok(())
    } else {
        Err(CoreError::invalid(format!(
            "Invalid attachment name {name:?}: use uppercase letters, digits and underscores, starting with a letter (e.g. DATABASE or ANALYTICS_DB)."
        )))
    }
}

/// `[a-z][a-z0-9-]*`, at most 40 characters.
fn check_addon_name(name: &str) -> Result<(), CoreError> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(CoreError::invalid(format!(
            "Invalid add-on name {name:?}: use lowercase letters, digits and dashes, starting with a letter, at most 40 characters."
        )))
    }
}

/// The attachment name an add-on gets on an app when none is asked for.
fn default_attachment_name(service: Service, config: &ConfigVars) -> String {
    let (first, prefix) = match service {
        Service::Postgres => ("DATABASE", "HEROKU_POSTGRESQL"),
        Service::Redis => ("REDIS", "HEROKU_REDIS"),
    };
    if !config.contains_key(&format!("{first}_URL")) {
        return first.to_owned();
    }
    for color in COLORS {
        let name = format!("{prefix}_{color}");
        if !config.contains_key(&format!("{name}_URL")) {
            return name;
        }
    }
    format!("{prefix}_{}", rand::thread_rng().gen_range(1000..10000))
}

/// The add-ons of an app.json, provisioned for a first deploy whose release will carry their
/// records and config vars.
#[derive(Default)]
pub(crate) struct ManifestAddons {
    /// The config vars to set (`DATABASE_URL`), to be given to the release phase too.
    pub(crate) vars: ConfigVars,
    /// The add-on and attachment records, written with the release.
    pub(crate) ops: Vec<Op>,
    /// What was provisioned, to be dropped if no release comes of it.
    pub(crate) addons: Vec<Addon>,
    /// Their servers' ports, open to the app's dynos (its release phase first) until the
    /// deploy ends, when the release's attachments take over (`addons_reach.rs`).
    pub(crate) reach: PendingReach,
}

/// A random global add-on name (`postgresql-shaped-12345`).
fn random_addon_name(service: Service) -> String {
    let mut rng = rand::thread_rng();
    format!(
        "{}-{}-{}",
        service.name_prefix(),
        WORDS[rng.gen_range(0..WORDS.len())],
        rng.gen_range(10000..100000)
    )
}

/// What one release of an app changes for add-ons.
struct AddonRelease {
    description: String,
    /// Config vars set (`Some`) and removed (`None`).
    vars: BTreeMap<String, Option<String>>,
    ops: Vec<Op>,
    compares: Vec<Compare>,
}

impl Platform {
    pub(crate) fn addon_servers(&self) -> Result<Arc<Addons>, CoreError> {
        self.config().addons.clone().ok_or_else(|| {
            CoreError::invalid(
                "Add-ons are not available on this platform: its operator has not enabled them.",
            )
        })
    }

    /// Writes one release of `app` with `change`, skipping the release phase. `Ok(None)` if a
    /// compare other than the config's failed.
    async fn addon_release(
        &self,
        user: &User,
        app: &App,
        change: AddonRelease,
    ) -> Result<Option<Release>, CoreError> {
        loop {
            let key = keys::config(app.id);
            let current = slipway_store::json::get_json_versioned::<ConfigVars, _>(
                self.store().as_ref(),
                &key,
            )
            .await?;
            let (mut config, revision) = current.unwrap_or_default();
            for (name, value) in &change.vars {
                match value {
                    Some(value) => config.insert(name.clone(), value.clone()),
                    None => config.remove(name),
                };
            }
            let slug_id = self.current_release(app).await?.and_then(|r| r.slug_id);
            let mut ops = change.ops.clone();
            ops.push(Op::put_json(key.clone(), &config)?);
            let mut compares = change.compares.clone();
            compares.push(Compare::mod_revision(key.clone(), revision));
            let release = NewRelease {
                description: change.description.clone(),
                slug_id,
                config_vars: config,
                ops,
                compares,
                failure: None,
            };
            if let Some(release) = self.try_create_release(user, app, release).await? {
                return Ok(Some(release));
            }
            // Either the config changed meanwhile (retry) or our own records' compares failed.
            let current_revision = slipway_store::json::get_json_versioned::<ConfigVars, _>(
                self.store().as_ref(),
                &key,
            )
            .await?
            .map(|(_, r)| r)
            .unwrap_or_default();
            if current_revision == revision {
                return Ok(None);
            }
        }
    }

    /// `addons:create`: provisions `plan` for `app` and attaches it.
    pub(crate) async fn create_addon(
        &self,
        user: &User,
        app: &App,
        plan: &str,
        attachment: Option<String>,
        name: Option<String>,
        options: serde_json::Map<String, serde_json::Value>,
    ) -> Result<AddonView, CoreError> {
        if let Some((service, partner_plan)) = self.partner_plan(plan).await? {
            let asked = partner::PartnerCreate {
                attachment,
                name,
                options,
            };
            return self
                .create_partner_addon(user, app, service, partner_plan, asked)
                .await;
        }
        let plan = parse_plan(plan).map_err(|e| CoreError::invalid(e.to_string()))?;
        if !options.is_empty() {
            let given: Vec<String> = options.keys().map(|k| format!("--{k}")).collect();
            return Err(CoreError::invalid(format!(
                "{} takes no options on Slipway (got {}). Remove what follows `--` and try again.",
                plan.service.name(),
                given.join(" ")
            )));
        }
        let servers = self.addon_servers()?;
        if let Some(name) = &attachment {
            check_attachment_name(name)?;
        }
        let name = match name {
            Some(name) => {
                check_addon_name(&name)?;
                name
            }
            None => random_addon_name(plan.service),
        };
        if get_json::<Addon, _>(self.store().as_ref(), &addon_key(&name))
            .await?
            .is_some()
        {
            return Err(CoreError::Conflict {
                message: format!("The add-on name {name} is already taken. Choose another name."),
            });
        }
        let config = self.config_vars(app).await?;
        let attachment_name =
            attachment.unwrap_or_else(|| default_attachment_name(plan.service, &config));
        let var = format!("{attachment_name}_URL");
        if config.contains_key(&var) {
            return Err(CoreError::Conflict {
                message: format!(
                    "{var} is already set on {}. Choose another attachment name with --as, or unset {var} first.",
                    app.name
                ),
            });
        }
        let resource = name.replace('-', "_");
        let provisioned = servers
            .provision(plan, &resource)
            .await
            .map_err(|e| CoreError::invalid(format!("Provisioning {name} failed: {e}")))?;
        let (addon, record) = new_records(
            app,
            &name,
            plan,
            resource,
            &provisioned.url,
            &attachment_name,
        );
        let change = AddonRelease {
            description: format!("Attach {attachment_name} (@ref:{name})"),
            vars: BTreeMap::from([(var, Some(provisioned.url))]),
            ops: vec![
                Op::put_json(addon_key(&name), &addon)?,
                Op::put_json(attachment_key(app.id, &attachment_name), &record)?,
            ],
            compares: vec![
                Compare::absent(addon_key(&name)),
                Compare::absent(attachment_key(app.id, &attachment_name)),
            ],
        };
        let released = self.addon_release(user, app, change).await;
        match released {
            Ok(Some(_)) => Ok(AddonView {
                addon,
                attachments: vec![record],
            }),
            other => {
                // Nothing refers to the new resource: drop it.
                if let Err(error) = servers.deprovision(plan.service, &addon.resource).await {
                    tracing::error!(%error, addon = %name, "could not drop a provisioned add-on after its release failed");
                }
                match other {
                    Err(e) => Err(e),
                    _ => Err(CoreError::Conflict {
                        message: format!(
                            "The add-on {name} or the attachment {attachment_name} was created by someone else meanwhile. Try again."
                        ),
                    }),
                }
            }
        }
    }

    /// Checks app.json's `addons` against the catalog before a first deploy builds anything:
    /// an entry the built-in catalog did not take at parse time must name a registered
    /// service and one of its plans.
    pub(crate) async fn check_manifest_addons(
        &self,
        wanted: &[ManifestAddon],
    ) -> Result<(), CoreError> {
        for (index, entry) in wanted.iter().enumerate() {
            if parse_plan(&entry.plan).is_ok() {
                continue;
            }
            match self.partner_plan(&entry.plan).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    let registered: Vec<String> = self
                        .addon_service_records()
                        .await?
                        .into_iter()
                        .map(|r| r.service.name)
                        .collect();
                    let error = app_json::unknown_addon(index, &entry.plan, &registered);
                    return Err(CoreError::invalid(format!("Push rejected: {error}")));
                }
                Err(error) => {
                    return Err(CoreError::invalid(format!(
                        "Push rejected: app.json is not valid: addons[{index}]: {}. Fix app.json and push again.",
                        error.to_string().trim_end_matches('.')
                    )))
                }
            }
        }
        Ok(())
    }

    /// Provisions app.json's `addons` for the first deploy of `app` without writing a release:
    /// the deploy's own release carries the records and config vars, so its release phase and
    /// first dynos see `DATABASE_URL`. A registered service's plan goes to its provider as
    /// `addons:create` sends it, and an asynchronous provision (202) is waited for, bounded by
    /// the service's `provision_wait_seconds`. A failure part-way drops what was provisioned;
    /// so does [`Platform::drop_unreleased_manifest_addons`] if the release is never written.
    pub(crate) async fn provision_manifest_addons(
        &self,
        app: &App,
        wanted: &[ManifestAddon],
        output: &DeployOutput,
    ) -> Result<ManifestAddons, CoreError> {
        let mut done = ManifestAddons::default();
        if wanted.is_empty() {
            return Ok(done);
        }
        let config = self.config_vars(app).await?;
        for entry in wanted {
            let provisioned = match self.partner_plan(&entry.plan).await {
                Ok(Some((record, plan))) => {
                    self.provision_one_manifest_partner(
                        app, &config, entry, record, plan, &mut done, output,
                    )
                    .await
                }
                Ok(None) => {
                    self.provision_one_manifest_addon(app, &config, entry, &mut done, output)
                        .await
                }
                Err(error) => Err(error),
            };
            if let Err(error) = provisioned {
                self.drop_unreleased_manifest_addons(std::mem::take(&mut done.addons))
                    .await;
                return Err(error);
            }
        }
        Ok(done)
    }

    async fn provision_one_manifest_addon(
        &self,
        app: &App,
        config: &ConfigVars,
        entry: &ManifestAddon,
        done: &mut ManifestAddons,
        output: &DeployOutput,
    ) -> Result<(), CoreError> {
        let servers = self.addon_servers().map_err(|_| {
            CoreError::invalid(
                "Push rejected: app.json lists add-ons, but add-ons are not available on this platform (its operator has not enabled them). Remove `addons` from app.json or ask the operator.",
            )
        })?;
        let plan = parse_plan(&entry.plan).map_err(|e| CoreError::invalid(e.to_string()))?;
        // Names already taken by this app's config or by an earlier entry.
        let mut taken = config.clone();
        taken.extend(done.vars.clone());
        let attachment_name = entry
            .attachment
            .clone()
            .unwrap_or_else(|| default_attachment_name(plan.service, &taken));
        check_attachment_name(&attachment_name)?;
        let var = format!("{attachment_name}_URL");
        if taken.contains_key(&var) {
            return Err(CoreError::Conflict {
                message: format!(
                    "Push rejected: app.json's add-on {} would attach as {attachment_name}, but {var} is already set on {}. Choose another name with \"as\" in app.json, or unset {var} first.",
                    entry.plan, app.name
                ),
            });
        }
        let name = random_addon_name(plan.service);
        output(&format!(
            "-----> Provisioning add-ons: {} as {attachment_name}",
            entry.plan
        ));
        let resource = name.replace('-', "_");
        let provisioned = servers.provision(plan, &resource).await.map_err(|e| {
            CoreError::invalid(format!(
                "Push rejected: provisioning app.json's add-on {} failed: {e}. Nothing was released; push again once the add-on server is back.",
                entry.plan
            ))
        })?;
        let (addon, record) = new_records(
            app,
            &name,
            plan,
            resource,
            &provisioned.url,
            &attachment_name,
        );
        done.addons.push(addon.clone());
        done.ops.push(Op::put_json(addon_key(&name), &addon)?);
        done.ops.push(Op::put_json(
            attachment_key(app.id, &attachment_name),
            &record,
        )?);
        if let Some(port) = crate::addons_reach::server_port(&provisioned.url, servers.config()) {
            done.reach.add(app.id, port);
        }
        done.vars.insert(var, provisioned.url);
        Ok(())
    }

    /// After a deploy failed: drops the manifest's add-ons whose records no release wrote (a
    /// release that was written, even one whose release phase failed, keeps its add-ons, as on
    /// Heroku).
    pub(crate) async fn drop_unreleased_manifest_addons(&self, addons: Vec<Addon>) {
        let mut orphans = Vec::new();
        for addon in addons {
            let key = addon_key(&addon.name);
            match get_json::<Addon, _>(self.store().as_ref(), &key).await {
                // Stored by the deploy while its provider worked (an asynchronous provision),
                // and still waiting for the deploy's release: no release wrote it.
                Ok(Some(stored)) if stored.id == addon.id && stored.awaits_deploy() => {
                    let removed = self
                        .store()
                        .txn(slipway_store::Txn::new().then(Op::delete(key)))
                        .await;
                    if let Err(error) = removed {
                        tracing::error!(%error, addon = %addon.name, "could not remove the record of an add-on whose deploy failed");
                    }
                    orphans.push(addon);
                }
                Ok(Some(stored)) if stored.id == addon.id => {}
                Ok(_) => orphans.push(addon),
                Err(error) => {
                    tracing::error!(%error, addon = %addon.name, "could not tell whether a provisioned add-on was released; it is kept");
                }
            }
        }
        self.deprovision_orphans(orphans).await;
    }

    /// Every add-on record.
    pub(crate) async fn all_addons(&self) -> Result<Vec<Addon>, CoreError> {
        let (addons, _) = range_json::<Addon, _>(self.store().as_ref(), ADDONS).await?;
        Ok(addons.into_iter().map(|(_, a)| a).collect())
    }

    pub(crate) async fn all_attachments(&self) -> Result<Vec<AddonAttachment>, CoreError> {
        let (attachments, _) =
            range_json::<AddonAttachment, _>(self.store().as_ref(), ATTACHMENTS).await?;
        Ok(attachments.into_iter().map(|(_, a)| a).collect())
    }

    async fn view(&self, addon: Addon) -> Result<AddonView, CoreError> {
        let attachments = self
            .all_attachments()
            .await?
            .into_iter()
            .filter(|a| a.addon_id == addon.id)
            .collect();
        Ok(AddonView { addon, attachments })
    }

    /// An add-on by name or id that `user` may manage (they own its billing app).
    pub async fn addon(&self, user: &User, name_or_id: &str) -> Result<AddonView, CoreError> {
        let addon = match get_json::<Addon, _>(self.store().as_ref(), &addon_key(name_or_id)).await
        {
            Ok(Some(addon)) => Some(addon),
            _ => {
                let id = name_or_id.parse::<Uuid>().ok();
                self.all_addons()
                    .await?
                    .into_iter()
                    .find(|a| Some(a.id) == id)
            }
        };
        let Some(addon) = addon else {
            return Err(CoreError::not_found("add-on", name_or_id));
        };
        self.app(user, &addon.app_name).await?;
        self.view(addon).await
    }

    /// The add-ons of the apps `user` owns.
    pub async fn addons(&self, user: &User) -> Result<Vec<AddonView>, CoreError> {
        let mut out = Vec::new();
        for addon in self.all_addons().await? {
            if self.app(user, &addon.app_name).await.is_ok() {
                out.push(self.view(addon).await?);
            }
        }
        Ok(out)
    }

    /// The add-ons attached to `app`.
    pub async fn app_addons(&self, user: &User, app: &str) -> Result<Vec<AddonView>, CoreError> {
        let app = self.app(user, app).await?;
        let attached: Vec<Uuid> = self
            .all_attachments()
            .await?
            .into_iter()
            .filter(|a| a.app_id == app.id)
            .map(|a| a.addon_id)
            .collect();
        let mut out = Vec::new();
        for addon in self.all_addons().await? {
            // A third-party add-on still provisioning has no attachment yet; its app shows it.
            let provisioning = addon.app_id == app.id && addon.state() == "provisioning";
            if attached.contains(&addon.id) || provisioning {
                out.push(self.view(addon).await?);
            }
        }
        Ok(out)
    }

    /// Attachments on the apps `user` owns, or on `app` only.
    pub async fn addon_attachments(
        &self,
        user: &User,
        app: Option<&str>,
    ) -> Result<Vec<AddonAttachment>, CoreError> {
        let only = match app {
            Some(app) => Some(self.app(user, app).await?.id),
            None => None,
        };
        let mut out = Vec::new();
        for attachment in self.all_attachments().await? {
            if only.is_some_and(|id| id != attachment.app_id) {
                continue;
            }
            if self.app(user, &attachment.app_name).await.is_ok() {
                out.push(attachment);
            }
        }
        Ok(out)
    }

    /// An attachment by id, or by name on `app`.
    pub async fn addon_attachment(
        &self,
        user: &User,
        id_or_name: &str,
        app: Option<&str>,
    ) -> Result<AddonAttachment, CoreError> {
        let id = id_or_name.parse::<Uuid>().ok();
        self.addon_attachments(user, app)
            .await?
            .into_iter()
            .find(|a| Some(a.id) == id || a.name == id_or_name)
            .ok_or_else(|| CoreError::not_found("add-on attachment", id_or_name))
    }

    /// `addons:attach`: attaches an existing add-on to `app` (both must be `user`'s).
    pub(crate) async fn attach_addon(
        &self,
        user: &User,
        app: &App,
        addon: &str,
        name: Option<String>,
    ) -> Result<AddonAttachment, CoreError> {
        let view = self.addon(user, addon).await?;
        let addon = view.addon;
        if let Some(name) = &name {
            check_attachment_name(name)?;
        }
        if addon.state() == "provisioning" {
            return Err(CoreError::invalid(format!(
                "{} is still provisioning; attach it once its provider has finished.",
                addon.name
            )));
        }
        let config = self.config_vars(app).await?;
        let name = match (&addon.partner, name) {
            (_, Some(name)) => name,
            (Some(partner), None) => partner.prefix.clone(),
            (None, None) => {
                let service = Service::parse(&addon.service).unwrap_or(Service::Postgres);
                default_attachment_name(service, &config)
            }
        };
        let vars = addon.attachment_vars(&name);
        if let Some(var) = vars.keys().find(|var| config.contains_key(*var)) {
            return Err(CoreError::Conflict {
                message: format!(
                    "{var} is already set on {}. Choose another attachment name with --as.",
                    app.name
                ),
            });
        }
        let now = Utc::now();
        let record = AddonAttachment {
            id: Uuid::new_v4(),
            name: name.clone(),
            addon_id: addon.id,
            addon_name: addon.name.clone(),
            app_id: app.id,
            app_name: app.name.clone(),
            created_at: now,
            updated_at: now,
        };
        let change = AddonRelease {
            description: format!("Attach {name} (@ref:{})", addon.name),
            vars: vars.into_iter().map(|(k, v)| (k, Some(v))).collect(),
            ops: vec![Op::put_json(attachment_key(app.id, &name), &record)?],
            compares: vec![
                Compare::absent(attachment_key(app.id, &name)),
                Compare::exists(addon_key(&addon.name)),
            ],
        };
        match self.addon_release(user, app, change).await? {
            Some(_) => Ok(record),
            None => Err(CoreError::Conflict {
                message: format!(
                    "The attachment {name} on {} changed meanwhile. Try again.",
                    app.name
                ),
            }),
        }
    }

    /// `addons:detach`: removes one attachment and its config var (one release).
    pub(crate) async fn detach_addon(
        &self,
        user: &User,
        attachment: &AddonAttachment,
    ) -> Result<AddonAttachment, CoreError> {
        let app = self.app(user, &attachment.app_name).await?;
        let vars =
            match get_json::<Addon, _>(self.store().as_ref(), &addon_key(&attachment.addon_name))
                .await?
            {
                Some(addon) => addon
                    .attachment_vars(&attachment.name)
                    .into_keys()
                    .map(|k| (k, None))
                    .collect(),
                None => BTreeMap::from([(attachment.config_var(), None)]),
            };
        let change = AddonRelease {
            description: format!(
                "Detach {} (@ref:{})",
                attachment.name, attachment.addon_name
            ),
            vars,
            ops: vec![Op::delete(attachment_key(app.id, &attachment.name))],
            compares: vec![Compare::exists(attachment_key(app.id, &attachment.name))],
        };
        match self.addon_release(user, &app, change).await? {
            Some(_) => Ok(attachment.clone()),
            None => Err(CoreError::not_found("add-on attachment", &attachment.name)),
        }
    }

    /// `addons:destroy`: detaches from its own app (a release), then drops the resource.
    /// Refused while another app has it attached.
    pub(crate) async fn destroy_addon(
        &self,
        user: &User,
        addon: &str,
    ) -> Result<AddonView, CoreError> {
        let view = self.addon(user, addon).await?;
        let addon = &view.addon;
        let elsewhere: Vec<&str> = view
            .attachments
            .iter()
            .filter(|a| a.app_id != addon.app_id)
            .map(|a| a.app_name.as_str())
            .collect();
        if !elsewhere.is_empty() {
            return Err(CoreError::invalid(format!(
                "Cannot destroy {}: it is still attached to {}. Detach it there first with addons:detach.",
                addon.name,
                elsewhere.join(", ")
            )));
        }
        let app = self.app(user, &addon.app_name).await?;
        let mut vars = BTreeMap::new();
        let mut ops = vec![Op::delete(addon_key(&addon.name))];
        for attachment in &view.attachments {
            for var in addon.attachment_vars(&attachment.name).into_keys() {
                vars.insert(var, None);
            }
            ops.push(Op::delete(attachment_key(app.id, &attachment.name)));
        }
        let names: Vec<&str> = view.attachments.iter().map(|a| a.name.as_str()).collect();
        let change = AddonRelease {
            description: if names.is_empty() {
                format!("Destroy {}", addon.name)
            } else {
                format!("Detach {} (@ref:{})", names.join(", "), addon.name)
            },
            vars,
            ops,
            compares: vec![Compare::exists(addon_key(&addon.name))],
        };
        if self.addon_release(user, &app, change).await?.is_none() {
            return Err(CoreError::not_found("add-on", &addon.name));
        }
        if addon.partner.is_some() {
            self.deprovision_partner(addon).await.map_err(|error| {
                CoreError::invalid(format!("{} was detached, but {error}", addon.name))
            })?;
            return Ok(view);
        }
        let service = Service::parse(&addon.service).unwrap_or(Service::Postgres);
        if let Err(error) = self
            .addon_servers()?
            .deprovision(service, &addon.resource)
            .await
        {
            tracing::error!(%error, addon = %addon.name, "the add-on was detached but its data could not be dropped");
            self.forget_addon_backups(addon.id).await;
            return Err(CoreError::invalid(format!(
                "{} was detached, but dropping its data failed: {error}",
                addon.name
            )));
        }
        self.forget_addon_backups(addon.id).await;
        Ok(view)
    }

    /// What deleting `app` does to add-ons (Heroku destroys an app's add-ons with it): the
    /// store operations that remove its add-ons and every attachment on it, to run in the
    /// app's own deletion, and the add-ons whose data to drop once that has committed.
    /// Refused while an add-on the app owns is attached to another app, so deleting one app
    /// never pulls a database from under another.
    pub(crate) async fn addons_deleted_with(
        &self,
        app: &App,
    ) -> Result<(Vec<Op>, Vec<Addon>), CoreError> {
        let owned: Vec<Addon> = self
            .all_addons()
            .await?
            .into_iter()
            .filter(|addon| addon.app_id == app.id)
            .collect();
        let attachments = self.all_attachments().await?;
        for addon in &owned {
            let elsewhere: Vec<&str> = attachments
                .iter()
                .filter(|a| a.addon_id == addon.id && a.app_id != app.id)
                .map(|a| a.app_name.as_str())
                .collect();
            if !elsewhere.is_empty() {
                return Err(CoreError::invalid(format!(
                    "Cannot destroy {}: its add-on {} is still attached to {}. Detach it there first with addons:detach.",
                    app.name,
                    addon.name,
                    elsewhere.join(", ")
                )));
            }
        }
        let mut ops: Vec<Op> = attachments
            .iter()
            .filter(|a| a.app_id == app.id)
            .map(|a| Op::delete(attachment_key(app.id, &a.name)))
            .collect();
        ops.extend(owned.iter().map(|addon| Op::delete(addon_key(&addon.name))));
        Ok((ops, owned))
    }

    /// Drops the data of add-ons whose records are already gone (a deleted app's). A failure
    /// is logged: the records cannot come back, and the admin can drop the leftover by name.
    pub(crate) async fn deprovision_orphans(&self, addons: Vec<Addon>) {
        for addon in addons {
            if addon.partner.is_some() {
                if let Err(error) = self.deprovision_partner(&addon).await {
                    tracing::error!(%error, addon = %addon.name, "the app was deleted but its provider could not deprovision the add-on");
                }
                continue;
            }
            let service = Service::parse(&addon.service).unwrap_or(Service::Postgres);
            let dropped = match self.addon_servers() {
                Ok(servers) => servers
                    .deprovision(service, &addon.resource)
                    .await
                    .map_err(|error| error.to_string()),
                Err(error) => Err(error.to_string()),
            };
            if let Err(error) = dropped {
                tracing::error!(%error, addon = %addon.name, resource = %addon.resource, "the app was deleted but its add-on's data could not be dropped");
            }
            self.forget_addon_backups(addon.id).await;
        }
    }

    /// `addons:upgrade`/`downgrade`: another plan of the same service.
    pub(crate) async fn change_addon_plan(
        &self,
        user: &User,
        addon: &str,
        plan: &str,
    ) -> Result<AddonView, CoreError> {
        let view = self.addon(user, addon).await?;
        if view.addon.partner.is_some() {
            return self.change_partner_plan(user, view, plan).await;
        }
        let mut addon = view.addon;
        let spec = if plan.contains(':') {
            plan.to_owned()
        } else {
            format!("{}:{plan}", addon.service)
        };
        let plan = parse_plan(&spec).map_err(|e| CoreError::invalid(e.to_string()))?;
        if plan.service.name() != addon.service {
            return Err(CoreError::invalid(format!(
                "{} is a {} add-on; it cannot change to a plan of {}.",
                addon.name,
                addon.service,
                plan.service.name()
            )));
        }
        self.addon_servers()?
            .change_plan(plan, &addon.resource)
            .await
            .map_err(|e| CoreError::invalid(e.to_string()))?;
        addon.plan = plan.name.to_owned();
        addon.updated_at = Utc::now();
        self.store()
            .txn(
                slipway_store::Txn::new()
                    .when(Compare::exists(addon_key(&addon.name)))
                    .then(Op::put_json(addon_key(&addon.name), &addon)?),
            )
            .await?;
        self.view(addon).await
    }

    /// `pg:credentials:rotate`: a new password, then a release on every attached app.
    pub(crate) async fn rotate_addon_credentials(
        &self,
        user: &User,
        addon: &str,
    ) -> Result<AddonView, CoreError> {
        let view = self.addon(user, addon).await?;
        if view.addon.partner.is_some() {
            return Err(CoreError::invalid(format!(
                "{} is a third-party add-on: its credentials are its provider's to rotate.",
                view.addon.name
            )));
        }
        let mut addon = view.addon.clone();
        let service = Service::parse(&addon.service).unwrap_or(Service::Postgres);
        addon.url = self
            .addon_servers()?
            .rotate_credentials(service, &addon.resource)
            .await
            .map_err(|e| CoreError::invalid(e.to_string()))?;
        addon.updated_at = Utc::now();
        self.store()
            .txn(
                slipway_store::Txn::new()
                    .when(Compare::exists(addon_key(&addon.name)))
                    .then(Op::put_json(addon_key(&addon.name), &addon)?),
            )
            .await?;
        for attachment in &view.attachments {
            let app = self.find_app(&attachment.app_name).await?;
            let change = AddonRelease {
                description: format!("Update {} by {}", attachment.name, addon.name),
                vars: BTreeMap::from([(attachment.config_var(), Some(addon.url.clone()))]),
                ops: Vec::new(),
                compares: vec![Compare::exists(attachment_key(app.id, &attachment.name))],
            };
            self.addon_release(user, &app, change).await?;
        }
        self.view(addon).await
    }

    /// Size and connections of a PostgreSQL add-on, for `pg:info`.
    pub async fn addon_stats(
        &self,
        user: &User,
        addon: &str,
    ) -> Result<(AddonView, Option<slipway_addons::PgStats>), CoreError> {
        let view = self.addon(user, addon).await?;
        if view.addon.service != Service::Postgres.name() {
            return Ok((view, None));
        }
        let Some(plan) = view.addon.plan() else {
            return Ok((view, None));
        };
        let stats = self
            .addon_servers()?
            .postgres_stats(&view.addon.resource, plan)
            .await
            .ok();
        Ok((view, stats))
    }
}

mod partner;
pub use partner::{AddonServiceRecord, AddonSso, PartnerAddon, PartnerState};

#[cfg(test)]
mod tests;

/// The records of a freshly provisioned add-on and its first attachment, on `app`.
fn new_records(
    app: &App,
    name: &str,
    plan: &Plan,
    resource: String,
    url: &str,
    attachment_name: &str,
) -> (Addon, AddonAttachment) {
    let now = Utc::now();
    let addon = Addon {
        id: Uuid::new_v4(),
        name: name.to_owned(),
        app_id: app.id,
        app_name: app.name.clone(),
        service: plan.service.name().to_owned(),
        plan: plan.name.to_owned(),
        resource,
        url: url.to_owned(),
        created_at: now,
        updated_at: now,
        partner: None,
    };
    let record = AddonAttachment {
        id: Uuid::new_v4(),
        name: attachment_name.to_owned(),
        addon_id: addon.id,
        addon_name: addon.name.clone(),
        app_id: app.id,
        app_name: app.name.clone(),
        created_at: now,
        updated_at: now,
    };
    (addon, record)
}
