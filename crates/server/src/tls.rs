//! The platform's own TLS listeners: the HTTPS listener for the API and git
//! (`--api-tls-addr`), serving the same axum app as the plain API listener, and the rustls
//! configuration of the rendezvous listener. Both present one certificate: issued by the
//! platform CA for every name and address clients use to reach them ([`ListenerNames`]), or
//! the one configured with `--api-tls-cert` and `--api-tls-key`.
//!
//! Standalone routers (`slipway router --https`) serve apps over HTTPS with what
//! [`spawn_cert_snapshots`] publishes for the cluster's certificate stream: every custom
//! domain's uploaded certificate, and for every routed `<app>.<domain>` a certificate the
//! platform CA issued here (the CA's key never leaves the control plane).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use slipway_api_types::cluster::{CertSnapshot, HostCert, RouteSnapshot};
use slipway_core::UploadedCert;
use slipway_router::{CertError, CertIssuer, ListenerNames, ServerCert};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How long a client may take to finish its TLS handshake before the connection is dropped,
/// so that idle sockets cannot pile up on the listener.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest certificate or key file `--api-tls-cert`/`--api-tls-key` may name: a chain of a
/// dozen certificates fits many times over.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// Why the platform's own TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    // The causes are in the messages, next to the advice, and not repeated as sources.
    #[error("--api-tls-host {name:?}: {error}")]
    BadName { name: String, error: CertError },
    #[error("give both --api-tls-cert and --api-tls-key, or neither")]
    HalfConfigured,
    #[error("could not read {}: {error}. Check the path and the file's permissions.", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{} is larger than {MAX_PEM_BYTES} bytes: give the PEM certificate chain or key", path.display())]
    TooLarge { path: PathBuf },
    #[error("the certificate {} and key {} cannot be served: {error}", cert.display(), key.display())]
    Configured {
        cert: PathBuf,
        key: PathBuf,
        error: CertError,
    },
    #[error("issuing the API's certificate from the platform CA: {0}")]
    Issue(CertError),
    #[error("building the TLS configuration: {0}")]
    Rustls(rustls::Error),
}

/// Every name and address the listeners' certificate carries: the configured hosts, plus the
/// address each TLS listener binds to when it is a specific one.
pub(crate) fn listener_names(
    hosts: &[String],
    bound: &[SocketAddr],
) -> Result<ListenerNames, TlsSetupError> {
    let mut names = ListenerNames::default();
    for name in hosts {
        names.add(name).map_err(|error| TlsSetupError::BadName {
            name: name.clone(),
            error,
        })?;
    }
    for addr in bound {
        if !addr.ip().is_unspecified() {
            names
                .add(&addr.ip().to_string())
                .map_err(|error| TlsSetupError::BadName {
                    name: addr.ip().to_string(),
                    error,
                })?;
        }
    }
    Ok(names)
}

