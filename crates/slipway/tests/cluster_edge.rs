//! The cluster's edges, end to end: a standalone router (`slipway router --https`) serves apps
//! over HTTPS with the certificates its control plane streams (the platform CA's for
//! `<app>.<domain>`, the uploaded one for a custom domain, by SNI), and refuses to ask for
//! private keys over plain HTTP off loopback; the certificate stream takes the cluster token
//! and nothing else. Slugs through an S3-compatible store (moto, on the test's own bridge):
//! the control plane puts each slug there, an agent in a network namespace of its own runs a
//! dyno from it, and an agent that finds the object tampered with refuses it. `heroku run`
//! (the real CLI) works against either of two control planes sharing one etcd.

#[path = "support/cluster.rs"]
mod cluster_support;
#[macro_use]
mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

/// Runs a command that must succeed (network set-up).
fn sh(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Best effort (clean-up).
fn quietly(program: &str, args: &[&str]) {
    let _ = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// One agent's host: a network namespace on the test's bridge (as in `tests/agents.rs`, on
/// subnets of this file's own so both can run at once).
struct Host {
    name: &'static str,
    netns: String,
    veth: String,
    dyno_subnet: String,
    data: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Host {
    fn runc_root(&self) -> PathBuf {
        self.data.join("runtime/runc")
    }

    /// The ids of the containers runc has running on this host.
    fn running(&self) -> Vec<String> {
        let output = Command::new("runc")
            .arg("--root")
            .arg(self.runc_root())
            .args(["list", "--format", "json"])
            .output()
            .expect("runc list");
        let list: serde_json::Value =
            serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
        list.as_array()
            .map(|containers| {
                containers
                    .iter()
                    .filter(|c| c["status"] == "running")
                    .filter_map(|c| c["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The test's network and agents; removed on drop, whatever happened.
struct Cluster {
    n: u32,
    bridge: String,
    hosts: Vec<Host>,
    routes: Vec<String>,
    temp: tempfile::TempDir,
}

impl Cluster {
    fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 223, self.n as u8, 1)
    }

    /// The routers' network the agents admit (`--routed-from`).
    fn bridge_net(&self) -> String {
        format!("10.223.{}.0/28", self.n)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for host in &mut self.hosts {
            if let Some(mut child) = host.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
            let root = host.runc_root();
            let root = root.to_string_lossy();
            let ids = Command::new("runc")
                .args(["--root", &root, "list", "-q"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            for id in ids.lines().filter(|l| !l.is_empty()) {
                quietly("runc", &["--root", &root, "kill", "--all", id, "KILL"]);
                quietly("runc", &["--root", &root, "delete", "--force", id]);
            }
            quietly("ip", &["netns", "del", &host.netns]);
            quietly("ip", &["link", "del", &host.veth]);
            slipway_runtime::unmount_leftovers(&host.data);
        }
        for route in &self.routes {
            quietly("ip", &["route", "del", route]);
        }
        quietly("ip", &["link", "del", &self.bridge]);
        quietly("nft", &["delete", "table", "ip", &self.bridge]);
    }
}

/// The bridge `10.223.N.1/24` on the machine and, per host, a namespace joined to it with the
/// route to its dyno subnet.
fn network(names: &[&'static str]) -> Cluster {
    let n = std::process::id() % 200 + 20;
    let bridge = format!("slweb{n}");
    let temp = tempfile::Builder::new()
        .prefix("slipway-edge-")
        .tempdir_in("/tmp")
        .expect("temp dir");
    let mut cluster = Cluster {
        n,
        bridge: bridge.clone(),
        hosts: Vec::new(),
        routes: Vec::new(),
        temp,
    };
    quietly("ip", &["link", "del", &bridge]);
    sh("ip", &["link", "add", &bridge, "type", "bridge"]);
    sh(
        "ip",
        &["addr", "add", &format!("10.223.{n}.1/24"), "dev", &bridge],
    );
    sh("ip", &["link", "set", &bridge, "up"]);
    // The hosts reach the machine's resolver as the machine does: NAT out of the subnet.
    quietly("nft", &["delete", "table", "ip", &bridge]);
    let nat = format!(
        "table ip {bridge} {{\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    ip saddr 10.223.{n}.0/24 oifname != \"{bridge}\" masquerade\n  }}\n}}\n"
    );
    let rules = cluster.temp.path().join("nat.nft");
    std::fs::write(&rules, nat).expect("nat rules");
    sh("nft", &["-f", &rules.to_string_lossy()]);
    for (i, name) in names.iter().copied().enumerate() {
        let netns = format!("slwe{n}{name}");
        let veth = format!("slwe{n}{name}");
        let peer = format!("slwe{n}{name}p");
        let address = Ipv4Addr::new(10, 223, n as u8, 18 + i as u8);
        let dyno_subnet = format!("10.225.{n}.{}/25", 128 * i);
        quietly("ip", &["netns", "del", &netns]);
        quietly("ip", &["link", "del", &veth]);
        sh("ip", &["netns", "add", &netns]);
        sh(
            "ip",
            &["link", "add", &veth, "type", "veth", "peer", "name", &peer],
        );
        sh("ip", &["link", "set", &veth, "master", &bridge, "up"]);
        sh("ip", &["link", "set", &peer, "netns", &netns]);
        let exec = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &netns];
            all.extend_from_slice(args);
            sh("ip", &all);
        };
        exec(&["ip", "link", "set", "lo", "up"]);
        exec(&["ip", "link", "set", &peer, "name", "eth0"]);
        exec(&["ip", "addr", "add", &format!("{address}/24"), "dev", "eth0"]);
        exec(&["ip", "link", "set", "eth0", "up"]);
        exec(&[
            "ip",
            "route",
            "add",
            "default",
            "via",
            &format!("10.223.{n}.1"),
        ]);
        sh(
            "ip",
            &["route", "add", &dyno_subnet, "via", &address.to_string()],
        );
        cluster.routes.push(dyno_subnet.clone());
        let data = cluster.temp.path().join(format!("agent-{name}"));
        let log = cluster.temp.path().join(format!("agent-{name}.log"));
        cluster.hosts.push(Host {
            name,
            netns,
            veth,
            dyno_subnet,
            data,
            log,
            child: None,
        });
    }
    cluster
}

/// Forwards `listen` to the server's loopback API, so agents reach it from their namespaces.
fn forward(listen: SocketAddr, to: SocketAddr) {
    let listener = std::net::TcpListener::bind(listen).expect("bind forwarder");
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("forwarder runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("forwarder");
            while let Ok((mut client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
    });
}

/// Starts `slipway agent` in `host`'s network namespace, with `extra` flags.
fn start_agent(host: &mut Host, server_url: &str, token: &Path, bridge_net: &str, extra: &[&str]) {
    let log = std::fs::File::create(&host.log).expect("agent log");
    let child = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", host.netns))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_slipway"))
        .args(["agent", "--server", server_url, "--name", host.name])
        .arg("--data")
        .arg(&host.data)
        .args(["--dyno-subnet", &host.dyno_subnet, "--memory-mb", "4096"])
        .arg("--token-file")
        .arg(token)
        .args(["--routed-from", bridge_net])
        .args(extra)
        .env("RUST_LOG", "info")
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start slipway agent");
    host.child = Some(child);
}

/// Polls until `check` holds, or panics with `what` and the logs after `timeout`.
async fn wait_until<F: std::future::Future<Output = bool>>(
    timeout: Duration,
    what: &str,
    logs: impl Fn() -> String,
    mut check: impl FnMut() -> F,
) -> Duration {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if check().await {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} (waited {timeout:?})\n{}", logs());
}

/// The control plane's API reachable from the agents' namespaces, through the gateway.
fn agent_server_url(server: &Server, cluster: &Cluster) -> String {
    let api_port: u16 = server
        .api_url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("API port");
    let forward_port = api_port.wrapping_add(1100);
    forward(
        (cluster.gateway(), forward_port).into(),
        (Ipv4Addr::LOCALHOST, api_port).into(),
    );
    format!("http://{}:{forward_port}", cluster.gateway())
}

#[tokio::test]
async fn agents_fetch_slugs_from_the_s3_store_and_refuse_a_tampered_one() {
    require_runc!();
    let mut cluster = network(&["a", "b"]);
    let Some(moto) = slipway_slugstore::testing::Moto::start_on(cluster.gateway()) else {
        return;
    };
    moto.create_bucket("edge-slugs");
    // moto takes any credentials; the server and the agents read them from the environment
    // they inherit.
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    let store_url = format!("s3://edge-slugs/slugs?endpoint={}", moto.endpoint());
    let server = Server::start_with(&["--cluster", "--slug-store", &store_url]);
    let token = server.data_dir.join("cluster-token");
    let server_url = agent_server_url(&server, &cluster);
    let bridge_net = cluster.bridge_net();
    start_agent(
        &mut cluster.hosts[0],
        &server_url,
        &token,
        &bridge_net,
        &["--slug-store", &store_url],
    );
    let all_logs = |cluster: &Cluster| {
        let mut text = format!("server log:\n{}\n", server.log());
        for host in &cluster.hosts {
            text.push_str(&format!("agent {} log:\n{}\n", host.name, host.log()));
        }
        text
    };
    wait_until(
        Duration::from_secs(30),
        "agent a registered",
        || all_logs(&cluster),
        || {
            let log = server.log();
            async move { log.contains("host registered") }
        },
    )
    .await;

    // A push: the slug is in the store, by its SHA-256, and a dyno on agent a runs it.
    let app = "slugstored";
    server.cli_ok(&["apps:create", app]);
    let repo = support::echo_app_repo();
    server.push_ok(app, repo.path());
    let releases = server.api_json(&format!("/apps/{app}/releases")).await;
    let slug_id = releases
        .as_array()
        .and_then(|r| r.last())
        .and_then(|r| r["slug"]["id"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no slug in the releases: {releases}"));
    let slug = server
        .api_json(&format!("/apps/{app}/slugs/{slug_id}"))
        .await;
    let digest = slug["checksum"]
        .as_str()
        .and_then(|c| c.strip_prefix("SHA256:"))
        .unwrap_or_else(|| panic!("a slug checksum: {slug}"))
        .to_owned();
    let store = slipway_agent_store(&store_url);
    let (size, _) = store
        .get(&digest)
        .await
        .unwrap_or_else(|e| panic!("the slug is not in the store: {e}"));
    assert_eq!(Some(size), slug["size"].as_u64(), "{slug}");
    server.cli_ok(&["ps:scale", "web=1", "-a", app]);
    wait_until(
        Duration::from_secs(60),
        "web.1 up on agent a",
        || all_logs(&cluster),
        || {
            let on_a = cluster.hosts[0].running().len();
            async move { on_a == 1 }
        },
    )
    .await;
    assert!(
        cluster.hosts[0]
            .data
            .join(format!("slugs/{digest}.tgz"))
            .is_file(),
        "agent a cached no slug"
    );
    let body = server.get(app, "/").await.text().await.unwrap_or_default();
    assert!(
        body.starts_with("hello from web.1"),
        "{body}\n{}",
        all_logs(&cluster)
    );

    // Someone with write access to the bucket replaces the slug: agent b, which has not
    // cached it, refuses what it downloads and runs nothing of it.
    store
        .overwrite(&digest, b"#!/bin/sh\necho owned\n".to_vec())
        .await
        .unwrap();
    start_agent(
        &mut cluster.hosts[1],
        &server_url,
        &token,
        &bridge_net,
        &["--slug-store", &store_url],
    );
    wait_until(
        Duration::from_secs(30),
        "agent b registered",
        || all_logs(&cluster),
        || {
            let log = server.log();
            async move { log.matches("host registered").count() >= 2 }
        },
    )
    .await;
    // Placement spreads a process type's dynos over the hosts: web.2 goes to agent b.
    server.cli_ok(&["ps:scale", "web=2", "-a", app]);
    wait_until(
        Duration::from_secs(60),
        "agent b refused the tampered slug",
        || all_logs(&cluster),
        || {
            let log = cluster.hosts[1].log();
            async move { log.contains("the slug store sent another file; refused") }
        },
    )
    .await;
    assert!(
        cluster.hosts[1].running().is_empty(),
        "{}",
        all_logs(&cluster)
    );
    assert!(!cluster.hosts[1]
        .data
        .join(format!("slugs/{digest}.tgz"))
        .exists());
}

/// The test's own client of the slug store (what an attacker with the bucket's keys holds).
fn slipway_agent_store(url: &str) -> slipway_slugstore::SlugStore {
    slipway_slugstore::SlugStore::open(slipway_slugstore::parse_slug_store_url(url).unwrap())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heroku_run_works_through_any_control_plane() {
    require_runc!();
    // Declared first, dropped last: the control planes stop before their store.
    let etcd = cluster_support::EtcdCluster::start(1);
    let store_url = etcd.store_url(&slipway_store::testing::unique_namespace("edge-run"));
    let store_args = ["--store", store_url.as_str()];
    let first = Server::start_with(&store_args);
    let second =
        Server::start_joining(&store_args, &first.key, Some(&first.data_dir.join("slugs")));
    let app = "runanywhere";
    let dir = first.deploy_echo_app(app).await;
    // Each control plane hands out its own rendezvous address and runs the one-off it
    // recorded; the CLI talks to one and attaches there.
    for (server, word) in [(&first, "from-the-first"), (&second, "from-the-second")] {
        let home = tempfile::tempdir().unwrap();
        let output = server.heroku(
            home.path(),
            dir.path(),
            &["run", "--exit-code", "-a", app, "echo", word],
        );
        let said = support::text(&output);
        assert!(
            output.status.success() && said.contains(word),
            "heroku run through {}: {said}\n{}",
            server.api_url,
            server.log()
        );
    }
}
