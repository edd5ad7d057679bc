//! Handlers for the Platform API resources: apps, releases, config vars and
//! formation.
//!
//! Every change is parsed by a pure `parse_*` function (path parameters and body bytes in, a
//! [`Command`] or the Heroku error out, tested as tables in `resources/tests.rs`) and executed
//! by [`slipway_core::Platform::execute`].

use std::collections::BTreeMap;
use std::str::FromStr;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use slipway_api_types as wire;
use slipway_core::model;
use slipway_core::{Command, FormationChange, Quantity};
use slipway_model::{AppName, ConfigKey, ConfigKeyError, DynoSize, ProcessType};

use crate::app_in_path::{AppInPath, OnApp};
use crate::auth::CurrentUser;
use crate::convert::{self, catalog_id};
use crate::error::ApiError;
use crate::outcome::execute;
use crate::request::{find_named, parse_app, parse_body};
use crate::response::list_response;
use crate::state::ApiState;

type ApiResult<T> = Result<T, ApiError>;

pub(crate) async fn app_json(
    state: &ApiState,
    user: &model::User,
    app: &model::App,
) -> ApiResult<wire::App> {
    let current = state.platform.current_release(app).await?;
    let slug = match current.as_ref().and_then(|r| r.slug_id) {
        Some(slug_id) => Some(state.platform.slug(app, slug_id).await?),
        None => None,
    };
    // A collaborator or an admin sees the app's real owner, not themselves.
    let owner = if app.owner_email == user.email {
        user.clone()
    } else {
        state.platform.owner(app).await?
    };
    Ok(convert::app(
        state.platform.config(),
        app,
        &owner,
        current.as_ref(),
        slug.as_ref(),
    ))
}

