//! Certificates for HTTPS: Heroku's SNI endpoints (`certs:add`) and the platform's own CA.
//!
//! An SNI endpoint is a certificate chain and its private key uploaded for an app, kept at
//! `certs/<app id>/<endpoint id>` → [`SniEndpoint`]. It is checked when added (PEM that
//! parses, a key that matches the leaf, at least one DNS name) and served by the router for
//! every custom domain of the app that the certificate covers: the cert publisher builds the
//! router's [`CertTable`] from these records, the apps and their domains, and publishes each
//! new snapshot on a `watch` channel (the router never reads the store). Private keys are
//! secrets: the API never returns them.
//!
//! The platform's own hostnames (`<app>.<domain>`) and its own TLS listeners (the HTTPS API
//! and git, the rendezvous listener) get certificates issued by the platform CA
//! ([`load_or_create_ca`]), stored in `<data-dir>/tls/`; clients trust `router-ca.pem`. The CA
//! is name-constrained to the platform's domain and the listeners' names and addresses, so
//! custom domains are served only with uploaded certificates. A CA without that constraint (made by an older version, or for
//! another `--domain`) is replaced on start: clients must then trust the new `router-ca.pem`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use slipway_router::{CertIssuer, CertTable, ListenerNames, ServerCert};
use slipway_store::json::{apply_if, range_json};
use slipway_store::{Compare, Op, Store};
use tokio::sync::watch;
use uuid::Uuid;

use crate::error::CoreError;
use crate::model::{keys, App, Domain, SniEndpoint};
use crate::platform::Platform;

/// Where SNI endpoints live in the store.
pub(crate) const CERTS: &str = "certs/";

fn key(app_id: Uuid, id: Uuid) -> String {
    format!("{CERTS}{app_id}/{id}")
}

/// Parses and checks an upload; the error says what to fix (422).
fn check(certificate_chain: &str, private_key: &str) -> Result<ServerCert, CoreError> {
    ServerCert::from_pem(certificate_chain, private_key)
        .map_err(|error| CoreError::invalid(error.to_string()))
}

impl Platform {
    /// The app's SNI endpoints, oldest first.
    pub async fn sni_endpoints(&self, app: &App) -> Result<Vec<SniEndpoint>, CoreError> {
        let prefix = format!("{CERTS}{}/", app.id);
        let (stored, _) = range_json::<SniEndpoint, _>(self.store().as_ref(), &prefix).await?;
        let mut endpoints: Vec<SniEndpoint> = stored.into_iter().map(|(_, e)| e).collect();
        endpoints.sort_by_key(|e| e.created_at);
        Ok(endpoints)
    }

    /// One SNI endpoint, by name or id.
    pub async fn sni_endpoint(
        &self,
        app: &App,
        name_or_id: &str,
    ) -> Result<SniEndpoint, CoreError> {
        self.sni_endpoints(app)
            .await?
            .into_iter()
            .find(|e| e.name == name_or_id || e.id.to_string() == name_or_id)
            .ok_or_else(|| CoreError::not_found("SNI endpoint", name_or_id))
    }

    /// Uploads a certificate chain and its private key for the app.
    pub(crate) async fn add_sni_endpoint(
        &self,
        app: &App,
        certificate_chain: &str,
        private_key: &str,
    ) -> Result<SniEndpoint, CoreError> {
        let cert = check(certificate_chain, private_key)?;
        let id = Uuid::new_v4();
        let now = Utc::now();
        let endpoint = SniEndpoint {
            id,
            app_id: app.id,
            name: format!("sni-{}", &id.simple().to_string()[..8]),
            certificate_chain: certificate_chain.trim().to_owned() + "\n",
            private_key: private_key.trim().to_owned() + "\n",
            cert_domains: cert.hostnames().to_vec(),
            self_signed: cert.self_signed(),
            created_at: now,
            updated_at: now,
        };
        let applied = apply_if(
            self.store().as_ref(),
            Compare::exists(keys::app(&app.name)),
            Op::put_json(key(app.id, id), &endpoint)?,
        )
        .await?;
        if !applied {
            return Err(CoreError::not_found("app", app.name.clone()));
        }
        Ok(endpoint)
    }

