//! `/apps/{app}/domains` (the hostnames the router serves for an app: the default one and
//! custom domains) and `PATCH /apps/{app}` for maintenance mode. Changes are parsed into
//! [`Command`]s by pure `parse_*` functions (tested in `domains/tests.rs`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use slipway_api_types as wire;
use slipway_core::model::App;
use slipway_core::{AppChanges, Command, Domain, DomainKind};

use crate::app_in_path::{AppInPath, OnApp};
use crate::convert::app_ref;
use crate::error::ApiError;
use crate::request::{find_named, parse_app, parse_body_like};
use crate::resources::app_json;
use crate::response::list_response;
use crate::state::ApiState;

pub(crate) fn domain_json(state: &ApiState, app: &App, domain: &Domain) -> wire::Domain {
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
    AppInPath { app, .. }: AppInPath,
) -> Result<Response, ApiError> {
    let domains = state.platform.domains(&app).await?;
    Ok(list_response(
        domains
            .iter()
            .map(|d| domain_json(&state, &app, d))
            .collect(),
    ))
}

/// `POST /apps/{app}/domains {hostname}`.
pub(crate) fn parse_create(app: String, body: &[u8]) -> Result<Command, ApiError> {
    let app = parse_app(app)?;
    let request: wire::DomainCreate = parse_body_like(body, r#"{"hostname": "www.example.com"}"#)?;
    Ok(Command::AddDomain {
        app,
        hostname: request.hostname,
    })
}

pub(crate) async fn create(
    call: OnApp,
    body: bytes::Bytes,
) -> Result<(StatusCode, Json<wire::Domain>), ApiError> {
    let (found, domain) = call.execute(|app| parse_create(app, &body)).await?;
    let domain = domain_json(&call.state, &found, &domain);
    Ok((StatusCode::CREATED, Json(domain)))
}

pub(crate) async fn get(
    State(state): State<ApiState>,
    AppInPath { app, .. }: AppInPath,
    Path((_, domain)): Path<(String, String)>,
) -> Result<Json<wire::Domain>, ApiError> {
    let wanted = domain.trim_end_matches('.').to_ascii_lowercase();
    let domains = state.platform.domains(&app).await?;
    let found = find_named(domains, "domain", |d| {
        d.hostname == wanted || d.id.to_string() == domain
    })?;
    Ok(Json(domain_json(&state, &app, &found)))
}

/// `DELETE /apps/{app}/domains/{domain}` (hostname or id).
pub(crate) fn parse_delete(app: String, domain: String) -> Result<Command, ApiError> {
    Ok(Command::RemoveDomain {
        app: parse_app(app)?,
        domain,
    })
}

pub(crate) async fn delete(
    call: OnApp,
    Path((_, domain)): Path<(String, String)>,
) -> Result<Json<wire::Domain>, ApiError> {
    let (found, removed) = call.execute(|app| parse_delete(app, domain)).await?;
    Ok(Json(domain_json(&call.state, &found, &removed)))
}

/// `PATCH /apps/{app} {maintenance, name, build_stack}`: only maintenance can change; the core
/// refuses another name or stack.
pub(crate) fn parse_update_app(app: String, body: &[u8]) -> Result<Command, ApiError> {
    let app = parse_app(app)?;
    let request: wire::AppUpdate = parse_body_like(body, r#"{"maintenance": true}"#)?;
    Ok(Command::UpdateApp {
        app,
        changes: AppChanges {
            maintenance: request.maintenance,
            name: request.name,
            stack: request.build_stack,
        },
    })
}

/// `PATCH /apps/{app}`: `maintenance` is honoured; renaming and changing the stack are not
/// supported and answered with 422.
pub(crate) async fn update_app(
    call: OnApp,
    body: bytes::Bytes,
) -> Result<Json<wire::App>, ApiError> {
    let (_, app): (_, App) = call.execute(|app| parse_update_app(app, &body)).await?;
    Ok(Json(app_json(&call.state, &call.user, &app).await?))
}

#[cfg(test)]
mod tests;
