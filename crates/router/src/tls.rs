//! HTTPS for the router (reference §6.5): a TLS listener (rustls) that picks each connection's
//! certificate from its SNI name, then serves HTTP/2 or HTTP/1.1 as negotiated with ALPN.
//! Dynos always get HTTP/1.1, with `X-Forwarded-Proto: https` and the TLS listener's port in
//! `X-Forwarded-Port`; router log lines say `protocol=https`.
//!
//! Which certificate a handshake gets, by SNI name:
//! 1. the [`CertTable`]: certificates users uploaded (`certs:add`, Heroku's SNI endpoints),
//!    keyed by the custom domains they cover; published on a `watch` channel like routes;
//! 2. for any other routed hostname under the platform's domain (`<app>.<domain>`): a
//!    certificate for that name issued by the platform's own [`CertIssuer`] (a local CA),
//!    generated on first use and cached;
//! 3. anything else (no SNI, unknown names, custom domains without an uploaded certificate):
//!    one fallback certificate, self-signed for `slipway-router.invalid` and **not** chained to
//!    the platform CA, so that a client that does not verify still gets the router's pages
//!    while no verifying client ever accepts it.
//!
//! The platform CA is constrained (X.509 name constraints, RFC 5280 §4.2.1.10) to the
//! platform's domain plus the names and IP addresses of the platform's own TLS listeners
//! ([`ListenerNames`]: the HTTPS API and git, the rendezvous listener), and may name no other
//! IP address: clients trust it, so it must not be able to vouch for anyone else's hostname
//! (`evil.com`, a custom domain) or address, even if its key leaks.

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

use crate::policy::Listener;
use crate::route::RouteTable;
use crate::server::{accept_until, Router};
use crate::shared::Shared;
use crate::{h1, proxy};

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
    #[error("The platform CA issues certificates only under {domain}, not for {hostname}.")]
    OutsideDomain { hostname: String, domain: String },
    #[error("{0:?} is neither a host name nor an IP address. Name the API's hosts as `localhost`, `paas.example.com` or `192.0.2.10`.")]
    BadListenerName(String),
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
        // One matching rule for every certificate name, slipway-model's: a name that is not a
        // hostname covers nothing, a wildcard covers exactly one label.
        self.hostnames.iter().any(|name| {
            name.parse::<slipway_model::Hostname>()
                .is_ok_and(|name| name.covers(hostname))
        })
    }

    /// The leaf certificate, DER.
    pub fn leaf_der(&self) -> &[u8] {
        self.key.cert[0].as_ref()
    }

    /// The chain and signing key, as a rustls listener serves them.
    pub fn certified_key(&self) -> Arc<CertifiedKey> {
        self.key.clone()
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

/// The platform's certificate authority: it issues the certificates of the platform's own
/// hostnames (`<app>.<domain>`) and of the platform's own TLS listeners (the HTTPS API and
/// git, the rendezvous listener). Clients trust its certificate ([`CertIssuer::ca_pem`]), which
/// is name-constrained to the domain plus the listeners' [`ListenerNames`].
pub struct CertIssuer {
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
    ca_pem: String,
    /// Lowercase, without a trailing dot.
    domain: String,
    listeners: ListenerNames,
}

impl std::fmt::Debug for CertIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertIssuer").finish_non_exhaustive()
    }
}

/// The names and addresses clients use to reach the platform's own TLS listeners (the HTTPS
/// API and the rendezvous listener): the platform CA may vouch for exactly these besides the
/// apps' domain, and the listeners' certificate carries them all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenerNames {
    /// DNS names, lowercase, without a trailing dot. A name constraint covers a name's
    /// subdomains too (RFC 5280), so `localhost` also permits `x.localhost`.
    hosts: Vec<String>,
    /// IP addresses, each permitted alone (a /32 or /128 constraint).
    ips: Vec<std::net::IpAddr>,
}

