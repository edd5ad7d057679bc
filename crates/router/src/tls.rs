//! HTTPS for the router (reference §6.5): a TLS listener (rustls) that picks each connection's
//! certificate from its SNI name, then serves HTTP/2 or HTTP/1.1 as negotiated with ALPN.
//! Dynos always get HTTP/1.1, with `X-Forwarded-Proto: https` and the TLS listener's port in
//! `X-Forwarded-Port`; router log lines say `protocol=https`.
//!
//! Which certificate a handshake gets, by SNI name:
//! 1. the [`CertTable`]: certificates users uploaded (`certs:add`, Heroku's SNI endpoints),
//!    keyed by the custom domains they cover; published on a `watch` channel like routes;
//! 2. for any other hostname in the route table (`<app>.<domain>`, custom domains without an
//!    uploaded certificate): a certificate for that name issued by the platform's own
//!    [`CertIssuer`] (a local CA), generated on first use and cached;
//! 3. anything else (no SNI, unknown names): one fallback certificate, so that the client
//!    still gets the router's "no such app" page if it does not verify.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::{h1, proxy, RouteTable, Router};

/// Issued certificates kept before the cache is emptied (each is about 1 KB).
const MAX_ISSUED: usize = 10_000;

/// Why a certificate or key was refused.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("The certificate chain has no PEM `CERTIFICATE` block. Paste the contents of the .crt or .pem file, leaf certificate first.")]
    NoCertificate,
    #[error("The certificate chain could not be read: {0}. Check that it is PEM (-----BEGIN CERTIFICATE-----).")]
    BadChain(String),
    #[error("The private key could not be read: {0}. Give the unencrypted PEM key (-----BEGIN PRIVATE KEY----- or RSA/EC PRIVATE KEY).")]
    BadKey(String),
    #[error("The certificate is not valid: {0}.")]
    BadCertificate(String),
    #[error("The private key does not match the certificate. Give the key the certificate was issued for.")]
    KeyMismatch,
    #[error("The certificate names no DNS hostname (subjectAltName). Issue it for the app's custom domains.")]
    NoHostnames,
    #[error("Could not generate a certificate: {0}.")]
    Generate(#[from] rcgen::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate chain with its private key, checked to belong together.
#[derive(Clone)]
pub struct ServerCert {
    key: Arc<CertifiedKey>,
    hostnames: Vec<String>,
    self_signed: bool,
}

impl std::fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCert")
            .field("hostnames", &self.hostnames)
            .finish_non_exhaustive()
    }
}

impl ServerCert {
    /// Parses a PEM chain (leaf first) and its PEM private key; refuses a key that is not the
    /// leaf's and a leaf that names no DNS hostname.
    pub fn from_pem(chain: &str, key: &str) -> Result<ServerCert, CertError> {
        let certs = CertificateDer::pem_slice_iter(chain.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| CertError::BadChain(error.to_string()))?;
        if certs.is_empty() {
            return Err(CertError::NoCertificate);
        }
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
            .map_err(|error| CertError::BadKey(error.to_string()))?;
        Self::from_der(certs, key)
    }

    fn from_der(
        certs: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<ServerCert, CertError> {
        let (hostnames, self_signed) = {
            let leaf = webpki::EndEntityCert::try_from(&certs[0])
                .map_err(|error| CertError::BadCertificate(format!("{error:?}")))?;
            let names = leaf
                .valid_dns_names()
                .map(str::to_ascii_lowercase)
                .collect::<Vec<_>>();
            (names, leaf.issuer() == leaf.subject())
        };
        if hostnames.is_empty() {
            return Err(CertError::NoHostnames);
        }
        let signing = provider()
            .key_provider
            .load_private_key(key)
            .map_err(|error| CertError::BadKey(error.to_string()))?;
        let key = CertifiedKey::new(certs, signing);
        match key.keys_match() {
            Ok(()) => {}
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
                return Err(CertError::KeyMismatch)
            }
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(error) => return Err(CertError::BadCertificate(error.to_string())),
        }
        Ok(ServerCert {
            key: Arc::new(key),
            hostnames,
            self_signed,
        })
    }

