//! Integration tests of the dyno network ([`Network::Isolated`] on [`RuncRuntime`]): each test
//! starts real runc containers on a bridge and subnet of its own and tries, from inside a
//! container, what a hostile tenant would: the host's loopback services, the host's own
//! addresses, another container, the metadata address. Outbound NAT is shown against a network
//! namespace "outside" that the test creates. They need root, runc, iproute2 and nftables, and
//! skip loudly otherwise.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use slipway_runtime::{
    run_to_completion, ContainerSpec, Ipv4Subnet, Limits, Network, NetworkConfig, OutputSink,
    RuncConfig, RuncRuntime, Runtime, RuntimeError, Stream,
};

type Lines = Arc<Mutex<Vec<String>>>;

fn collector() -> (OutputSink, Lines) {
    let lines: Lines = Arc::default();
    let l = lines.clone();
    (
        Arc::new(move |s, line: &str| {
            if s == Stream::Stdout {
                l.lock().unwrap().push(line.to_string())
            } else {
                eprintln!("container stderr: {line}");
            }
        }),
        lines,
    )
}

/// A test's runtime: its own state dir, cgroup parent, bridge and /24.
struct Fixture {
    dir: tempfile::TempDir,
    cgroup_parent: String,
    network: NetworkConfig,
}

/// A /24 of 10.213.0.0/16 per fixture of this process (tests run in parallel).
fn next_subnet() -> Ipv4Subnet {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = (std::process::id() * 7 + NEXT.fetch_add(1, Ordering::Relaxed)) % 250;
    Ipv4Subnet::new(Ipv4Addr::new(10, 213, n as u8, 0), 24).unwrap()
}

impl Fixture {
    fn config(&self, network: bool) -> RuncConfig {
        let mut config = RuncConfig::new(self.dir.path());
        config.cgroup_parent = self.cgroup_parent.clone();
        config.network = network.then(|| self.network.clone());
        config
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let runc = |args: &[&str]| {
            Command::new("runc")
                .arg("--root")
                .arg(self.dir.path().join("runc"))
                .args(args)
                .output()
        };
        if let Ok(out) = runc(&["list", "-q"]) {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = runc(&["kill", "--all", id, "KILL"]);
                let _ = runc(&["delete", "--force", id]);
            }
        }
        slipway_runtime::unmount_leftovers(self.dir.path());
        slipway_runtime::remove_network(&self.network.bridge);
        if let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") {
            for hierarchy in hierarchies.flatten() {
                let _ = std::fs::remove_dir(hierarchy.path().join(&self.cgroup_parent));
            }
        }
    }
}

fn tools_available(test: &str) -> bool {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("SKIPPED {test}: needs root");
        return false;
    }
    for tool in ["runc", "nft", "ip", "python3"] {
        if Command::new(tool).arg("--version").output().is_err() {
            eprintln!(
                "SKIPPED {test}: needs `{tool}` (apt-get install runc nftables iproute2 python3)"
            );
            return false;
        }
    }
    true
}

/// A runtime with a dyno network (retrying on a subnet some other test or server holds).
fn setup(test: &str) -> Option<(RuncRuntime, Fixture)> {
    setup_with_public_ports(test, vec![])
}

fn setup_with_public_ports(test: &str, public_ports: Vec<u16>) -> Option<(RuncRuntime, Fixture)> {
    setup_with_ports(test, public_ports, vec![])
}

fn setup_with_ports(
    test: &str,
    public_ports: Vec<u16>,
    addon_ports: Vec<std::ops::RangeInclusive<u16>>,
) -> Option<(RuncRuntime, Fixture)> {
    if !tools_available(test) {
        return None;
    }
    let dir = tempfile::Builder::new()
        .prefix("slipway-net-test-")
        .tempdir_in("/tmp")
        .unwrap();
    let cgroup_parent = format!("slipway-nettest-{test}-{}", std::process::id());
    let mut network = NetworkConfig::for_key(next_subnet(), dir.path());
    network.public_ports = public_ports;
    network.addon_ports = addon_ports;
    let mut fixture = Fixture {
        network,
        dir,
        cgroup_parent,
    };
    for _ in 0..20 {
        match RuncRuntime::new(fixture.config(true)) {
            Ok(rt) => return Some((rt, fixture)),
            Err(RuntimeError::Network { reason, .. }) if reason.contains("overlaps") => {
                fixture.network.subnet = next_subnet();
            }
            Err(e) => panic!("{e}"),
        }
    }
    panic!("no free /24 in 10.213.0.0/16");
}

