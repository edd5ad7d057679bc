//! The cluster's edges, end to end: a standalone router (`slipway router --https`) serves apps
//! over HTTPS with the certificates its control plane streams (the platform CA's for
//! `<app>.<domain>`, the uploaded one for a custom domain, by SNI), and refuses to ask for
//! private keys over plain HTTP off loopback; the certificate stream takes the cluster token
//! and nothing else.

#[macro_use]
mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use support::Server;

const APP: &str = "edgetls";
const CUSTOM: &str = "www.edge-example.test";

/// A port no one listens on, for a listener of the test's own.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// `slipway router` with an HTTPS listener, killed on drop.
struct HttpsRouter {
    child: Child,
    http_port: u16,
    https_port: u16,
    log_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl HttpsRouter {
    fn start(server: &str, token_file: &Path) -> HttpsRouter {
        let dir = tempfile::tempdir().expect("temp dir");
        let log_path = dir.path().join("router.log");
        let log = std::fs::File::create(&log_path).expect("router log");
        let (http_port, https_port) = (free_port(), free_port());
        let child = Command::new(env!("CARGO_BIN_EXE_slipway"))
            .args(["router", "--server", server, "--token-file"])
            .arg(token_file)
            .args(["--http", &format!("127.0.0.1:{http_port}")])
            .args(["--https", &format!("127.0.0.1:{https_port}")])
            .args(["--threads", "2"])
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start slipway router");
        let mut router = HttpsRouter {
            child,
            http_port,
            https_port,
            log_path,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", https_port)).is_err() {
            if let Ok(Some(status)) = router.child.try_wait() {
                panic!("slipway router exited with {status}:\n{}", router.log());
            }
            assert!(
                Instant::now() < deadline,
                "slipway router did not start:\n{}",
                router.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        router
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// A client trusting only `root_pem` that reaches `host` at this router's HTTPS port.
    fn client(&self, root_pem: &[u8], host: &str) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(root_pem).unwrap())
            .resolve(host, SocketAddr::from(([127, 0, 0, 1], self.https_port)))
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.https_port)
    }

    /// Polls until `host` answers 200 over HTTPS with a certificate `client` trusts.
    async fn wait_for_https(&self, client: &reqwest::Client, host: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let last = match client.get(self.url(host, "/env")).send().await {
                Ok(response) if response.status() == 200 => {
                    return response.json().await.expect("the echo app's JSON")
                }
                Ok(response) => format!("status {}", response.status()),
                Err(error) => format!("{error:?}"),
            };
            assert!(
                Instant::now() < deadline,
                "https://{host} never answered 200 through the standalone router: {last}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for HttpsRouter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A self-signed certificate for `hostname`, its PEM and its key's, written in `dir`.
fn write_cert(dir: &Path, stem: &str, hostname: &str) -> (PathBuf, PathBuf, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![hostname.to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_path, key_path) = (
        dir.join(format!("{stem}.pem")),
        dir.join(format!("{stem}.key")),
    );
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path, cert.pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standalone_router_serves_https_with_the_control_planes_certificates() {
    require_runc!();
    let server = Server::start();
    let _dir = server.deploy_echo_app(APP).await;
    let token_file = server.data_dir.join("cluster-token");

    // The certificate stream carries private keys: the cluster token only, not even the
    // admin's API key.
    let http = reqwest::Client::new();
    for credential in [None, Some(server.key.as_str())] {
        let mut request = http.get(format!("{}/slipway/cluster/certs", server.api_url));
        if let Some(credential) = credential {
            request = request.bearer_auth(credential);
        }
        let response = request.send().await.unwrap();
        let message = support::expect_api_error(response, 401, "unauthorized").await;
        assert!(message.contains("cluster token"), "{message}");
    }

    // A router asked to fetch keys over plain HTTP from another host refuses to start.
    let refused = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args([
            "router",
            "--server",
            "http://192.0.2.1:5000",
            "--token-file",
        ])
        .arg(&token_file)
        .args(["--http", "127.0.0.1:0", "--https", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let said = support::text(&refused);
    assert!(
        said.contains("--https needs the control planes' certificates and private keys")
            && said.contains("https://HOST:PORT"),
        "{said}"
    );

    let router = HttpsRouter::start(&server.api_url, &token_file);

    // The platform hostname: a certificate the platform CA issued, HTTP/2 by ALPN, and the
    // dyno told it came over HTTPS on the router's port.
    let ca = std::fs::read(server.ca_path()).unwrap();
    let host = format!("{APP}.localhost");
    let client = router.client(&ca, &host);
    let facts = router.wait_for_https(&client, &host).await;
    assert_eq!(facts["headers"]["x-forwarded-proto"], "https", "{facts}");
    assert_eq!(
        facts["headers"]["x-forwarded-port"],
        router.https_port.to_string(),
        "{facts}"
    );
    let response = client.get(router.url(&host, "/env")).send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);

    // A custom domain with an uploaded certificate: the router serves it by SNI once the
    // control plane streams it, and the platform CA does not vouch for that name.
    let files = tempfile::tempdir().unwrap();
    let (cert, key, cert_pem) = write_cert(files.path(), "custom", CUSTOM);
    server.cli_ok(&["domains:add", CUSTOM, "-a", APP]);
    server.cli_ok(&[
        "certs:add",
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
        "-a",
        APP,
    ]);
    let custom = router.client(cert_pem.as_bytes(), CUSTOM);
    let facts = router.wait_for_https(&custom, CUSTOM).await;
    assert_eq!(facts["headers"]["x-forwarded-proto"], "https", "{facts}");
    assert!(router
        .client(&ca, CUSTOM)
        .get(router.url(CUSTOM, "/"))
        .send()
        .await
        .is_err());
    // A name nobody routes gets no certificate a client trusts.
    let unknown = "nosuchapp.localhost";
    assert!(router
        .client(&ca, unknown)
        .get(router.url(unknown, "/"))
        .send()
        .await
        .is_err());
    // Plain HTTP goes on working beside it.
    let plain = http
        .get(format!("http://127.0.0.1:{}/env", router.http_port))
        .header("host", &host)
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    // The router never logs a private key.
    assert!(!router.log().contains("PRIVATE KEY"), "{}", router.log());
}
