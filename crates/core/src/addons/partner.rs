//! Third-party add-ons in the core: the services an administrator registers
//! (`addon-services/<name>`), and provisioning, plan changes, deprovisioning and the
//! provider's callbacks for their add-ons, over `slipway_addons::partner`'s client.
//!
//! The flow, and why each step is where it is:
//! - **Provision**: `POST {base_url}` with the new add-on's id as `uuid` (a retry sends the
//!   same one), before anything is stored. A synchronous 200/201 gives config vars, checked
//!   against the manifest; then one release writes the add-on, its attachment and the vars.
//!   A refused config, a failed release, or a timeout (the provider may have done it) sends
//!   `DELETE {base_url}/{uuid}`, so a failure leaves nothing behind on either side.
//! - **Asynchronous provision**: a 202 stores the add-on as `provisioning`, with the
//!   attachment name it will get and no attachment, config var or release. The request
//!   carried `oauth_grant.code`, a token good for this add-on only (stored as a digest); the
//!   provider sends it as `Authorization: Bearer <code>` to `PATCH /addons/{uuid}/config`
//!   (`{"config": [{"name", "value"}]}`, checked against the manifest) and then to
//!   `POST /addons/{uuid}/actions/provision`, which writes the attach release. No exchange at
//!   an OAuth endpoint: Slipway hands out the bearer token directly.
//! - **Plan change**: `PUT {base_url}/{uuid}` `{plan}`; returned config vars are released to
//!   every attached app.
//! - **Deprovision**: after the release that detaches, `DELETE {base_url}/{uuid}`.
//!
//! No provider call runs inside a store transaction: each is made, then its result written.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use slipway_addons::partner::{
    parse_manifest, OauthGrant, PartnerClient, PartnerError, PartnerPlan, PartnerService,
    ProvisionRequest, Provisioned,
};
use slipway_store::json::{get_json, range_json};
use slipway_store::{Compare, Op, Txn};
use uuid::Uuid;

use super::{
    addon_key, attachment_key, check_addon_name, check_attachment_name, Addon, AddonAttachment,
    AddonRelease, AddonView, ManifestAddons, COLORS, WORDS,
};
use crate::app_json::ManifestAddon;
use crate::authorizations::key_digest;
use crate::error::CoreError;
use crate::model::{App, ConfigVars, User};
use crate::output::DeployOutput;
use crate::platform::Platform;

const SERVICES: &str = "addon-services/";

fn service_key(name: &str) -> String {
    format!("{SERVICES}{name}")
}

/// A registered third-party service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddonServiceRecord {
    pub id: Uuid,
    pub service: PartnerService,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Where a third-party add-on's provisioning is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartnerState {
    /// The provider answered 202 and has not called `actions/provision` yet.
    Provisioning,
    Provisioned,
}

impl PartnerState {
    fn can_complete(self) -> bool {
        self == PartnerState::Provisioning
    }
}

/// What the core keeps of a third-party add-on beside the common record.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerAddon {
    pub state: PartnerState,
    pub service_id: Uuid,
    /// The manifest's config var prefix, replaced by the attachment name.
    pub prefix: String,
    /// The config vars as the provider named them (values are secrets).
    pub config: BTreeMap<String, String>,
    pub provider_id: Option<String>,
    pub message: Option<String>,
    pub price_cents: u64,
    /// SHA-256 of the provider's callback token.
    pub token_digest: String,
    /// The attachment an asynchronous provision gets when it completes.
    pub pending_attachment: Option<String>,
    /// Set while an app's first deploy waits for this asynchronous provision (an app.json
    /// add-on): the provider's completion then only marks it provisioned, and the deploy's own
    /// release attaches it, so its config vars reach the release phase. A deploy that fails
    /// finds it still set and removes it (see `drop_unreleased_manifest_addons`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub for_deploy: bool,
}

