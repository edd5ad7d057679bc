//! The platform's own public facts: `GET /slipway/ca.pem`, the platform CA's certificate, so
//! that clients (`slipway ca`, `slipway run`, the real heroku CLI's `NODE_EXTRA_CA_CERTS`,
//! git's `GIT_SSL_CAINFO`) can trust the HTTPS API, the rendezvous listener and the apps'
//! platform certificates.
//!
//! The one route that authenticates no caller: a CA certificate is public by design (clients
//! need it before they can check anything), and it carries no secret.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::ApiState;

/// A CA certificate is about 700 bytes of PEM; anything much larger is not one.
const MAX_CA_PEM_BYTES: u64 = 64 * 1024;

/// `GET /slipway/ca.pem`: the platform CA's certificate, PEM.
pub(crate) async fn ca_pem(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let path = state.platform.config().data_dir.join("tls/router-ca.pem");
    let unavailable = || {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The platform CA certificate is not available yet. Try again once the server has started.",
        )
    };
    let pem = tokio::task::spawn_blocking(move || {
        use std::io::Read as _;
        let file = std::fs::File::open(&path)?;
        let mut text = String::new();
        file.take(MAX_CA_PEM_BYTES).read_to_string(&mut text)?;
        Ok::<_, std::io::Error>(text)
    })
    .await
    .map_err(|_| unavailable())?
    .map_err(|error| {
        tracing::warn!(%error, "reading the platform CA certificate");
        unavailable()
    })?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(unavailable());
    }
    let mut response = pem.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-pem-file"),
    );
    Ok(response)
}
