//! Handlers for dynos: listing, creating one-off dynos (`POST`, `heroku run`), restarting
//! (`DELETE`) and stopping (`actions/stop`) them. Requests are parsed into [`Command`]s by
//! pure `parse_*` functions (tested in `dynos/tests.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use slipway_api_types as wire;
use slipway_core::{Command, Outcome, RestartTarget, ONE_OFF_MAX_TIME_TO_LIVE};
use slipway_model::{ConfigKey, DynoName, DynoSize, ProcessType};

use crate::app_in_path::{AppInPath, OnApp};
use crate::convert;
use crate::error::ApiError;
use crate::request::{find_named, parse_app, parse_body_like};
use crate::response::list_response;
use crate::state::ApiState;

type ApiResult<T> = Result<T, ApiError>;

pub(crate) async fn list_dynos(
    State(state): State<ApiState>,
    AppInPath { app, .. }: AppInPath,
) -> ApiResult<Response> {
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
    AppInPath { app, .. }: AppInPath,
    Path((_, dyno)): Path<(String, String)>,
) -> ApiResult<Json<wire::Dyno>> {
    let dynos = state.platform.dynos(&app).await?;
    let found = find_named(dynos, "dyno", |d| {
        d.name == dyno || d.id.to_string() == dyno
    })?;
    Ok(Json(convert::dyno(&app, &found)))
}

/// `POST /apps/{app}/dynos`: a one-off dyno (`heroku run`, `heroku run:detached`).
pub(crate) fn parse_run_dyno(app: String, body: &[u8]) -> ApiResult<Command> {
    let app = parse_app(app)?;
    let body: wire::DynoCreate = parse_body_like(body, r#"{"command": "bash", "attach": true}"#)?;
    if body.command.trim().is_empty() {
        return Err(ApiError::invalid_params(
            "Command can't be empty. Say what to run, e.g. `slipway run bash`.",
        ));
    }
    let mut env = BTreeMap::new();
    for (key, value) in body.env.unwrap_or_default() {
        let key: ConfigKey = key
            .parse()
            .map_err(|error| ApiError::invalid_params(format!("Invalid env: {error}")))?;
        env.insert(key, value);
    }
    let size = body
        .size
        .map(|size| size.parse::<DynoSize>())
        .transpose()
        .map_err(|error| ApiError::invalid_params(error.to_string()))?;
    let process_type = body
        .process_type
        .map(ProcessType::try_from)
        .transpose()
        .map_err(|error| ApiError::invalid_params(format!("Invalid type: {error}")))?;
    let max = ONE_OFF_MAX_TIME_TO_LIVE.as_secs();
    let time_to_live = match body.time_to_live {
        None => None,
        Some(seconds) => match u64::try_from(seconds) {
            Ok(seconds) if (1..=max).contains(&seconds) => Some(Duration::from_secs(seconds)),
            _ => {
                return Err(ApiError::invalid_params(format!(
                    "time_to_live must be between 1 and {max} seconds."
                )))
            }
        },
    };
    Ok(Command::RunDyno {
        app,
        command: body.command,
        attach: body.attach.unwrap_or(false),
        env,
        size,
        process_type,
        time_to_live,
        force_no_tty: body.force_no_tty.unwrap_or(false),
    })
}

/// `POST /apps/{app}/dynos`: 201 with the dyno, and its `attach_url` when attached (the only
/// response that carries it).
pub(crate) async fn create(call: OnApp, body: Bytes) -> ApiResult<Response> {
    let (app, outcome) = call.execute(|app| parse_run_dyno(app, &body)).await?;
    let Outcome::OneOff { dyno, attach_url } = outcome else {
        return Err(ApiError::unexpected_outcome());
    };
    let dyno = wire::Dyno {
        attach_url,
        ..convert::dyno(&app, &dyno)
    };
    Ok(axum::response::IntoResponse::into_response((
        StatusCode::CREATED,
        Json(dyno),
    )))
}

/// Executes a restart or stop, which Heroku answers with `202 Accepted` and an empty object.
async fn accept(
    call: OnApp,
    parse: impl FnOnce(String) -> ApiResult<Command>,
) -> ApiResult<Response> {
    let _: (_, Outcome) = call.execute(parse).await?;
    let accepted = (StatusCode::ACCEPTED, Json(serde_json::json!({})));
    Ok(axum::response::IntoResponse::into_response(accepted))
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
pub(crate) async fn restart_all(call: OnApp) -> ApiResult<Response> {
    accept(call, parse_restart_all).await
}

/// `DELETE /apps/{app}/dynos/{dyno}` (a dyno) and `DELETE /apps/{app}/formations/{type}`.
pub(crate) async fn restart(
    call: OnApp,
    Path((_, target)): Path<(String, String)>,
) -> ApiResult<Response> {
    accept(call, |app| parse_restart(app, target)).await
}

/// `POST /apps/{app}/dynos/{dyno}/actions/stop` and `.../formations/{type}/actions/stop`:
/// stops the dynos; the formation then starts them again, as on Heroku's Common Runtime.
///
/// The app is looked up first ([`OnApp::execute`]), so an unknown app is answered as such
/// before its target is judged, here and in [`restart`].
pub(crate) async fn stop(
    call: OnApp,
    Path((_, target)): Path<(String, String)>,
) -> ApiResult<Response> {
    accept(call, |app| parse_stop(app, target)).await
}

#[cfg(test)]
mod tests;
