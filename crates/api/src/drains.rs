//! `/apps/{app}/log-drains`: syslog and HTTPS endpoints that receive every line of an app's log.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use slipway_api_types as wire;
use slipway_core::model::App;
use slipway_core::Drain;

use crate::auth::CurrentUser;
use crate::convert::app_ref;
use crate::error::ApiError;
use crate::resources::list_response;
use crate::ApiState;

fn drain_json(app: &App, drain: &Drain) -> wire::LogDrain {
    wire::LogDrain {
        addon: None,
        app: Some(app_ref(app)),
        created_at: drain.created_at,
        id: drain.config.id.parse().unwrap_or_default(),
        token: drain.config.token.clone(),
        updated_at: drain.created_at,
        url: drain.config.url.clone(),
    }
}

pub(crate) async fn list(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(app): Path<String>,
) -> Result<Response, ApiError> {
    let app = state.platform.app(&user, &app).await?;
    let drains = state.platform.drains(&app).await?;
    Ok(list_response(
        drains
            .iter()
            .map(|d| drain_json(&app, d))
            .collect::<Vec<_>>(),
    ))
}

pub(crate) async fn create(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(app): Path<String>,
    body: bytes::Bytes,
) -> Result<(StatusCode, Json<wire::LogDrain>), ApiError> {
    let app = state.platform.app(&user, &app).await?;
    let request: wire::LogDrainCreate = serde_json::from_slice(&body).map_err(|error| {
        ApiError::bad_request(format!(
            "Expected a body like {{\"url\": \"syslog+tls://logs.example.com:6514\"}}: {error}."
        ))
    })?;
    let drain = state.platform.add_drain(&app, &request.url).await?;
    Ok((StatusCode::CREATED, Json(drain_json(&app, &drain))))
}

pub(crate) async fn get(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path((app, drain)): Path<(String, String)>,
) -> Result<Json<wire::LogDrain>, ApiError> {
    let app = state.platform.app(&user, &app).await?;
    state
        .platform
        .drains(&app)
        .await?
        .iter()
        .find(|d| d.config.id == drain || d.config.token == drain || d.config.url == drain)
        .map(|d| Json(drain_json(&app, d)))
        .ok_or_else(|| ApiError::not_found("Couldn't find that log drain."))
}

pub(crate) async fn delete(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path((app, drain)): Path<(String, String)>,
) -> Result<Json<wire::LogDrain>, ApiError> {
    let app = state.platform.app(&user, &app).await?;
    let removed = state.platform.remove_drain(&app, &drain).await?;
    Ok(Json(drain_json(&app, &removed)))
}
