//! Cluster mode end to end: one control plane (`slipway server --cluster`) on the host and two
//! host agents (`slipway agent`), each in a network namespace of its own joined to a bridge on
//! a private subnet this test creates, with routes from the host to each agent's dyno subnet.
//! A real `git push`, `ps:scale web=4` spreads the dynos two per host, the router serves from
//! both, dyno output of both hosts reaches `slipway logs`; one agent is killed (SIGKILL) and
//! started again with the same name and data directory: it re-adopts its dynos, the same
//! containers keep serving and none is restarted or placed anew; then one host's link is cut:
//! its dynos are replaced on the other host within 10 s, and by the time its link is back it
//! has stopped its dynos itself.

mod support;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::Server;

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

/// One agent's host: its namespace, link, addresses and process.
struct Host {
    name: &'static str,
    netns: String,
    /// The host end of its veth, in the test's bridge.
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

/// The test's network and agents; everything is removed on drop, whatever happened.
struct Cluster {
    bridge: String,
    hosts: Vec<Host>,
    routes: Vec<String>,
    _temp: tempfile::TempDir,
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

/// Creates the bridge `10.213.N.1/24` on the host and, per agent, a namespace joined to it
/// with the route to its dyno subnet.
fn network(temp: tempfile::TempDir) -> Cluster {
    let n = std::process::id() % 200 + 20;
    let bridge = format!("slwagb{n}");
    let mut cluster = Cluster {
        bridge: bridge.clone(),
        hosts: Vec::new(),
        routes: Vec::new(),
        _temp: temp,
    };
    quietly("ip", &["link", "del", &bridge]);
    sh("ip", &["link", "add", &bridge, "type", "bridge"]);
    sh(
        "ip",
        &["addr", "add", &format!("10.213.{n}.1/24"), "dev", &bridge],
    );
    sh("ip", &["link", "set", &bridge, "up"]);
    // The hosts reach the machine's resolver as the machine itself does (a dyno's
    // `socket.getfqdn` otherwise waits for DNS timeouts): NAT out of the test's subnet.
    quietly("nft", &["delete", "table", "ip", &bridge]);
    let nat = format!(
        "table ip {bridge} {{\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    ip saddr 10.213.{n}.0/24 oifname != \"{bridge}\" masquerade\n  }}\n}}\n"
    );
    let rules = cluster._temp.path().join("nat.nft");
    std::fs::write(&rules, nat).expect("nat rules");
    sh("nft", &["-f", &rules.to_string_lossy()]);
    for (i, name) in ["a", "b"].into_iter().enumerate() {
        let netns = format!("slwag{n}{name}");
        let veth = format!("slwag{n}{name}");
        let peer = format!("slwag{n}{name}p");
        // Outside 10.213.N.0/28, the routers' network the agents admit (`--routed-from`), so
        // neither agent's dynos (masqueraded as their host) reach the other's.
        let address = Ipv4Addr::new(10, 213, n as u8, 18 + i as u8);
        let dyno_subnet = format!("10.215.{n}.{}/25", 128 * i);
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
            &format!("10.213.{n}.1"),
        ]);
        sh(
            "ip",
            &["route", "add", &dyno_subnet, "via", &address.to_string()],
        );
        cluster.routes.push(dyno_subnet.clone());
        let data = cluster._temp.path().join(format!("agent-{name}"));
        let log = cluster._temp.path().join(format!("agent-{name}.log"));
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
/// On a thread and runtime of its own: the test's own thread blocks in the CLI and git.
fn forward(listen: std::net::SocketAddr, to: std::net::SocketAddr) {
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

fn start_agent(host: &mut Host, server_url: &str, token: &Path, bridge_net: &str) {
    let log = std::fs::File::create(&host.log).expect("agent log");
    // Only the network namespace: the agent shares the host's mounts (cgroups, /tmp), as an
    // agent on a machine of its own sees that machine's.
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
        .env("RUST_LOG", "info")
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start slipway agent");
    host.child = Some(child);
}

/// The app's dynos as the API shows them: (name, state).
async fn dynos(server: &Server, app: &str) -> Vec<(String, String)> {
    let list = server.api_json(&format!("/apps/{app}/dynos")).await;
    list.as_array()
        .map(|dynos| {
            dynos
                .iter()
                .map(|d| {
                    (
                        d["name"].as_str().unwrap_or_default().to_owned(),
                        d["state"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
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

#[tokio::test]
async fn dynos_spread_over_two_agents_and_a_cut_host_is_replaced_and_fences_itself() {
    require_runc!();
    let server = Server::start_with(&["--cluster"]);
    let token = server.data_dir.join("cluster-token");
    assert!(token.exists(), "the server made no cluster token");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&token).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "the cluster token is readable by others");

    let temp = tempfile::Builder::new()
        .prefix("slipway-agents-")
        .tempdir_in("/tmp")
        .expect("temp dir");
    let mut cluster = network(temp);
    let n = std::process::id() % 200 + 20;
    let gateway = Ipv4Addr::new(10, 213, n as u8, 1);
    let api_port: u16 = server
        .api_url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("API port");
    let forward_port = api_port.wrapping_add(1000);
    forward(
        (gateway, forward_port).into(),
        (Ipv4Addr::LOCALHOST, api_port).into(),
    );
    let server_url = format!("http://{gateway}:{forward_port}");
    let bridge_net = format!("10.213.{n}.0/28");
    for host in &mut cluster.hosts {
        start_agent(host, &server_url, &token, &bridge_net);
    }
    let all_logs = |cluster: &Cluster| {
        let mut text = format!("server log:\n{}\n", server.log());
        for host in &cluster.hosts {
            text.push_str(&format!("agent {} log:\n{}\n", host.name, host.log()));
        }
        text
    };
    wait_until(
        Duration::from_secs(30),
        "both agents registered",
        || all_logs(&cluster),
        || {
            let log = server.log();
            async move { log.matches("host registered").count() >= 2 }
        },
    )
    .await;

    // A real push, then four web dynos: two per host.
    let app = "clustered";
    server.cli_ok(&["apps:create", app]);
    let repo = support::echo_app_repo();
    server.push_ok(app, repo.path());
    server.cli_ok(&["ps:scale", "web=4", "-a", app]);
    let scaled = wait_until(
        Duration::from_secs(60),
        "four web dynos up, two on each host",
        || all_logs(&cluster),
        || {
            let counts: Vec<usize> = cluster.hosts.iter().map(|h| h.running().len()).collect();
            let server = &server;
            async move {
                let up = dynos(server, app)
                    .await
                    .iter()
                    .filter(|(_, s)| s == "up")
                    .count();
                up == 4 && counts == [2, 2]
            }
        },
    )
    .await;
    eprintln!("ps:scale web=4 across two agents: {scaled:?} until every dyno was up");
    // No formation dyno runs on the control plane itself.
    assert!(
        server.containers().iter().all(|id| !id.contains(".web.")),
        "{:?}",
        server.containers()
    );

    // The router reaches the dynos of both hosts.
    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < 4 && Instant::now() < deadline {
        let body = server.get(app, "/").await.text().await.unwrap_or_default();
        if let Some(dyno) = body.trim().strip_prefix("hello from ") {
            seen.insert(dyno.to_owned());
        }
    }
    assert_eq!(
        seen.len(),
        4,
        "dynos that answered: {seen:?}\n{}",
        all_logs(&cluster)
    );

    // Output of every dyno, on both hosts, is in the app's log.
    server
        .wait_for_log(app, |log| {
            (1..=4).all(|i| log.contains(&format!("app[web.{i}]: handled /")))
        })
        .await;

    // An agent restart never restarts dynos: host b's agent dies (SIGKILL) and starts again
    // with the same name and data directory; it re-adopts the containers its host runs.
    let sorted = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };
    let b_before = sorted(cluster.hosts[1].running());
    assert_eq!(b_before.len(), 2, "{b_before:?}");
    let placed_before = server.log().matches("dyno placed").count();
    {
        let b = &mut cluster.hosts[1];
        let mut child = b.child.take().expect("agent b runs");
        child.kill().expect("SIGKILL agent b");
        let _ = child.wait();
        start_agent(b, &server_url, &token, &bridge_net);
    }
    wait_until(
        Duration::from_secs(20),
        "the restarted agent re-adopted both of its dynos",
        || all_logs(&cluster),
        || {
            let log = cluster.hosts[1].log();
            async move { log.matches("re-adopted a running dyno").count() == 2 }
        },
    )
    .await;
    // Past a whole lease TTL: a host that had not renewed would have been fenced by now.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        sorted(cluster.hosts[1].running()),
        b_before,
        "the restarted agent's dynos changed\n{}",
        all_logs(&cluster)
    );
    assert_eq!(
        server.log().matches("dyno placed").count(),
        placed_before,
        "a dyno was placed anew after the agent's restart\n{}",
        all_logs(&cluster)
    );
    assert!(
        !server.log().contains("host lost"),
        "{}",
        all_logs(&cluster)
    );
    let mut seen = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < 4 && Instant::now() < deadline {
        let body = server.get(app, "/").await.text().await.unwrap_or_default();
        if let Some(dyno) = body.trim().strip_prefix("hello from ") {
            seen.insert(dyno.to_owned());
        }
    }
    assert_eq!(
        seen.len(),
        4,
        "after the agent's restart, dynos that answered: {seen:?}"
    );

    // Cut host a's link: it cannot renew its lease.
    let (a, b) = (&cluster.hosts[0], &cluster.hosts[1]);
    let a_dynos = a.running();
    sh("ip", &["link", "set", &a.veth, "down"]);
    let replaced = wait_until(
        Duration::from_secs(10),
        "the lost host's dynos replaced on the other host within 10 s",
        || all_logs(&cluster),
        || {
            let on_b = b.running().len();
            let server = &server;
            async move {
                let up = dynos(server, app)
                    .await
                    .iter()
                    .filter(|(_, s)| s == "up")
                    .count();
                up == 4 && on_b == 4
            }
        },
    )
    .await;
    eprintln!("failover: {replaced:?} from the cut until four dynos were up again");
    // Host a fenced itself: by now (past two thirds of the lease's TTL) its dynos are gone,
    // before its link comes back.
    wait_until(
        Duration::from_secs(5),
        "the cut host stopped its own dynos",
        || all_logs(&cluster),
        || {
            let left = a.running();
            async move { left.is_empty() }
        },
    )
    .await;
    sh("ip", &["link", "set", &a.veth, "up"]);
    assert!(a.running().iter().all(|id| !a_dynos.contains(id)));
    assert!(a.log().contains("self-fencing"), "{}", a.log());
    // The formation is whole and served.
    let mut answered = 0;
    for _ in 0..20 {
        if server.get(app, "/").await.status() == 200 {
            answered += 1;
        }
    }
    assert_eq!(answered, 20, "{}", all_logs(&cluster));
    assert_eq!(dynos(&server, app).await.len(), 4);
}
