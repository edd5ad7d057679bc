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
    // Plain processes: this test checks the wiring, not isolation, and needs no root.
    config.runtime = Some(RuntimeKind::Process);
    config.router_threads = Some(1);

    let server = slipway_server::run(config).await.expect("server starts");
    let addrs = [
        server.api_addr(),
        server.router_addr(),
        server.router_tls_addr(),
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

    server.shutdown().await.expect("clean shutdown");
    for addr in addrs {
        std::net::TcpListener::bind(addr)
            .unwrap_or_else(|error| panic!("{addr} is still taken after shutdown: {error}"));
    }
}
