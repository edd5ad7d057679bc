//! `slipway ca`: prints the platform CA's certificate (PEM), which clients trust to reach the
//! HTTPS API and git, the rendezvous listener of `run`, and the apps' platform certificates:
//! `NODE_EXTRA_CA_CERTS` for the real heroku CLI, `GIT_SSL_CAINFO` for git, `curl --cacert`.
//! It asks the API (`GET /slipway/ca.pem`, no API key needed), or, with `--data-dir`, reads the
//! server's data directory on this host.

use std::io::Write;
use std::path::Path;

use crate::client::{root_cause, DEFAULT_API_URL};

/// A CA certificate is about 700 bytes of PEM; anything much larger is not one.
const MAX_CA_PEM_BYTES: usize = 64 * 1024;

/// Why the CA certificate could not be printed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CaError {
    #[error("Could not read {}: {reason}. Is this the server's data directory (--data-dir)?", path.display())]
    Read {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("SLIPWAY_API_URL={0:?} is not a valid URL. Use something like {DEFAULT_API_URL}")]
    InvalidUrl(String),
    #[error("Could not fetch the platform CA from {url}: {reason}. Is `slipway server` running? On the server's host, `slipway ca --data-dir DIR` reads it directly.")]
    Fetch { url: String, reason: String },
    #[error("{source_name} does not hold a PEM certificate (-----BEGIN CERTIFICATE-----).")]
    NotACertificate { source_name: String },
}

/// Prints the CA certificate, from `data_dir` when given, else from the API.
pub(crate) async fn run(data_dir: Option<&Path>, out: &mut dyn Write) -> anyhow::Result<()> {
    let (pem, source_name) = match data_dir {
        Some(dir) => {
            let path = dir.join("tls/router-ca.pem");
            let pem = std::fs::read_to_string(&path).map_err(|error| CaError::Read {
                path: path.clone(),
                reason: error.to_string(),
            })?;
            (pem, path.display().to_string())
        }
        None => fetch().await?,
    };
    out.write_all(check_pem(&pem, &source_name)?.as_bytes())?;
    Ok(())
}

/// The certificate blocks of `pem`, ending with a newline; refuses anything without one.
fn check_pem(pem: &str, source_name: &str) -> Result<String, CaError> {
    let trimmed = pem.trim();
    if !trimmed.starts_with("-----BEGIN CERTIFICATE-----")
        || !trimmed.ends_with("-----END CERTIFICATE-----")
        || trimmed.len() > MAX_CA_PEM_BYTES
    {
        return Err(CaError::NotACertificate {
            source_name: source_name.to_owned(),
        });
    }
    Ok(format!("{trimmed}\n"))
}

/// `GET <SLIPWAY_API_URL>/slipway/ca.pem`, capped.
async fn fetch() -> Result<(String, String), CaError> {
    let base = std::env::var("SLIPWAY_API_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_API_URL.to_owned());
    let mut url = reqwest::Url::parse(&base).map_err(|_| CaError::InvalidUrl(base.clone()))?;
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(["slipway", "ca.pem"]);
    }
    let fetch_error = |reason: String| CaError::Fetch {
        url: url.to_string(),
        reason,
    };
    let mut response = reqwest::get(url.clone())
        .await
        .map_err(|error| fetch_error(root_cause(&error)))?;
    if !response.status().is_success() {
        return Err(fetch_error(format!("HTTP {}", response.status())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| fetch_error(root_cause(&error)))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_CA_PEM_BYTES {
            return Err(CaError::NotACertificate {
                source_name: url.to_string(),
            });
        }
    }
    Ok((String::from_utf8_lossy(&body).into_owned(), url.to_string()))
}

#[cfg(test)]
mod tests;
