//! The app named in a request's path, looked up for the calling user: one extractor instead of
//! the "authenticate, take `{app}`, look it up or answer 404" every app-scoped handler began with.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use slipway_core::model::{App, User};

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::state::ApiState;

/// The authenticated user and the app `{app}` names, which the user can see (`view`: its
/// owner, a collaborator or an admin; anyone else gets 403). Changes need more, checked by
/// `Platform::execute`.
///
/// The user is authenticated first, so a request without a valid key answers 401 before an
/// unknown app answers 404, exactly as the handlers' `CurrentUser` then lookup did.
pub(crate) struct AppInPath {
    pub(crate) user: User,
    pub(crate) app: App,
}

impl FromRequestParts<ApiState> for AppInPath {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Response> {
        let CurrentUser(user) = CurrentUser::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        // A path that is not valid UTF-8 once decoded answers axum's own 400, as `Path` did.
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let name = params
            .iter()
            .find_map(|(key, value)| (key == "app").then(|| value.to_owned()))
            .ok_or_else(|| {
                // Only a route without `{app}` gets here: a bug in the router, not the caller's.
                tracing::error!(path = %parts.uri.path(), "AppInPath on a route without {{app}}");
                ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
            })?;
        let app = state
            .platform
            .app(&user, &name)
            .await
            .map_err(|error| ApiError::from(error).into_response())?;
        Ok(AppInPath { user, app })
    }
}
