//! The `app` resource: `GET/POST /apps`, `GET/PATCH/DELETE /apps/{app}`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::refs::{ResourceRef, SpaceRef, UserRef};

/// An app as returned by the API.
///
/// The real heroku CLI crashes when `owner.email`, `region.name`, `stack.name` or
/// `build_stack.name` are missing or when the `repo_size`/`slug_size` keys are absent
/// (`null` is fine), and wants `team` to stay `null` and `generation.name` to be `"cedar"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct App {
    pub acm: bool,
    pub archived_at: Option<DateTime<Utc>>,
    pub build_stack: ResourceRef,
    pub buildpack_provided_description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub generation: ResourceRef,
    pub git_url: String,
    pub id: Uuid,
    pub internal_routing: Option<bool>,
    pub maintenance: bool,
    pub name: String,
    pub organization: Option<ResourceRef>,
    pub owner: UserRef,
    pub region: ResourceRef,
    pub released_at: Option<DateTime<Utc>>,
    pub repo_size: Option<i64>,
    pub slug_size: Option<i64>,
    pub space: Option<SpaceRef>,
    pub stack: ResourceRef,
    pub team: Option<ResourceRef>,
    pub updated_at: DateTime<Utc>,
    pub web_url: Option<String>,
}

/// Body of `POST /apps`. The heroku CLI sends `{}` when no name is given, in which case
/// the server picks one. `region` and `stack` are identities (id or name).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AppCreate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_flags: Option<Vec<String>>,
}

/// Body of `PATCH /apps/{app}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AppUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_stack: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A buildpack as an installation names it: `name` is `heroku/python`, `url` the same
/// (Heroku's registry buildpacks use their name as URL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildpackRef {
    pub name: String,
    pub url: String,
}

/// One of an app's buildpacks (`GET/PUT /apps/{app}/buildpack-installations`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildpackInstallation {
    /// Position in the list, from 0.
    pub ordinal: u32,
    pub buildpack: BuildpackRef,
}

/// One entry of `PUT /apps/{app}/buildpack-installations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildpackUpdate {
    /// A name (`heroku/python`) or URL.
    pub buildpack: String,
}

/// Body of `PUT /apps/{app}/buildpack-installations`: the whole new list, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildpackInstallationsUpdate {
    pub updates: Vec<BuildpackUpdate>,
}

/// A stack (`GET /stacks`): Slipway has one, `default`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stack {
    pub default: bool,
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
    pub name: String,
    /// `beta`, `deprecated` or `public`.
    pub state: String,
    pub updated_at: DateTime<Utc>,
}

/// A region (`GET /regions`): Slipway's one, named by `slipway server --region`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    pub country: String,
    pub created_at: DateTime<Utc>,
    pub description: String,
    pub id: Uuid,
    pub locale: String,
    pub name: String,
    pub private_capable: bool,
    pub provider: RegionProvider,
    pub updated_at: DateTime<Utc>,
}

/// Where a region runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionProvider {
    pub name: String,
    pub region: String,
}

/// An app feature (`GET /apps/{app}/features`). The heroku CLI lists only `state: general`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppFeature {
    pub created_at: DateTime<Utc>,
    pub description: String,
    pub display_name: String,
    pub doc_url: String,
    pub enabled: bool,
    pub feedback_email: Option<String>,
    pub id: Uuid,
    pub name: String,
    pub state: String,
    pub updated_at: DateTime<Utc>,
}

/// Body of `PATCH /apps/{app}/features/{feature}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppFeatureUpdate {
    pub enabled: bool,
}

/// Body of `PATCH /apps/{app}/domains/{domain}` (`heroku domains:update --cert`): the SNI
/// endpoint (name or id) that serves the domain, or `null`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainUpdate {
    #[serde(default)]
    pub sni_endpoint: Option<String>,
}
