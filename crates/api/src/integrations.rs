//! Heroku features that Slipway does not have, answered the way a Heroku account without them
//! is, so that the heroku CLI's commands for them print "none" instead of crashing on a 404:
//! `GET /pipelines` (`heroku pipelines`), `GET /spaces` (`heroku spaces`; `heroku
//! autocomplete` warms its cache from both) and `GET /apps/{app}/webhooks` (`heroku
//! webhooks`), all empty. Also `GET /client/v11/apps/{app}/transfers`, Heroku Data's list of an app's
//! PostgreSQL transfers, which `heroku pg:backups` reads from the host `HEROKU_DATA_HOST`
//! names (pointed at Slipway's API, the path reaches this handler): the app's backups, in
//! Heroku Data's transfer shape.

use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use slipway_addons::Service;
use slipway_core::Backup;

use crate::app_in_path::AppInPath;
use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::response::list_response;
use crate::state::ApiState;

/// `GET /pipelines`: Slipway has no pipelines, so every account's list is empty.
pub(crate) async fn list_pipelines(CurrentUser(_user): CurrentUser) -> Response {
    list_response(Vec::<serde_json::Value>::new())
}

/// `GET /spaces`: Slipway has no private spaces, so every account's list is empty.
pub(crate) async fn list_spaces(CurrentUser(_user): CurrentUser) -> Response {
    list_response(Vec::<serde_json::Value>::new())
}

/// `GET /apps/{app}/webhooks`: Slipway has no app webhooks, so an app's list is empty (for
/// those who may see the app; others get the app lookup's 403 or 404).
pub(crate) async fn list_webhooks(AppInPath { .. }: AppInPath) -> Response {
    list_response(Vec::<serde_json::Value>::new())
}

/// One PostgreSQL transfer as Heroku Data lists it: the fields `heroku pg:backups` reads to
/// name (`b001`, `a002`), date, size and place a backup in its "Backups" table.
#[derive(Debug, Serialize, PartialEq)]
pub(crate) struct Transfer {
    /// The same as `uuid`: the API's list conventions page lists by `id`.
    id: uuid::Uuid,
    uuid: uuid::Uuid,
    num: u32,
    from_type: &'static str,
    from_name: String,
    to_type: &'static str,
    to_name: &'static str,
    /// True for a scheduled backup (the CLI's `a` prefix).
    schedule: bool,
    created_at: chrono::DateTime<chrono::Utc>,
    started_at: chrono::DateTime<chrono::Utc>,
    finished_at: Option<chrono::DateTime<chrono::Utc>>,
    succeeded: bool,
    processed_bytes: u64,
    warnings: u32,
}

/// A backup as a `pg_dump` to storage (`gof3r`, Heroku Data's name for it) transfer.
pub(crate) fn transfer(backup: &Backup) -> Transfer {
    let finished = backup.status != "running";
    Transfer {
        id: backup.id,
        uuid: backup.id,
        num: backup.number,
        from_type: "pg_dump",
        from_name: backup.addon_name.clone(),
        to_type: "gof3r",
        to_name: "BACKUP",
        schedule: backup.scheduled,
        created_at: backup.created_at,
        started_at: backup.created_at,
        finished_at: if finished {
            Some(backup.finished_at.unwrap_or(backup.created_at))
        } else {
            None
        },
        succeeded: backup.status == "completed",
        processed_bytes: backup.size,
        warnings: 0,
    }
}

/// `GET /client/v11/apps/{app}/transfers`: the backups of every PostgreSQL add-on attached to
/// the app.
pub(crate) async fn list_transfers(
    State(state): State<ApiState>,
    AppInPath { user, app }: AppInPath,
) -> Result<Response, ApiError> {
    let mut transfers = Vec::new();
    for view in state.platform.app_addons(&user, &app.name).await? {
        if view.addon.service != Service::Postgres.name() {
            continue;
        }
        let backups = state
            .platform
            .backups(&user, &app.name, &view.addon.id.to_string())
            .await?;
        transfers.extend(backups.iter().map(transfer));
    }
    Ok(list_response(transfers))
}

#[cfg(test)]
mod tests;
