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
