//! Tests of the platform's own TLS: the listeners' names, the configured certificate's
//! checks, and a handshake that a client trusting only the platform CA completes.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("a socket address")
}

fn hosts(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

#[test]
fn the_listeners_names_are_the_configured_hosts_and_the_specific_bind_addresses() {
    let check = |configured: &[&str], bound: &[&str], dns: &[&str], ips: &[&str]| {
        let bound: Vec<SocketAddr> = bound.iter().map(|a| addr(a)).collect();
        let names = listener_names(&hosts(configured), &bound).unwrap();
        assert_eq!(names.hosts(), dns, "{configured:?} {bound:?}");
        let got: Vec<String> = names.ips().iter().map(ToString::to_string).collect();
        assert_eq!(got, ips, "{configured:?} {bound:?}");
    };
    check(
        &crate::defaults::API_TLS_HOSTS,
        &["127.0.0.1:5443", "127.0.0.1:5002"],
        &["localhost"],
        &["127.0.0.1", "::1"],
    );
    check(
        &["localhost"],
        &["0.0.0.0:5443", "[::]:5002"],
        &["localhost"],
        &[],
    );
    check(
        &["paas.example.com", "localhost"],
        &["192.0.2.10:5443", "[2001:db8::1]:5002"],
        &["paas.example.com", "localhost"],
        &["192.0.2.10", "2001:db8::1"],
    );
    for bad in ["*.example.com", "not a host", "0.0.0.0"] {
        assert!(
            matches!(
                listener_names(&hosts(&[bad]), &[]),
                Err(TlsSetupError::BadName { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn the_rendezvous_host_is_one_the_certificate_carries() {
    let names = listener_names(&hosts(&["localhost", "::1"]), &[]).unwrap();
    for (bound, expected) in [
        ("127.0.0.1:5002", "127.0.0.1"),
        ("[::1]:5002", "[::1]"),
        ("0.0.0.0:5002", "localhost"),
    ] {
        assert_eq!(host_for(addr(bound), &names), expected, "{bound}");
    }
    let ips_only = listener_names(&hosts(&["::1"]), &[]).unwrap();
    assert_eq!(host_for(addr("0.0.0.0:5002"), &ips_only), "[::1]");
}

fn issuer() -> CertIssuer {
    let names = listener_names(&hosts(&crate::defaults::API_TLS_HOSTS), &[]).unwrap();
    CertIssuer::generate_with("localhost", &names).unwrap()
}

/// A self-signed certificate for `name` and its key, PEM.
fn self_signed(name: &str) -> (String, String) {
    let key = rcgen_key();
    let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

fn rcgen_key() -> rcgen::KeyPair {
    rcgen::KeyPair::generate().unwrap()
}

#[test]
fn a_configured_certificate_is_checked_before_it_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed("paas.example.com");
    let (_, other_key) = self_signed("paas.example.com");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let cert_path = write("api.crt", &cert);
    let key_path = write("api.key", &key);
    let other_key_path = write("other.key", &other_key);
    let garbage_path = write("garbage.key", "not a key");
    let link_path = dir.path().join("link.key");
    std::os::unix::fs::symlink(&key_path, &link_path).unwrap();
    let missing = dir.path().join("missing.key");

    let served = listener_cert(Some((&cert_path, &key_path)), &issuer()).unwrap();
    assert_eq!(served.hostnames(), ["paas.example.com"]);
    assert!(served.self_signed());

    let error = listener_cert(Some((&cert_path, &other_key_path)), &issuer()).unwrap_err();
    assert!(
        matches!(
            error,
            TlsSetupError::Configured {
                error: CertError::KeyMismatch,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("other.key"), "{error}");
    assert!(matches!(
        listener_cert(Some((&cert_path, &garbage_path)), &issuer()),
        Err(TlsSetupError::Configured {
            error: CertError::BadKey(_),
            ..
        })
    ));
    let error = listener_cert(Some((&cert_path, &missing)), &issuer()).unwrap_err();
    assert!(matches!(error, TlsSetupError::Read { .. }), "{error:?}");
    assert!(error.to_string().contains("missing.key"), "{error}");
    // A symbolic link is not followed (the key could be any file the server can read).
    assert!(matches!(
        listener_cert(Some((&cert_path, &link_path)), &issuer()),
        Err(TlsSetupError::Read { .. })
    ));
    // The key is never quoted back.
    let error = listener_cert(Some((&key_path, &key_path)), &issuer()).unwrap_err();
    assert!(
        !format!("{error} {error:?}").contains("PRIVATE KEY"),
        "{error}"
    );
}

/// A client trusting `ca_pem` alone connects to `addr` as `name` and exchanges a line.
async fn handshake(addr: SocketAddr, ca_pem: &str, name: &str) -> std::io::Result<Vec<u8>> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let mut tls = connector
        .connect(ServerName::try_from(name.to_owned()).unwrap(), tcp)
        .await?;
    tls.write_all(b"ping\n").await?;
    let mut reply = vec![0; 5];
    tls.read_exact(&mut reply).await?;
    Ok(reply)
}

#[tokio::test]
async fn a_client_trusting_only_the_platform_ca_completes_the_handshake() {
    let issuer = issuer();
    let config = server_config(&issuer.issue_for_listeners().unwrap(), &[]).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let mut line = vec![0; 5];
                    if tls.read_exact(&mut line).await.is_ok() {
                        let _ = tls.write_all(b"pong\n").await;
                        let _ = tls.flush().await;
                    }
                }
            });
        }
    });
    for name in ["127.0.0.1", "localhost"] {
        let reply = handshake(addr, issuer.ca_pem(), name).await.unwrap();
        assert_eq!(reply, b"pong\n", "{name}");
    }
    // A name the certificate does not carry, or another CA: refused.
    assert!(handshake(addr, issuer.ca_pem(), "paas.example.com")
        .await
        .is_err());
    let other = CertIssuer::generate_with("localhost", issuer.listeners()).unwrap();
    assert!(handshake(addr, other.ca_pem(), "127.0.0.1").await.is_err());
}

fn route(hostname: &str) -> slipway_api_types::cluster::HostRoute {
    slipway_api_types::cluster::HostRoute {
        hostname: hostname.to_owned(),
        app: "web".to_owned(),
        status: slipway_api_types::cluster::RouteStatus::Serving,
        backends: Vec::new(),
    }
}

#[test]
fn standalone_routers_get_uploaded_certificates_and_ca_issued_ones_for_routed_platform_names() {
    let issuer = CertIssuer::generate("slipway.test").unwrap();
    let uploaded = vec![UploadedCert {
        hostname: "www.example.test".into(),
        certificate_chain: "UPLOADED-CHAIN".into(),
        private_key: "UPLOADED-KEY".into(),
    }];
    let routes = RouteSnapshot {
        routes: vec![
            route("web.slipway.test"),
            route("www.example.test"),
            // A custom domain without an uploaded certificate gets none: the CA does not
            // vouch for it.
            route("bare.example.test"),
        ],
    };
    let mut issued = HashMap::new();
    let snapshot = cert_snapshot(&uploaded, &routes, &issuer, &mut issued);
    let names: Vec<&str> = snapshot.certs.iter().map(|c| c.hostname.as_str()).collect();
    assert_eq!(names, ["web.slipway.test", "www.example.test"]);
    assert_eq!(snapshot.certs[1].key_pem, "UPLOADED-KEY");
    // The issued certificate chains to the platform CA for its name, and parses with its key.
    let issued_cert = &snapshot.certs[0];
    let served = ServerCert::from_pem(&issued_cert.chain_pem, &issued_cert.key_pem).unwrap();
    let ca = CertificateDer::from_pem_slice(issuer.ca_pem().as_bytes()).unwrap();
    assert!(slipway_router::verifies(
        &ca,
        &CertificateDer::from(served.leaf_der().to_vec()),
        "web.slipway.test"
    ));
    // Issued once: the next snapshot reuses it; an unrouted name is forgotten.
    let again = cert_snapshot(&uploaded, &routes, &issuer, &mut issued);
    assert_eq!(again, snapshot);
    let fewer = RouteSnapshot {
        routes: vec![route("www.example.test")],
    };
    cert_snapshot(&uploaded, &fewer, &issuer, &mut issued);
    assert!(issued.is_empty());
}
