//! `/apps/{app}/domains` (the hostnames the router serves for an app: the default one and
//! custom domains) and `PATCH /apps/{app}` for maintenance mode.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use slipway_api_types as wire;
use slipway_core::model::App;
use slipway_core::{Domain, DomainKind};

use crate::auth::CurrentUser;
use crate::convert::app_ref;
use crate::error::ApiError;
use crate::resources::{app_json, list_response};
use crate::ApiState;

fn domain_json(state: &ApiState, app: &App, domain: &Domain) -> wire::Domain {
    let custom = domain.kind == DomainKind::Custom;
    wire::Domain {
        acm_status: None,
        acm_status_reason: None,
        app: app_ref(app),
        // Point a custom domain's DNS at the app's default hostname.
        cname: custom.then(|| format!("{}.{}", app.name, state.platform.config().domain)),
        created_at: domain.created_at,
        hostname: domain.hostname.clone(),
        id: domain.id,
        kind: if custom {
            wire::DomainKind::Custom
        } else {
            wire::DomainKind::Heroku
        },
        updated_at: domain.created_at,
        status: "none".to_owned(),
        sni_endpoint: None,
    }
}

pub(crate) async fn list(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(app): Path<String>,
) -> Result<Response, ApiError> {
    let app = state.platform.app(&user, &app).await?;
    let domains = state.platform.domains(&app).await?;
    Ok(list_response(
        domains
            .iter()
            .map(|d| domain_json(&state, &app, d))
            .collect::<Vec<_>>(),
    ))
}

pub(crate) async fn create(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(app): Path<String>,
    body: bytes::Bytes,
) -> Result<(StatusCode, Json<wire::Domain>), ApiError> {
    let app = state.platform.app(&user, &app).await?;
    let request: wire::DomainCreate = serde_json::from_slice(&body).map_err(|error| {
        ApiError::bad_request(format!(
            "Expected a body like {{\"hostname\": \"www.example.com\"}}: {error}."
        ))
    })?;
    let domain = state.platform.add_domain(&app, &request.hostname).await?;
    Ok((
        StatusCode::CREATED,
        Json(domain_json(&state, &app, &domain)),
    ))
}

pub(crate) async fn get(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path((app, domain)): Path<(String, String)>,
) -> Result<Json<wire::Domain>, ApiError> {
    let app = state.platform.app(&user, &app).await?;
    let wanted = domain.trim_end_matches('.').to_ascii_lowercase();
    state
        .platform
        .domains(&app)
        .await?
        .iter()
        .find(|d| d.hostname == wanted || d.id.to_string() == domain)
        .map(|d| Json(domain_json(&state, &app, d)))
        .ok_or_else(|| ApiError::not_found("Couldn't find that domain."))
}

pub(crate) async fn delete(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path((app, domain)): Path<(String, String)>,
) -> Result<Json<wire::Domain>, ApiError> {
    let app = state.platform.app(&user, &app).await?;
    let removed = state.platform.remove_domain(&app, &domain).await?;
    Ok(Json(domain_json(&state, &app, &removed)))
}

/// `PATCH /apps/{app}`: `maintenance` is honoured; renaming and changing the stack are not
/// supported and answered with 422.
pub(crate) async fn update_app(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(app): Path<String>,
    body: bytes::Bytes,
) -> Result<Json<wire::App>, ApiError> {
    let mut app = state.platform.app(&user, &app).await?;
    let request: wire::AppUpdate = serde_json::from_slice(&body).map_err(|error| {
        ApiError::bad_request(format!(
            "Expected a body like {{\"maintenance\": true}}: {error}."
        ))
    })?;
    if request.name.as_ref().is_some_and(|name| *name != app.name)
        || request
            .build_stack
            .as_ref()
            .is_some_and(|stack| *stack != app.stack)
    {
        return Err(slipway_core::CoreError::Invalid {
            message: "Only maintenance can be changed with PATCH /apps/{app} on Slipway; renaming apps and changing stacks are not supported.".to_owned(),
        }
        .into());
    }
    if let Some(on) = request.maintenance {
        app = state.platform.set_maintenance(&user, &app, on).await?;
    }
    Ok(Json(app_json(&state, &user, &app).await?))
}
