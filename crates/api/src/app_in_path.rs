//! The app named in a request's path, for the calling user: one extractor instead of the
//! "authenticate, take `{app}`, look it up or answer 404" every app-scoped handler began with
//! ([`AppInPath`]), and one for the "authenticate, take `{app}`, execute a parsed command on
//! it" every changing handler began with ([`OnApp`]).

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use slipway_core::model::{App, User};
use slipway_core::Command;

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::outcome::{execute_on_app, FromOutcome};
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

/// The `{app}` of the request's path, percent-decoded.
async fn app_param(parts: &mut Parts, state: &ApiState) -> Result<String, Response> {
    // A path that is not valid UTF-8 once decoded answers axum's own 400, as `Path` did.
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(IntoResponse::into_response)?;
    params
        .iter()
        .find_map(|(key, value)| (key == "app").then(|| value.to_owned()))
        .ok_or_else(|| {
            // Only a route without `{app}` gets here: a bug in the router, not the caller's.
            tracing::error!(path = %parts.uri.path(), "an app extractor on a route without {{app}}");
            ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
        })
}

impl FromRequestParts<ApiState> for AppInPath {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Response> {
        let OnApp { user, app, .. } = OnApp::from_request_parts(parts, state).await?;
        let app = state
            .platform
            .app(&user, &app)
            .await
            .map_err(|error| ApiError::from(error).into_response())?;
        Ok(AppInPath { user, app })
    }
}

/// The API's state, the authenticated user and the app `{app}` names, not yet looked up: what
/// every handler that changes an app needs to execute the command it parses
/// ([`OnApp::execute`]), in one extractor instead of three.
///
/// The user is authenticated first (401 before anything else), as `CurrentUser` then `Path`
/// did; the app is looked up by [`OnApp::execute`], so that a missing app answers 404 before a
/// bad body answers 400.
pub(crate) struct OnApp {
    pub(crate) state: ApiState,
    pub(crate) user: User,
    pub(crate) app: String,
}

impl OnApp {
    /// Looks the app up for the user, executes the command `parse` makes of its name and
    /// takes the outcome `T` ([`execute_on_app`]).
    pub(crate) async fn execute<T: FromOutcome>(
        &self,
        parse: impl FnOnce(String) -> Result<Command, ApiError>,
    ) -> Result<(App, T), ApiError> {
        execute_on_app(&self.state, &self.user, self.app.clone(), parse).await
    }
}

impl FromRequestParts<ApiState> for OnApp {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, Response> {
        let CurrentUser(user) = CurrentUser::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let app = app_param(parts, state).await?;
        Ok(OnApp {
            state: state.clone(),
            user,
            app,
        })
    }
}
