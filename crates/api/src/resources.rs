//! Handlers for the Platform API resources: account, apps, releases, config vars and
//! formation.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use slipway_api_types as wire;
use slipway_core::model;
use slipway_core::FormationUpdate;

use crate::auth::CurrentUser;
use crate::convert;
use crate::error::ApiError;
use crate::ApiState;

type ApiResult<T> = Result<T, ApiError>;

/// Parses a JSON body, answering 400 with a message that says what is wrong.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}" as &[u8]
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|error| {
        ApiError::bad_request(format!("Invalid JSON in the request body: {error}."))
    })
}

pub(crate) async fn account(CurrentUser(user): CurrentUser) -> Json<wire::Account> {
    Json(wire::Account {
        allow_tracking: false,
        beta: false,
        country_of_residence: None,
        created_at: user.created_at,
        default_organization: None,
        default_team: None,
        delinquent_at: None,
        email: user.email.clone(),
        federated: false,
        id: user.id,
        identity_provider: None,
        last_login: None,
        name: None,
        sms_number: None,
        suspended_at: None,
        two_factor_authentication: false,
        updated_at: user.created_at,
        verified: true,
    })
}

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
    Ok(convert::app(
        state.platform.config(),
        app,
        user,
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

pub(crate) async fn create_app(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    body: bytes::Bytes,
) -> ApiResult<(StatusCode, Json<wire::App>)> {
    let request: wire::AppCreate = parse_body(&body)?;
    let app = state.platform.create_app(&user, request.name).await?;
    state.git.repos.ensure(&app.name).await.map_err(|error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_server_error",
            error.to_string(),
        )
    })?;
    Ok((
        StatusCode::CREATED,
        Json(app_json(&state, &user, &app).await?),
    ))
}

pub(crate) async fn get_app(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(app): Path<String>,
) -> ApiResult<Json<wire::App>> {
    let app = state.platform.app(&user, &app).await?;
    Ok(Json(app_json(&state, &user, &app).await?))
}

pub(crate) async fn delete_app(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(app): Path<String>,
) -> ApiResult<Json<wire::App>> {
    let app = state.platform.app(&user, &app).await?;
    let json = app_json(&state, &user, &app).await?;
    state.platform.delete_app(&app).await?;
    if let Err(error) = state.git.repos.remove(&app.name).await {
        tracing::warn!(%error, app = %app.name, "could not remove the app's repository");
    }
    Ok(Json(json))
}

/// Applies a `Range` header (`version ..; order=desc, max=N`) to a list sorted by `key`.
fn apply_range<T>(
    headers: &HeaderMap,
    mut items: Vec<T>,
    default_field: &str,
) -> ApiResult<Vec<T>> {
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(text) => wire::ListRange::parse(text).map_err(|error| {
            ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "requested_range_not_satisfiable",
                error.to_string(),
            )
        })?,
        None => None,
    };
    let range = range.unwrap_or_else(|| wire::ListRange::all(default_field));
    if range.order == wire::RangeOrder::Desc {
        items.reverse();
    }
    items.truncate(range.max);
    Ok(items)
}

pub(crate) fn list_response<T: serde::Serialize>(items: Vec<T>) -> Response {
    let mut response = Json(items).into_response();
    response.headers_mut().insert(
        header::ACCEPT_RANGES,
        HeaderValue::from_static("id, version"),
    );
    response
}

pub(crate) async fn list_releases(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(app): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let app = state.platform.app(&user, &app).await?;
    let releases = state.platform.releases(&app).await?;
    let current = state
        .platform
        .current_release(&app)
        .await?
        .map(|r| r.version);
    let releases = apply_range(&headers, releases, "version")?;
    let items: Vec<wire::Release> = releases
        .iter()
        .map(|release| convert::release(&app, release, current, user.id))
        .collect();
    Ok(list_response(items))
}