impl std::fmt::Debug for PartnerAddon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartnerAddon")
            .field("state", &self.state)
            .field("config_vars", &self.config.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl PartnerAddon {
    /// `FAST_DB_URL` attached as `CACHE` is `CACHE_URL`.
    pub(crate) fn rename(&self, name: &str, attachment: &str) -> String {
        match name.strip_prefix(&self.prefix) {
            Some(rest) => format!("{attachment}{rest}"),
            None => name.to_owned(),
        }
    }
}

fn partner_error(error: PartnerError) -> CoreError {
    // A provider's 422 message is the user's to read as it is; the other messages already
    // say which provider failed and what to do.
    CoreError::invalid(error.to_string())
}

/// A release written for a provider's callback is by the provider, as Heroku shows
/// `fast-db@addons.heroku.com`.
fn provider_actor(service: &str) -> User {
    User {
        id: Uuid::nil(),
        email: format!("{service}@addons.slipway"),
        created_at: Utc::now(),
        admin: false,
    }
}

/// `fast-db-curved-12345`, within add-on names' 40 characters.
fn random_partner_addon_name(service: &str) -> String {
    let mut rng = rand::thread_rng();
    let base: String = service.chars().take(20).collect();
    format!(
        "{}-{}-{}",
        base.trim_end_matches('-'),
        WORDS[rng.gen_range(0..WORDS.len())],
        rng.gen_range(10000..100000)
    )
}

/// What `addons:create` asked of a third-party service besides its plan.
pub(crate) struct PartnerCreate {
    /// The attachment name (`--as`).
    pub(crate) attachment: Option<String>,
    /// The add-on's global name (`--name`).
    pub(crate) name: Option<String>,
    /// The provider's options (`-- --key value`), the provision's `options`.
    pub(crate) options: serde_json::Map<String, serde_json::Value>,
}

impl Platform {
    fn partner_client(&self) -> Result<PartnerClient, CoreError> {
        PartnerClient::new(self.config().outbound.clone()).map_err(partner_error)
    }

    /// Every registered service.
    pub async fn addon_service_records(&self) -> Result<Vec<AddonServiceRecord>, CoreError> {
        let (records, _) =
            range_json::<AddonServiceRecord, _>(self.store().as_ref(), SERVICES).await?;
        Ok(records.into_iter().map(|(_, r)| r).collect())
    }

    /// A registered service by name or id.
    pub async fn addon_service_record(
        &self,
        name_or_id: &str,
    ) -> Result<Option<AddonServiceRecord>, CoreError> {
        if let Some(record) =
            get_json::<AddonServiceRecord, _>(self.store().as_ref(), &service_key(name_or_id))
                .await?
        {
            return Ok(Some(record));
        }
        let id = name_or_id.parse::<Uuid>().ok();
        Ok(self
            .addon_service_records()
            .await?
            .into_iter()
            .find(|r| Some(r.id) == id))
    }

    /// `addons:services:add`: registers a provider by its manifest (administrators only).
    pub(crate) async fn register_addon_service(
        &self,
        actor: &User,
        manifest: &[u8],
        timeout_ms: Option<u64>,
    ) -> Result<AddonServiceRecord, CoreError> {
        if !actor.admin {
            return Err(CoreError::invalid(
                "Only an administrator can register add-on services.",
            ));
        }
        let policy = &self.config().outbound;
        let service = parse_manifest(
            manifest,
            policy.allows_private(),
            timeout_ms.map(Duration::from_millis),
        )
        .map_err(|e| CoreError::invalid(e.to_string()))?;
        service
            .check_urls(policy)
            .await
            .map_err(|e| CoreError::invalid(e.to_string()))?;
        let now = Utc::now();
        let record = AddonServiceRecord {
            id: Uuid::new_v4(),
            service,
            created_at: now,
            updated_at: now,
        };
        let key = service_key(&record.service.name);
        let response = self
            .store()
            .txn(
                Txn::new()
                    .when(Compare::absent(key.clone()))
                    .then(Op::put_json(key, &record)?),
            )
            .await?;
        if !response.succeeded {
            return Err(CoreError::Conflict {
                message: format!(
                    "The add-on service {} is already registered. Remove it first with addons:services:remove.",
                    record.service.name
                ),
            });
        }
        Ok(record)
    }

    /// `addons:services:remove`: refused while add-ons of the service exist.
    pub(crate) async fn remove_addon_service(
        &self,
        actor: &User,
        name: &str,
    ) -> Result<AddonServiceRecord, CoreError> {
        if !actor.admin {
            return Err(CoreError::invalid(
                "Only an administrator can remove add-on services.",
            ));
        }
        let record = self
            .addon_service_record(name)
            .await?
            .ok_or_else(|| CoreError::not_found("add-on service", name))?;
        let existing: Vec<String> = self
            .all_addons()
            .await?
            .into_iter()
            .filter(|a| a.service == record.service.name)
            .map(|a| a.name)
            .collect();
        if !existing.is_empty() {
            return Err(CoreError::invalid(format!(
                "Cannot remove {}: add-ons of it exist ({}). Destroy them first with addons:destroy.",
                record.service.name,
                existing.join(", ")
            )));
        }
        self.store()
            .txn(Txn::new().then(Op::delete(service_key(&record.service.name))))
            .await?;
        Ok(record)
    }

    /// The registered service and plan `spec` (`fast-db[:plan]`) names; `None` if it names no
    /// registered service (a built-in one, or nothing).
    pub(crate) async fn partner_plan(
        &self,
        spec: &str,
    ) -> Result<Option<(AddonServiceRecord, PartnerPlan)>, CoreError> {
        let (service, plan) = match spec.split_once(':') {
            Some((service, plan)) => (service, Some(plan)),
            None => (spec, None),
        };
        if service.is_empty() || service.len() > 50 || service.contains('/') {
            return Ok(None);
        }
        let Some(record) =
            get_json::<AddonServiceRecord, _>(self.store().as_ref(), &service_key(service)).await?
        else {
            return Ok(None);
        };
        let Some(found) = record.service.plan(plan).cloned() else {
            let names: Vec<&str> = record
                .service
                .plans
                .iter()
                .map(|p| p.name.as_str())
                .collect();
            return Err(CoreError::invalid(format!(
                "Couldn't find either the add-on service or the add-on plan {spec:?}. {} has the plans: {}.",
                record.service.name,
                names.join(", ")
            )));
        };
        Ok(Some((record, found)))
    }

    /// Where a provider calls back (`callback_url`, then `/addons/{id}/...`): the platform's
    /// public HTTPS API when it has one, so the provider's token travels over TLS to a name the
    /// platform's certificate carries; else the API's own URL.
    fn callback_base_url(&self) -> String {
        super::public_api_url(self.config())
    }

    /// Provisions `plan` of `record` for `app` on the provider (`POST {base_url}`) and returns
    /// the add-on as the provider left it, not stored: `provisioned` with its config vars, or
    /// `provisioning` after a 202 (the provider calls back). `taken` holds the config vars the
    /// attachment must not collide with. A failed call that may have done the work
    /// deprovisions by the same `uuid`, so nothing is left on the provider's side either.
    pub(crate) async fn provision_partner(
        &self,
        app: &App,
        record: &AddonServiceRecord,
        plan: &PartnerPlan,
        asked: PartnerCreate,
        taken: &ConfigVars,
    ) -> Result<(Addon, String), CoreError> {
        let PartnerCreate {
            attachment,
            name,
            options,
        } = asked;
        let service = &record.service;
        // As Heroku does for a second add-on of a service: `FAST_DB`, then `FAST_DB_AMBER`...
        let is_taken = |name: &str| {
            service.config_vars.iter().any(|var| {
                let rest = var.strip_prefix(&service.prefix).unwrap_or(var);
                taken.contains_key(&format!("{name}{rest}"))
            })
        };
        let attachment_name = attachment.unwrap_or_else(|| {
            std::iter::once(service.prefix.clone())
                .chain(COLORS.iter().map(|c| format!("{}_{c}", service.prefix)))
                .find(|name| !is_taken(name))
                .unwrap_or_else(|| service.prefix.clone())
        });
        check_attachment_name(&attachment_name)?;
        let name = match name {
            Some(name) => {
                check_addon_name(&name)?;
                name
            }
            None => random_partner_addon_name(&service.name),
        };
        if get_json::<Addon, _>(self.store().as_ref(), &addon_key(&name))
            .await?
            .is_some()
        {
            return Err(CoreError::Conflict {
                message: format!("The add-on name {name} is already taken. Choose another name."),
            });
        }
        let mut partner = PartnerAddon {
            state: PartnerState::Provisioning,
            service_id: record.id,
            prefix: service.prefix.clone(),
            config: BTreeMap::new(),
            provider_id: None,
            message: None,
            price_cents: plan.price_cents,
            token_digest: String::new(),
            pending_attachment: Some(attachment_name.clone()),
            for_deploy: false,
        };
        for var in &service.config_vars {
            let var = partner.rename(var, &attachment_name);
            if taken.contains_key(&var) {
                return Err(CoreError::Conflict {
                    message: format!(
                        "{var} is already set on {}. Choose another attachment name with --as, or unset {var} first.",
                        app.name
                    ),
                });
            }
        }
        let id = Uuid::new_v4();
        let token = String::from(slipway_model::SecretToken::generate());
        partner.token_digest = key_digest(&token);
        let request = ProvisionRequest {
            uuid: id.to_string(),
            name: name.clone(),
            plan: plan.name.clone(),
            callback_url: format!("{}/addons/{id}", self.callback_base_url()),
            region: "slipway::local".into(),
            options,
            heroku_id: format!("app{}@{}", app.id, self.config().domain),
            oauth_grant: OauthGrant {
                code: token,
                expires_at: (Utc::now() + chrono::Duration::days(30)).to_rfc3339(),
                kind: "authorization_code".into(),
            },
        };
        let client = self.partner_client()?;
        let answer = match client.provision(service, &request).await {
            Ok(answer) => answer,
            Err(error) => {
                if error.maybe_done() {
                    self.deprovision_quietly(service, id, &name).await;
                }
                return Err(partner_error(error));
            }
        };
        let now = Utc::now();
        let (provider_id, message) = match answer {
            Provisioned::Pending {
                provider_id,
                message,
            } => (provider_id, message),
            Provisioned::Done {
                provider_id,
                config,
                message,
            } => {
                partner.state = PartnerState::Provisioned;
                partner.pending_attachment = None;
                partner.config = config;
                (provider_id, message)
            }
        };
        partner.provider_id = provider_id;
        partner.message = message;
        let addon = Addon {
            id,
            name,
            app_id: app.id,
            app_name: app.name.clone(),
            service: service.name.clone(),
            plan: plan.name.clone(),
            resource: partner
                .provider_id
                .clone()
                .unwrap_or_else(|| id.to_string()),
            url: String::new(),
            created_at: now,
            updated_at: now,
            partner: Some(partner),
        };
        Ok((addon, attachment_name))
    }

    /// Stores a `provisioning` add-on, whose provider will call back. `Ok(false)` if its name
    /// was taken meanwhile.
    pub(crate) async fn store_provisioning(&self, addon: &Addon) -> Result<bool, CoreError> {
        let key = addon_key(&addon.name);
        let response = self
            .store()
            .txn(
                Txn::new()
                    .when(Compare::absent(key.clone()))
                    .then(Op::put_json(key, addon)?),
            )
            .await?;
        Ok(response.succeeded)
    }

    /// `addons:create fast-db:plan`: provisions on the provider, then attaches (one release),
    /// or stores a `provisioning` add-on if the provider answers 202.
    pub(crate) async fn create_partner_addon(
        &self,
        user: &User,
        app: &App,
        record: AddonServiceRecord,
        plan: PartnerPlan,
        asked: PartnerCreate,
    ) -> Result<AddonView, CoreError> {
        let config = self.config_vars(app).await?;
        let (addon, attachment_name) = self
            .provision_partner(app, &record, &plan, asked, &config)
            .await?;
        let service = &record.service;
        let name = addon.name.clone();
        if addon.state() == "provisioning" {
            let stored = self.store_provisioning(&addon).await;
            return match stored {
                Ok(true) => Ok(AddonView {
                    addon,
                    attachments: Vec::new(),
                }),
                other => {
                    self.deprovision_quietly(service, addon.id, &name).await;
                    match other {
                        Err(error) => Err(error),
                        _ => Err(CoreError::Conflict {
                            message: format!(
                                "The add-on name {name} was taken meanwhile. Try again."
                            ),
                        }),
                    }
                }
            };
        }
        let (released, attachment) = self
            .release_partner_attachment(user, app, &addon, &attachment_name)
            .await;
        match released {
            Ok(true) => Ok(AddonView {
                addon,
                attachments: vec![attachment],
            }),
            other => {
                self.deprovision_quietly(service, addon.id, &name).await;
                match other {
                    Err(error) => Err(error),
                    _ => Err(CoreError::Conflict {
                        message: format!(
                            "The add-on {name} or the attachment {attachment_name} was created by someone else meanwhile. Try again."
                        ),
                    }),
                }
            }
        }
    }

    /// The release that writes `addon` (as given) and its attachment `attachment_name` on
    /// `app`, with its config vars. `Ok(false)` if the attachment exists meanwhile.
    async fn release_partner_attachment(
        &self,
        user: &User,
        app: &App,
        addon: &Addon,
        attachment_name: &str,
    ) -> (Result<bool, CoreError>, AddonAttachment) {
        let now = Utc::now();
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
        let ops = match (
            Op::put_json(addon_key(&addon.name), addon),
            Op::put_json(attachment_key(app.id, attachment_name), &record),
        ) {
            (Ok(a), Ok(b)) => vec![a, b],
            (Err(e), _) | (_, Err(e)) => return (Err(e.into()), record),
        };
        let change = AddonRelease {
            description: format!("Attach {attachment_name} (@ref:{})", addon.name),
            vars: addon
                .attachment_vars(attachment_name)
                .into_iter()
                .map(|(k, v)| (k, Some(v)))
                .collect(),
            ops,
            compares: vec![Compare::absent(attachment_key(app.id, attachment_name))],
        };
        let released = self
            .addon_release(user, app, change)
            .await
            .map(|r| r.is_some());
        (released, record)
    }

    pub(crate) async fn deprovision_quietly(&self, service: &PartnerService, id: Uuid, name: &str) {
        let deprovisioned = match self.partner_client() {
            Ok(client) => client
                .deprovision(service, &id.to_string())
                .await
                .map_err(partner_error),
            Err(error) => Err(error),
        };
        if let Err(error) = deprovisioned {
            tracing::error!(%error, addon = %name, service = %service.name, "could not deprovision a third-party add-on after its provisioning failed");
        }
    }

    /// `DELETE {base_url}/{uuid}` for a third-party add-on.
    pub(crate) async fn deprovision_partner(&self, addon: &Addon) -> Result<(), CoreError> {
        let record = self
            .addon_service_record(&addon.service)
            .await?
            .ok_or_else(|| {
                CoreError::invalid(format!(
                    "its service {} is no longer registered, so its provider was not told to deprovision it.",
                    addon.service
                ))
            })?;
        self.partner_client()?
            .deprovision(&record.service, &addon.id.to_string())
            .await
            .map_err(partner_error)
    }

    /// `addons:upgrade` of a third-party add-on: `PUT {base_url}/{uuid}` `{plan}`.
    pub(crate) async fn change_partner_plan(
        &self,
        user: &User,
        view: AddonView,
        plan: &str,
    ) -> Result<AddonView, CoreError> {
        let mut addon = view.addon;
        let spec = if plan.contains(':') {
            plan.to_owned()
        } else {
            format!("{}:{plan}", addon.service)
        };
        let Some((record, plan)) = self.partner_plan(&spec).await? else {
            return Err(CoreError::invalid(format!(
                "{} is a {} add-on; it cannot change to {spec}.",
                addon.name, addon.service
            )));
        };
        if record.service.name != addon.service {
            return Err(CoreError::invalid(format!(
                "{} is a {} add-on; it cannot change to a plan of {}.",
                addon.name, addon.service, record.service.name
            )));
        }
        if addon.state() == "provisioning" {
            return Err(CoreError::invalid(format!(
                "{} is still provisioning; change its plan once its provider has finished.",
                addon.name
            )));
        }
        let changed = self
            .partner_client()?
            .change_plan(&record.service, &addon.id.to_string(), &plan.name)
            .await
            .map_err(partner_error)?;
        addon.plan = plan.name.clone();
        addon.updated_at = Utc::now();
        if let Some(partner) = addon.partner.as_mut() {
            partner.price_cents = plan.price_cents;
            if changed.message.is_some() {
                partner.message = changed.message;
            }
        }
        self.store_partner_config(user, addon, changed.config).await
    }

    /// Merges `config` into the add-on's, stores it, and releases the changed vars to every
    /// attached app (one release each, "Update ATTACHMENT by addon").
    async fn store_partner_config(
        &self,
        user: &User,
        mut addon: Addon,
        config: BTreeMap<String, String>,
    ) -> Result<AddonView, CoreError> {
        if let Some(partner) = addon.partner.as_mut() {
            partner.config.extend(config.clone());
        }
        self.store()
            .txn(
                Txn::new()
                    .when(Compare::exists(addon_key(&addon.name)))
                    .then(Op::put_json(addon_key(&addon.name), &addon)?),
            )
            .await?;
        let view = self.view(addon).await?;
        if config.is_empty() {
            return Ok(view);
        }
        for attachment in &view.attachments {
            let app = self.find_app(&attachment.app_name).await?;
            let changed: Vec<String> = match &view.addon.partner {
                Some(partner) => config
                    .keys()
                    .map(|name| partner.rename(name, &attachment.name))
                    .collect(),
                None => Vec::new(),
            };
            let vars = view
                .addon
                .attachment_vars(&attachment.name)
                .into_iter()
                .filter(|(name, _)| changed.contains(name))
                .map(|(k, v)| (k, Some(v)))
                .collect();
            let change = AddonRelease {
                description: format!("Update {} by {}", attachment.name, view.addon.name),
                vars,
                ops: Vec::new(),
                compares: vec![Compare::exists(attachment_key(app.id, &attachment.name))],
            };
            self.addon_release(user, &app, change).await?;
        }
        Ok(view)
    }

    /// The third-party add-on `id` if `token` is its provider's callback token. Anything else
    /// is `Unauthorized`, so a caller learns nothing about which add-ons exist.
    async fn partner_addon_for_token(
        &self,
        id: &str,
        token: &str,
    ) -> Result<(Addon, AddonServiceRecord), CoreError> {
        let id = id.parse::<Uuid>().map_err(|_| CoreError::Unauthorized)?;
        let addon = self
            .all_addons()
            .await?
            .into_iter()
            .find(|a| a.id == id)
            .ok_or(CoreError::Unauthorized)?;
        let Some(partner) = &addon.partner else {
            return Err(CoreError::Unauthorized);
        };
        if token.is_empty() || key_digest(token) != partner.token_digest {
            return Err(CoreError::Unauthorized);
        }
        let record = self
            .addon_service_record(&addon.service)
            .await?
            .ok_or(CoreError::Unauthorized)?;
        Ok((addon, record))
    }

    /// `GET /addons/{id}/config` by the provider: its config vars, as it named them.
    pub async fn partner_get_config(
        &self,
        id: &str,
        token: &str,
    ) -> Result<BTreeMap<String, String>, CoreError> {
        let (addon, _) = self.partner_addon_for_token(id, token).await?;
        Ok(addon.partner.map(|p| p.config).unwrap_or_default())
    }

    /// `PATCH /addons/{id}/config` by the provider: sets config vars (each must be declared in
    /// the manifest). Released to attached apps at once; kept for the attach release while
    /// provisioning.
    pub async fn partner_set_config(
        &self,
        id: &str,
        token: &str,
        config: BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, CoreError> {
        let (mut addon, record) = self.partner_addon_for_token(id, token).await?;
        record
            .service
            .check_config(&config)
            .map_err(partner_error)?;
        addon.updated_at = Utc::now();
        let actor = provider_actor(&record.service.name);
        let view = self.store_partner_config(&actor, addon, config).await?;
        Ok(view.addon.partner.map(|p| p.config).unwrap_or_default())
    }

    /// `POST /addons/{id}/actions/provision` by the provider: the asynchronous provision is
    /// done; writes the attach release. Calling it again is harmless.
    pub async fn partner_provisioned(&self, id: &str, token: &str) -> Result<AddonView, CoreError> {
        let (mut addon, record) = self.partner_addon_for_token(id, token).await?;
        let Some(partner) = addon.partner.as_mut() else {
            return Err(CoreError::Unauthorized);
        };
        if !partner.state.can_complete() {
            return self.view(addon).await;
        }
        if partner.for_deploy {
            // The waiting deploy attaches it in its own release; only the state changes here.
            partner.state = PartnerState::Provisioned;
            addon.updated_at = Utc::now();
            let key = addon_key(&addon.name);
            self.store()
                .txn(
                    Txn::new()
                        .when(Compare::exists(key.clone()))
                        .then(Op::put_json(key, &addon)?),
                )
                .await?;
            return self.view(addon).await;
        }
        let attachment_name = partner
            .pending_attachment
            .take()
            .unwrap_or_else(|| partner.prefix.clone());
        partner.state = PartnerState::Provisioned;
        addon.updated_at = Utc::now();
        let app = self.find_app(&addon.app_name).await?;
        let actor = provider_actor(&record.service.name);
        let (released, attachment) = self
            .release_partner_attachment(&actor, &app, &addon, &attachment_name)
            .await;
        match released? {
            true => Ok(AddonView {
                addon,
                attachments: vec![attachment],
            }),
            false => Err(CoreError::Conflict {
                message: format!(
                    "The attachment {attachment_name} on {} exists already.",
                    app.name
                ),
            }),
        }
    }
}

/// The form that signs a user in to a third-party add-on's dashboard (Heroku's add-on SSO):
/// the browser posts `params` to `action`, the provider's `sso_url`, which checks the token
/// against its `sso_salt` and the timestamp's age (Heroku's providers allow 5 minutes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddonSso {
    /// The provider's `sso_url`.
    pub action: String,
    /// How the browser sends `params`: `post`, as Heroku does.
    pub method: &'static str,
    pub params: BTreeMap<String, String>,
}

/// `sha1("<id>:<salt>:<timestamp>")` in hex: the token a provider recomputes.
pub(crate) fn sso_token(id: &str, salt: &str, timestamp: i64) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(format!("{id}:{salt}:{timestamp}")))
}