fn spec(id: &str, args: &[&str]) -> ContainerSpec {
    ContainerSpec {
        id: id.to_string(),
        labels: BTreeMap::from([("app".to_string(), id.to_string())]),
        app_dir: None,
        rootfs: slipway_runtime::Rootfs::Host,
        binds: vec![],
        args: args.iter().map(|s| s.to_string()).collect(),
        env: vec![("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into())],
        cwd: "/".into(),
        uid: 4321,
        gid: 4321,
        hostname: id.into(),
        limits: Limits::default(),
        network: Network::Isolated,
        allowed_host_ports: Vec::new(),
    }
}

/// A container that listens on 0.0.0.0:8000 and answers every connection with `name`.
fn listener_spec(id: &str, bind: &str) -> ContainerSpec {
    let script = format!(
        "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
         s.bind(('{bind}',8000))\ns.listen(16)\nprint('listening',flush=True)\n\
         while True:\n    c,_=s.accept()\n    c.sendall(b'{id}')\n    c.close()\n"
    );
    spec(id, &["/usr/bin/python3", "-c", &script])
}

/// Connects to each `name,host,port` with a 1.5 s timeout and prints `name:open` or
/// `name:closed:<error>`; with `read`, also prints what the peer sent (`name:said:<text>`).
const PROBE: &str = r#"
import socket, sys
for arg in sys.argv[1:]:
    name, host, port = arg.split(",")
    s = socket.socket()
    s.settimeout(1.5)
    try:
        s.connect((host, int(port)))
        print(name + ":open", flush=True)
        try:
            print(name + ":said:" + s.recv(100).decode(), flush=True)
        except Exception:
            pass
    except Exception as e:
        print(name + ":closed:" + type(e).__name__, flush=True)
    finally:
        s.close()
print("done", flush=True)
"#;

async fn probe(rt: &RuncRuntime, id: &str, targets: &[String]) -> Vec<String> {
    probe_allowed(rt, id, targets, &[]).await
}

/// [`probe`] from a container that may reach `allowed` add-on ports.
async fn probe_allowed(
    rt: &RuncRuntime,
    id: &str,
    targets: &[String],
    allowed: &[u16],
) -> Vec<String> {
    let mut args = vec!["/usr/bin/python3", "-c", PROBE];
    args.extend(targets.iter().map(|s| s.as_str()));
    let (sink, lines) = collector();
    let spec = ContainerSpec {
        allowed_host_ports: allowed.to_vec(),
        ..spec(id, &args)
    };
    let status = run_to_completion(rt, spec, sink).await.unwrap();
    assert!(status.success(), "probe exited with {status}");
    let lines = lines.lock().unwrap().clone();
    assert_eq!(lines.last().map(|s| s.as_str()), Some("done"), "{lines:?}");
    lines
}

fn assert_closed(lines: &[String], name: &str) {
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{name}:closed"))),
        "{name} should be unreachable from a dyno: {lines:?}"
    );
}

fn assert_open(lines: &[String], name: &str) {
    assert!(
        lines.iter().any(|l| l == &format!("{name}:open")),
        "{name} should be reachable from a dyno: {lines:?}"
    );
}

async fn wait_for_line(lines: &Lines, line: &str) {
    for _ in 0..1000 {
        if lines.lock().unwrap().iter().any(|l| l == line) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{line:?} was not printed: {lines:?}");
}

/// Host listeners that accept and close connections, on a thread.
fn host_listener(addr: SocketAddr) -> u16 {
    let listener = TcpListener::bind(addr).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            drop(conn);
        }
    });
    port
}

/// A network namespace "outside" joined to the host by a veth with a /30 the test owns, with a
/// TCP server on port 7 that answers with the address the connection came from.
struct Outside {
    name: String,
    host_veth: String,
    host_addr: Ipv4Addr,
    addr: Ipv4Addr,
    server: std::process::Child,
}

