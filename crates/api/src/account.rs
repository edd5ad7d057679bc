//! The account and its API keys: `/account` (with `keys` and `features`; `rate-limits` is the
//! rate limiter's, in `conventions`),
//! Heroku's `/oauth/authorizations` and `/oauth/sessions/~` (what `heroku login -i`,
//! `logout`, `auth:token` and `authorizations*` call), and Slipway's admin-only
//! `/slipway/users` behind `slipway users*`.
//!
//! Only `POST /oauth/authorizations` takes a password (HTTP Basic `email:password`, or
//! `email:api-key`); every other route authenticates by API key.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use slipway_api_types as wire;
use slipway_core::model::User;
use slipway_core::{Authorization, CoreError, NewAuthorization};

use crate::auth::{basic_credentials, bearer_token, require_admin, Caller, CurrentUser};
use crate::error::ApiError;
use crate::request::parse_body;
use crate::state::ApiState;

#[cfg(test)]
mod tests;

/// The wire form of an authorization; `token` only when the caller may see it (just
/// created or rotated, or the token the request was made with).
pub(crate) fn authorization_json(
    authorization: &Authorization,
    user: &User,
    token: Option<String>,
) -> wire::OAuthAuthorization {
    wire::OAuthAuthorization {
        access_token: Some(wire::AccessToken {
            expires_in: authorization.expires_in(),
            id: authorization.id,
            token,
        }),
        client: None,
        created_at: authorization.created_at,
        description: authorization.description.clone(),
        grant: None,
        id: authorization.id,
        refresh_token: None,
        scope: authorization.scope.clone(),
        session: None,
        updated_at: authorization.updated_at,
        user: wire::AuthorizationUser {
            email: user.email.clone(),
            full_name: None,
            id: user.id,
        },
    }
}

/// The token the caller presented, when it is this authorization's.
fn own_token(caller: &Caller, authorization: &Authorization) -> Option<String> {
    authorization
        .is_token(&caller.token)
        .then(|| caller.token.clone())
}

/// `expires_in` as sent: a number, or a string of digits (`authorizations:create -e 60`).
fn parse_expires_in(value: Option<&serde_json::Value>) -> Result<Option<i64>, ApiError> {
    let invalid = || ApiError::invalid_params("expires_in must be a whole number of seconds.");
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => n.as_i64().map(Some).ok_or_else(invalid),
        Some(serde_json::Value::String(s)) if s.is_empty() => Ok(None),
        Some(serde_json::Value::String(s)) => s.trim().parse().map(Some).map_err(|_| invalid()),
        Some(_) => Err(invalid()),
    }
}

/// Parses a `POST /oauth/authorizations` body into what the core creates.
pub(crate) fn parse_create(body: &[u8]) -> Result<NewAuthorization, ApiError> {
    let request: wire::OAuthAuthorizationCreate = parse_body(body)?;
    let new = NewAuthorization {
        description: request.description.unwrap_or_default(),
        scope: request.scope.unwrap_or_default(),
        expires_in: parse_expires_in(request.expires_in.as_ref())?,
        default: false,
    };
    new.validate().map_err(ApiError::from)?;
    Ok(new)
}

/// Who is creating an authorization: a Bearer API key, or HTTP Basic with an email and
/// its password or one of its API keys (`heroku login -i`, `slipway login`).
async fn login(state: &ApiState, headers: &HeaderMap) -> Result<User, ApiError> {
    if let Some(token) = bearer_token(headers) {
        return state
            .platform
            .authenticate(&token)
            .await
            .map_err(|_| ApiError::unauthorized());
    }
    let (email, secret) = basic_credentials(headers).ok_or_else(ApiError::unauthorized)?;
    if !email.contains('@') {
        // `heroku:<key>` as git sends it.
        return state
            .platform
            .authenticate(&secret)
            .await
            .map_err(|_| ApiError::unauthorized());
    }
    if let Ok(user) = state.platform.authenticate(&secret).await {
        if user.email.eq_ignore_ascii_case(&email) {
            return Ok(user);
        }
        return Err(ApiError::unauthorized());
    }
    if let Some(wait) = state.login_throttle.wait(&email) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit",
            format!(
                "Too many failed logins for {email}. Wait {} seconds and try again.",
                wait.as_secs().max(1)
            ),
        ));
    }
    state
        .platform
        .verify_password(&email, &secret, &state.login_throttle)
        .await
        .map_err(|error| match error {
            CoreError::Unauthorized => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Invalid credentials provided: the email or password is wrong. Run `slipway login` again, or use an API key (SLIPWAY_API_KEY).",
            ),
            other => ApiError::from(other),
        })
}