/// The SSO form's fields for `addon` of `app` at `timestamp` (Unix seconds), signed with the
/// service's salt: Heroku's classic `id`/`token` over the provider's resource id, and the v3
/// `resource_id`/`resource_token` over the add-on's uuid, with `timestamp`, `email`, `app`,
/// `context_app` and the opaque `nav-data` providers hand back to the platform's navigation.
pub(crate) fn sso_form(
    sso_url: &str,
    salt: &str,
    addon: &Addon,
    app: &str,
    email: &str,
    timestamp: i64,
) -> AddonSso {
    use base64::Engine;
    let id = addon.resource.clone();
    let uuid = addon.id.to_string();
    let nav = serde_json::json!({"addon": addon.name, "appname": app, "addon_id": uuid});
    let params = BTreeMap::from([
        ("token".to_owned(), sso_token(&id, salt, timestamp)),
        ("id".to_owned(), id),
        (
            "resource_token".to_owned(),
            sso_token(&uuid, salt, timestamp),
        ),
        ("resource_id".to_owned(), uuid),
        ("timestamp".to_owned(), timestamp.to_string()),
        ("email".to_owned(), email.to_owned()),
        ("app".to_owned(), app.to_owned()),
        ("context_app".to_owned(), app.to_owned()),
        (
            "nav-data".to_owned(),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(nav.to_string()),
        ),
    ]);
    AddonSso {
        action: sso_url.to_owned(),
        method: "post",
        params,
    }
}