    /// The DNS names of the leaf (`*.example.com` for wildcards), lowercase.
    pub fn hostnames(&self) -> &[String] {
        &self.hostnames
    }

    /// Whether the leaf names itself as its issuer (not signed by a certificate authority).
    pub fn self_signed(&self) -> bool {
        self.self_signed
    }

    /// Whether the leaf is valid for `hostname` (exactly, or through a one-label wildcard).
    pub fn covers(&self, hostname: &str) -> bool {
        let hostname = hostname.to_ascii_lowercase();
        self.hostnames
            .iter()
            .any(|name| match name.strip_prefix("*.") {
                Some(parent) => hostname
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
                None => *name == hostname,
            })
    }

    /// The leaf certificate, DER.
    pub fn leaf_der(&self) -> &[u8] {
        self.key.cert[0].as_ref()
    }
}

/// SNI hostname (lowercase) → the uploaded certificate served for it. Immutable once
/// published.
#[derive(Debug, Clone, Default)]
pub struct CertTable {
    hosts: HashMap<String, ServerCert>,
}

impl CertTable {
    pub fn new() -> Self {
        CertTable::default()
    }

    /// Serves `cert` to clients asking for `hostname`.
    pub fn insert(&mut self, hostname: impl Into<String>, cert: ServerCert) {
        self.hosts
            .insert(hostname.into().to_ascii_lowercase(), cert);
    }

    pub fn get(&self, hostname: &str) -> Option<&ServerCert> {
        self.hosts.get(hostname)
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }
}

/// The platform's certificate authority: it issues the certificates of hostnames nobody
/// uploaded one for. Clients trust its certificate ([`CertIssuer::ca_pem`]).
pub struct CertIssuer {
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
    ca_pem: String,
}

impl std::fmt::Debug for CertIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertIssuer").finish_non_exhaustive()
    }
}

/// The CA's parameters; deterministic, so that [`CertIssuer::from_pem`] rebuilds an issuer
/// whose certificates chain to the stored CA certificate.
fn ca_params() -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Slipway router CA");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Slipway");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2045, 1, 1);
    params
}

impl CertIssuer {
    /// A new CA with a fresh P-256 key.
    pub fn generate() -> Result<CertIssuer, CertError> {
        let ca_key = rcgen::KeyPair::generate()?;
        let ca = ca_params().self_signed(&ca_key)?;
        let ca_pem = ca.pem();
        Ok(CertIssuer { ca, ca_key, ca_pem })
    }

    /// The CA stored by an earlier [`CertIssuer::generate`] (its certificate and key PEM).
    pub fn from_pem(ca_pem: &str, key_pem: &str) -> Result<CertIssuer, CertError> {
        let ca_key = rcgen::KeyPair::from_pem(key_pem)
            .map_err(|error| CertError::BadKey(error.to_string()))?;
        let ca = ca_params().self_signed(&ca_key)?;
        Ok(CertIssuer {
            ca,
            ca_key,
            ca_pem: ca_pem.to_owned(),
        })
    }

    /// The CA certificate clients trust (`curl --cacert`).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA's private key, PEM (for storing it, mode 0600).
    pub fn key_pem(&self) -> String {
        self.ca_key.serialize_pem()
    }

    /// A certificate for `hostname` signed by this CA.
    pub fn issue(&self, hostname: &str) -> Result<ServerCert, CertError> {
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(vec![hostname.to_owned()])?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, hostname);
        params.not_before = rcgen::date_time_ymd(2025, 1, 1);
        params.not_after = rcgen::date_time_ymd(2045, 1, 1);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.ca, &self.ca_key)?;
        let ca_der = CertificateDer::from_pem_slice(self.ca_pem.as_bytes())
            .map_err(|error| CertError::BadChain(error.to_string()))?;
        ServerCert::from_der(
            vec![cert.der().clone(), ca_der],
            PrivateKeyDer::try_from(key.serialize_der())
                .map_err(|e| CertError::BadKey(e.into()))?,
        )
    }
}

