//! Handlers for dynos: listing, restarting (`DELETE`) and stopping (`actions/stop`) them.
//! Restarts and stops are parsed into [`Command`]s by pure `parse_*` functions (tested in
//! `dynos/tests.rs`).

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use slipway_api_types as wire;
use slipway_core::model::User;
use slipway_core::{Command, RestartTarget};
use slipway_model::{DynoName, ProcessType};

use crate::auth::CurrentUser;
use crate::convert;
use crate::error::ApiError;
use crate::request::parse_app;
use crate::response::list_response;
use crate::state::ApiState;

type ApiResult<T> = Result<T, ApiError>;

pub(crate) async fn list_dynos(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(app): Path<String>,
) -> ApiResult<Response> {
    let app = state.platform.app(&user, &app).await?;
    let dynos: Vec<wire::Dyno> = state
        .platform
        .dynos(&app)
        .await?
        .iter()
        .map(|dyno| convert::dyno(&app, dyno))
        .collect();
    Ok(list_response(dynos))
}

pub(crate) async fn get_dyno(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path((app, dyno)): Path<(String, String)>,
) -> ApiResult<Json<wire::Dyno>> {
    let app = state.platform.app(&user, &app).await?;
    state
        .platform
        .dynos(&app)
        .await?
        .iter()
        .find(|d| d.name == dyno || d.id.to_string() == dyno)
        .map(|d| Json(convert::dyno(&app, d)))
        .ok_or_else(|| ApiError::not_found("Couldn't find that dyno."))
}

/// Heroku answers restarts and stops with `202 Accepted` and an empty object.
fn accepted() -> Response {
    axum::response::IntoResponse::into_response((
        axum::http::StatusCode::ACCEPTED,
        Json(serde_json::json!({})),
    ))
}

/// What a restart or stop path names: `web.2` is a dyno, `web` a process type (the heroku
/// CLI sends both to `/dynos/{dyno}` and `/formations/{type}`). A name no dyno or process type
/// can have is answered as one that does not exist.
fn restart_target(target: String) -> ApiResult<RestartTarget> {
    if target.contains('.') {
        DynoName::try_from(target)
            .map(RestartTarget::Dyno)
            .map_err(|_| ApiError::not_found("Couldn't find that dyno."))
    } else {
        ProcessType::try_from(target)
            .map(RestartTarget::ProcessType)
            .map_err(|_| ApiError::not_found("Couldn't find that process type."))
    }
}

/// `DELETE /apps/{app}/dynos`: restarts every dyno (web dynos with preboot).
pub(crate) fn parse_restart_all(app: String) -> ApiResult<Command> {
    Ok(Command::Restart {
        app: parse_app(app)?,
        target: RestartTarget::App,
    })
}

/// `DELETE /apps/{app}/dynos/{dyno}` and `DELETE /apps/{app}/formations/{type}`.
pub(crate) fn parse_restart(app: String, target: String) -> ApiResult<Command> {
    Ok(Command::Restart {
        app: parse_app(app)?,
        target: restart_target(target)?,
    })
}

/// `POST /apps/{app}/dynos/{dyno}/actions/stop` and `.../formations/{type}/actions/stop`.
pub(crate) fn parse_stop(app: String, target: String) -> ApiResult<Command> {
    Ok(Command::Stop {
        app: parse_app(app)?,
        target: restart_target(target)?,
    })
}

/// `DELETE /apps/{app}/dynos`: restarts every dyno (web dynos with preboot).
pub(crate) async fn restart_all(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(app): Path<String>,
) -> ApiResult<Response> {
    state
        .platform
        .execute(&user, parse_restart_all(app)?)
        .await?;
    Ok(accepted())
}

/// `DELETE /apps/{app}/dynos/{dyno}` (a dyno) and `DELETE /apps/{app}/formations/{type}`.
pub(crate) async fn restart(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path((app, target)): Path<(String, String)>,
) -> ApiResult<Response> {
    execute_for_target(&state, &user, app, target, parse_restart).await
}

/// `POST /apps/{app}/dynos/{dyno}/actions/stop` and `.../formations/{type}/actions/stop`:
/// stops the dynos; the formation then starts them again, as on Heroku's Common Runtime.
pub(crate) async fn stop(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path((app, target)): Path<(String, String)>,
) -> ApiResult<Response> {
    execute_for_target(&state, &user, app, target, parse_stop).await
}

/// Restarts or stops the dynos a path names. The app is looked up first, so an unknown app is
/// answered as such before its target is judged.
async fn execute_for_target(
    state: &ApiState,
    user: &User,
    app: String,
    target: String,
    parse: fn(String, String) -> ApiResult<Command>,
) -> ApiResult<Response> {
    state.platform.app(user, &app).await?;
    state.platform.execute(user, parse(app, target)?).await?;
    Ok(accepted())
}

#[cfg(test)]
mod tests;
