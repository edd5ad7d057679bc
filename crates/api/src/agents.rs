//! The host agents' endpoints (cluster mode, `slipway server --cluster`): `POST
//! /slipway/agents/{name}/sync` (register or renew the host's lease, report container states,
//! get the host's assignments; a long poll), `POST /slipway/agents/{name}/logs` (dyno output in
//! batches) and `GET /slipway/agents/slugs/{digest}` (a slug by its SHA-256).
//!
//! Agents authenticate with the cluster token (`Authorization: Bearer`, compared in constant
//! time), never with an account's key; every body is capped before it is parsed. The routes
//! are mounted outside the per-account rate limit (`routes.rs`): an agent syncs every second,
//! far above what an account may ask.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use slipway_core::cluster::wire::{LogBatch, SyncRequest};
use slipway_core::cluster::Cluster;
use slipway_model::HostName;

use crate::error::ApiError;

#[cfg(test)]
mod tests;

/// A sync lists every container of one host: a few hundred reports at most.
const MAX_SYNC_BYTES: usize = 1024 * 1024;

/// A log batch: at most the agent's batch of lines, each at most logplex's 10,000 bytes.
const MAX_LOG_BYTES: usize = 16 * 1024 * 1024;

/// The agents' routes over `cluster`.
pub(crate) fn router(cluster: Arc<Cluster>) -> Router {
    Router::new()
        .route(
            "/slipway/agents/{name}/sync",
            post(sync).layer(DefaultBodyLimit::max(MAX_SYNC_BYTES)),
        )
        .route(
            "/slipway/agents/{name}/logs",
            post(logs).layer(DefaultBodyLimit::max(MAX_LOG_BYTES)),
        )
        .route("/slipway/agents/slugs/{digest}", get(slug))
        .with_state(cluster)
}

/// The bearer token of a request, if it has one.
pub(crate) fn parse_bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn authenticate(cluster: &Cluster, headers: &HeaderMap) -> Result<(), ApiError> {
    match parse_bearer(headers) {
        Some(token) if cluster.token_matches(token) => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Invalid cluster token. Give the agent the control plane's <data>/cluster-token with --token-file.",
        )),
    }
}

pub(crate) fn parse_host(name: &str) -> Result<HostName, ApiError> {
    name.parse::<HostName>()
        .map_err(|error| ApiError::invalid_params(error.to_string()))
}

pub(crate) fn parse_sync(name: &str, body: &[u8]) -> Result<(HostName, SyncRequest), ApiError> {
    let host = parse_host(name)?;
    let request = serde_json::from_slice(body).map_err(|error| {
        ApiError::bad_request(format!("The sync request is not valid: {error}"))
    })?;
    Ok((host, request))
}

pub(crate) fn parse_logs(name: &str, body: &[u8]) -> Result<(HostName, LogBatch), ApiError> {
    let host = parse_host(name)?;
    let batch = serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_request(format!("The log batch is not valid: {error}")))?;
    Ok((host, batch))
}

async fn sync(
    State(cluster): State<Arc<Cluster>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authenticate(&cluster, &headers)?;
    let (host, request) = parse_sync(&name, &body)?;
    let response = cluster.sync(&host, request).await.map_err(|error| {
        tracing::error!(%error, host = %host, "an agent's sync failed");
        ApiError::for_status(StatusCode::SERVICE_UNAVAILABLE)
    })?;
    Ok(Json(response).into_response())
}

async fn logs(
    State(cluster): State<Arc<Cluster>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    authenticate(&cluster, &headers)?;
    let (host, batch) = parse_logs(&name, &body)?;
    cluster.ingest_logs(&host, batch);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn slug(
    State(cluster): State<Arc<Cluster>>,
    Path(digest): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authenticate(&cluster, &headers)?;
    let not_found = || {
        ApiError::not_found(format!(
            "No slug has the checksum {:?}.",
            digest.chars().take(80).collect::<String>()
        ))
    };
    let path = cluster.slug_file(&digest).ok_or_else(not_found)?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|_| not_found())?;
    let length = file.metadata().await.map_err(|_| not_found())?.len();
    let mut response = Body::from_stream(tokio_util::io::ReaderStream::new(file)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/gzip"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    Ok(response)
}