impl Platform {
    /// `GET /apps/{app}/addons/{addon}/sso` (`heroku addons:open` with `HEROKU_SUDO`): the form
    /// that signs `user` in at the provider's dashboard of a third-party add-on attached to
    /// `app` (which `user` may see). A built-in add-on, a service without `sso_url` or
    /// `sso_salt`, or one still provisioning has no dashboard to open.
    pub async fn addon_sso(
        &self,
        user: &User,
        app: &str,
        addon: &str,
    ) -> Result<AddonSso, CoreError> {
        let app_record = self.app(user, app).await?;
        let app = app_record.name.clone();
        let addon = self
            .app_addons(user, &app)
            .await?
            .into_iter()
            .find(|v| {
                v.addon.name == addon
                    || v.addon.id.to_string() == addon
                    || v.attachments
                        .iter()
                        .any(|a| a.app_id == app_record.id && a.name == addon)
            })
            .ok_or_else(|| CoreError::not_found("add-on", addon))?
            .addon;
        let Some(partner) = &addon.partner else {
            return Err(CoreError::invalid(format!(
                "{} is a built-in add-on of Slipway; it has no dashboard to open. Use pg:info, pg:psql, redis:info or redis:cli.",
                addon.name
            )));
        };
        if partner.state == PartnerState::Provisioning {
            return Err(CoreError::invalid(format!(
                "{} is still being provisioned by its provider; open it once it is provisioned.",
                addon.name
            )));
        }
        let record =
            get_json::<AddonServiceRecord, _>(self.store().as_ref(), &service_key(&addon.service))
                .await?
                .ok_or_else(|| CoreError::not_found("add-on service", &addon.service))?;
        let service = &record.service;
        let (Some(sso_url), Some(salt)) = (&service.sso_url, &service.sso_salt) else {
            return Err(CoreError::invalid(format!(
                "The add-on service {} offers no single sign-on (its manifest has no sso_url and sso_salt).",
                service.name
            )));
        };
        Ok(sso_form(
            sso_url,
            salt,
            &addon,
            &app,
            &user.email,
            Utc::now().timestamp(),
        ))
    }
}