    /// Replaces an endpoint's certificate chain and key (a renewal).
    pub(crate) async fn update_sni_endpoint(
        &self,
        app: &App,
        name_or_id: &str,
        certificate_chain: &str,
        private_key: &str,
    ) -> Result<SniEndpoint, CoreError> {
        let cert = check(certificate_chain, private_key)?;
        let mut endpoint = self.sni_endpoint(app, name_or_id).await?;
        endpoint.certificate_chain = certificate_chain.trim().to_owned() + "\n";
        endpoint.private_key = private_key.trim().to_owned() + "\n";
        endpoint.cert_domains = cert.hostnames().to_vec();
        endpoint.self_signed = cert.self_signed();
        endpoint.updated_at = Utc::now();
        let applied = apply_if(
            self.store().as_ref(),
            Compare::exists(key(app.id, endpoint.id)),
            Op::put_json(key(app.id, endpoint.id), &endpoint)?,
        )
        .await?;
        if !applied {
            return Err(CoreError::not_found("SNI endpoint", name_or_id));
        }
        Ok(endpoint)
    }

    /// Removes an endpoint; its domains go back to certificates issued by the platform CA.
    pub(crate) async fn remove_sni_endpoint(
        &self,
        app: &App,
        name_or_id: &str,
    ) -> Result<SniEndpoint, CoreError> {
        let endpoint = self.sni_endpoint(app, name_or_id).await?;
        self.store().delete(&key(app.id, endpoint.id)).await?;
        Ok(endpoint)
    }
}

/// Starts publishing the router's table of uploaded certificates.
pub fn spawn_cert_publisher(store: Arc<dyn Store>) -> watch::Receiver<Arc<CertTable>> {
    crate::routes::publish_on_change(
        store,
        &[CERTS, keys::DOMAINS, keys::APPS],
        "certificate table",
        CertTable::new(),
        |store| async move { build_cert_table(store.as_ref()).await },
    )
}

/// Starts publishing the uploaded certificates of every custom domain as PEM, for routers in
/// other processes (`slipway router --https`, through the cluster's certificate stream).
pub fn spawn_uploaded_cert_publisher(
    store: Arc<dyn Store>,
) -> watch::Receiver<Arc<Vec<UploadedCert>>> {
    crate::routes::publish_on_change(
        store,
        &[CERTS, keys::DOMAINS, keys::APPS],
        "uploaded certificates",
        Vec::new(),
        |store| async move { uploaded_certs(store.as_ref()).await },
    )
}

/// A custom domain's certificate chain and private key, PEM, as uploaded with `certs:add`.
#[derive(Clone, PartialEq, Eq)]
pub struct UploadedCert {
    /// The custom domain, lowercase.
    pub hostname: String,
    pub certificate_chain: String,
    pub private_key: String,
}

impl std::fmt::Debug for UploadedCert {
    // The private key is a secret: it never shows in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadedCert")
            .field("hostname", &self.hostname)
            .finish_non_exhaustive()
    }
}

/// Each custom domain → the newest certificate of its app that covers it.
async fn uploaded_certs(store: &dyn Store) -> Result<Vec<UploadedCert>, CoreError> {
    let (apps, _) = range_json::<App, _>(store, keys::APPS).await?;
    let (domains, _) = range_json::<Domain, _>(store, keys::DOMAINS).await?;
    let (endpoints, _) = range_json::<SniEndpoint, _>(store, CERTS).await?;
    let mut endpoints: Vec<SniEndpoint> = endpoints.into_iter().map(|(_, e)| e).collect();
    endpoints.sort_by_key(|e| std::cmp::Reverse(e.updated_at));
    let mut certs = Vec::new();
    for (_, domain) in domains {
        if !apps.iter().any(|(_, app)| app.id == domain.app_id) {
            continue;
        }
        let Some(endpoint) = endpoints
            .iter()
            .find(|e| e.app_id == domain.app_id && e.covers(&domain.hostname))
        else {
            continue;
        };
        certs.push(UploadedCert {
            hostname: domain.hostname.to_string(),
            certificate_chain: endpoint.certificate_chain.clone(),
            private_key: endpoint.private_key.clone(),
        });
    }
    Ok(certs)
}