pub(crate) async fn get_release(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path((app, release)): Path<(String, String)>,
) -> ApiResult<Json<wire::Release>> {
    let app = state.platform.app(&user, &app).await?;
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
pub(crate) async fn create_release(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(app): Path<String>,
    body: bytes::Bytes,
) -> ApiResult<(StatusCode, Json<wire::Release>)> {
    let app = state.platform.app(&user, &app).await?;
    let request: wire::ReleaseCreate = parse_body(&body)?;
    let release = match (&request.release, &request.slug) {
        (Some(target), None) => state.platform.rollback(&user, &app, target).await?,
        (None, Some(slug)) => {
            state
                .platform
                .release_slug(&user, &app, slug, request.description.clone())
                .await?
        }
        _ => {
            return Err(ApiError::invalid_params(
                "Pass either `release` (the id or version to roll back to) or `slug` (the id of a slug to release).",
            ))
        }
    };
    let current = state
        .platform
        .current_release(&app)
        .await?
        .map(|r| r.version);
    Ok((
        StatusCode::CREATED,
        Json(convert::release(&app, &release, current, user.id)),
    ))
}

pub(crate) async fn release_config_vars(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path((app, release)): Path<(String, String)>,
) -> ApiResult<Json<BTreeMap<String, String>>> {
    let app = state.platform.app(&user, &app).await?;
    Ok(Json(
        state.platform.release(&app, &release).await?.config_vars,
    ))
}

pub(crate) async fn get_config_vars(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(app): Path<String>,
) -> ApiResult<Json<BTreeMap<String, String>>> {
    let app = state.platform.app(&user, &app).await?;
    Ok(Json(state.platform.config_vars(&app).await?))
}

pub(crate) async fn update_config_vars(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(app): Path<String>,
    body: bytes::Bytes,
) -> ApiResult<Json<BTreeMap<String, String>>> {
    let app = state.platform.app(&user, &app).await?;
    let changes: wire::ConfigVarsUpdate = parse_body(&body)?;
    let (config, _release) = state
        .platform
        .update_config_vars(&user, &app, changes)
        .await?;
    Ok(Json(config))
}

async fn formation_json(state: &ApiState, app: &model::App) -> ApiResult<Vec<wire::Formation>> {
    let process_types = state.platform.process_types(app).await?;
    Ok(state
        .platform
        .formation(app)
        .await?
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
    CurrentUser(user): CurrentUser,
    Path(app): Path<String>,
) -> ApiResult<Response> {
    let app = state.platform.app(&user, &app).await?;
    Ok(list_response(formation_json(&state, &app).await?))
}

pub(crate) async fn get_formation(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path((app, process_type)): Path<(String, String)>,
) -> ApiResult<Json<wire::Formation>> {
    let app = state.platform.app(&user, &app).await?;
    formation_json(&state, &app)
        .await?
        .into_iter()
        .find(|f| f.process_type == process_type)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("Couldn't find that formation."))
}

/// Turns wire updates (absolute or relative quantities) into absolute core updates.
async fn resolve_updates(
    state: &ApiState,
    app: &model::App,
    updates: Vec<(String, Option<wire::FormationQuantity>, Option<String>)>,
) -> ApiResult<Vec<FormationUpdate>> {
    let current = state.platform.formation(app).await?;
    updates
        .into_iter()
        .map(|(process_type, quantity, size)| {
            let now = current
                .iter()
                .find(|f| f.process_type == process_type)
                .map(|f| i64::from(f.quantity))
                .unwrap_or(0);
            let quantity = quantity
                .map(|q| {
                    u32::try_from(q.apply(now))
                        .map_err(|_| ApiError::invalid_params("Dyno quantity is too large."))
                })
                .transpose()?;
            Ok(FormationUpdate {
                process_type,
                quantity,
                size,
            })
        })
        .collect()
}

pub(crate) async fn batch_update_formation(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(app): Path<String>,
    body: bytes::Bytes,
) -> ApiResult<Response> {
    let app = state.platform.app(&user, &app).await?;
    let request: wire::FormationBatchUpdate = parse_body(&body)?;
    let updates = request
        .updates
        .iter()
        .map(|u| {
            (
                u.process_type.clone(),
                u.quantity,
                u.requested_size().map(str::to_owned),
            )
        })
        .collect();
    let updates = resolve_updates(&state, &app, updates).await?;
    let changed = state
        .platform
        .update_formation(&user, &app, updates)
        .await?;
    let all = formation_json(&state, &app).await?;
    let items: Vec<wire::Formation> = all
        .into_iter()
        .filter(|f| changed.iter().any(|c| c.process_type == f.process_type))
        .collect();
    Ok(list_response(items))
}

pub(crate) async fn update_formation(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path((app, process_type)): Path<(String, String)>,
    body: bytes::Bytes,
) -> ApiResult<Json<wire::Formation>> {
    let app = state.platform.app(&user, &app).await?;
    let request: wire::FormationUpdate = parse_body(&body)?;
    let size = request.requested_size().map(str::to_owned);
    let updates = resolve_updates(
        &state,
        &app,
        vec![(process_type.clone(), request.quantity, size)],
    )
    .await?;
    state
        .platform
        .update_formation(&user, &app, updates)
        .await?;
    formation_json(&state, &app)
        .await?
        .into_iter()
        .find(|f| f.process_type == process_type)
        .map(Json)
        .ok_or_else(|| ApiError::not_found("Couldn't find that formation."))
}
