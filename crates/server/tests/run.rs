//! `slipway_server::run` in-process: the whole platform starts on free ports with a data
//! directory of its own, serves the Platform API, and releases every port on shutdown.

use std::net::{Ipv4Addr, SocketAddr};

use slipway_server::{RuntimeKind, ServerConfig};

fn any_loopback_port() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_in_process_and_releases_its_ports_on_shutdown() {
    let temp = tempfile::tempdir().expect("temp dir");
    let mut config = ServerConfig::new(temp.path().join("data"));
    config.api_addr = any_loopback_port();
    config.router_addr = any_loopback_port();
    config.router_tls_addr = any_loopback_port();
    config.api_tls_addr = any_loopback_port();
    config.rendezvous_addr = any_loopback_port();
    // Plain processes: this test checks the wiring, not isolation, and needs no root.
    config.runtime = Some(RuntimeKind::Process);
    config.router_threads = Some(1);

    let server = slipway_server::run(config).await.expect("server starts");
    let addrs = [
        server.api_addr(),
        server.router_addr(),
        server.router_tls_addr(),
        server.api_tls_addr(),
        server.rendezvous_addr(),
    ];
    assert!(
        addrs.iter().all(|addr| addr.port() != 0),
        "real ports: {addrs:?}"
    );
    assert!(
        server.admin_key_created(),
        "a fresh data directory gets an admin"
    );
    assert!(
        server.router_ca_path().is_file(),
        "the CA is on disk before the API serves"
    );
    let key = std::fs::read_to_string(server.admin_key_path()).expect("admin key");

    let client = reqwest::Client::new();
    let created = client
        .post(format!("http://{}/apps", server.api_addr()))
        .header("accept", "application/vnd.heroku+json; version=3")
        .bearer_auth(key.trim())
        .json(&serde_json::json!({ "name": "in-process" }))
        .send()
        .await
        .expect("POST /apps");
    assert_eq!(created.status(), 201, "{:?}", created.text().await);
    let app: serde_json::Value = created.json().await.expect("app JSON");
    assert_eq!(app["name"], "in-process");
    let web_url = app["web_url"].as_str().expect("web_url");
    assert!(
        web_url.contains(&format!(":{}", server.router_addr().port())),
        "the web URL names the router's real port: {web_url}"
    );

    // The router answers for the app (no dynos yet: Heroku's "no web dynos running", H14).
    let routed = client
        .get(format!("http://{}/", server.router_addr()))
        .header("host", "in-process.localhost")
        .send()
        .await
        .expect("request through the router");
    assert_eq!(routed.status(), 503);

    // The same API over HTTPS, for a client that trusts the platform CA alone; the CA's
    // certificate is served to anyone, and a client that does not trust it is refused.
    let ca_pem = std::fs::read_to_string(server.router_ca_path()).expect("CA file");
    let served_ca = client
        .get(format!("http://{}/slipway/ca.pem", server.api_addr()))
        .send()
        .await
        .expect("GET /slipway/ca.pem");
    assert_eq!(served_ca.status(), 200);
    assert_eq!(served_ca.text().await.expect("PEM"), ca_pem);
    let trusting = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA"))
        .build()
        .expect("client");
    for host in ["127.0.0.1", "localhost"] {
        let apps = trusting
            .get(format!(
                "https://{host}:{}/apps",
                server.api_tls_addr().port()
            ))
            .header("accept", "application/vnd.heroku+json; version=3")
            .bearer_auth(key.trim())
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET /apps over HTTPS as {host}: {error:?}"));
        assert_eq!(apps.status(), 200, "{host}");
        let apps: serde_json::Value = apps.json().await.expect("apps JSON");
        assert_eq!(apps[0]["name"], "in-process", "{host}");
    }
    let untrusting = reqwest::Client::builder()
        .tls_built_in_root_certs(true)
        .build()
        .expect("client");
    assert!(untrusting
        .get(format!(
            "https://127.0.0.1:{}/apps",
            server.api_tls_addr().port()
        ))
        .send()
        .await
        .is_err());

    server.shutdown().await.expect("clean shutdown");
    for addr in addrs {
        std::net::TcpListener::bind(addr)
            .unwrap_or_else(|error| panic!("{addr} is still taken after shutdown: {error}"));
    }
}

/// A configuration on free loopback ports that starts without root.
fn config_in(dir: &std::path::Path) -> ServerConfig {
    let mut config = ServerConfig::new(dir.join("data"));
    config.api_addr = any_loopback_port();
    config.router_addr = any_loopback_port();
    config.router_tls_addr = any_loopback_port();
    config.api_tls_addr = any_loopback_port();
    config.rendezvous_addr = any_loopback_port();
    config.runtime = Some(RuntimeKind::Process);
    config.router_threads = Some(1);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_tls_configuration_stops_the_start_with_a_clear_error() {
    let temp = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, text: &str| {
        let path = temp.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let key = rcgen::KeyPair::generate().expect("key");
    let other = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let cert_path = write("api.crt", &cert.pem());
    let other_key = write("other.key", &other.serialize_pem());
    let missing = temp.path().join("missing.key");
    let check = |cert: Option<&std::path::Path>,
                 key: Option<&std::path::Path>,
                 hosts: Option<&str>,
                 expected: &'static str| {
        let mut config = config_in(temp.path());
        config.api_tls_cert = cert.map(ToOwned::to_owned);
        config.api_tls_key = key.map(ToOwned::to_owned);
        if let Some(host) = hosts {
            config.api_tls_hosts = vec![host.to_owned()];
        }
        async move {
            let error = slipway_server::run(config)
                .await
                .expect_err("the start must fail");
            let message = format!("{:#}", anyhow_chain(&error));
            assert!(message.contains(expected), "{message}");
            assert!(!message.contains("PRIVATE KEY"), "{message}");
        }
    };
    check(
        Some(&cert_path),
        Some(&other_key),
        None,
        "does not match the certificate",
    )
    .await;
    check(Some(&cert_path), Some(&missing), None, "missing.key").await;
    check(
        Some(&cert_path),
        None,
        None,
        "both --api-tls-cert and --api-tls-key",
    )
    .await;
    check(
        None,
        None,
        Some("*.example.com"),
        "neither a host name nor an IP address",
    )
    .await;
}

/// `error` and its causes, one after another, as the binary prints them.
fn anyhow_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
