//! `/apps/{app}/sni-endpoints`: certificates uploaded for an app's custom domains (Heroku's
//! SNI endpoints: `POST {certificate_chain, private_key}`, `GET`, `PATCH`, `DELETE`). The
//! private key is write-only: no response ever contains it. Changes are parsed into
//! [`Command`]s by pure `parse_*` functions (tested in `certs/tests.rs`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use slipway_api_types as wire;
use slipway_core::model::App;
use slipway_core::{Certificate, Command, DomainKind, SniEndpoint};
use uuid::Uuid;

use crate::app_in_path::{AppInPath, OnApp};
use crate::convert::app_ref;
use crate::error::ApiError;
use crate::request::{parse_app, parse_body_like};
use crate::response::list_response;
use crate::state::ApiState;

/// `POST` and `PATCH` bodies.
#[derive(Debug, Deserialize)]
pub(crate) struct SniEndpointBody {
    certificate_chain: String,
    private_key: String,
}

/// The `ssl_cert` of an SNI endpoint.
#[derive(Debug, Serialize)]
pub(crate) struct SslCert {
    #[serde(rename = "ca_signed?")]
    ca_signed: bool,
    cert_domains: Vec<String>,
    #[serde(rename = "self_signed?")]
    self_signed: bool,
    id: Uuid,
}

/// An SNI endpoint as the API shows it (no private key).
#[derive(Debug, Serialize)]
pub(crate) struct SniEndpointJson {
    id: Uuid,
    name: String,
    display_name: Option<String>,
    certificate_chain: String,
    /// Ids of the app's custom domains the certificate covers.
    domains: Vec<Uuid>,
    app: wire::ResourceRef,
    ssl_cert: SslCert,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

async fn endpoint_json(
    state: &ApiState,
    app: &App,
    endpoint: &SniEndpoint,
) -> Result<SniEndpointJson, ApiError> {
    let domains = state
        .platform
        .domains(app)
        .await?
        .into_iter()
        .filter(|d| d.kind == DomainKind::Custom && endpoint.covers(&d.hostname))
        .map(|d| d.id)
        .collect();
    let self_signed = endpoint.self_signed;
    Ok(SniEndpointJson {
        id: endpoint.id,
        name: endpoint.name.clone(),
        display_name: None,
        certificate_chain: endpoint.certificate_chain.clone(),
        domains,
        app: app_ref(app),
        ssl_cert: SslCert {
            ca_signed: !self_signed,
            cert_domains: endpoint.cert_domains.clone(),
            self_signed,
            id: endpoint.id,
        },
        created_at: endpoint.created_at,
        updated_at: endpoint.updated_at,
    })
}

fn parse_body(body: &[u8]) -> Result<SniEndpointBody, ApiError> {
    parse_body_like(
        body,
        r#"{"certificate_chain": "-----BEGIN CERTIFICATE-----...", "private_key": "-----BEGIN PRIVATE KEY-----..."}"#,
    )
}

pub(crate) async fn list(
    State(state): State<ApiState>,
    AppInPath { app, .. }: AppInPath,
) -> Result<Response, ApiError> {
    let mut items = Vec::new();
    for endpoint in state.platform.sni_endpoints(&app).await? {
        items.push(endpoint_json(&state, &app, &endpoint).await?);
    }
    Ok(list_response(items))
}

fn certificate(body: &[u8]) -> Result<Certificate, ApiError> {
    let request = parse_body(body)?;
    Ok(Certificate {
        chain: request.certificate_chain,
        private_key: request.private_key,
    })
}

/// `POST /apps/{app}/sni-endpoints {certificate_chain, private_key}`.
pub(crate) fn parse_create(app: String, body: &[u8]) -> Result<Command, ApiError> {
    Ok(Command::AddCertificate {
        app: parse_app(app)?,
        certificate: certificate(body)?,
    })
}

/// `PATCH /apps/{app}/sni-endpoints/{endpoint} {certificate_chain, private_key}`.
pub(crate) fn parse_update(
    app: String,
    endpoint: String,
    body: &[u8],
) -> Result<Command, ApiError> {
    Ok(Command::UpdateCertificate {
        app: parse_app(app)?,
        endpoint,
        certificate: certificate(body)?,
    })
}

/// `DELETE /apps/{app}/sni-endpoints/{endpoint}`.
pub(crate) fn parse_delete(app: String, endpoint: String) -> Result<Command, ApiError> {
    Ok(Command::RemoveCertificate {
        app: parse_app(app)?,
        endpoint,
    })
}

/// Executes a certificate command and shows the endpoint it touched.
async fn execute(
    call: &OnApp,
    parse: impl FnOnce(String) -> Result<Command, ApiError>,
) -> Result<SniEndpointJson, ApiError> {
    let (found, endpoint) = call.execute(parse).await?;
    endpoint_json(&call.state, &found, &endpoint).await
}

pub(crate) async fn create(
    call: OnApp,
    body: bytes::Bytes,
) -> Result<(StatusCode, Json<SniEndpointJson>), ApiError> {
    let endpoint = execute(&call, |app| parse_create(app, &body)).await?;
    Ok((StatusCode::CREATED, Json(endpoint)))
}

pub(crate) async fn get(
    State(state): State<ApiState>,
    AppInPath { app, .. }: AppInPath,
    Path((_, endpoint)): Path<(String, String)>,
) -> Result<Json<SniEndpointJson>, ApiError> {
    let endpoint = state.platform.sni_endpoint(&app, &endpoint).await?;
    Ok(Json(endpoint_json(&state, &app, &endpoint).await?))
}

pub(crate) async fn update(
    call: OnApp,
    Path((_, endpoint)): Path<(String, String)>,
    body: bytes::Bytes,
) -> Result<Json<SniEndpointJson>, ApiError> {
    let parse = |app| parse_update(app, endpoint, &body);
    Ok(Json(execute(&call, parse).await?))
}

pub(crate) async fn delete(
    call: OnApp,
    Path((_, endpoint)): Path<(String, String)>,
) -> Result<Json<SniEndpointJson>, ApiError> {
    Ok(Json(
        execute(&call, |app| parse_delete(app, endpoint)).await?,
    ))
}

#[cfg(test)]
mod tests;
