//! The `account` resource: `GET /account`, the user the API key belongs to.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::refs::ResourceRef;

/// The current account.
///
/// Leave `suspended_at`/`delinquent_at` `null`: the heroku CLI prints warnings otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Account {
    pub allow_tracking: bool,
    pub beta: bool,
    pub country_of_residence: Option<String>,
    pub created_at: DateTime<Utc>,
    pub default_organization: Option<ResourceRef>,
    pub default_team: Option<ResourceRef>,
    pub delinquent_at: Option<DateTime<Utc>>,
    pub email: String,
    pub federated: bool,
    pub id: Uuid,
    /// Single sign-on provider; always `null` on Slipway, so kept as opaque JSON.
    pub identity_provider: Option<serde_json::Value>,
    pub last_login: Option<DateTime<Utc>>,
    pub name: Option<String>,
    pub sms_number: Option<String>,
    pub suspended_at: Option<DateTime<Utc>>,
    pub two_factor_authentication: bool,
    pub updated_at: DateTime<Utc>,
    pub verified: bool,
}
