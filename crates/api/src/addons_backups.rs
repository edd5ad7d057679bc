//! PostgreSQL backups (Slipway's own routes; Heroku's live on another host):
//! - `GET    /apps/{app}/addons/{addon}/backups`: the add-on's backups, oldest first;
//! - `POST   /apps/{app}/addons/{addon}/backups`: capture now (201; a failed dump is a 422 and
//!   leaves a `failed` record);
//! - `GET    /apps/{app}/addons/{addon}/backups/{backup}`: one (`latest`: the newest completed);
//! - `GET    /apps/{app}/addons/{addon}/backups/{backup}/dump`: its `pg_dump -Fc` bytes;
//! - `DELETE /apps/{app}/addons/{addon}/backups/{backup}`: the record and its dump;
//! - `POST   /apps/{app}/addons/{addon}/actions/restore` with `{"backup": "b001",
//!   "from": "<another add-on>"}` (both optional): restores into the add-on.
//!
//! `{addon}` is an add-on's name or ID, or an attachment name on `{app}` (`DATABASE`).

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use slipway_core::Backup;

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::request::parse_body;
use crate::state::ApiState;

fn backup_json(backup: &Backup) -> serde_json::Value {
    serde_json::json!({
        "id": backup.id,
        "name": backup.name(),
        "num": backup.number,
        "addon": {"id": backup.addon_id, "name": backup.addon_name},
        "app": {"name": backup.app_name},
        "status": backup.status,
        "size": backup.size,
        "error": backup.error,
        "created_at": backup.created_at,
        "finished_at": backup.finished_at,
    })
}

fn which(backup: &str) -> Option<&str> {
    (backup != "latest").then_some(backup)
}

pub(crate) async fn list(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path((app, addon)): Path<(String, String)>,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    state.platform.app(&user, &app).await?;
    let backups = state.platform.backups(&user, &app, &addon).await?;
    Ok(Json(backups.iter().map(backup_json).collect()))
}

pub(crate) async fn capture(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path((app, addon)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    state
        .platform
        .app_for(&user, &app, slipway_core::Permission::Operate)
        .await?;
    let backup = state.platform.capture_backup(&user, &app, &addon).await?;
    Ok((StatusCode::CREATED, Json(backup_json(&backup))).into_response())
}

pub(crate) async fn get(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path((app, addon, backup)): Path<(String, String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    state.platform.app(&user, &app).await?;
    let backup = state
        .platform
        .backup(&user, &app, &addon, which(&backup))
        .await?;
    Ok(Json(backup_json(&backup)))
}

pub(crate) async fn dump(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path((app, addon, backup)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    state.platform.app(&user, &app).await?;
    let (backup, path) = state
        .platform
        .backup_dump(&user, &app, &addon, which(&backup))
        .await?;
    let file = tokio::fs::File::open(&path).await.map_err(|_| {
        ApiError::from(slipway_core::CoreError::Invalid {
            message: format!(
                "The dump of backup {} is missing; capture a new backup.",
                backup.name()
            ),
        })
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, backup.size.to_string()),
        ],
        Body::from_stream(tokio_util::io::ReaderStream::new(file)),
    )
        .into_response())
}

pub(crate) async fn delete(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path((app, addon, backup)): Path<(String, String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    state.platform.app(&user, &app).await?;
    let backup = state
        .platform
        .delete_backup(&user, &app, &addon, &backup)
        .await?;
    Ok(Json(backup_json(&backup)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RestoreBody {
    #[serde(default)]
    backup: Option<String>,
    #[serde(default)]
    from: Option<String>,
}

pub(crate) async fn restore(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path((app, addon)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    state.platform.app(&user, &app).await?;
    let body: RestoreBody = parse_body(&body)?;
    let backup = state
        .platform
        .restore_backup(
            &user,
            &app,
            &addon,
            body.from.as_deref(),
            body.backup.as_deref().and_then(which),
        )
        .await?;
    Ok(Json(backup_json(&backup)))
}