impl ListenerNames {
    /// The names in `names` (host names or IP addresses), deduplicated in their order;
    /// refuses anything else.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<ListenerNames, CertError> {
        let mut parsed = ListenerNames::default();
        for name in names {
            parsed.add(name)?;
        }
        Ok(parsed)
    }

    /// Adds a host name or an IP address (IPv6 with or without brackets), once.
    pub fn add(&mut self, name: &str) -> Result<(), CertError> {
        let trimmed = name.trim();
        let unbracketed = trimmed
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
            .unwrap_or(trimmed);
        if let Ok(ip) = unbracketed.parse::<std::net::IpAddr>() {
            if ip.is_unspecified() {
                return Err(CertError::BadListenerName(name.to_owned()));
            }
            if !self.ips.contains(&ip) {
                self.ips.push(ip);
            }
            return Ok(());
        }
        let host = normalize_domain(trimmed);
        match host.parse::<slipway_model::Hostname>() {
            Ok(parsed) if !parsed.is_wildcard() => {
                if !self.hosts.contains(&host) {
                    self.hosts.push(host);
                }
                Ok(())
            }
            _ => Err(CertError::BadListenerName(name.to_owned())),
        }
    }

    /// The DNS names.
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// The IP addresses.
    pub fn ips(&self) -> &[std::net::IpAddr] {
        &self.ips
    }

    /// Whether there is no name at all (a CA for the apps' domain only).
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.ips.is_empty()
    }
}

/// The CA's parameters; deterministic, so that [`CertIssuer::from_pem`] rebuilds an issuer
/// whose certificates chain to the stored CA certificate, and so that a stored CA whose
/// constraints differ from these is recognised ([`CertIssuer::is_current`]). Name constraints:
/// DNS names under `domain` and under the listeners' host names, and the listeners' IP
/// addresses one by one; without any listener address, no IP address at all (a permitted IP
/// subtree restricts IP names to it, its absence would leave them unconstrained).
fn ca_params(domain: &str, listeners: &ListenerNames) -> rcgen::CertificateParams {
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
    let mut permitted = vec![rcgen::GeneralSubtree::DnsName(domain.to_owned())];
    for host in &listeners.hosts {
        // A host under the domain is permitted already; a second subtree would only make the
        // constraints differ between configurations that mean the same.
        if !is_within(host, domain) {
            permitted.push(rcgen::GeneralSubtree::DnsName(host.clone()));
        }
    }
    for ip in &listeners.ips {
        let prefix = if ip.is_ipv4() { 32 } else { 128 };
        permitted.push(rcgen::GeneralSubtree::IpAddress(
            rcgen::CidrSubnet::from_addr_prefix(*ip, prefix),
        ));
    }
    let excluded = if listeners.ips.is_empty() {
        vec![
            rcgen::GeneralSubtree::IpAddress(rcgen::CidrSubnet::V4([0; 4], [0; 4])),
            rcgen::GeneralSubtree::IpAddress(rcgen::CidrSubnet::V6([0; 16], [0; 16])),
        ]
    } else {
        Vec::new()
    };
    params.name_constraints = Some(rcgen::NameConstraints {
        permitted_subtrees: permitted,
        excluded_subtrees: excluded,
    });
    params
}

