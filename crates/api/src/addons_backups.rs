//! PostgreSQL backups (Slipway's own routes; Heroku's live on another host):
//! - `GET    /apps/{app}/addons/{addon}/backups`: the add-on's backups, oldest first;
//! - `POST   /apps/{app}/addons/{addon}/backups`: capture now (201; a failed dump is a 422 and
//!   leaves a `failed` record);
//! - `GET    /apps/{app}/addons/{addon}/backups/{backup}`: one (`latest`: the newest completed);
//! - `GET    /apps/{app}/addons/{addon}/backups/{backup}/dump`: its `pg_dump -Fc` bytes;
//! - `DELETE /apps/{app}/addons/{addon}/backups/{backup}` with `{"confirm": "<app>"}` (or
//!   `?confirm=<app>`): the record and its dump;
//! - `POST   /apps/{app}/addons/{addon}/actions/restore` with `{"backup": "b001",
//!   "from": "<another add-on>", "confirm": "<app>"}` (`backup` and `from` optional):
//!   restores into the add-on;
//! - `PUT    /apps/{app}/addons/{addon}/backup-schedule` with `{"at": "02:00 UTC"}`: daily
//!   backups; `DELETE` the same path: no more;
//! - `GET    /apps/{app}/backup-schedules`: the schedules of the app's databases;
//! - `GET    /apps/{app}/addons/{addon}/redis-info`: a Redis add-on's server state.
//!
//! `{addon}` is an add-on's name or ID, or an attachment name on `{app}` (`DATABASE`).
//! Changes go through `Platform::execute`; restoring and deleting need the app's name as
//! `confirm`, as Heroku's `--confirm` (a 422 otherwise, before anything is touched).

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use slipway_core::{Backup, BackupSchedule, Command, Outcome};

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
        "scheduled": backup.scheduled,
    })
}

fn schedule_json(schedule: &BackupSchedule) -> serde_json::Value {
    serde_json::json!({
        "addon": {"id": schedule.addon_id, "name": schedule.addon_name},
        "app": {"name": schedule.app_name},
        "name": schedule.name,
        "hour": schedule.hour,
        "timezone": schedule.timezone,
        "created_at": schedule.created_at,
        "last_run": schedule.last_run,
    })
}

/// Executes a backup command and takes the backup it answers with.
async fn execute_backup(
    state: &ApiState,
    user: &slipway_core::model::User,
    command: Command,
) -> Result<Backup, ApiError> {
    match state.platform.execute(user, command).await? {
        Outcome::Backup(backup) => Ok(backup),
        _ => Err(ApiError::unexpected_outcome()),
    }
}

/// Executes a schedule command and takes the schedule it answers with.
async fn execute_schedule(
    state: &ApiState,
    user: &slipway_core::model::User,
    command: Command,
) -> Result<BackupSchedule, ApiError> {
    match state.platform.execute(user, command).await? {
        Outcome::BackupSchedule(schedule) => Ok(schedule),
        _ => Err(ApiError::unexpected_outcome()),
    }
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
    let backup = execute_backup(&state, &user, Command::CaptureBackup { app, addon }).await?;
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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfirmBody {
    #[serde(default)]
    confirm: Option<String>,
}

/// `?confirm=<app>`; other parameters are ignored, as on any route.
#[derive(Deserialize)]
pub(crate) struct ConfirmQuery {
    #[serde(default)]
    confirm: Option<String>,
}

pub(crate) async fn delete(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path((app, addon, backup)): Path<(String, String, String)>,
    Query(query): Query<ConfirmQuery>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    // A DELETE may carry its confirmation in a body or, as clients that send no body on a
    // DELETE do, in the query.
    let body: ConfirmBody = if body.iter().all(u8::is_ascii_whitespace) {
        ConfirmBody::default()
    } else {
        parse_body(&body)?
    };
    let command = Command::DeleteBackup {
        app,
        addon,
        backup,
        confirm: body.confirm.or(query.confirm),
    };
    let backup = execute_backup(&state, &user, command).await?;
    Ok(Json(backup_json(&backup)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RestoreBody {
    #[serde(default)]
    backup: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    confirm: Option<String>,
}

pub(crate) async fn restore(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path((app, addon)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    state.platform.app(&user, &app).await?;
    let body: RestoreBody = parse_body(&body)?;
    let command = Command::RestoreBackup {
        app,
        addon,
        from: body.from,
        backup: body.backup.filter(|b| which(b).is_some()),
        confirm: body.confirm,
    };
    let backup = execute_backup(&state, &user, command).await?;
    Ok(Json(backup_json(&backup)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleBody {
    at: String,
}

pub(crate) async fn schedule(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path((app, addon)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let body: ScheduleBody = parse_body(&body)?;
    let command = Command::ScheduleBackups {
        app,
        addon,
        at: body.at,
    };
    let schedule = execute_schedule(&state, &user, command).await?;
    Ok(Json(schedule_json(&schedule)))
}

pub(crate) async fn unschedule(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path((app, addon)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let schedule =
        execute_schedule(&state, &user, Command::UnscheduleBackups { app, addon }).await?;
    Ok(Json(schedule_json(&schedule)))
}

pub(crate) async fn schedules(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(app): Path<String>,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    let schedules = state.platform.backup_schedules(&user, &app).await?;
    Ok(Json(schedules.iter().map(schedule_json).collect()))
}

pub(crate) async fn redis_info(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path((app, addon)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (addon, info) = state.platform.redis_info(&user, &app, &addon).await?;
    Ok(Json(serde_json::json!({
        "addon": {"id": addon.id, "name": addon.name, "plan": {"name": format!("{}:{}", addon.service, addon.plan)}},
        "created_at": addon.created_at,
        "version": info.version,
        "used_memory": info.used_memory,
        "max_memory": info.max_memory,
        "max_memory_policy": info.max_memory_policy,
        "clients": info.clients,
        "max_clients": info.max_clients,
        "keys": info.keys,
    })))
}
