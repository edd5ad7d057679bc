//! Log resources: `log-session` (`POST /apps/{app}/log-sessions`) and `log-drain`
//! (`/apps/{app}/log-drains`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::refs::ResourceRef;

/// A log session: the client GETs `logplex_url` without credentials, so the URL must carry
/// an unguessable, short-lived token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogSession {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
    pub logplex_url: String,
    pub updated_at: DateTime<Utc>,
}

/// Body of `POST /apps/{app}/log-sessions`.
///
/// The schema names the dyno filter `dyno_name`; the heroku CLI sends `dyno` (with either a
/// dyno name like `web.1` or a process type like `web` from `-p`), so both are accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogSessionCreate {
    #[serde(default, alias = "dyno", skip_serializing_if = "Option::is_none")]
    pub dyno_name: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub process_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<bool>,
}

/// A log drain: a syslog or HTTPS endpoint that receives every log line of an app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogDrain {
    pub addon: Option<LogDrainAddon>,
    pub app: Option<ResourceRef>,
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
    /// `d.<uuid>`.
    pub token: String,
    pub updated_at: DateTime<Utc>,
    pub url: String,
}

/// The add-on that created a drain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogDrainAddon {
    pub id: Uuid,
    pub name: String,
    pub app: ResourceRef,
}

/// Body of `POST /apps/{app}/log-drains`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogDrainCreate {
    pub url: String,
}
