//! The `domain` resource: `POST/GET /apps/{app}/domains`, `GET/PATCH/DELETE
//! /apps/{app}/domains/{id_or_hostname}`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::refs::ResourceRef;

/// A hostname routed to an app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Domain {
    pub acm_status: Option<String>,
    pub acm_status_reason: Option<String>,
    pub app: ResourceRef,
    pub cname: Option<String>,
    pub created_at: DateTime<Utc>,
    pub hostname: String,
    pub id: Uuid,
    pub kind: DomainKind,
    pub updated_at: DateTime<Utc>,
    /// `"none"` keeps the heroku CLI from suggesting `domains:wait`.
    pub status: String,
    pub sni_endpoint: Option<ResourceRef>,
}

/// `heroku` for the app's default domain, `custom` for domains the user added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DomainKind {
    Heroku,
    Custom,
}

/// Body of `POST /apps/{app}/domains`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DomainCreate {
    pub hostname: String,
    #[serde(default)]
    pub sni_endpoint: Option<String>,
}