pub(crate) async fn list_apps(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<Json<Vec<wire::App>>> {
    let mut apps = Vec::new();
    for app in state.platform.apps(&user).await? {
        apps.push(app_json(&state, &user, &app).await?);
    }
    Ok(Json(apps))
}

/// `GET /users/{user}/apps` (`heroku apps`): `~`, the caller's email or id lists the
/// caller's apps; another user's apps are an administrator's to list.
pub(crate) async fn list_user_apps(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(who): Path<String>,
) -> ApiResult<Response> {
    let own = who == "~" || who == user.email || who == user.id.to_string();
    if !own && !user.admin {
        return Err(ApiError::not_found("Couldn't find that user."));
    }
    let mut apps = Vec::new();
    for app in state.platform.apps(&user).await? {
        if own || app.owner_email == who {
            apps.push(app_json(&state, &user, &app).await?);
        }
    }
    Ok(list_response(apps))
}

/// Whether `region` (as `apps:create --region` sends it) is the platform's; a 422 naming the
/// one region otherwise.
pub(crate) fn check_region(platform_region: &str, region: &str) -> ApiResult<()> {
    let id = catalog_id("region", platform_region).to_string();
    if region == platform_region || region == id {
        return Ok(());
    }
    let shown: String = region
        .chars()
        .take(64)
        .filter(|c| !c.is_control())
        .collect();
    Err(ApiError::invalid_params(format!(
        "Region {shown:?} is not available on this Slipway. The only region is {platform_region}."
    )))
}

/// `POST /apps {name?}`.
pub(crate) fn parse_create_app(body: &[u8]) -> ApiResult<Command> {
    let request: wire::AppCreate = parse_body(body)?;
    let name = request
        .name
        .map(AppName::try_from)
        .transpose()
        .map_err(|error| ApiError::invalid_params(error.to_string()))?;
    Ok(Command::CreateApp { name })
}

pub(crate) async fn create_app(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    body: bytes::Bytes,
) -> ApiResult<(StatusCode, Json<wire::App>)> {
    let command = parse_create_app(&body)?;
    // The one region and stack there are: anything else is refused before an app exists.
    let request: wire::AppCreate = parse_body(&body)?;
    if let Some(region) = &request.region {
        check_region(&state.platform.config().region, region)?;
    }
    // A stack is checked before the app exists (by name, a build's id, or host's catalog id)
    // and set right after it is created; a refused one creates nothing.
    let stack = match &request.stack {
        Some(stack) if *stack == catalog_id("stack", slipway_core::HOST_STACK).to_string() => {
            Some(slipway_core::HOST_STACK.to_string())
        }
        Some(stack) => Some(state.platform.check_stack(stack)?),
        None => None,
    };
    let mut app: model::App = execute(&state, &user, command).await?;
    if let Some(stack) = stack.filter(|stack| *stack != app.stack) {
        let changes = slipway_core::AppChanges {
            stack: Some(stack),
            ..Default::default()
        };
        let update = Command::UpdateApp {
            app: app.name.clone(),
            changes,
        };
        app = execute(&state, &user, update).await?;
    }
    Ok((
        StatusCode::CREATED,
        Json(app_json(&state, &user, &app).await?),
    ))
}

pub(crate) async fn get_app(
    State(state): State<ApiState>,
    AppInPath { user, app }: AppInPath,
) -> ApiResult<Json<wire::App>> {
    Ok(Json(app_json(&state, &user, &app).await?))
}

/// `DELETE /apps/{app}`.
pub(crate) fn parse_delete_app(app: String) -> ApiResult<Command> {
    Ok(Command::DeleteApp {
        app: parse_app(app)?,
    })
}

pub(crate) async fn delete_app(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(app): Path<String>,
) -> ApiResult<Json<wire::App>> {
    // The answer shows the app as it was, current release included: read it first.
    let json = app_json(&state, &user, &state.platform.app(&user, &app).await?).await?;
    let command = parse_delete_app(app)?;
    state.platform.execute(&user, command).await?;
    Ok(Json(json))
}

pub(crate) async fn list_releases(
    State(state): State<ApiState>,
    AppInPath { user, app }: AppInPath,
) -> ApiResult<Response> {
    // Oldest first; the conventions' pagination applies the `Range` (the CLI's
    // `version ..; order=desc, max=N`).
    let releases = state.platform.releases(&app).await?;
    let current = state
        .platform
        .current_release(&app)
        .await?
        .map(|r| r.version);
    let items: Vec<wire::Release> = releases
        .iter()
        .map(|release| convert::release(&app, release, current, user.id))
        .collect();
    Ok(list_response(items))
}

pub(crate) async fn get_release(
    State(state): State<ApiState>,
    AppInPath { user, app }: AppInPath,
    Path((_, release)): Path<(String, String)>,
) -> ApiResult<Json<wire::Release>> {
    let release = state.platform.release(&app, &release).await?;
    let current = state
        .platform
        .current_release(&app)
        .await?
        .map(|r| r.version);
    Ok(Json(convert::release(&app, &release, current, user.id)))
}

/// `POST /apps/{app}/releases`: `{release}` rolls back to that release (id or version);
/// `{slug}` releases a prebuilt slug with the app's current config vars.
pub(crate) fn parse_create_release(app: String, body: &[u8]) -> ApiResult<Command> {
    let app = parse_app(app)?;
    let request: wire::ReleaseCreate = parse_body(body)?;
    match (request.release, request.slug) {
        (Some(release), None) => Ok(Command::Rollback { app, release }),
        (None, Some(slug)) => Ok(Command::ReleaseSlug {
            app,
            slug,
            description: request.description,
        }),
        _ => Err(ApiError::invalid_params(
            "Pass either `release` (the id or version to roll back to) or `slug` (the id of a slug to release).",
        )),
    }
}

pub(crate) async fn create_release(
    call: OnApp,
    body: bytes::Bytes,
) -> ApiResult<(StatusCode, Json<wire::Release>)> {
    let (app, release): (_, model::Release) =
        call.execute(|app| parse_create_release(app, &body)).await?;
    let current = call
        .state
        .platform
        .current_release(&app)
        .await?
        .map(|r| r.version);
    Ok((
        StatusCode::CREATED,
        Json(convert::release(&app, &release, current, call.user.id)),
    ))
}

pub(crate) async fn release_config_vars(
    State(state): State<ApiState>,
    AppInPath { app, .. }: AppInPath,
    Path((_, release)): Path<(String, String)>,
) -> ApiResult<Json<BTreeMap<String, String>>> {
    Ok(Json(
        state.platform.release(&app, &release).await?.config_vars,
    ))
}

pub(crate) async fn get_config_vars(
    State(state): State<ApiState>,
    AppInPath { app, .. }: AppInPath,
) -> ApiResult<Json<BTreeMap<String, String>>> {
    Ok(Json(state.platform.config_vars(&app).await?))
}

/// `PATCH /apps/{app}/config-vars {KEY: "value", GONE: null}`.
pub(crate) fn parse_update_config_vars(app: String, body: &[u8]) -> ApiResult<Command> {
    let app = parse_app(app)?;
    let changes: wire::ConfigVarsUpdate = parse_body(body)?;
    let changes = changes
        .into_iter()
        .map(|(key, value)| Ok((ConfigKey::try_from(key)?, value)))
        .collect::<Result<_, ConfigKeyError>>()
        .map_err(|error| ApiError::invalid_params(error.to_string()))?;
    Ok(Command::SetConfig { app, changes })
}

pub(crate) async fn update_config_vars(
    call: OnApp,
    body: bytes::Bytes,
) -> ApiResult<Json<BTreeMap<String, String>>> {
    let (_, (config, _release)): (_, (model::ConfigVars, model::Release)) = call
        .execute(|app| parse_update_config_vars(app, &body))
        .await?;
    Ok(Json(config))
}

async fn formation_json(state: &ApiState, app: &model::App) -> ApiResult<Vec<wire::Formation>> {
    let formation = state.platform.formation(app).await?;
    entries_json(state, app, &formation).await
}

/// Formation entries as the API shows them, each with its command in the current release.
async fn entries_json(
    state: &ApiState,
    app: &model::App,
    entries: &[model::Formation],
) -> ApiResult<Vec<wire::Formation>> {
    let process_types = state.platform.process_types(app).await?;
    Ok(entries
        .iter()
        .map(|entry| {
            let command = process_types
                .get(&entry.process_type)
                .map(String::as_str)
                .unwrap_or("");
            convert::formation(app, entry, command)
        })
        .collect())
}

pub(crate) async fn list_formation(
    State(state): State<ApiState>,
    AppInPath { app, .. }: AppInPath,
) -> ApiResult<Response> {
    Ok(list_response(formation_json(&state, &app).await?))
}

pub(crate) async fn get_formation(
    State(state): State<ApiState>,
    AppInPath { app, .. }: AppInPath,
    Path((_, process_type)): Path<(String, String)>,
) -> ApiResult<Json<wire::Formation>> {
    let formation = formation_json(&state, &app).await?;
    find_named(formation, "formation", |f| f.process_type == process_type).map(Json)
}

/// One process type's change as the wire has it: the quantity stays relative (`"+1"`) all the
/// way to the core, which resolves it inside its compare-and-set.
fn formation_change(
    process_type: ProcessType,
    quantity: Option<wire::FormationQuantity>,
    size: Option<&str>,
) -> ApiResult<FormationChange> {
    let too_large = || ApiError::invalid_params("Dyno quantity is too large.");
    let quantity = match quantity {
        None => None,
        Some(wire::FormationQuantity::Absolute(n)) => Some(Quantity::Absolute(
            u32::try_from(n.max(0)).map_err(|_| too_large())?,
        )),
        Some(wire::FormationQuantity::Relative(delta)) => Some(Quantity::Relative(
            i32::try_from(delta).map_err(|_| too_large())?,
        )),
    };
    let size = size
        .map(DynoSize::from_str)
        .transpose()
        .map_err(|error| ApiError::invalid_params(error.to_string()))?;
    Ok(FormationChange {
        process_type,
        quantity,
        size,
    })
}

/// `PATCH /apps/{app}/formation {updates: [{type, quantity, size}]}`.
pub(crate) fn parse_batch_update_formation(app: String, body: &[u8]) -> ApiResult<Command> {
    let app = parse_app(app)?;
    let request: wire::FormationBatchUpdate = parse_body(body)?;
    let changes = request
        .updates
        .into_iter()
        .map(|update| {
            let size = update.requested_size().map(str::to_owned);
            // A type in the body that no process can have is a bad request (422), unlike one
            // in the path, which names a formation that does not exist (404).
            let process_type = ProcessType::try_from(update.process_type)
                .map_err(|error| ApiError::invalid_params(error.to_string()))?;
            formation_change(process_type, update.quantity, size.as_deref())
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Command::Scale { app, changes })
}

/// `PATCH /apps/{app}/formation/{type} {quantity, size}`.
pub(crate) fn parse_update_formation(
    app: String,
    process_type: String,
    body: &[u8],
) -> ApiResult<Command> {
    let app = parse_app(app)?;
    let request: wire::FormationUpdate = parse_body(body)?;
    let process_type = ProcessType::try_from(process_type)
        .map_err(|_| ApiError::not_found("Couldn't find that process type."))?;
    let change = formation_change(process_type, request.quantity, request.requested_size())?;
    Ok(Command::Scale {
        app,
        changes: vec![change],
    })
}

pub(crate) async fn batch_update_formation(call: OnApp, body: bytes::Bytes) -> ApiResult<Response> {
    let (app, changed): (_, Vec<model::Formation>) = call
        .execute(|app| parse_batch_update_formation(app, &body))
        .await?;
    // The entries as this change wrote them, not as a later read finds them: a concurrent
    // change may already have moved them on.
    Ok(list_response(
        entries_json(&call.state, &app, &changed).await?,
    ))
}

pub(crate) async fn update_formation(
    call: OnApp,
    Path((_, process_type)): Path<(String, String)>,
    body: bytes::Bytes,
) -> ApiResult<Json<wire::Formation>> {
    let parse = |app| parse_update_formation(app, process_type.clone(), &body);
    let (app, changed): (_, Vec<model::Formation>) = call.execute(parse).await?;
    let changed = entries_json(&call.state, &app, &changed).await?;
    find_named(changed, "formation", |f| f.process_type == process_type).map(Json)
}

#[cfg(test)]
mod tests;
