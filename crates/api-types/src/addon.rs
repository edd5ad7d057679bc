//! Add-ons (`add-on`, `add-on-attachment`, `add-on-service`, `plan` of the schema) and the
//! requests that create, change, attach and resolve them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::refs::ResourceRef;

/// `{cents, unit}` (and `contract` for billed prices).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Price {
    pub cents: u64,
    pub unit: String,
    #[serde(default)]
    pub contract: bool,
}

/// A plan as an add-on embeds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlanRef {
    pub id: Uuid,
    /// `heroku-postgresql:essential-0`.
    pub name: String,
    pub price: Price,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Addon {
    pub actions: Vec<serde_json::Value>,
    pub addon_service: ResourceRef,
    pub app: ResourceRef,
    pub billed_price: Price,
    pub billing_entity: BillingEntity,
    pub config_vars: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
    pub name: String,
    pub plan: PlanRef,
    pub provider_id: String,
    pub provision_message: Option<String>,
    pub state: String,
    pub updated_at: DateTime<Utc>,
    pub web_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BillingEntity {
    pub id: Uuid,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// `POST /apps/{app}/addons`: `plan` is a string (`apps:create --addons`) or `{name}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
pub struct AddonCreate {
    pub plan: Option<serde_json::Value>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub attachment: Option<AttachmentName>,
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    #[serde(default)]
    pub confirm: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
pub struct AttachmentName {
    #[serde(default)]
    pub name: Option<String>,
}

/// `PATCH /addons/{addon}`: `{plan}` as a string or `{name}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
pub struct AddonUpdate {
    pub plan: Option<serde_json::Value>,
}

/// An add-on as an attachment embeds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttachedAddon {
    pub id: Uuid,
    pub name: String,
    pub app: ResourceRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AddonAttachment {
    pub addon: AttachedAddon,
    pub app: ResourceRef,
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
    pub name: String,
    pub namespace: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub web_url: Option<String>,
    pub log_input_url: Option<String>,
}

/// `POST /addon-attachments {addon, app, name?}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
pub struct AddonAttachmentCreate {
    pub addon: String,
    pub app: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub confirm: Option<String>,
}

/// `POST /actions/addons/resolve {addon, app?, addon_service?}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
pub struct AddonResolve {
    pub addon: String,
    #[serde(default)]
    pub app: Option<String>,
    #[serde(default)]
    pub addon_service: Option<String>,
}

/// `POST /actions/addon-attachments/resolve {addon_attachment, app?, addon_service?}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
pub struct AddonAttachmentResolve {
    pub addon_attachment: String,
    #[serde(default)]
    pub app: Option<String>,
    #[serde(default)]
    pub addon_service: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AddonService {
    pub cli_plugin_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub human_name: String,
    pub id: Uuid,
    pub name: String,
    pub state: String,
    pub supports_multiple_installations: bool,
    pub supports_sharing: bool,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Plan {
    pub addon_service: ResourceRef,
    pub created_at: DateTime<Utc>,
    pub default: bool,
    pub description: String,
    pub human_name: String,
    pub id: Uuid,
    pub name: String,
    pub price: Price,
    pub state: String,
    pub updated_at: DateTime<Utc>,
    pub visible: bool,
}

/// `plan` as a string or `{name}` (Heroku's CLI sends both).
pub fn plan_name(plan: &serde_json::Value) -> Option<String> {
    match plan {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o.get("name")?.as_str().map(str::to_owned),
        _ => None,
    }
}

/// `POST /slipway/addon-services {manifest, timeout_ms?}`: registers a third-party service by
/// its Heroku add-on manifest (Slipway's own endpoint: Heroku's schema has none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddonServiceRegister {
    pub manifest: serde_json::Value,
    /// How long its provider may take to answer (default 10 s, at most 25 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// A registered third-party service as Slipway's admin endpoints show it: the manifest's
/// fields, the password always redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredAddonService {
    pub id: Uuid,
    pub name: String,
    pub human_name: String,
    pub config_vars_prefix: String,
    pub config_vars: Vec<String>,
    /// Always `[REDACTED]`.
    pub password: String,
    pub base_url: String,
    pub sso_url: Option<String>,
    pub plans: Vec<String>,
    pub timeout_ms: u64,
    pub created_at: DateTime<Utc>,
}

/// `PATCH /addons/{id}/config` by a provider: `{"config": [{name, value}]}` (or the list
/// alone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddonConfigVar {
    pub name: String,
    pub value: Option<String>,
}