/// The router's table of [`uploaded_certs`]; one that no longer parses is logged and left out.
async fn build_cert_table(store: &dyn Store) -> Result<CertTable, CoreError> {
    let mut table = CertTable::new();
    for cert in uploaded_certs(store).await? {
        match ServerCert::from_pem(&cert.certificate_chain, &cert.private_key) {
            Ok(parsed) => table.insert(cert.hostname, parsed),
            Err(error) => {
                tracing::error!(%error, hostname = %cert.hostname, "a stored certificate no longer parses")
            }
        }
    }
    Ok(table)
}

/// Why the platform CA could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("could not {action} {path}: {source}. Check the data directory's permissions.")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the router CA in {dir} is unusable: {source}. Move the directory away to create a new CA (clients must then trust the new router-ca.pem).")]
    Unusable {
        dir: PathBuf,
        #[source]
        source: slipway_router::CertError,
    },
}

/// The platform CA kept in `<data-dir>/tls/` (`router-ca.pem`, `router-ca-key.pem` with mode
/// 0600), created on first start, constrained to `domain` and the platform's own listeners
/// (`listeners`). A stored CA that is not constrained at all (an older version's, or another
/// domain's) is replaced by a new one with a new key; one whose constraints merely differ (the
/// listeners' names changed) gets a new certificate from the same key. Either way the server's
/// log says that clients must trust the new file.
pub fn load_or_create_ca(
    data_dir: &Path,
    domain: &str,
    listeners: &ListenerNames,
) -> Result<CertIssuer, CaError> {
    let dir = data_dir.join("tls");
    let cert_path = dir.join("router-ca.pem");
    let key_path = dir.join("router-ca-key.pem");
    let io = |action, path: &Path| {
        let path = path.to_owned();
        move |source| CaError::Io {
            action,
            path,
            source,
        }
    };
    let unusable = |source| CaError::Unusable {
        dir: dir.clone(),
        source,
    };
    if cert_path.exists() && key_path.exists() {
        let cert = std::fs::read_to_string(&cert_path).map_err(io("read", &cert_path))?;
        let key = std::fs::read_to_string(&key_path).map_err(io("read", &key_path))?;
        let issuer = CertIssuer::from_pem_with(&cert, &key, domain, listeners).map_err(unusable)?;
        if issuer.is_current() {
            return Ok(issuer);
        }
        if issuer.is_constrained() {
            tracing::warn!(
                path = %cert_path.display(),
                domain,
                hosts = ?listeners.hosts(),
                ips = ?listeners.ips(),
                "the platform CA's name constraints changed (the API's host names or addresses): re-issued its certificate from the same key; clients must trust the new CA certificate"
            );
            let issuer = issuer.with_current_constraints();
            write_atomically(&cert_path, issuer.ca_pem()).map_err(io("write", &cert_path))?;
            return Ok(issuer);
        }
        tracing::warn!(
            path = %cert_path.display(),
            domain,
            "the router CA is not name-constrained to the platform's domain: replacing it; clients must trust the new CA certificate"
        );
    }
    std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
    let issuer = CertIssuer::generate_with(domain, listeners).map_err(unusable)?;
    write_atomically(&key_path, &issuer.key_pem()).map_err(io("write", &key_path))?;
    write_atomically(&cert_path, issuer.ca_pem()).map_err(io("write", &cert_path))?;
    Ok(issuer)
}

/// Writes `text` to `path` through a `.partial` file made 0600 from its first byte and
/// renamed over it, so that a crash leaves the old file or the new one, never half of one.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&partial, path)
}

#[cfg(test)]
mod tests;