fn normalize_domain(domain: &str) -> String {
    domain.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `hostname` is `domain` or under it (both normalized).
fn is_within(hostname: &str, domain: &str) -> bool {
    match (
        hostname.parse::<slipway_model::Hostname>(),
        domain.parse::<slipway_model::Hostname>(),
    ) {
        (Ok(hostname), Ok(domain)) => !hostname.is_wildcard() && hostname.is_within(&domain),
        _ => false,
    }
}

/// The `tbsCertificate` of a DER certificate: everything the signature covers. Two
/// certificates made from the same key and parameters have the same one (rcgen derives the
/// serial number from the key), while ECDSA signatures differ each time.
fn tbs_certificate(der: &[u8]) -> Option<&[u8]> {
    /// The header length and content length of the DER element at the start of `bytes`.
    fn header(bytes: &[u8]) -> Option<(usize, usize)> {
        let first = *bytes.get(1)?;
        if first < 0x80 {
            return Some((2, usize::from(first)));
        }
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let mut length = 0usize;
        for byte in bytes.get(2..2 + count)? {
            length = (length << 8) | usize::from(*byte);
        }
        Some((2 + count, length))
    }
    let (outer, _) = header(der)?;
    let inner = der.get(outer..)?;
    let (head, length) = header(inner)?;
    inner.get(..head.checked_add(length)?)
}

impl CertIssuer {
    /// A new CA for `domain` with a fresh P-256 key, for the apps' hostnames only.
    pub fn generate(domain: &str) -> Result<CertIssuer, CertError> {
        Self::generate_with(domain, &ListenerNames::default())
    }

    /// A new CA for `domain` and the platform's own listeners, with a fresh P-256 key.
    pub fn generate_with(domain: &str, listeners: &ListenerNames) -> Result<CertIssuer, CertError> {
        let ca_key = rcgen::KeyPair::generate()?;
        let ca_pem = {
            let domain = normalize_domain(domain);
            ca_params(&domain, listeners).self_signed(&ca_key)?.pem()
        };
        Self::rebuild(&ca_pem, ca_key, domain, listeners)
    }

    /// The CA stored by an earlier [`CertIssuer::generate`] (its certificate and key PEM), for
    /// `domain`. Check [`CertIssuer::is_constrained`]: a CA stored by an older version is not.
    pub fn from_pem(ca_pem: &str, key_pem: &str, domain: &str) -> Result<CertIssuer, CertError> {
        Self::from_pem_with(ca_pem, key_pem, domain, &ListenerNames::default())
    }

    /// The CA stored by an earlier [`CertIssuer::generate_with`], for `domain` and
    /// `listeners`. Check [`CertIssuer::is_current`]: the stored certificate may carry other
    /// constraints (an older version's, another configuration's).
    pub fn from_pem_with(
        ca_pem: &str,
        key_pem: &str,
        domain: &str,
        listeners: &ListenerNames,
    ) -> Result<CertIssuer, CertError> {
        let ca_key = rcgen::KeyPair::from_pem(key_pem)
            .map_err(|error| CertError::BadKey(error.to_string()))?;
        Self::rebuild(ca_pem, ca_key, domain, listeners)
    }

    /// This CA's key with the constraints for its domain and listeners: the CA certificate
    /// becomes the one they make ([`CertIssuer::ca_pem`]), to be stored in place of the old
    /// one, which clients must then trust instead.
    pub fn with_current_constraints(self) -> CertIssuer {
        CertIssuer {
            ca_pem: self.ca.pem(),
            ..self
        }
    }

    fn rebuild(
        ca_pem: &str,
        ca_key: rcgen::KeyPair,
        domain: &str,
        listeners: &ListenerNames,
    ) -> Result<CertIssuer, CertError> {
        let domain = normalize_domain(domain);
        let ca = ca_params(&domain, listeners).self_signed(&ca_key)?;
        Ok(CertIssuer {
            ca,
            ca_key,
            ca_pem: ca_pem.to_owned(),
            domain,
            listeners: listeners.clone(),
        })
    }

    /// The domain this CA issues under.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The listeners' names this CA may vouch for besides the domain.
    pub fn listeners(&self) -> &ListenerNames {
        &self.listeners
    }

    /// Whether `hostname` is the domain or under it.
    pub fn covers(&self, hostname: &str) -> bool {
        // A wildcard or a string that is no hostname gets no certificate from the CA.
        is_within(hostname.trim(), &self.domain)
    }

    /// Whether a client trusting [`CertIssuer::ca_pem`] would accept a certificate this CA
    /// signed for `hostname` (webpki's verification, name constraints included).
    pub fn vouches_for(&self, hostname: &str) -> bool {
        let Ok((leaf, _)) = self.sign(hostname) else {
            return false;
        };
        let Ok(ca) = CertificateDer::from_pem_slice(self.ca_pem.as_bytes()) else {
            return false;
        };
        verifies(&ca, leaf.der(), hostname)
    }

    /// Whether the stored CA certificate carries this issuer's name constraints: it vouches
    /// for a name under the domain and for none outside it.
    pub fn is_constrained(&self) -> bool {
        self.vouches_for(&format!("slipway-probe.{}", self.domain))
            && !self.vouches_for("slipway-probe.invalid")
    }

    /// Whether the stored CA certificate is exactly the one this issuer's key, domain and
    /// listener names make (signature aside): same constraints, nothing more, nothing less.
    pub fn is_current(&self) -> bool {
        let Ok(stored) = CertificateDer::from_pem_slice(self.ca_pem.as_bytes()) else {
            return false;
        };
        match (tbs_certificate(&stored), tbs_certificate(self.ca.der())) {
            (Some(stored), Some(rebuilt)) => stored == rebuilt,
            _ => false,
        }
    }

    /// The CA certificate clients trust (`curl --cacert`).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA's private key, PEM (for storing it, mode 0600).
    pub fn key_pem(&self) -> String {
        self.ca_key.serialize_pem()
    }

    /// A certificate for `hostname` (under the CA's domain) signed by this CA.
    pub fn issue(&self, hostname: &str) -> Result<ServerCert, CertError> {
        if !self.covers(hostname) {
            return Err(CertError::OutsideDomain {
                hostname: hostname.to_owned(),
                domain: self.domain.clone(),
            });
        }
        let (cert, key) = self.sign(hostname)?;
        self.chain(cert, key)
    }

    /// [`CertIssuer::issue`] as PEM, the chain (leaf, then the CA) and the key, for a router
    /// in another process (`slipway router --https`), which never holds the CA's key.
    pub fn issue_pem(&self, hostname: &str) -> Result<(String, String), CertError> {
        if !self.covers(hostname) {
            return Err(CertError::OutsideDomain {
                hostname: hostname.to_owned(),
                domain: self.domain.clone(),
            });
        }
        let (cert, key) = self.sign(hostname)?;
        let mut chain = cert.pem();
        if !chain.ends_with('\n') {
            chain.push('\n');
        }
        chain.push_str(&self.ca_pem);
        Ok((chain, key.serialize_pem()))
    }

    /// The certificate of the platform's own TLS listeners: every listener name and address
    /// as a subject alternative name, signed by this CA.
    pub fn issue_for_listeners(&self) -> Result<ServerCert, CertError> {
        let Some(first) = self.listeners.hosts.first() else {
            return Err(CertError::NoHostnames);
        };
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(self.listeners.hosts.clone())?;
        params.subject_alt_names.extend(
            self.listeners
                .ips
                .iter()
                .map(|ip| rcgen::SanType::IpAddress(*ip)),
        );
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, first.as_str());
        params.not_before = rcgen::date_time_ymd(2025, 1, 1);
        params.not_after = rcgen::date_time_ymd(2045, 1, 1);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.ca, &self.ca_key)?;
        self.chain(cert, key)
    }

    /// `cert` followed by the stored CA certificate, with `key`.
    fn chain(
        &self,
        cert: rcgen::Certificate,
        key: rcgen::KeyPair,
    ) -> Result<ServerCert, CertError> {
        let ca_der = CertificateDer::from_pem_slice(self.ca_pem.as_bytes())
            .map_err(|error| CertError::BadChain(error.to_string()))?;
        ServerCert::from_der(
            vec![cert.der().clone(), ca_der],
            PrivateKeyDer::try_from(key.serialize_der())
                .map_err(|e| CertError::BadKey(e.into()))?,
        )
    }

    /// A leaf certificate for `hostname` signed by this CA, whatever the name.
    fn sign(&self, hostname: &str) -> Result<(rcgen::Certificate, rcgen::KeyPair), CertError> {
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(vec![hostname.to_owned()])?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, hostname);
        params.not_before = rcgen::date_time_ymd(2025, 1, 1);
        params.not_after = rcgen::date_time_ymd(2045, 1, 1);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.ca, &self.ca_key)?;
        Ok((cert, key))
    }
}