/// How the HTTPS listener gets its certificates and what it tells dynos.
pub struct TlsSettings {
    /// Uploaded certificates by hostname.
    pub certs: watch::Receiver<Arc<CertTable>>,
    /// Issues certificates for routed hostnames without an uploaded one.
    pub issuer: Arc<CertIssuer>,
    /// Value of `X-Forwarded-Port` for HTTPS requests (the port clients connect to).
    pub port_for_header: u16,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("port_for_header", &self.port_for_header)
            .finish_non_exhaustive()
    }
}

/// Picks the certificate of each handshake from its SNI name.
struct Resolver {
    certs: watch::Receiver<Arc<CertTable>>,
    routes: watch::Receiver<Arc<RouteTable>>,
    issuer: Arc<CertIssuer>,
    issued: Mutex<HashMap<String, Arc<CertifiedKey>>>,
    fallback: Arc<CertifiedKey>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

impl Resolver {
    fn pick(&self, sni: Option<&str>) -> Arc<CertifiedKey> {
        let Some(name) = sni.map(str::to_ascii_lowercase) else {
            return self.fallback.clone();
        };
        if let Some(cert) = self.certs.borrow().get(&name) {
            return cert.key.clone();
        }
        if self.routes.borrow().get(&name).is_none() {
            return self.fallback.clone();
        }
        let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(key) = issued.get(&name) {
            return key.clone();
        }
        match self.issuer.issue(&name) {
            Ok(cert) => {
                if issued.len() >= MAX_ISSUED {
                    issued.clear();
                }
                issued.insert(name, cert.key.clone());
                cert.key
            }
            Err(error) => {
                tracing::error!(%error, hostname = %name, "could not issue a certificate");
                self.fallback.clone()
            }
        }
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.pick(hello.server_name()))
    }
}

impl Router {
    /// Serves HTTPS until `shutdown` resolves, like [`Router::serve`] does plain HTTP: HTTP/2
    /// or HTTP/1.1 by ALPN, certificates by SNI (see the module documentation).
    pub async fn serve_tls(
        self,
        listener: TcpListener,
        tls: TlsSettings,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let acceptor = Acceptor::new(&self, tls)?;
        self.serve_tls_with(listener, acceptor, shutdown).await
    }

    /// [`Router::serve_tls`] with an [`Acceptor`] that several listeners may share.
    pub(crate) async fn serve_tls_with(
        self,
        listener: TcpListener,
        acceptor: Acceptor,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let shared = self.shared;
        let header = h1::Listener {
            proto: "https",
            port: acceptor.port_for_header,
        };
        let acceptor = acceptor.tls;
        let connection_shared = shared.clone();
        crate::accept_until(
            shared,
            listener,
            shutdown,
            "HTTPS",
            move |stream, peer, stopping| {
                serve_tls_connection(
                    connection_shared.clone(),
                    acceptor.clone(),
                    stream,
                    peer,
                    header,
                    stopping,
                )
            },
        )
        .await
    }
}

/// The TLS side of an HTTPS listener: the rustls configuration with its SNI resolver (and its
/// cache of issued certificates), shared by every thread serving the listener.
#[derive(Clone)]
pub(crate) struct Acceptor {
    tls: tokio_rustls::TlsAcceptor,
    port_for_header: u16,
}