/// The host clients name to reach `addr`, as the certificate carries it: its address when it
/// is a specific one, else the first configured host name, else loopback.
pub(crate) fn host_for(addr: SocketAddr, names: &ListenerNames) -> String {
    let ip = addr.ip();
    let host = if !ip.is_unspecified() {
        ip
    } else if let Some(host) = names.hosts().first() {
        return host.clone();
    } else if let Some(ip) = names.ips().first() {
        *ip
    } else {
        IpAddr::from(std::net::Ipv4Addr::LOCALHOST)
    };
    match host {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// The listeners' certificate: the configured one, checked (PEM that parses, a key that
/// matches the leaf), or one issued by the platform CA.
pub(crate) fn listener_cert(
    configured: Option<(&Path, &Path)>,
    issuer: &CertIssuer,
) -> Result<ServerCert, TlsSetupError> {
    let Some((cert, key)) = configured else {
        return issuer.issue_for_listeners().map_err(TlsSetupError::Issue);
    };
    let chain = read_pem(cert)?;
    let private_key = read_pem(key)?;
    ServerCert::from_pem(&chain, &private_key).map_err(|error| TlsSetupError::Configured {
        cert: cert.to_owned(),
        key: key.to_owned(),
        error,
    })
}

/// A PEM file, capped, without following a symbolic link at its last component.
fn read_pem(path: &Path) -> Result<String, TlsSetupError> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let read = |error| TlsSetupError::Read {
        path: path.to_owned(),
        error,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(read)?;
    let mut text = String::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read)?;
    if text.len() as u64 > MAX_PEM_BYTES {
        return Err(TlsSetupError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(text)
}

/// One certificate for every handshake, whatever the SNI name (or none, as for IP addresses).
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// A rustls configuration presenting `cert`, offering `alpn` protocols.
pub(crate) fn server_config(
    cert: &ServerCert,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ServerConfig>, TlsSetupError> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(TlsSetupError::Rustls)?
    .with_no_client_auth()
    .with_cert_resolver(Arc::new(Fixed(cert.certified_key())));
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Serves `app` over TLS on `listener` until `stop` turns true, then lets the requests in
/// flight finish.
pub(crate) async fn serve_https(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(%error, "accepting an HTTPS API connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop_requested(&mut stop) => break,
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
            else {
                return;
            };
            let connection = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                .into_owned();
            let _ = watcher.watch(connection).await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Returns once `stop` turns true (or its sender is gone), holding no borrow of it.
async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await.map(|_| ());
}

/// The certificates a standalone router serves, kept current with the uploaded certificates
/// and the routed hostnames: an uploaded certificate wins, a routed name under the platform's
/// domain gets one issued by `issuer` (issued once per name and kept while it is routed).
pub(crate) fn spawn_cert_snapshots(
    mut uploaded: watch::Receiver<Arc<Vec<UploadedCert>>>,
    mut routes: watch::Receiver<Arc<RouteSnapshot>>,
    issuer: Arc<CertIssuer>,
) -> watch::Receiver<Arc<CertSnapshot>> {
    let mut issued = HashMap::new();
    let first = cert_snapshot(
        &uploaded.borrow_and_update(),
        &routes.borrow_and_update(),
        &issuer,
        &mut issued,
    );
    let (sender, receiver) = watch::channel(Arc::new(first));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                changed = uploaded.changed() => if changed.is_err() { return },
                changed = routes.changed() => if changed.is_err() { return },
            }
            let snapshot = cert_snapshot(
                &uploaded.borrow_and_update(),
                &routes.borrow_and_update(),
                &issuer,
                &mut issued,
            );
            if **sender.borrow() == snapshot {
                continue;
            }
            if sender.send(Arc::new(snapshot)).is_err() {
                return;
            }
        }
    });
    receiver
}

/// One snapshot of [`spawn_cert_snapshots`]; `issued` (hostname → chain and key PEM) is the
/// cache of certificates the CA issued, pruned to the names still routed.
pub(crate) fn cert_snapshot(
    uploaded: &[UploadedCert],
    routes: &RouteSnapshot,
    issuer: &CertIssuer,
    issued: &mut HashMap<String, (String, String)>,
) -> CertSnapshot {
    let mut certs: Vec<HostCert> = uploaded
        .iter()
        .map(|cert| HostCert {
            hostname: cert.hostname.to_ascii_lowercase(),
            chain_pem: cert.certificate_chain.clone(),
            key_pem: cert.private_key.clone(),
        })
        .collect();
    issued.retain(|hostname, _| routes.routes.iter().any(|r| r.hostname == *hostname));
    for route in &routes.routes {
        let hostname = route.hostname.to_ascii_lowercase();
        if !issuer.covers(&hostname) || certs.iter().any(|c| c.hostname == hostname) {
            continue;
        }
        let (chain_pem, key_pem) = match issued.get(&hostname) {
            Some(pems) => pems.clone(),
            None => match issuer.issue_pem(&hostname) {
                Ok(pems) => {
                    issued.insert(hostname.clone(), pems.clone());
                    pems
                }
                Err(error) => {
                    tracing::error!(%error, %hostname, "could not issue a certificate for standalone routers");
                    continue;
                }
            },
        };
        certs.push(HostCert {
            hostname,
            chain_pem,
            key_pem,
        });
    }
    certs.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    CertSnapshot { certs }
}

#[cfg(test)]
mod tests;
