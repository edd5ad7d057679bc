//! End to end through the router: custom domains (`domains:add` → the app answers at that
//! hostname, and only one app may own it), maintenance mode (`maintenance:on` → 503 with H80's
//! page and log line, `maintenance:off` → 200 again), and an HTTP/1.0 dyno answered to an
//! HTTP/1.1 client as HTTP/1.1 with keep-alive intact.

mod support;

use std::time::{Duration, Instant};

use support::{repo, text, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Python's http.server with its default HTTP/1.0: one response per connection, then close.
const HTTP10_APP: &str = r#"import http.server, json, os
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"dyno": os.environ.get("DYNO"), "host": self.headers.get("Host"),
                           "proto": self.headers.get("X-Forwarded-Proto")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("", int(os.environ["PORT"])), Handler).serve_forever()
"#;

/// GET through the router with an arbitrary Host header: (status, body).
async fn get_host(server: &Server, host: &str, path: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}{path}", server.router_port))
        .header("host", host)
        .send()
        .await
        .expect("request through the router");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// Polls until `host` answers with `status` (route tables follow the store asynchronously).
async fn wait_for_status(server: &Server, host: &str, status: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (got, body) = get_host(server, host, "/").await;
        if got == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{host} never answered {status} (last {got}: {body})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads one response with a Content-Length body from a raw connection.
async fn read_response(stream: &mut tokio::net::TcpStream) -> String {
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&data).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return text;
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("router answered in time")
            .expect("read from router");
        assert!(n > 0, "router closed the connection after: {text}");
        data.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_domains_maintenance_and_http10_dynos() {
    require_runc!();
    let server = Server::start();
    server.cli_ok(&["apps:create", "rdemo"]);
    let app = repo(&[
        ("Procfile", "web: python3 server.py\n"),
        ("server.py", HTTP10_APP),
    ]);
    let push = server.push("rdemo", app.path());
    assert!(push.status.success(), "push failed:\n{}", text(&push));
    server.wait_for_200("rdemo", "/").await;

    // An HTTP/1.0 dyno, an HTTP/1.1 client: HTTP/1.1 answers, the client connection stays open.
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", server.router_port))
        .await
        .unwrap();
    for _ in 0..2 {
        stream
            .write_all(b"GET /twice HTTP/1.1\r\nHost: rdemo.localhost\r\n\r\n")
            .await
            .unwrap();
        let response = read_response(&mut stream).await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(!response.contains("Connection: close"), "{response}");
        assert!(response.contains("\"dyno\": \"web.1\""), "{response}");
    }

    // Custom domains.
    let added = server.cli_ok(&["domains:add", "www.Rdemo-Example.com", "-a", "rdemo"]);
    assert!(
        added.contains("Adding www.rdemo-example.com to ⬢ rdemo... done"),
        "{added}"
    );
    let listed = server.cli_ok(&["domains", "-a", "rdemo"]);
    assert!(
        listed.contains("=== rdemo Heroku Domain\n\nrdemo.localhost\n")
            && listed.contains("www.rdemo-example.com  CNAME"),
        "{listed}"
    );
    let body = wait_for_status(&server, "www.rdemo-example.com", 200).await;
    assert!(
        body.contains("\"host\": \"www.rdemo-example.com\"")
            && body.contains("\"proto\": \"http\""),
        "the dyno sees the custom Host: {body}"
    );
    let domains = server.api_json("/apps/rdemo/domains").await;
    let kinds: Vec<(&str, &str)> = domains
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["hostname"].as_str().unwrap(), d["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("rdemo.localhost", "heroku"),
            ("www.rdemo-example.com", "custom")
        ]
    );
    // A hostname belongs to one app.
    server.cli_ok(&["apps:create", "rother"]);
    let taken = server.cli(&["domains:add", "www.rdemo-example.com", "-a", "rother"]);
    assert!(!taken.status.success(), "a second app took the domain");
    assert!(text(&taken).contains("already in use"), "{}", text(&taken));

    // Maintenance mode.
    let on = server.cli_ok(&["maintenance:on", "-a", "rdemo"]);
    assert!(
        on.contains("Enabling maintenance mode for ⬢ rdemo... done"),
        "{on}"
    );
    assert_eq!(server.cli_ok(&["maintenance", "-a", "rdemo"]).trim(), "on");
    let page = wait_for_status(&server, "www.rdemo-example.com", 503).await;
    assert!(page.contains("Offline for Maintenance"), "{page}");
    let (status, _) = get_host(&server, "rdemo.localhost", "/").await;
    assert_eq!(status, 503);
    server
        .wait_for_log("rdemo", |log| {
            log.lines().any(|l| {
                l.contains("heroku[router]: at=info code=H80 desc=\"Maintenance mode\"")
                    && l.contains("host=www.rdemo-example.com")
                    && l.contains("status=503")
            })
        })
        .await;
    let off = server.cli_ok(&["maintenance:off", "-a", "rdemo"]);
    assert!(
        off.contains("Disabling maintenance mode for ⬢ rdemo... done"),
        "{off}"
    );
    wait_for_status(&server, "www.rdemo-example.com", 200).await;

    // Removed: the hostname is unknown again, and free for another app.
    let removed = server.cli_ok(&["domains:remove", "www.rdemo-example.com", "-a", "rdemo"]);
    assert!(
        removed.contains("Removing www.rdemo-example.com from ⬢ rdemo... done"),
        "{removed}"
    );
    wait_for_status(&server, "www.rdemo-example.com", 404).await;
    server.cli_ok(&["domains:add", "www.rdemo-example.com", "-a", "rother"]);
}