impl Acceptor {
    pub(crate) fn new(router: &Router, tls: TlsSettings) -> std::io::Result<Acceptor> {
        let fallback = tls
            .issuer
            .issue("slipway-router.invalid")
            .map_err(std::io::Error::other)?
            .key;
        let resolver = Resolver {
            certs: tls.certs,
            routes: router.shared.routes.clone(),
            issuer: tls.issuer,
            issued: Mutex::default(),
            fallback,
        };
        let mut server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(std::io::Error::other)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        // Stateless session tickets (keys rotate every 6 hours), shared by every router
        // thread: a returning client resumes without a new certificate signature.
        server.ticketer = rustls::crypto::ring::Ticketer::new().map_err(std::io::Error::other)?;
        Ok(Acceptor {
            tls: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
            port_for_header: tls.port_for_header,
        })
    }
}

/// Completes the handshake (within the header read timeout) and serves the connection with
/// the protocol ALPN chose.
async fn serve_tls_connection(
    shared: Arc<proxy::Shared>,
    acceptor: tokio_rustls::TlsAcceptor,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    header: h1::Listener,
    mut stopping: watch::Receiver<bool>,
) {
    let handshake =
        tokio::time::timeout(shared.config.header_read_timeout, acceptor.accept(stream));
    let stream = tokio::select! {
        done = handshake => match done {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::debug!(%error, %peer, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        },
        // A half-done handshake has no request in flight: shutdown does not wait for it.
        _ = stopping.wait_for(|stop| *stop) => return,
    };
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    if h2 {
        proxy::serve_h2(shared, stream, peer, header, stopping).await;
    } else {
        let mut stream = h1::serve_connection(shared, stream, peer, header, stopping).await;
        // TLS ends with close_notify before the TCP connection closes.
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_one_label() {
        let issuer = CertIssuer::generate().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![
            "*.example.com".to_owned(),
            "example.org".to_owned(),
        ])
        .unwrap()
        .self_signed(&key)
        .unwrap();
        let parsed = ServerCert::from_pem(&cert.pem(), &key.serialize_pem()).unwrap();
        assert!(parsed.covers("www.example.com"));
        assert!(parsed.covers("WWW.Example.com"));
        assert!(parsed.covers("example.org"));
        assert!(!parsed.covers("example.com"));
        assert!(!parsed.covers("a.b.example.com"));
        assert!(!parsed.covers("www.example.org"));
        assert!(parsed.self_signed());
        let issued = issuer.issue("demo.localhost").unwrap();
        assert_eq!(issued.hostnames(), ["demo.localhost"]);
        assert!(!issued.self_signed());
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let key = rcgen::KeyPair::generate().unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["www.example.com".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        assert!(matches!(
            ServerCert::from_pem(&cert.pem(), &other.serialize_pem()),
            Err(CertError::KeyMismatch)
        ));
        assert!(matches!(
            ServerCert::from_pem("not pem", &key.serialize_pem()),
            Err(CertError::NoCertificate)
        ));
        assert!(matches!(
            ServerCert::from_pem(&cert.pem(), "garbage"),
            Err(CertError::BadKey(_))
        ));
    }

    #[test]
    fn a_stored_ca_issues_certificates_that_chain_to_it() {
        let issuer = CertIssuer::generate().unwrap();
        let again = CertIssuer::from_pem(issuer.ca_pem(), &issuer.key_pem()).unwrap();
        let leaf = again.issue("demo.localhost").unwrap();
        let ca = CertificateDer::from_pem_slice(issuer.ca_pem().as_bytes()).unwrap();
        let anchor = webpki::anchor_from_trusted_cert(&ca).unwrap();
        let leaf_der = CertificateDer::from(leaf.leaf_der().to_vec());
        let end_entity = webpki::EndEntityCert::try_from(&leaf_der).unwrap();
        end_entity
            .verify_for_usage(
                rustls::crypto::ring::default_provider()
                    .signature_verification_algorithms
                    .all,
                &[anchor],
                &[],
                rustls_pki_types::UnixTime::now(),
                webpki::KeyUsage::server_auth(),
                None,
                None,
            )
            .unwrap();
    }
}
