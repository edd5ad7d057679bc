//! HTTPS end to end: a pushed app answers over HTTP/2 on the router's TLS port with a
//! certificate issued by the platform CA; the dyno sees `X-Forwarded-Proto: https` and the TLS
//! port; `certs:add` makes SNI serve an uploaded certificate for a custom domain; a mismatched
//! certificate and key are refused; private keys never come back from the API.

#[macro_use]
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use support::{text, Server};

const APP: &str = "tlsdemo";
const CUSTOM: &str = "www.tls-example.test";

/// An HTTPS client that trusts only `root_pem` and reaches `host` at the router's TLS port.
fn https_client(server: &Server, root_pem: &[u8], host: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(root_pem).unwrap())
        .resolve(
            host,
            SocketAddr::from(([127, 0, 0, 1], server.router_tls_port)),
        )
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn url(server: &Server, host: &str, path: &str) -> String {
    format!("https://{host}:{}{path}", server.router_tls_port)
}

/// A self-signed certificate for `hostname` and its key, written as PEM files in `dir`.
fn write_cert(dir: &Path, stem: &str, hostname: &str) -> (String, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![hostname.to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.join(format!("{stem}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{stem}.key")), key.serialize_pem()).unwrap();
    (cert.pem(), key)
}

/// Polls `client` until `host` answers 200 over HTTPS; the last error otherwise.
async fn wait_for_https(
    server: &Server,
    client: &reqwest::Client,
    host: &str,
) -> reqwest::Response {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let last = match client.get(url(server, host, "/env")).send().await {
            Ok(response) if response.status() == 200 => return response,
            Ok(response) => format!("status {}", response.status()),
            Err(error) => format!("{error:?}"),
        };
        assert!(
            Instant::now() < deadline,
            "https://{host} never answered 200 with the expected certificate: {last}\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn apps_answer_over_https_with_http2_and_uploaded_certificates_by_sni() {
    require_runc!();
    let server = Server::start();
    let _dir = server.deploy_echo_app(APP).await;

    // The default hostname: a certificate from the platform CA, HTTP/2 negotiated by ALPN.
    let ca = std::fs::read(server.data_dir.join("tls/router-ca.pem"))
        .expect("the server writes its CA to <data-dir>/tls/router-ca.pem");
    let host = format!("{APP}.localhost");
    let client = https_client(&server, &ca, &host);
    let response = wait_for_https(&server, &client, &host).await;
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let facts: serde_json::Value = response.json().await.unwrap();
    let headers = &facts["headers"];
    assert_eq!(headers["x-forwarded-proto"], "https", "{headers}");
    assert_eq!(
        headers["x-forwarded-port"],
        server.router_tls_port.to_string(),
        "{headers}"
    );
    assert_eq!(
        headers["host"],
        format!("{host}:{}", server.router_tls_port)
    );
    server
        .wait_for_log(APP, |log| {
            log.lines().any(|line| {
                line.contains("heroku[router]: at=info method=GET path=\"/env\"")
                    && line.contains(" status=200 ")
                    && line.ends_with(" protocol=https")
            })
        })
        .await;

    // A custom domain with an uploaded certificate: SNI serves it.
    let files = tempfile::tempdir().unwrap();
    let (cert_pem, _) = write_cert(files.path(), "custom", CUSTOM);
    let (_, _) = write_cert(files.path(), "other", CUSTOM);
    let cert = files.path().join("custom.pem");
    let key = files.path().join("custom.key");
    let other_key = files.path().join("other.key");

    let refused = server.cli(&[
        "certs:add",
        cert.to_str().unwrap(),
        other_key.to_str().unwrap(),
        "-a",
        APP,
    ]);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).contains("The private key does not match the certificate"),
        "{}",
        text(&refused)
    );
    let refused = server
        .api(reqwest::Method::POST, &format!("/apps/{APP}/sni-endpoints"))
        .json(&serde_json::json!({"certificate_chain": "nonsense", "private_key": "nonsense"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);

    server.cli_ok(&["domains:add", CUSTOM, "-a", APP]);
    let added = server.cli_ok(&[
        "certs:add",
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
        "-a",
        APP,
    ]);
    assert!(
        added.contains("Adding SSL certificate to ⬢ tlsdemo... done"),
        "{added}"
    );
    let listed = server.cli_ok(&["certs", "-a", APP]);
    assert!(listed.contains(CUSTOM), "{listed}");
    assert!(listed.contains("SNI"), "{listed}");

    let custom_client = https_client(&server, cert_pem.as_bytes(), CUSTOM);
    let response = wait_for_https(&server, &custom_client, CUSTOM).await;
    let facts: serde_json::Value = response.json().await.unwrap();
    assert_eq!(facts["headers"]["x-forwarded-proto"], "https");
    // The platform CA no longer vouches for that hostname's certificate.
    let ca_for_custom = https_client(&server, &ca, CUSTOM);
    assert!(ca_for_custom
        .get(url(&server, CUSTOM, "/"))
        .send()
        .await
        .is_err());

    // The API never returns the private key.
    let endpoints = server
        .api(reqwest::Method::GET, &format!("/apps/{APP}/sni-endpoints"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(endpoints.contains("BEGIN CERTIFICATE"), "{endpoints}");
    assert!(!endpoints.contains("PRIVATE KEY"), "{endpoints}");
    assert!(endpoints.contains(CUSTOM), "{endpoints}");
    let endpoints: serde_json::Value = serde_json::from_str(&endpoints).unwrap();
    assert_eq!(endpoints[0]["ssl_cert"]["cert_domains"][0], CUSTOM);
    assert_eq!(endpoints[0]["ssl_cert"]["self_signed?"], true);
    assert_eq!(endpoints[0]["domains"].as_array().unwrap().len(), 1);

    // Removing it does not give the domain a certificate from the platform CA: that CA is
    // constrained to the platform's domain, and the router serves custom domains only with
    // uploaded certificates.
    let removed = server.cli_ok(&["certs:remove", "-a", APP]);
    assert!(removed.contains("done"), "{removed}");
    let deadline = Instant::now() + Duration::from_secs(30);
    // A new client each time: a pooled connection would keep the old certificate.
    while https_client(&server, cert_pem.as_bytes(), CUSTOM)
        .get(url(&server, CUSTOM, "/env"))
        .send()
        .await
        .is_ok()
    {
        assert!(
            Instant::now() < deadline,
            "the removed certificate is still served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let error = ca_for_custom
        .get(url(&server, CUSTOM, "/env"))
        .send()
        .await
        .expect_err("a custom domain without an upload gets no CA-signed certificate");
    assert!(
        format!("{error:?}").contains("InvalidCertificate(UnknownIssuer)"),
        "{error:?}"
    );
    // The app's own hostname still does.
    wait_for_https(&server, &client, &host).await;
}

/// The platform CA is name-constrained to `--domain` and the API's own names and addresses:
/// signed with its own key, a certificate for another name or address does not verify. A CA an older version made without the constraint is
/// replaced on the next start.
#[tokio::test]
async fn the_platform_ca_vouches_for_the_platform_domain_alone() {
    let mut server = Server::start();
    let tls = server.data_dir.join("tls");
    let load = |tls: &Path| {
        slipway_router::CertIssuer::from_pem(
            &std::fs::read_to_string(tls.join("router-ca.pem")).unwrap(),
            &std::fs::read_to_string(tls.join("router-ca-key.pem")).unwrap(),
            "localhost",
        )
        .unwrap()
    };
    let issuer = load(&tls);
    assert!(issuer.vouches_for("tlsdemo.localhost"));
    // The API's own addresses (`--api-tls-host`, loopback by default) are the only IP
    // addresses it vouches for: the HTTPS API and the rendezvous listener present them.
    assert!(issuer.vouches_for("127.0.0.1"));
    for outside in [
        "evil.com",
        CUSTOM,
        "localhost.evil.com",
        "127.0.0.2",
        "10.0.0.1",
        "169.254.169.254",
    ] {
        assert!(!issuer.vouches_for(outside), "{outside}");
    }

    // What an older version left: a CA without name constraints.
    server.kill9();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
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
    let old = params.self_signed(&key).unwrap();
    std::fs::write(tls.join("router-ca.pem"), old.pem()).unwrap();
    std::fs::write(tls.join("router-ca-key.pem"), key.serialize_pem()).unwrap();
    assert!(
        load(&tls).vouches_for("evil.com"),
        "the old CA vouches for anyone"
    );

    server.restart_with(&[]);
    let replaced = std::fs::read_to_string(tls.join("router-ca.pem")).unwrap();
    assert_ne!(
        replaced,
        old.pem(),
        "the unconstrained CA was kept:\n{}",
        server.log()
    );
    let issuer = load(&tls);
    assert!(issuer.is_constrained());
    assert!(!issuer.vouches_for("evil.com"));
    assert!(server
        .log()
        .contains("the router CA is not name-constrained"));
}
