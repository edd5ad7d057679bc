//! The cluster harness: three etcd members on loopback (distinct ports, one data directory
//! each on tmpfs) or one in each of the test's hosts, control planes sharing them
//! (`support::Server` with `--store`), the standalone router (`slipway router`), and hosts as
//! network namespaces on a bridge the test creates ([`HostNet`]), each with its agent and
//! router. Every process is ended by a `Drop` guard, and the network is removed on drop, so a
//! failing test leaves nothing running; etcd members also die with the test process (a shell
//! guard watches it, as `slipway_store::testing` does).

#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use slipway_store::testing::ETCD_BINARY;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free loopback port")
}

/// One etcd member under its guard.
pub struct EtcdMember {
    pub name: String,
    /// `127.0.0.1:PORT` of its client listener.
    pub client_addr: String,
    guard: Option<Child>,
    log: PathBuf,
}

impl EtcdMember {
    /// Kills the member (SIGKILL: a crash, not a clean leave) and removes its data.
    pub fn kill(&mut self) {
        if let Some(mut guard) = self.guard.take() {
            // SIGTERM makes the guard SIGKILL etcd and remove its data directory.
            let _ = Command::new("kill").arg(guard.id().to_string()).status();
            let _ = guard.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the member answers `/health` as healthy (it has a leader).
    pub fn healthy(&self) -> bool {
        healthy(&self.client_addr)
    }
}

/// Where one etcd member listens.
struct MemberSpec {
    /// The network namespace it runs in; `None`: the test's own.
    netns: Option<String>,
    client: String,
    peer: String,
}

impl Drop for EtcdMember {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A three-member etcd cluster on loopback.
pub struct EtcdCluster {
    pub members: Vec<EtcdMember>,
}

impl EtcdCluster {
    /// Starts `count` members on loopback as one new cluster and waits until every member
    /// reports itself healthy (a leader is elected and each has joined).
    pub fn start(count: usize) -> EtcdCluster {
        let specs = (0..count)
            .map(|_| MemberSpec {
                netns: None,
                client: format!("127.0.0.1:{}", free_port()),
                peer: format!("127.0.0.1:{}", free_port()),
            })
            .collect();
        EtcdCluster::start_members(specs)
    }

    /// One member in each network namespace `(netns, address)`, on etcd's usual ports.
    pub fn start_in(hosts: &[(String, std::net::Ipv4Addr)]) -> EtcdCluster {
        let specs = hosts
            .iter()
            .map(|(netns, address)| MemberSpec {
                netns: Some(netns.clone()),
                client: format!("{address}:2379"),
                peer: format!("{address}:2380"),
            })
            .collect();
        EtcdCluster::start_members(specs)
    }

    fn start_members(specs: Vec<MemberSpec>) -> EtcdCluster {
        assert!(
            Path::new(ETCD_BINARY).exists(),
            "{ETCD_BINARY} is missing: install Debian's etcd-server (apt-get install etcd-server); .ci/run does"
        );
        let root = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let initial_cluster = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| format!("m{i}=http://{}", spec.peer))
            .collect::<Vec<_>>()
            .join(",");
        let token = format!(
            "slipway-cluster-test-{}-{}",
            std::process::id(),
            free_port()
        );
        let script = r#"
            etcd "$@" >"$SLIPWAY_ETCD_DATA.log" 2>&1 &
            e=$!
            trap 'kill -9 $e 2>/dev/null; wait $e 2>/dev/null; rm -rf "$SLIPWAY_ETCD_DATA"; exit 0' TERM INT EXIT
            while kill -0 "$SLIPWAY_ETCD_OWNER" 2>/dev/null && kill -0 $e 2>/dev/null; do sleep 0.5; done
        "#;
        let members = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let name = format!("m{i}");
                let data = root.join(format!("{token}-{name}"));
                let client_url = format!("http://{}", spec.client);
                let peer_url = format!("http://{}", spec.peer);
                let mut command = match &spec.netns {
                    Some(netns) => {
                        let mut command = Command::new("nsenter");
                        command
                            .arg(format!("--net=/run/netns/{netns}"))
                            .args(["--", "sh"]);
                        command
                    }
                    None => Command::new("sh"),
                };
                let guard = command
                    .arg("-c")
                    .arg(script)
                    .arg("etcd-guard")
                    .args(["--name", &name, "--data-dir", &data.display().to_string()])
                    .args(["--listen-client-urls", &client_url])
                    .args(["--advertise-client-urls", &client_url])
                    .args(["--listen-peer-urls", &peer_url])
                    .args(["--initial-advertise-peer-urls", &peer_url])
                    .args(["--initial-cluster", &initial_cluster])
                    .args(["--initial-cluster-state", "new"])
                    .args(["--initial-cluster-token", &token])
                    // Deleting an app with many keys is one transaction.
                    .args(["--max-txn-ops", "10000"])
                    // A member that comes back from a partition must not depose the leader
                    // (etcd 3.4's default): without pre-vote its higher term forces an
                    // election, and writes stop for longer than a host lease's slack.
                    .arg("--pre-vote")
                    .args(["--log-level", "warn", "--logger", "zap"])
                    .env("SLIPWAY_ETCD_DATA", &data)
                    .env("SLIPWAY_ETCD_OWNER", std::process::id().to_string())
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start sh for an etcd guard");
                EtcdMember {
                    name,
                    client_addr: spec.client.clone(),
                    guard: Some(guard),
                    log: PathBuf::from(format!("{}.log", data.display())),
                }
            })
            .collect();
        let cluster = EtcdCluster { members };
        let deadline = Instant::now() + Duration::from_secs(60);
        for member in &cluster.members {
            while !member.healthy() {
                assert!(
                    Instant::now() < deadline,
                    "etcd member {} never became healthy:\n{}",
                    member.name,
                    member.log()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        cluster
    }

    /// `etcd://a,b,c/<namespace>` for `slipway server --store`.
    pub fn store_url(&self, namespace: &str) -> String {
        let hosts: Vec<&str> = self
            .members
            .iter()
            .map(|m| m.client_addr.as_str())
            .collect();
        format!("etcd://{}/{namespace}", hosts.join(","))
    }

    /// The sum of a counter in every live member's `/metrics` (Prometheus text), e.g.
    /// `etcd_mvcc_txn_total`.
    pub fn counter(&self, name: &str) -> f64 {
        self.members
            .iter()
            .filter(|m| m.guard.is_some())
            .filter_map(|m| http_get(&m.client_addr, "/metrics"))
            .flat_map(|text| {
                text.lines()
                    .filter(|l| l.starts_with(name) && !l.starts_with('#'))
                    .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                    .collect::<Vec<_>>()
            })
            .sum()
    }
}

/// A plain HTTP/1.0 GET on loopback; the body, if the answer was 200.
fn http_get(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.to_owned())
        .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_owned()))
}

