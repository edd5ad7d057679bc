//! Who is calling: `Authorization: Bearer <api key>`, or HTTP Basic with the key as the
//! password (what git and the heroku credential helper send).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use base64::Engine;
use slipway_core::model::User;

use crate::error::ApiError;
use crate::state::ApiState;

/// The authenticated user of a request.
pub(crate) struct CurrentUser(pub(crate) User);

/// The API key a request carries, if any.
pub(crate) fn api_key(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    if let Some(token) = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
    {
        return Some(token.trim().to_owned());
    }
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (_user, password) = decoded.split_once(':')?;
    Some(password.to_owned())
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
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn check(authorization: &str, expected: Option<&str>) {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(authorization).unwrap(),
        );
        assert_eq!(api_key(&headers).as_deref(), expected, "{authorization}");
    }

    #[test]
    fn reads_bearer_and_basic() {
        check("Bearer abc", Some("abc"));
        check("Basic aGVyb2t1OnNlY3JldC10b2tlbg==", Some("secret-token"));
        check("Basic Og==", Some(""));
        check("Basic !!!", None);
        check("Digest x", None);
        assert_eq!(api_key(&HeaderMap::new()), None);
    }
}
