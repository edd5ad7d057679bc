//! Who is calling: `Authorization: Bearer <api key>`, or HTTP Basic with the key as the
//! password (what git and the heroku credential helper send).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use base64::Engine;
use slipway_core::model::User;
use slipway_core::Authorization;

use crate::error::ApiError;
use crate::state::ApiState;

/// The authenticated user of a request.
pub(crate) struct CurrentUser(pub(crate) User);

/// The authenticated user of a request with the API key it presented and the
/// authorization that key is (`None` for a key from before authorizations existed).
pub(crate) struct Caller {
    pub(crate) user: User,
    pub(crate) authorization: Option<Authorization>,
    pub(crate) token: String,
}

/// Refuses (403) a user who is not an administrator: "Only an administrator can `what`."
pub(crate) fn require_admin(user: &User, what: &str) -> Result<(), ApiError> {
    user.admin
        .then_some(())
        .ok_or_else(|| ApiError::forbidden(format!("Only an administrator can {what}.")))
}

/// The token of `Authorization: Bearer <token>`, if that is what the request carries.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(|token| token.trim().to_owned())
}

/// The user name and password of HTTP Basic authentication, if that is what the request
/// carries.
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The API key a request carries, if any.
pub(crate) fn api_key(headers: &HeaderMap) -> Option<String> {
    bearer_token(headers).or_else(|| basic_credentials(headers).map(|(_, password)| password))
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let token = api_key(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        let (user, authorization) = state
            .platform
            .authenticate_token(&token)
            .await
            .map_err(|_| ApiError::unauthorized())?;
        Ok(Caller {
            user,
            authorization,
            token,
        })
    }
}

impl FromRequestParts<ApiState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let key = api_key(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        let user = state
            .platform
            .authenticate(&key)
            .await
            .map_err(|_| ApiError::unauthorized())?;
        Ok(CurrentUser(user))
    }
}

#[cfg(test)]
mod tests;
