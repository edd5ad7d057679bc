//! End to end, issue 10 finding 3: every dyno has a network namespace of its own. An attacker
//! app pushed to a real server probes, from inside its dyno, the server's API and router on the
//! host's loopback, a host service on every address (at the gateway), a victim app's dyno,
//! the metadata address, and the host's listening sockets; it binds the victim's port and
//! tries to receive its traffic. A web process that listens on its own loopback only is never
//! reported up.

mod support;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use support::{repo, Server, ECHO_APP};

/// The attacker: `/probe?t=host:port&t=...` tries each target (1.5 s timeout), `/tcp` returns
/// the dyno's view of the TCP sockets, `/bind?port=N` answers "attacker" on port N.
const ATTACKER_APP: &str = r#"import http.server, json, os, socket, threading, urllib.parse
def probe(target):
    host, port = target.rsplit(":", 1)
    s = socket.socket()
    s.settimeout(1.5)
    try:
        s.connect((host, int(port)))
        return "open"
    except Exception as e:
        return "closed:" + type(e).__name__
    finally:
        s.close()
def serve(port):
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("0.0.0.0", port))
    l.listen(64)
    while True:
        c, _ = l.accept()
        c.recv(4096)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nattacker")
        c.close()
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path == "/probe":
            out = {t: probe(t) for t in query.get("t", [])}
        elif url.path == "/tcp":
            out = {"tcp": open("/proc/net/tcp").read() + open("/proc/net/tcp6").read()}
        elif url.path == "/bind":
            port = int(query["port"][0])
            threading.Thread(target=serve, args=(port,), daemon=True).start()
            out = {"bound": port}
        else:
            out = {}
        body = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
"#;

/// The address the runtime gave a container (persisted in its bundle).
fn container_address(server: &Server, part: &str) -> String {
    let id = server
        .containers()
        .into_iter()
        .find(|id| id.contains(part))
        .unwrap_or_else(|| panic!("no container {part}"));
    let path = server
        .data_dir
        .join("runtime/containers")
        .join(&id)
        .join("network.json");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("network.json")).unwrap();
    json["address"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dyno_reaches_neither_the_host_nor_another_app() {
    require_runc!();
    let server = Server::start();
    for (app, source) in [("victim", ECHO_APP), ("attacker", ATTACKER_APP)] {
        server.cli_ok(&["apps:create", app]);
        let dir = repo(&[
            ("Procfile", "web: python3 server.py\n"),
            ("server.py", source),
        ]);
        let push = server.push(app, dir.path());
        assert!(push.status.success(), "{}", support::text(&push));
    }
    let facts: serde_json::Value =
        serde_json::from_str(&server.wait_for_200("victim", "/env").await).unwrap();
    let victim_port = facts["env"]["PORT"].as_str().unwrap().to_owned();
    server.wait_for_200("attacker", "/probe").await;
    let victim_addr = container_address(&server, "slipway.victim.web.1");
    let attacker_addr = container_address(&server, "slipway.attacker.web.1");
    assert_ne!(victim_addr, attacker_addr);
    let gateway = {
        let a: Ipv4Addr = attacker_addr.parse().unwrap();
        let o = a.octets();
        Ipv4Addr::new(o[0], o[1], o[2], 1)
    };

    // A host service on every address (as a database or an agent would listen).
    let host_service = TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))).unwrap();
    let host_port = host_service.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in host_service.incoming() {
            drop(conn);
        }
    });
    let api_port = server.api_url.rsplit(':').next().unwrap().to_owned();
    // The attacker's own $PORT on its own loopback: the positive control.
    let own_port = {
        let id = server
            .containers()
            .into_iter()
            .find(|id| id.contains("slipway.attacker.web.1"))
            .unwrap();
        let config: serde_json::Value = serde_json::from_slice(
            &std::fs::read(
                server
                    .data_dir
                    .join("runtime/containers")
                    .join(id)
                    .join("config.json"),
            )
            .unwrap(),
        )
        .unwrap();
        config["process"]["env"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|e| e.as_str()?.strip_prefix("PORT=").map(str::to_owned))
            .unwrap()
    };
    let targets = [
        ("own_port", format!("127.0.0.1:{own_port}")),
        ("api", format!("127.0.0.1:{api_port}")),
        ("router", format!("127.0.0.1:{}", server.router_port)),
        ("gateway_api", format!("{gateway}:{api_port}")),
        ("gateway_service", format!("{gateway}:{host_port}")),
        ("victim_dyno", format!("{victim_addr}:{victim_port}")),
        ("victim_on_loopback", format!("127.0.0.1:{victim_port}")),
        ("metadata", "169.254.169.254:80".to_string()),
    ];
    let query: Vec<String> = targets.iter().map(|(_, t)| format!("t={t}")).collect();
    let body = server
        .get("attacker", &format!("/probe?{}", query.join("&")))
        .await
        .text()
        .await
        .unwrap();
    let results: serde_json::Value = serde_json::from_str(&body).unwrap();
    for (name, target) in &targets {
        let result = results[target].as_str().unwrap_or("missing");
        if *name == "own_port" {
            assert_eq!(result, "open", "the dyno's own listener: {results}");
        } else {
            assert!(
                result.starts_with("closed"),
                "{name} ({target}) must be unreachable from a dyno: {results}"
            );
        }
    }

    // The host's listening sockets (API, router) are not in the dyno's view.
    let tcp: serde_json::Value =
        serde_json::from_str(&server.get("attacker", "/tcp").await.text().await.unwrap()).unwrap();
    let tcp = tcp["tcp"].as_str().unwrap();
    assert!(tcp.contains("local_address"), "{tcp}");
    for port in [
        api_port.parse::<u16>().unwrap(),
        server.router_port,
        host_port,
    ] {
        assert!(
            !tcp.contains(&format!(":{port:04X} ")),
            "host port {port} is visible from the dyno:\n{tcp}"
        );
    }

    // The attacker binds the victim's port in its own dyno: the victim's traffic stays the
    // victim's.
    let bound = server
        .get("attacker", &format!("/bind?port={victim_port}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(bound.contains("bound"), "{bound}");
    for _ in 0..40 {
        let body = server.get("victim", "/").await.text().await.unwrap();
        assert_eq!(body, "hello from web.1\n");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_dyno_listening_on_its_loopback_only_is_not_up() {
    require_runc!();
    let server = Server::start_with(&["--boot-timeout", "3"]);
    server.cli_ok(&["apps:create", "hidden"]);
    let source = ECHO_APP.replace(
        "ThreadingHTTPServer((\"0.0.0.0\"",
        "ThreadingHTTPServer((\"127.0.0.1\"",
    );
    assert_ne!(source, ECHO_APP);
    let dir = repo(&[
        ("Procfile", "web: python3 server.py\n"),
        ("server.py", &source),
    ]);
    let push = server.push("hidden", dir.path());
    assert!(push.status.success(), "{}", support::text(&push));
    let log = server
        .wait_for_log("hidden", |log| log.contains("Error R10 (Boot timeout)"))
        .await;
    assert!(!log.contains("State changed from starting to up"), "{log}");
}