fn healthy(addr: &str) -> bool {
    http_get(addr, "/health").is_some_and(|body| body.contains("\"health\":\"true\""))
}

/// A `slipway router` process.
pub struct StandaloneRouter {
    child: Child,
    pub port: u16,
    log_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl StandaloneRouter {
    /// Starts `slipway router` for the control planes at `servers` with the token in
    /// `token_file`; returns once it listens.
    pub fn start(servers: &[&str], token_file: &Path) -> StandaloneRouter {
        let dir = tempfile::tempdir().expect("temp dir");
        let log_path = dir.path().join("router.log");
        let log = std::fs::File::create(&log_path).expect("router log");
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_slipway"))
            .arg("router")
            .args(["--server", &servers.join(",")])
            .arg("--token-file")
            .arg(token_file)
            .args(["--http", &format!("127.0.0.1:{port}"), "--threads", "2"])
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start slipway router");
        let mut router = StandaloneRouter {
            child,
            port,
            log_path,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
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

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// A request for `app` through this router.
    pub fn request(
        &self,
        client: &reqwest::Client,
        app: &str,
        path: &str,
    ) -> reqwest::RequestBuilder {
        client
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .header("host", format!("{app}.localhost"))
    }
}

impl Drop for StandaloneRouter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a command that must succeed (network set-up).
pub fn sh(program: &str, args: &[&str]) {
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
pub fn quietly(program: &str, args: &[&str]) {
    let _ = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Forwards `listen` to `to` (a control plane's loopback API), so agents and routers reach it
/// from their namespaces. On a thread and runtime of its own: the test's own thread blocks in
/// the CLI and git. A connection to a control plane that is gone is closed at once, as the
/// control plane's own port would refuse it.
pub fn forward(listen: std::net::SocketAddr, to: std::net::SocketAddr) {
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

/// One host of the test: a network namespace on the bridge, its dyno subnet, and the agent
/// and router processes it runs.
pub struct NetHost {
    pub name: String,
    pub netns: String,
    /// The host end of its veth, in the test's bridge (down: the host is cut off).
    pub veth: String,
    pub address: std::net::Ipv4Addr,
    pub dyno_subnet: String,
    pub data: PathBuf,
    pub agent_log: PathBuf,
    pub router_log: PathBuf,
    pub agent: Option<Child>,
    pub router: Option<Child>,
}

/// The port every host's router listens on (each host has its own address).
pub const HOST_ROUTER_PORT: u16 = 8080;

impl NetHost {
    pub fn runc_root(&self) -> PathBuf {
        self.data.join("runtime/runc")
    }

    /// The ids of the containers runc has running on this host.
    pub fn running(&self) -> Vec<String> {
        let output = Command::new("runc")
            .arg("--root")
            .arg(self.runc_root())
            .args(["list", "--format", "json"])
            .output()
            .expect("runc list");
        let list: serde_json::Value =
            serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
        let mut ids: Vec<String> = list
            .as_array()
            .map(|containers| {
                containers
                    .iter()
                    .filter(|c| c["status"] == "running")
                    .filter_map(|c| c["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    pub fn agent_log(&self) -> String {
        std::fs::read_to_string(&self.agent_log).unwrap_or_default()
    }

    pub fn router_log(&self) -> String {
        std::fs::read_to_string(&self.router_log).unwrap_or_default()
    }

    /// `http://ADDRESS:8080`, this host's router.
    pub fn router_url(&self) -> String {
        format!("http://{}:{HOST_ROUTER_PORT}", self.address)
    }

    fn in_netns(&self, program: &str) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net=/run/netns/{}", self.netns))
            .arg("--")
            .arg(program);
        command
    }

    /// Starts (or starts again: same name, same data directory) `slipway agent` in this
    /// host's namespace, for the control planes at `servers`.
    pub fn start_agent(&mut self, servers: &[String], token: &Path, routed_from: &str) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.agent_log)
            .expect("agent log");
        // Only the network namespace: the agent shares the machine's mounts (cgroups, /tmp),
        // as an agent on a machine of its own sees that machine's.
        let child = self
            .in_netns(env!("CARGO_BIN_EXE_slipway"))
            .args([
                "agent",
                "--server",
                &servers.join(","),
                "--name",
                &self.name,
            ])
            .arg("--data")
            .arg(&self.data)
            .args(["--dyno-subnet", &self.dyno_subnet, "--memory-mb", "8192"])
            .arg("--token-file")
            .arg(token)
            .args(["--routed-from", routed_from])
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start slipway agent");
        self.agent = Some(child);
    }

    /// Kills the agent (SIGKILL: its dynos keep running, as after a crash).
    pub fn kill_agent(&mut self) {
        if let Some(mut child) = self.agent.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts `slipway router` in this host's namespace on its address, for the control
    /// planes at `servers`; returns once it listens.
    pub fn start_router(&mut self, servers: &[String], token: &Path) {
        let log = std::fs::File::create(&self.router_log).expect("router log");
        let child = self
            .in_netns(env!("CARGO_BIN_EXE_slipway"))
            .arg("router")
            .args(["--server", &servers.join(",")])
            .arg("--token-file")
            .arg(token)
            .args([
                "--http",
                &format!("{}:{HOST_ROUTER_PORT}", self.address),
                "--threads",
                "1",
            ])
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start slipway router");
        self.router = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect((self.address, HOST_ROUTER_PORT)).is_err() {
            assert!(
                Instant::now() < deadline,
                "host {}'s router did not start:\n{}",
                self.name,
                self.router_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Cuts the host off the bridge, or joins it again.
    pub fn set_link(&self, up: bool) {
        sh(
            "ip",
            &["link", "set", &self.veth, if up { "up" } else { "down" }],
        );
    }
}

/// Hosts as network namespaces joined by veth pairs to a bridge the test creates,
/// `10.218.N.0/24` (the machine at `.1`, host i at `.(11+i)`), host i's dyno subnet
/// `10.219.N.(64·i)/26` routed to it from the machine and from every other host. Everything
/// (processes, containers, namespaces, links, routes, the NAT table) is removed on drop.
pub struct HostNet {
    pub bridge: String,
    /// The bridge's network, `10.218.N.0/24`: routers and control planes reach dynos from it.
    pub network: String,
    pub gateway: std::net::Ipv4Addr,
    pub hosts: Vec<NetHost>,
    routes: Vec<String>,
    temp: tempfile::TempDir,
}

impl HostNet {
    pub fn create(count: usize) -> HostNet {
        let n = (std::process::id() % 200 + 20) as u8;
        let bridge = format!("slwch{n}");
        let gateway = std::net::Ipv4Addr::new(10, 218, n, 1);
        let temp = tempfile::Builder::new()
            .prefix("slipway-hosts-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let mut net = HostNet {
            bridge: bridge.clone(),
            network: format!("10.218.{n}.0/24"),
            gateway,
            hosts: Vec::new(),
            routes: Vec::new(),
            temp,
        };
        quietly("ip", &["link", "del", &bridge]);
        sh("ip", &["link", "add", &bridge, "type", "bridge"]);
        sh(
            "ip",
            &["addr", "add", &format!("{gateway}/24"), "dev", &bridge],
        );
        sh("ip", &["link", "set", &bridge, "up"]);
        // The hosts reach the machine's resolver as the machine itself does (a dyno's
        // `socket.getfqdn` otherwise waits for DNS timeouts): NAT out of the test's subnet.
        quietly("nft", &["delete", "table", "ip", &bridge]);
        let nat = format!(
            "table ip {bridge} {{\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    ip saddr 10.218.{n}.0/24 oifname != \"{bridge}\" masquerade\n  }}\n}}\n"
        );
        let rules = net.temp.path().join("nat.nft");
        std::fs::write(&rules, nat).expect("nat rules");
        sh("nft", &["-f", &rules.to_string_lossy()]);
        for i in 0..count {
            let name = format!("h{i}");
            let netns = format!("slwch{n}{name}");
            let veth = format!("slwch{n}{name}");
            let peer = format!("slwch{n}{name}p");
            let address = std::net::Ipv4Addr::new(10, 218, n, 11 + i as u8);
            let dyno_subnet = format!("10.219.{n}.{}/26", 64 * i);
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
            exec(&["ip", "route", "add", "default", "via", &gateway.to_string()]);
            sh(
                "ip",
                &["route", "add", &dyno_subnet, "via", &address.to_string()],
            );
            net.routes.push(dyno_subnet.clone());
            net.hosts.push(NetHost {
                data: net.temp.path().join(format!("agent-{name}")),
                agent_log: net.temp.path().join(format!("agent-{name}.log")),
                router_log: net.temp.path().join(format!("router-{name}.log")),
                name,
                netns,
                veth,
                address,
                dyno_subnet,
                agent: None,
                router: None,
            });
        }
        // Every host reaches every other host's dynos directly over the bridge.
        for host in &net.hosts {
            for other in net.hosts.iter().filter(|o| o.name != host.name) {
                sh(
                    "ip",
                    &[
                        "netns",
                        "exec",
                        &host.netns,
                        "ip",
                        "route",
                        "add",
                        &other.dyno_subnet,
                        "via",
                        &other.address.to_string(),
                    ],
                );
            }
        }
        net
    }

    /// The test's scratch directory (removed on drop).
    pub fn dir(&self) -> &Path {
        self.temp.path()
    }

    /// Every host's agent and router log, for a failure's message.
    pub fn logs(&self) -> String {
        let mut text = String::new();
        for host in &self.hosts {
            text.push_str(&format!(
                "--- agent {} ---\n{}\n--- router {} ---\n{}\n",
                host.name,
                host.agent_log(),
                host.name,
                host.router_log()
            ));
        }
        text
    }
}

impl Drop for HostNet {
    fn drop(&mut self) {
        for host in &mut self.hosts {
            host.kill_agent();
            if let Some(mut router) = host.router.take() {
                let _ = router.kill();
                let _ = router.wait();
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