/// Whether `leaf` chains to `ca` for a server named `hostname`, as a webpki client checks it
/// (signatures, validity, name constraints, the name itself).
pub fn verifies(ca: &CertificateDer<'_>, leaf: &CertificateDer<'_>, hostname: &str) -> bool {
    let Ok(anchor) = webpki::anchor_from_trusted_cert(ca) else {
        return false;
    };
    let Ok(end_entity) = webpki::EndEntityCert::try_from(leaf) else {
        return false;
    };
    let Ok(name) = rustls_pki_types::ServerName::try_from(hostname) else {
        return false;
    };
    end_entity
        .verify_for_usage(
            provider().signature_verification_algorithms.all,
            &[anchor],
            &[],
            rustls_pki_types::UnixTime::now(),
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .is_ok()
        && end_entity.verify_is_valid_for_subject_name(&name).is_ok()
}

/// The fallback certificate: self-signed for `slipway-router.invalid`, chained to nothing.
fn self_signed_fallback() -> Result<ServerCert, CertError> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(vec!["slipway-router.invalid".to_owned()])?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "slipway-router.invalid");
    let cert = params.self_signed(&key)?;
    ServerCert::from_der(
        vec![cert.der().clone()],
        PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| CertError::BadKey(e.into()))?,
    )
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
        // The platform CA vouches only for routed names under the platform's domain: a custom
        // domain is served with its uploaded certificate or not at all.
        if !self.issuer.covers(&name) || self.routes.borrow().get(&name).is_none() {
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
        let header = Listener {
            proto: "https",
            port: acceptor.port_for_header,
        };
        let acceptor = acceptor.tls;
        let connection_shared = shared.clone();
        accept_until(
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
        let fallback = self_signed_fallback().map_err(std::io::Error::other)?.key;
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
    shared: Arc<Shared>,
    acceptor: tokio_rustls::TlsAcceptor,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    header: Listener,
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
mod tests;
