//! The `oauth-authorization` resource (`/oauth/authorizations`): Slipway's API keys, as
//! `heroku login -i`, `heroku authorizations*` and `slipway login` read them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One API key of the account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OAuthAuthorization {
    pub access_token: Option<AccessToken>,
    /// OAuth clients do not exist on Slipway: always `null`.
    pub client: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub description: String,
    pub grant: Option<serde_json::Value>,
    pub id: Uuid,
    pub refresh_token: Option<serde_json::Value>,
    pub scope: Vec<String>,
    pub session: Option<serde_json::Value>,
    pub updated_at: DateTime<Utc>,
    pub user: AuthorizationUser,
}

/// The token of an authorization. `token` is only ever known when it is created or
/// rotated, or when the request itself was made with it: the server keeps digests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessToken {
    /// Seconds until the token expires; `null` never.
    pub expires_in: Option<i64>,
    pub id: Uuid,
    pub token: Option<String>,
}

/// The account an authorization belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthorizationUser {
    pub email: String,
    pub full_name: Option<String>,
    pub id: Uuid,
}

/// `POST /oauth/authorizations` (what `heroku login -i` and `authorizations:create` send;
/// the CLI sends `expires_in` as a number or a string).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OAuthAuthorizationCreate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Vec<String>>,
}

/// `PATCH /oauth/authorizations/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OAuthAuthorizationUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `PATCH /account`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_tracking: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<bool>,
}

/// An account as `slipway users` lists it (admin only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlipwayUser {
    pub id: Uuid,
    pub email: String,
    pub admin: bool,
    pub created_at: DateTime<Utc>,
    /// The API key created with the account (`users:add` without `--no-key`), shown once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

/// `POST /slipway/users` (admin only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SlipwayUserCreate {
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Whether to create an API key for the account (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<bool>,
}

/// `PATCH /slipway/users/{email}` (admin, or the user for their own password).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SlipwayUserUpdate {
    pub password: String,
}