/// How often a first deploy waiting for an asynchronous provision reads the add-on's record:
/// the provider's callback may land on any control plane, so the store is where it shows.
const PROVISION_POLL: Duration = Duration::from_millis(250);
/// How often the waiting deploy says it is still waiting.
const PROVISION_PROGRESS: Duration = Duration::from_secs(10);

impl Platform {
    /// Provisions one of app.json's add-ons on a registered service's provider for a first
    /// deploy: the records and config vars go into `done`, for the deploy's release. A 202 is
    /// stored as `provisioning` (marked for the deploy, so the provider's completion does not
    /// release on its own) and waited for, with a progress line, for at most the service's
    /// `provision_wait_seconds`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn provision_one_manifest_partner(
        &self,
        app: &App,
        config: &ConfigVars,
        entry: &ManifestAddon,
        record: AddonServiceRecord,
        plan: PartnerPlan,
        done: &mut ManifestAddons,
        output: &DeployOutput,
    ) -> Result<(), CoreError> {
        let service = &record.service;
        let spec = format!("{}:{}", service.name, plan.name);
        let failed = |error: CoreError| {
            CoreError::invalid(format!(
                "Push rejected: provisioning app.json's add-on {spec} failed: {}. Nothing was released; push again once the cause is fixed.",
                error.to_string().trim_end_matches('.')
            ))
        };
        // Names already taken by this app's config or by an earlier entry.
        let mut taken = config.clone();
        taken.extend(done.vars.clone());
        let asked = PartnerCreate {
            attachment: entry.attachment.clone(),
            name: None,
            options: entry.options.clone(),
        };
        output(&format!("-----> Provisioning add-ons: {spec}"));
        let (mut addon, attachment_name) = self
            .provision_partner(app, &record, &plan, asked, &taken)
            .await
            .map_err(failed)?;
        if addon.state() == "provisioning" {
            if let Some(partner) = addon.partner.as_mut() {
                partner.for_deploy = true;
            }
            match self.store_provisioning(&addon).await {
                Ok(true) => {}
                other => {
                    self.deprovision_quietly(service, addon.id, &addon.name)
                        .await;
                    return Err(match other {
                        Err(error) => error,
                        _ => failed(CoreError::invalid(format!(
                            "the add-on name {} was taken meanwhile",
                            addon.name
                        ))),
                    });
                }
            }
            // From here a failure removes the record and deprovisions (the caller's cleanup).
            done.addons.push(addon.clone());
            let wait = service.provision_wait();
            let said = addon
                .partner
                .as_ref()
                .and_then(|p| p.message.as_deref())
                .map(|m| format!(" ({m})"))
                .unwrap_or_default();
            output(&format!(
                "       {} is being provisioned by {}{said}; waiting up to {} s for it",
                addon.name,
                service.name,
                wait.as_secs()
            ));
            addon = self
                .wait_for_partner_provision(&addon, wait, output)
                .await
                .map_err(failed)?;
        } else {
            done.addons.push(addon.clone());
        }
        if let Some(partner) = addon.partner.as_mut() {
            partner.for_deploy = false;
            partner.pending_attachment = None;
        }
        let vars = addon.attachment_vars(&attachment_name);
        if let Some(var) = vars.keys().find(|var| taken.contains_key(*var)) {
            return Err(failed(CoreError::invalid(format!(
                "it would set {var}, which is already set on {}; choose another name with \"as\" in app.json, or unset {var} first",
                app.name
            ))));
        }
        let now = Utc::now();
        let attachment = AddonAttachment {
            id: Uuid::new_v4(),
            name: attachment_name.clone(),
            addon_id: addon.id,
            addon_name: addon.name.clone(),
            app_id: app.id,
            app_name: app.name.clone(),
            created_at: now,
            updated_at: now,
        };
        done.ops.push(Op::put_json(addon_key(&addon.name), &addon)?);
        done.ops.push(Op::put_json(
            attachment_key(app.id, &attachment_name),
            &attachment,
        )?);
        let message = addon
            .partner
            .as_ref()
            .and_then(|p| p.message.as_deref())
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        output(&format!(
            "       {} provisioned as {attachment_name}{message}",
            addon.name
        ));
        done.vars.extend(vars);
        Ok(())
    }

    /// Waits until the provider marks `addon` provisioned (`POST /addons/{id}/actions/provision`)
    /// and returns its stored record then, with the config vars the provider set; saying every
    /// [`PROVISION_PROGRESS`] that it still waits. Past `wait`, or if the record goes away (an
    /// `addons:destroy` meanwhile), an error that says which.
    async fn wait_for_partner_provision(
        &self,
        addon: &Addon,
        wait: Duration,
        output: &DeployOutput,
    ) -> Result<Addon, CoreError> {
        let started = tokio::time::Instant::now();
        let mut next_progress = PROVISION_PROGRESS;
        loop {
            match get_json::<Addon, _>(self.store().as_ref(), &addon_key(&addon.name)).await? {
                Some(stored) if stored.id == addon.id => {
                    if stored.state() == "provisioned" {
                        return Ok(stored);
                    }
                }
                _ => {
                    return Err(CoreError::invalid(format!(
                        "{} was destroyed while its provider was provisioning it",
                        addon.name
                    )))
                }
            }
            let waited = started.elapsed();
            if waited >= wait {
                return Err(CoreError::invalid(format!(
                    "its provider {} did not finish provisioning {} within {} s (it answered 202 and has not called POST /addons/{}/actions/provision)",
                    addon.service,
                    addon.name,
                    wait.as_secs(),
                    addon.id
                )));
            }
            if waited >= next_progress {
                output(&format!(
                    "       Still waiting for {} to provision {} ({} s)...",
                    addon.service,
                    addon.name,
                    waited.as_secs()
                ));
                next_progress += PROVISION_PROGRESS;
            }
            tokio::time::sleep(PROVISION_POLL.min(wait - waited)).await;
        }
    }
}