/// `POST /oauth/authorizations`.
pub(crate) async fn create(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Result<(StatusCode, Json<wire::OAuthAuthorization>), ApiError> {
    let user = login(&state, &headers).await?;
    let new = parse_create(&body)?;
    let (authorization, token) = state.platform.create_authorization(&user, new).await?;
    Ok((
        StatusCode::CREATED,
        Json(authorization_json(&authorization, &user, Some(token))),
    ))
}

/// `GET /oauth/authorizations`.
pub(crate) async fn list(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<wire::OAuthAuthorization>>, ApiError> {
    let authorizations = state.platform.list_authorizations(&caller.user).await?;
    Ok(Json(
        authorizations
            .iter()
            .map(|a| authorization_json(a, &caller.user, own_token(&caller, a)))
            .collect(),
    ))
}

/// `GET /oauth/authorizations/{id}`; `~` is the account's API key. A missing one is a 404
/// naming its `resource`, which `heroku logout` looks for before it carries on.
pub(crate) async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let authorization = match state.platform.authorization(&caller.user, &id).await {
        Ok(authorization) => authorization,
        Err(CoreError::NotFound { .. }) => {
            return Ok((
                StatusCode::NOT_FOUND,
                Json(serde_json::json!({
                    "id": "not_found",
                    "message": "Couldn't find that authorization.",
                    "resource": "authorization",
                })),
            )
                .into_response())
        }
        Err(other) => return Err(other.into()),
    };
    Ok(Json(authorization_json(
        &authorization,
        &caller.user,
        own_token(&caller, &authorization),
    ))
    .into_response())
}

/// `PATCH /oauth/authorizations/{id}`: a new description.
pub(crate) async fn update(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    body: bytes::Bytes,
) -> Result<Json<wire::OAuthAuthorization>, ApiError> {
    let request: wire::OAuthAuthorizationUpdate = parse_body(&body)?;
    let authorization = match request.description {
        Some(description) => {
            state
                .platform
                .describe_authorization(&caller.user, &id, &description)
                .await?
        }
        None => state.platform.authorization(&caller.user, &id).await?,
    };
    Ok(Json(authorization_json(
        &authorization,
        &caller.user,
        own_token(&caller, &authorization),
    )))
}

/// `DELETE /oauth/authorizations/{id}`: the token stops working at once.
pub(crate) async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<wire::OAuthAuthorization>, ApiError> {
    let authorization = state
        .platform
        .revoke_authorization(&caller.user, &id)
        .await?;
    Ok(Json(authorization_json(&authorization, &caller.user, None)))
}

/// `POST /oauth/authorizations/{id}/actions/regenerate-tokens` (`authorizations:rotate`).
pub(crate) async fn regenerate(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<wire::OAuthAuthorization>, ApiError> {
    let (authorization, token) = state
        .platform
        .regenerate_authorization(&caller.user, &id)
        .await?;
    Ok(Json(authorization_json(
        &authorization,
        &caller.user,
        Some(token),
    )))
}

/// `DELETE /oauth/sessions/~` (`heroku logout`): revokes the key the request was made with,
/// unless it is the account's own API key, which logging out leaves alone as on Heroku.
pub(crate) async fn delete_session(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    match &caller.authorization {
        Some(authorization) if !authorization.default => {
            state
                .platform
                .revoke_authorization(&caller.user, &authorization.id.to_string())
                .await?;
            Ok(Json(serde_json::json!({ "id": authorization.id })))
        }
        _ => Ok(Json(serde_json::json!({}))),
    }
}

/// `GET /account`.
pub(crate) async fn account(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<wire::Account>, ApiError> {
    let profile = state.platform.account_profile(&user).await?;
    Ok(Json(account_json(&user, &profile)))
}

/// `PATCH /account`: the display name. `allow_tracking` and `beta` are accepted and stay
/// off: Slipway tracks nothing and has no beta programme.
pub(crate) async fn update_account(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    body: bytes::Bytes,
) -> Result<Json<wire::Account>, ApiError> {
    let request: wire::AccountUpdate = parse_body(&body)?;
    let profile = match request.name {
        Some(name) => {
            let name = Some(name.trim()).filter(|n| !n.is_empty());
            state.platform.set_account_name(&user, name).await?
        }
        None => state.platform.account_profile(&user).await?,
    };
    Ok(Json(account_json(&user, &profile)))
}

fn account_json(user: &User, profile: &slipway_core::AccountProfile) -> wire::Account {
    wire::Account {
        allow_tracking: false,
        beta: false,
        country_of_residence: None,
        created_at: user.created_at,
        default_organization: None,
        default_team: None,
        delinquent_at: None,
        email: user.email.clone(),
        federated: false,
        id: user.id,
        identity_provider: None,
        last_login: profile.last_login,
        name: profile.name.clone(),
        sms_number: None,
        suspended_at: None,
        two_factor_authentication: false,
        updated_at: profile.updated_at.unwrap_or(user.created_at),
        verified: true,
    }
}

/// `GET /account/keys`: always empty. Slipway has no SSH git endpoint; git goes over
/// HTTPS with the API key, so there are no SSH keys to list.
pub(crate) async fn keys(CurrentUser(_): CurrentUser) -> Json<Vec<serde_json::Value>> {
    Json(Vec::new())
}

/// `GET /account/features`: no account features (labs) exist on Slipway.
pub(crate) async fn features(CurrentUser(_): CurrentUser) -> Json<Vec<serde_json::Value>> {
    Json(Vec::new())
}

fn user_json(user: &User, api_key: Option<String>) -> wire::SlipwayUser {
    wire::SlipwayUser {
        id: user.id,
        email: user.email.clone(),
        admin: user.admin,
        created_at: user.created_at,
        api_key,
    }
}

/// What [`require_admin`] says the account handlers are for.
const MANAGE_ACCOUNTS: &str = "manage accounts";

/// `GET /slipway/users` (admin).
pub(crate) async fn list_users(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<Vec<wire::SlipwayUser>>, ApiError> {
    require_admin(&user, MANAGE_ACCOUNTS)?;
    let users = state.platform.list_users().await?;
    Ok(Json(users.iter().map(|u| user_json(u, None)).collect()))
}

/// `POST /slipway/users` (admin): a new account with a password and/or an API key, the key
/// shown only in this answer.
pub(crate) async fn create_user(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    body: bytes::Bytes,
) -> Result<(StatusCode, Json<wire::SlipwayUser>), ApiError> {
    require_admin(&user, MANAGE_ACCOUNTS)?;
    let request: wire::SlipwayUserCreate = parse_body(&body)?;
    let (created, key) = state
        .platform
        .add_user(
            request.email.trim(),
            request.password.as_deref(),
            request.api_key.unwrap_or(true),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(user_json(&created, key))))
}

/// `PATCH /slipway/users/{email}`: a new password, by an admin or for oneself (`~`).
pub(crate) async fn update_user(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(email): Path<String>,
    body: bytes::Bytes,
) -> Result<Json<wire::SlipwayUser>, ApiError> {
    let email = if email == "~" {
        user.email.clone()
    } else {
        email
    };
    if email != user.email {
        require_admin(&user, MANAGE_ACCOUNTS)?;
    }
    let request: wire::SlipwayUserUpdate = parse_body(&body)?;
    state
        .platform
        .set_password(&email, &request.password)
        .await?;
    let updated = state.platform.user_by_email(&email).await?;
    Ok(Json(user_json(&updated, None)))
}

/// `DELETE /slipway/users/{email}` (admin): refused while the account owns apps.
pub(crate) async fn delete_user(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(email): Path<String>,
) -> Result<Json<wire::SlipwayUser>, ApiError> {
    require_admin(&user, MANAGE_ACCOUNTS)?;
    let removed = state.platform.remove_user(&email).await?;
    Ok(Json(user_json(&removed, None)))
}
