//! `/apps/{app}/log-drains`: syslog and HTTPS endpoints that receive every line of an app's log.
//! Adding and removing one are parsed into [`Command`]s by pure `parse_*` functions (tested in
//! `drains/tests.rs`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use slipway_api_types as wire;
use slipway_core::model::App;
use slipway_core::{Command, Drain};

use crate::app_in_path::{AppInPath, OnApp};
use crate::convert::app_ref;
use crate::error::ApiError;
use crate::request::{find_named, parse_app, parse_body_like};
use crate::response::list_response;
use crate::state::ApiState;

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
    AppInPath { app, .. }: AppInPath,
) -> Result<Response, ApiError> {
    let drains = state.platform.drains(&app).await?;
    Ok(list_response(
        drains.iter().map(|d| drain_json(&app, d)).collect(),
    ))
}

/// `POST /apps/{app}/log-drains {url}`.
pub(crate) fn parse_create(app: String, body: &[u8]) -> Result<Command, ApiError> {
    let app = parse_app(app)?;
    let request: wire::LogDrainCreate =
        parse_body_like(body, r#"{"url": "syslog+tls://logs.example.com:6514"}"#)?;
    Ok(Command::AddDrain {
        app,
        url: request.url,
    })
}

pub(crate) async fn create(
    call: OnApp,
    body: bytes::Bytes,
) -> Result<(StatusCode, Json<wire::LogDrain>), ApiError> {
    let (found, drain) = call.execute(|app| parse_create(app, &body)).await?;
    Ok((StatusCode::CREATED, Json(drain_json(&found, &drain))))
}

pub(crate) async fn get(
    State(state): State<ApiState>,
    AppInPath { app, .. }: AppInPath,
    Path((_, drain)): Path<(String, String)>,
) -> Result<Json<wire::LogDrain>, ApiError> {
    let drains = state.platform.drains(&app).await?;
    let found = find_named(drains, "log drain", |d| {
        d.config.id == drain
            || slipway_core::secrets_match(&drain, &d.config.token)
            || d.config.url == drain
    })?;
    Ok(Json(drain_json(&app, &found)))
}

/// `DELETE /apps/{app}/log-drains/{drain}` (id, token or URL).
pub(crate) fn parse_delete(app: String, drain: String) -> Result<Command, ApiError> {
    Ok(Command::RemoveDrain {
        app: parse_app(app)?,
        drain,
    })
}

pub(crate) async fn delete(
    call: OnApp,
    Path((_, drain)): Path<(String, String)>,
) -> Result<Json<wire::LogDrain>, ApiError> {
    let (found, removed) = call.execute(|app| parse_delete(app, drain)).await?;
    Ok(Json(drain_json(&found, &removed)))
}

#[cfg(test)]
mod tests;