impl Outside {
    fn create() -> Outside {
        let n = (std::process::id() % 60) as u8 * 4;
        let name = format!("slwout{}", std::process::id());
        let host_veth = format!("vo{}", std::process::id());
        let host_addr = Ipv4Addr::new(10, 214, 77, n + 1);
        let addr = Ipv4Addr::new(10, 214, 77, n + 2);
        let ip = |args: &str| {
            let out = Command::new("ip")
                .args(args.split_whitespace())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "ip {args}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let _ = Command::new("ip")
            .args(["link", "del", &host_veth])
            .output();
        ip(&format!("netns add {name}"));
        ip(&format!(
            "link add {host_veth} type veth peer name eth0 netns {name}"
        ));
        ip(&format!("addr add {host_addr}/30 dev {host_veth}"));
        ip(&format!("link set {host_veth} up"));
        ip(&format!("-n {name} addr add {addr}/30 dev eth0"));
        ip(&format!("-n {name} link set eth0 up"));
        ip(&format!("-n {name} link set lo up"));
        let server = format!(
            "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
             s.bind(('{addr}',7))\ns.listen(16)\n\
             while True:\n    c,a=s.accept()\n    c.sendall(a[0].encode())\n    c.close()\n"
        );
        let server = Command::new("ip")
            .args(["netns", "exec", &name, "python3", "-c", &server])
            .spawn()
            .unwrap();
        let outside = Outside {
            name,
            host_veth,
            host_addr,
            addr,
            server,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect((outside.addr, 7)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the outside server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        outside
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        // Anything else left in the namespace.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse::<i32>() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_veth])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

fn v4(addr: Option<IpAddr>) -> Ipv4Addr {
    match addr {
        Some(IpAddr::V4(a)) => a,
        other => panic!("an isolated container has an IPv4 address, got {other:?}"),
    }
}

/// The attacks of issue 10 finding 3, from inside a container, with a positive control
/// (outbound NAT to a network outside the host) so that "unreachable" cannot mean "no network".
#[tokio::test]
async fn a_dyno_reaches_the_outside_through_nat_and_nothing_of_the_host_or_other_dynos() {
    let Some((rt, fixture)) = setup("attacks") else {
        return;
    };
    let outside = Outside::create();
    // Host services: one on loopback (like the API), one on every address (reachable at the
    // gateway address unless the firewall stops it).
    let loopback_port = host_listener(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    let any_port = host_listener(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    let gateway = fixture.network.subnet.gateway();

    // The victim: another tenant's dyno listening on all its addresses.
    let (sink, victim_lines) = collector();
    let victim = rt
        .start(listener_spec("victim", "0.0.0.0"), sink)
        .await
        .unwrap();
    wait_for_line(&victim_lines, "listening").await;
    let victim_addr = v4(victim.address);
    assert!(fixture.network.subnet.contains(victim_addr));
    // The router's path: the host reaches the victim at its address.
    let mut conn = std::net::TcpStream::connect((victim_addr, 8000)).unwrap();
    let mut said = String::new();
    std::io::Read::read_to_string(&mut conn, &mut said).unwrap();
    assert_eq!(said, "victim");

    let targets = vec![
        format!("host_loopback,127.0.0.1,{loopback_port}"),
        format!("gateway,{gateway},{any_port}"),
        format!("gateway_loopback_service,{gateway},{loopback_port}"),
        format!("victim,{victim_addr},8000"),
        "metadata,169.254.169.254,80".to_string(),
        format!("outside,{},7", outside.addr),
    ];
    let lines = probe(&rt, "attacker", &targets).await;
    assert_closed(&lines, "host_loopback");
    assert_closed(&lines, "gateway");
    assert_closed(&lines, "gateway_loopback_service");
    assert_closed(&lines, "victim");
    assert_closed(&lines, "metadata");
    assert_open(&lines, "outside");
    // Masqueraded: the outside saw the host's address on that link, not the dyno's.
    assert!(
        lines.contains(&format!("outside:said:{}", outside.host_addr)),
        "outbound traffic should leave through NAT as {}: {lines:?}",
        outside.host_addr
    );

    // The host's own (non-bridge) address, e.g. the public one the API might listen on.
    let host_addr = outside.host_addr;
    let lines = probe(
        &rt,
        "attacker2",
        &[format!("host_address,{host_addr},{any_port}")],
    )
    .await;
    assert_closed(&lines, "host_address");
    rt.stop("victim", Duration::ZERO).await.unwrap();
}

/// The platform's public listeners (`public_ports`) are reachable from a dyno at the host's
/// addresses, as from anywhere; every other host port stays closed.
#[tokio::test]
async fn public_ports_are_reachable_as_from_outside() {
    if !tools_available("public") {
        return;
    }
    let public = host_listener(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    let private = host_listener(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    let Some((rt, fixture)) = setup_with_public_ports("public", vec![public]) else {
        return;
    };
    let gateway = fixture.network.subnet.gateway();
    let lines = probe(
        &rt,
        "caller",
        &[
            format!("public,{gateway},{public}"),
            format!("private,{gateway},{private}"),
        ],
    )
    .await;
    assert_open(&lines, "public");
    assert_closed(&lines, "private");
}

/// The add-on servers' ports (`addon_ports`) at the gateway are open only to a container
/// started with them in `allowed_host_ports`, each port on its own; a port that is not an add-on
/// port stays closed whatever the spec asks, and a container's reach leaves the firewall with it.
#[tokio::test]
async fn add_on_ports_are_open_only_to_the_containers_allowed_them() {
    if !tools_available("addonreach") {
        return;
    }
    let any = || host_listener(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    let (pg, redis, other) = (any(), any(), any());
    let Some((rt, fixture)) = setup_with_ports("addonreach", vec![], vec![pg..=pg, redis..=redis])
    else {
        return;
    };
    let gateway = fixture.network.subnet.gateway();
    let targets = [
        format!("pg,{gateway},{pg}"),
        format!("redis,{gateway},{redis}"),
        format!("other,{gateway},{other}"),
    ];
    let lines = probe_allowed(&rt, "none", &targets, &[]).await;
    assert_closed(&lines, "pg");
    assert_closed(&lines, "redis");
    assert_closed(&lines, "other");
    let lines = probe_allowed(&rt, "pgonly", &targets, &[pg, other]).await;
    assert_open(&lines, "pg");
    assert_closed(&lines, "redis");
    assert_closed(&lines, "other");
    let lines = probe_allowed(&rt, "both", &targets, &[pg, redis]).await;
    assert_open(&lines, "pg");
    assert_open(&lines, "redis");
    // Every container above has ended: no element is left in the reach set.
    let out = Command::new("nft")
        .args([
            "list",
            "set",
            "inet",
            &fixture.network.table(),
            "addon_reach",
        ])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{listed}");
    assert!(!listed.contains("elements"), "{listed}");
}

/// A dyno sees its own sockets only: a host listener does not appear in its /proc/net/tcp,
/// and it has no interface but `lo` and `eth0`.
#[tokio::test]
async fn a_dyno_cannot_list_host_listeners() {
    let Some((rt, _fixture)) = setup("listeners") else {
        return;
    };
    let port = host_listener(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    let needle = format!(":{port:04X} ");
    let (sink, lines) = collector();
    let status = run_to_completion(
        &rt,
        spec(
            "lister",
            &[
                "/bin/sh",
                "-c",
                "cat /proc/net/tcp /proc/net/tcp6; echo IFACES; ls /sys/class/net",
            ],
        ),
        sink,
    )
    .await
    .unwrap();
    assert!(status.success());
    let lines = lines.lock().unwrap().clone();
    assert!(
        lines.iter().any(|l| l.contains("local_address")),
        "{lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains(&needle)),
        "the host's listener on port {port} is visible in the dyno: {lines:?}"
    );
    let ifaces: Vec<&str> = lines
        .iter()
        .skip_while(|l| *l != "IFACES")
        .skip(1)
        .map(|s| s.as_str())
        .collect();
    assert_eq!(ifaces, ["eth0", "lo"]);
}

/// A port bound on the dyno's own loopback is not reachable at its address (the platform's
/// "up" check uses the address), and an attacker binding the same port in its own dyno does
/// not receive the victim's traffic.
#[tokio::test]
async fn ports_belong_to_their_dyno() {
    let Some((rt, _fixture)) = setup("ports") else {
        return;
    };
    let (sink, lo_lines) = collector();
    let lo_only = rt
        .start(listener_spec("loonly", "127.0.0.1"), sink)
        .await
        .unwrap();
    wait_for_line(&lo_lines, "listening").await;
    let lo_addr = v4(lo_only.address);
    assert!(
        std::net::TcpStream::connect_timeout(
            &SocketAddr::from((lo_addr, 8000)),
            Duration::from_secs(1)
        )
        .is_err(),
        "a listener on the dyno's loopback must not be reachable at its address"
    );
    // Nothing on the host's loopback either.
    assert!(std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, 8000)).is_err());

    let (sink, victim_lines) = collector();
    let victim = rt
        .start(listener_spec("victim", "0.0.0.0"), sink)
        .await
        .unwrap();
    wait_for_line(&victim_lines, "listening").await;
    let (sink, attacker_lines) = collector();
    let attacker = rt
        .start(listener_spec("attacker", "0.0.0.0"), sink)
        .await
        .unwrap();
    wait_for_line(&attacker_lines, "listening").await;
    let victim_addr = v4(victim.address);
    assert_ne!(victim_addr, v4(attacker.address));
    // Same port, different dynos: each address answers with its own dyno, every time.
    for _ in 0..40 {
        let mut conn = std::net::TcpStream::connect((victim_addr, 8000)).unwrap();
        let mut said = String::new();
        std::io::Read::read_to_string(&mut conn, &mut said).unwrap();
        assert_eq!(said, "victim");
    }
    // The victim dies; the attacker still cannot take its address.
    rt.stop("victim", Duration::ZERO).await.unwrap();
    assert!(std::net::TcpStream::connect_timeout(
        &SocketAddr::from((victim_addr, 8000)),
        Duration::from_secs(1)
    )
    .is_err());
    for id in ["attacker", "loonly"] {
        rt.stop(id, Duration::ZERO).await.unwrap();
    }
}

/// Addresses survive a restart of the runtime (list and adopt report them; a new container
/// gets another), and stopping a container removes its veth and frees its address.
#[tokio::test]
async fn addresses_are_persisted_and_freed() {
    let Some((rt, fixture)) = setup("persist") else {
        return;
    };
    let (sink, lines) = collector();
    let first = rt
        .start(listener_spec("first", "0.0.0.0"), sink)
        .await
        .unwrap();
    wait_for_line(&lines, "listening").await;
    let first_addr = first.address;
    drop(rt);

    let rt = RuncRuntime::new(fixture.config(true)).unwrap();
    let listed = rt.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].address, first_addr);
    let (sink, _) = collector();
    let adopted = rt.adopt("first", sink).await.unwrap();
    assert_eq!(adopted.address, first_addr);
    let (sink, second_lines) = collector();
    let second = rt
        .start(listener_spec("second", "0.0.0.0"), sink)
        .await
        .unwrap();
    wait_for_line(&second_lines, "listening").await;
    assert_ne!(second.address, first_addr);
    // The adopted container still answers at its address through the re-installed firewall.
    let mut conn = std::net::TcpStream::connect((v4(first_addr), 8000)).unwrap();
    let mut said = String::new();
    std::io::Read::read_to_string(&mut conn, &mut said).unwrap();
    assert_eq!(said, "first");

    let veths = || -> Vec<String> {
        std::fs::read_dir("/sys/class/net")
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| {
                Path::new("/sys/class/net")
                    .join(name)
                    .join("brport/bridge")
                    .read_link()
                    .is_ok_and(|b| b.ends_with(&fixture.network.bridge))
            })
            .collect()
    };
    assert_eq!(veths().len(), 2);
    rt.stop("first", Duration::ZERO).await.unwrap();
    rt.stop("second", Duration::ZERO).await.unwrap();
    // The kernel removes a stopped container's veth pair with its namespace, in the background.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !veths().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(veths(), Vec::<String>::new(), "veths left after the stops");
    assert!(rt.list().await.unwrap().is_empty());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(fixture.dir.path().to_string_lossy().as_ref()));
}

/// A subnet that overlaps the host's routes is refused with a message that says what to do.
#[tokio::test]
async fn an_overlapping_subnet_is_refused() {
    if !tools_available("overlap") {
        return;
    }
    let route = Command::new("ip")
        .args(["-4", "route", "show", "scope", "link"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&route.stdout);
    let Some(dst) = text.split_whitespace().next().filter(|d| d.contains('/')) else {
        eprintln!("SKIPPED overlap: the host has no link-scope IPv4 route to collide with");
        return;
    };
    let subnet: Ipv4Subnet = dst.parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = RuncConfig::new(dir.path());
    config.network = Some(NetworkConfig::for_key(subnet, dir.path()));
    let bridge = config.network.as_ref().unwrap().bridge.clone();
    let err = RuncRuntime::new(config).unwrap_err().to_string();
    assert!(
        err.contains("overlaps") && err.contains("--dyno-subnet"),
        "{err}"
    );
    assert!(!Path::new("/sys/class/net").join(&bridge).exists());
}

/// An isolated container on a runtime without a dyno network has a loopback and nothing else.
#[tokio::test]
async fn isolated_without_a_network_has_only_loopback() {
    let Some((_, fixture)) = setup("nonet") else {
        return;
    };
    let rt = RuncRuntime::new(fixture.config(false)).unwrap();
    let (sink, lines) = collector();
    let status = run_to_completion(
        &rt,
        spec("nonet", &["/bin/sh", "-c", "ls /sys/class/net"]),
        sink,
    )
    .await
    .unwrap();
    assert!(status.success());
    assert_eq!(*lines.lock().unwrap(), ["lo"]);
}

/// Container start time (until the container's process runs) with and without a network
/// namespace on the bridge, interleaved so that the machine's load hits both alike; medians
/// over 25 starts each.
/// `cargo test -p slipway-runtime --release --test network bench -- --ignored --nocapture`
#[tokio::test]
#[ignore = "a benchmark; run with --release --ignored --nocapture"]
async fn bench_start_with_and_without_network() {
    let Some((rt, _fixture)) = setup("bench") else {
        return;
    };
    let mut host = Vec::new();
    let mut isolated = Vec::new();
    for i in 0..25 {
        for network in [Network::Host, Network::Isolated] {
            let id = format!("bench{i}{network:?}");
            let mut s = spec(&id, &["/bin/sleep", "60"]);
            s.network = network;
            let (sink, _) = collector();
            let t = Instant::now();
            let running = rt.start(s, sink).await.unwrap();
            let elapsed = t.elapsed();
            rt.stop(&running.id, Duration::ZERO).await.unwrap();
            match network {
                Network::Host => host.push(elapsed),
                Network::Isolated => isolated.push(elapsed),
            }
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (h, n) = (median(&mut host), median(&mut isolated));
    println!(
        "start median over 25: host network {h:?}, own network namespace {n:?} (difference {:?})",
        n.saturating_sub(h)
    );
}

/// The gateway's MAC address must not move when dynos come and go: a bridge without an address
/// of its own takes its lowest port's, and dynos would then send replies to a MAC that is gone
/// until their ARP entries expire (requests in flight hung until the router's H12).
#[tokio::test]
async fn the_gateway_keeps_its_mac_address_as_dynos_come_and_go() {
    let Some((rt, fixture)) = setup("gwmac") else {
        return;
    };
    let mac = || {
        std::fs::read_to_string(format!("/sys/class/net/{}/address", fixture.network.bridge))
            .expect("the bridge's address")
            .trim()
            .to_owned()
    };
    let before = mac();
    let mut running = Vec::new();
    for n in 0..4 {
        let id = format!("gwmac{n}");
        let (sink, lines) = collector();
        running.push(rt.start(listener_spec(&id, "0.0.0.0"), sink).await.unwrap());
        wait_for_line(&lines, "listening").await;
        assert_eq!(mac(), before, "the gateway's MAC changed when {id} started");
    }
    for n in 0..4 {
        rt.stop(&format!("gwmac{n}"), Duration::ZERO).await.unwrap();
        assert_eq!(
            mac(),
            before,
            "the gateway's MAC changed when gwmac{n} stopped"
        );
    }
}
