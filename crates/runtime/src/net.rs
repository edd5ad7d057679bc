//! The dyno network: one network namespace per [`Network::Isolated`](crate::Network) container,
//! joined to a Slipway bridge by a veth pair, with an nftables firewall around it.
//!
//! # Shape
//! ```text
//!   host netns                                   container netns (bundle/netns)
//!   ─────────                                    ──────────────
//!   <bridge> 172.30.0.1/16 (the gateway)
//!     └─ v<hash><n>  (port isolated) ◄── veth ──► eth0 172.30.0.n/16, default via gateway
//!                                                lo 127.0.0.1 (the dyno's own loopback)
//! ```
//! The router (on the host) connects to `address:$PORT`; the dyno's replies are "established"
//! traffic. Everything else a dyno starts goes through the firewall of this runtime's nftables
//! table (`inet slipway_<bridge>`, see [`ruleset`]):
//! - to the host itself (any of its addresses, the gateway included): dropped, except replies
//!   and, at the gateway address only, the add-on servers' ports (`addon_ports`) that the
//!   container was started with ([`crate::ContainerSpec::allowed_host_ports`]): one element
//!   `address . port` per port in the table's `addon_reach` set, added before the container
//!   runs and removed when it is cleaned up (see [`addon_rule`]);
//! - to another dyno: dropped at L2 by bridge port isolation and at L3 by the forward chain;
//! - to link-local (169.254.0.0/16, cloud metadata) and to the dyno subnet: dropped;
//! - anywhere else: forwarded and masqueraded behind the host's address (outbound NAT).
//!
//! Many hosts would each get their own dyno subnet, routed between them; the firewall's
//! "subnet" rules then become "every dyno subnet".
//!
//! # Cost
//! The per-container set-up runs in-process over rtnetlink (no process spawns): a dedicated
//! thread `unshare`s a new network namespace, bind-mounts it to `bundle/netns` (runc joins it
//! by path), and sends a handful of netlink requests (veth with master and up, port isolation,
//! address, links up, default route). The bridge and the firewall are set up once, with `ip`
//! and `nft`, when the runtime starts.
//!
//! # Addresses
//! [`Allocator`] hands out the subnet's host addresses round-robin (so a freed address is not
//! reused soon), never one in use. The address and the veth's name are persisted in the bundle
//! (`network.json`) so that a restarted runtime reports them ([`crate::Runtime::list`]) and does
//! not hand them out again.

use std::collections::HashSet;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::str::FromStr;

/// An IPv4 network in CIDR notation (`172.30.0.0/16`); the address is its first address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Subnet {
    /// The subnet containing `addr` with `prefix` bits, or `None` for a prefix over 32.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Ipv4Subnet> {
        if prefix > 32 {
            return None;
        }
        Some(Ipv4Subnet {
            network: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        })
    }

    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The first host address: the bridge's address and every container's default gateway.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    fn size(&self) -> u64 {
        1u64 << (32 - self.prefix)
    }

    /// Host address number `n` (1 is the gateway).
    fn host(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network).wrapping_add(n))
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask(self.prefix) == u32::from(self.network)
    }

    pub fn overlaps(&self, other: &Ipv4Subnet) -> bool {
        let prefix = self.prefix.min(other.prefix);
        u32::from(self.network) & mask(prefix) == u32::from(other.network) & mask(prefix)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl std::fmt::Display for Ipv4Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Ipv4Subnet {
    type Err = String;

    /// Parses `a.b.c.d/n`; host bits must be zero (`172.30.0.0/16`, not `172.30.1.0/16`).
    fn from_str(s: &str) -> Result<Ipv4Subnet, String> {
        let bad = || format!("{s:?} is not an IPv4 subnet in CIDR notation, e.g. 172.30.0.0/16");
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        let subnet = Ipv4Subnet::new(addr, prefix).ok_or_else(bad)?;
        if subnet.network != addr {
            return Err(format!("{s:?} has host bits set: did you mean {subnet}?"));
        }
        if !(8..=28).contains(&prefix) {
            return Err(format!(
                "the dyno subnet {s} must be between a /8 and a /28 (a /16 gives 65533 dynos)"
            ));
        }
        Ok(subnet)
    }
}

/// The dyno network of one runtime: its bridge and subnet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// The bridge's interface name (at most 15 bytes, `[a-z0-9]`); also names the nftables
    /// table (`slipway_<bridge>`) and prefixes the containers' veth names.
    pub bridge: String,
    pub subnet: Ipv4Subnet,
    /// TCP ports of the host that dynos may reach at any host address: the platform's public
    /// listeners (router, API) when they listen on a non-loopback address, so that an app can
    /// call another app or the API by its public URL. Default none.
    pub public_ports: Vec<u16>,
    /// TCP ports (ranges) of the add-on servers, which listen on the gateway address: a
    /// container may open connections to `gateway:port` for those of these ports its spec
    /// allows ([`crate::ContainerSpec::allowed_host_ports`]) and to no other port of the host.
    /// Default none.
    pub addon_ports: Vec<std::ops::RangeInclusive<u16>>,
    /// Networks outside this host (a cluster's control planes and routers) that may open TCP
    /// connections to dynos through this host's forwarding: a host agent's dynos are reached
    /// from other hosts over its routed dyno subnet. Default none (single host: the router
    /// reaches dynos from the host itself).
    pub routed_from: Vec<Ipv4Subnet>,
}

impl NetworkConfig {
    /// The default dyno subnet: a /16 of 172.16.0.0/12 that hosts rarely use.
    pub const DEFAULT_SUBNET: &'static str = "172.30.0.0/16";

    /// A network whose bridge name is derived from `key` (e.g. the server's data directory),
    /// so that two servers on one host never share a bridge.
    pub fn for_key(subnet: Ipv4Subnet, key: &Path) -> NetworkConfig {
        use std::os::unix::ffi::OsStrExt;
        NetworkConfig {
            bridge: format!("slw{:08x}", fnv(key.as_os_str().as_bytes()) as u32),
            subnet,
            public_ports: Vec::new(),
            addon_ports: Vec::new(),
            routed_from: Vec::new(),
        }
    }

    /// The nftables table of this network (family `inet`).
    pub fn table(&self) -> String {
        format!("slipway_{}", self.bridge)
    }

    /// The host end of the veth of the container with host address number `n`.
    fn veth_name(&self, n: u32) -> String {
        format!("{}{n:x}", self.veth_prefix())
    }

    /// What every veth name of this network starts with.
    fn veth_prefix(&self) -> String {
        format!("v{:06x}", fnv(self.bridge.as_bytes()) & 0xff_ffff)
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

/// What went wrong setting up the network; the text says what to do.
pub(crate) type NetError = String;

/// Sets the host side up: checks the subnet against the host's routes, creates (or reuses) the
/// bridge with the gateway address, enables forwarding and (re)installs the firewall table,
/// with the add-on reach of the containers a previous instance left running (`running`).
pub(crate) fn setup_host(config: &NetworkConfig, running: &[Attachment]) -> Result<(), NetError> {
    if config.bridge.is_empty()
        || config.bridge.len() > 15
        || !config
            .bridge
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err(format!(
            "the bridge name {:?} must be 1 to 15 characters of [a-z0-9]",
            config.bridge
        ));
    }
    check_overlap(config)?;
    let bridge = config.bridge.as_str();
    // A bridge without an address of its own takes the lowest of its ports' MAC addresses, so
    // each new dyno's veth could change it: dynos would then send their replies to the router
    // to the old gateway MAC until their ARP entries expire, and requests in flight would hang
    // (H12). A fixed address keeps the gateway where the dynos knew it.
    let mac = bridge_mac(bridge);
    // Asked over netlink (`ip link show`), not through /sys: a process that joined another
    // network namespace alone (a host agent under `nsenter --net`) still sees the sysfs of the
    // namespace that mounted it.
    let exists = Command::new("ip")
        .args(["link", "show", "dev", bridge])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !exists {
        run(
            "ip",
            &[
                "link", "add", "name", bridge, "address", &mac, "type", "bridge",
            ],
        )?;
    } else {
        run("ip", &["link", "set", "dev", bridge, "address", &mac])?;
    }
    // No IPv6 on the bridge: dynos get IPv4 only, and a link-local address would be one more
    // host address to guard.
    let _ = std::fs::write(
        format!("/proc/sys/net/ipv6/conf/{bridge}/disable_ipv6"),
        "1",
    );
    let gateway = format!("{}/{}", config.subnet.gateway(), config.subnet.prefix());
    // A restarted server finds its bridge as it left it: keep the address (and the running
    // dynos' connections); otherwise make the gateway its only IPv4 address.
    let current = Command::new("ip")
        .args(["-o", "-4", "addr", "show", "dev", bridge])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default();
    let addresses: Vec<&str> = current
        .lines()
        .filter_map(|line| line.split_whitespace().skip_while(|w| *w != "inet").nth(1))
        .collect();
    if addresses != [gateway.as_str()] {
        run("ip", &["-4", "addr", "flush", "dev", bridge])?;
        run("ip", &["addr", "add", &gateway, "dev", bridge])?;
    }
    run("ip", &["link", "set", bridge, "up"])?;
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
        .map_err(|e| format!("cannot enable IPv4 forwarding (for the dynos' NAT): {e}"))?;
    nft(&ruleset(config, running))?;
    // Two servers may have checked the same free subnet at the same time: look again.
    if let Err(e) = check_overlap(config) {
        remove_network(&config.bridge);
        return Err(e);
    }
    Ok(())
}

/// The bridge's own MAC address: locally administered, unicast, derived from its name so that it
/// stays the same across restarts.
fn bridge_mac(bridge: &str) -> String {
    // FNV-1a: stable across builds and platforms.
    let hash = bridge.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let b = hash.to_be_bytes();
    format!(
        "02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[0], b[1], b[2], b[3], b[4]
    )
}

/// Removes a network's bridge, its containers' veths and its firewall table (best effort), e.g.
/// after a test server. Containers still attached lose their network.
pub fn remove_network(bridge: &str) {
    let prefix = NetworkConfig {
        bridge: bridge.to_string(),
        subnet: Ipv4Subnet {
            network: Ipv4Addr::UNSPECIFIED,
            prefix: 0,
        },
        public_ports: Vec::new(),
        addon_ports: Vec::new(),
        routed_from: Vec::new(),
    }
    .veth_prefix();
    if let Ok(links) = std::fs::read_dir("/sys/class/net") {
        for link in links.flatten() {
            let name = link.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) {
                delete_veth(&name);
            }
        }
    }
    let _ = Command::new("ip")
        .args(["link", "del", bridge])
        .stderr(Stdio::null())
        .status();
    let _ = Command::new("nft")
        .args(["delete", "table", "inet", &format!("slipway_{bridge}")])
        .stderr(Stdio::null())
        .status();
}

/// Refuses a subnet that overlaps any IPv4 route or address of the host except our bridge's.
fn check_overlap(config: &NetworkConfig) -> Result<(), NetError> {
    let out = Command::new("ip")
        .args(["-j", "-4", "route", "show", "table", "all"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            format!("cannot run `ip` to read the host's routes (install iproute2): {e}")
        })?;
    if !out.status.success() {
        return Err(format!(
            "`ip route` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    #[derive(serde::Deserialize)]
    struct Route {
        dst: String,
        #[serde(default)]
        dev: Option<String>,
    }
    let routes: Vec<Route> = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("cannot parse the host's routes: {e}"))?;
    for route in routes {
        if route.dev.as_deref() == Some(config.bridge.as_str()) || route.dst == "default" {
            continue;
        }
        let dst = match route.dst.split_once('/') {
            Some((addr, prefix)) => addr
                .parse()
                .ok()
                .zip(prefix.parse().ok())
                .and_then(|(a, p)| Ipv4Subnet::new(a, p)),
            None => route.dst.parse().ok().and_then(|a| Ipv4Subnet::new(a, 32)),
        };
        let Some(dst) = dst else { continue };
        if dst.prefix() > 0 && dst.overlaps(&config.subnet) {
            return Err(format!(
                "the dyno subnet {} overlaps the host's route to {dst}{}: choose a free private \
                 subnet with --dyno-subnet (e.g. 10.213.0.0/16)",
                config.subnet,
                route.dev.map(|d| format!(" on {d}")).unwrap_or_default()
            ));
        }
    }
    Ok(())
}

/// The firewall of one dyno network, replaced atomically (`nft -f` runs it as one
/// transaction: the table is created empty if missing, deleted, and created anew).
///
/// Hooks run at priority `filter - 5` / `srcnat`, before any other table's filter chains; a
/// packet this table drops is dropped whatever other tables say, but one it accepts may still
/// be dropped by another table (e.g. a host firewall with a drop policy on forward).
pub(crate) fn ruleset(config: &NetworkConfig, running: &[Attachment]) -> String {
    let table = config.table();
    let bridge = &config.bridge;
    let subnet = config.subnet;
    let public_ports = if config.public_ports.is_empty() {
        String::new()
    } else {
        let ports: Vec<String> = config.public_ports.iter().map(u16::to_string).collect();
        format!("elements = {{ {} }}", ports.join(", "))
    };
    let (addon_set, addon_rule) = addon_rule(config, running);
    let routed_rule = if config.routed_from.is_empty() {
        String::new()
    } else {
        let sources: Vec<String> = config.routed_from.iter().map(|s| s.to_string()).collect();
        format!(
            "oifname \"{bridge}\" ip saddr {{ {} }} meta l4proto tcp accept",
            sources.join(", ")
        )
    };
    format!(
        r#"table inet {table}
delete table inet {table}
table inet {table} {{
{addon_set}
    # The platform's public listeners (router, API), reachable as from outside.
    set public_ports {{
        type inet_service
        {public_ports}
    }}
    chain input {{
        type filter hook input priority filter - 5; policy accept;
        iifname "{bridge}" ct state established,related accept
        {addon_rule}
        iifname "{bridge}" ip saddr {subnet} tcp dport @public_ports accept
        iifname "{bridge}" counter drop
    }}
    chain forward {{
        type filter hook forward priority filter - 5; policy accept;
        iifname "{bridge}" oifname "{bridge}" counter drop
        iifname "{bridge}" ip daddr {{ 169.254.0.0/16, {subnet} }} counter drop
        iifname "{bridge}" meta nfproto ipv6 drop
        iifname "{bridge}" ip saddr != {subnet} drop
        iifname "{bridge}" accept
        oifname "{bridge}" ct state established,related accept
        {routed_rule}
        oifname "{bridge}" counter drop
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr {subnet} oifname != "{bridge}" masquerade
    }}
}}
"#
    )
}

/// The add-on servers' ports (a set of port ranges), which container may reach which of them
/// (a set of `address . port`), and the one input rule that lets a container reach a port at
/// the gateway address only when both say so. A container started without allowed ports
/// cannot open a connection to any add-on server (its SYN is dropped); whose database it then
/// opens is the servers' business (per-add-on credentials). The source address can be trusted:
/// a container has no capability to change its address or forge packets, and the forward
/// chain drops sources outside the subnet.
fn addon_rule(config: &NetworkConfig, running: &[Attachment]) -> (String, String) {
    let elements = if config.addon_ports.is_empty() {
        String::new()
    } else {
        let ranges: Vec<String> = config
            .addon_ports
            .iter()
            .map(|r| {
                if r.start() == r.end() {
                    r.start().to_string()
                } else {
                    format!("{}-{}", r.start(), r.end())
                }
            })
            .collect();
        format!("elements = {{ {} }}", ranges.join(", "))
    };
    let reach: Vec<String> = running
        .iter()
        .flat_map(|a| reach_elements(a.address, &a.addon_ports))
        .collect();
    let reach = if reach.is_empty() {
        String::new()
    } else {
        format!("elements = {{ {} }}", reach.join(", "))
    };
    let set = format!(
        "    # The add-on servers' ports on the gateway.\n    set addon_ports {{\n        type inet_service\n        flags interval\n        {elements}\n    }}\n    # Which container may reach which of them: `address . port`.\n    set {REACH_SET} {{\n        type ipv4_addr . inet_service\n        {reach}\n    }}"
    );
    let rule = format!(
        "iifname \"{}\" ip saddr {} ip daddr {} tcp dport @addon_ports ip saddr . tcp dport @{REACH_SET} accept",
        config.bridge,
        config.subnet,
        config.subnet.gateway()
    );
    (set, rule)
}

/// The nftables set of `address . port` elements: which container may reach which add-on port.
const REACH_SET: &str = "addon_reach";

/// The set elements that let `address` reach `ports`.
fn reach_elements(address: Ipv4Addr, ports: &[u16]) -> Vec<String> {
    ports
        .iter()
        .map(|port| format!("{address} . {port}"))
        .collect()
}

/// The ports of `wanted` that are add-on servers' ports of this network, sorted, each once: a
/// spec cannot open any other port of the host.
pub(crate) fn addon_ports_of(config: &NetworkConfig, wanted: &[u16]) -> Vec<u16> {
    let mut ports: Vec<u16> = wanted
        .iter()
        .copied()
        .filter(|port| config.addon_ports.iter().any(|r| r.contains(port)))
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// The `nft` script that lets (`allow`) or no longer lets a container reach its add-on ports.
/// Removing adds first, in the same transaction, so that it succeeds whether or not the
/// elements are there (`nft delete element` of a missing element fails the whole script).
fn reach_script(config: &NetworkConfig, attachment: &Attachment, allow: bool) -> Option<String> {
    let elements = reach_elements(attachment.address, &attachment.addon_ports);
    if elements.is_empty() {
        return None;
    }
    let target = format!(
        "inet {} {REACH_SET} {{ {} }}",
        config.table(),
        elements.join(", ")
    );
    Some(if allow {
        format!("add element {target}\n")
    } else {
        format!("add element {target}\ndelete element {target}\n")
    })
}

/// Lets the container at `attachment` reach its add-on ports (before it runs).
pub(crate) fn allow_addon_reach(
    config: &NetworkConfig,
    attachment: &Attachment,
) -> Result<(), NetError> {
    match reach_script(config, attachment, true) {
        Some(script) => nft(&script),
        None => Ok(()),
    }
}

/// Takes the container's add-on reach away (when it is cleaned up, before its address can be
/// handed out again).
pub(crate) fn revoke_addon_reach(
    config: &NetworkConfig,
    attachment: &Attachment,
) -> Result<(), NetError> {
    match reach_script(config, attachment, false) {
        Some(script) => nft(&script),
        None => Ok(()),
    }
}

fn nft(ruleset: &str) -> Result<(), NetError> {
    use std::io::Write;
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `nft` for the dyno firewall (install nftables): {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(ruleset.as_bytes())
            .map_err(|e| format!("cannot feed `nft`: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("`nft` failed: {e}"))?;
    succeeded(&out, || {
        "changing the dyno firewall with `nft` failed".to_owned()
    })
}

fn run(program: &str, args: &[&str]) -> Result<(), NetError> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{program}` (install iproute2): {e}"))?;
    succeeded(&out, || format!("`{program} {}` failed", args.join(" ")))
}

/// `Ok` when the command that wrote `out` succeeded; else what `failed` says, then the
/// command's own words (its stderr).
fn succeeded(out: &std::process::Output, failed: impl FnOnce() -> String) -> Result<(), NetError> {
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            failed(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A container's place on the dyno network, persisted as `network.json` in its bundle.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Attachment {
    pub address: Ipv4Addr,
    /// The host end of its veth pair.
    pub veth: String,
    /// The add-on servers' ports it may reach at the gateway (see [`addon_rule`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addon_ports: Vec<u16>,
}

pub(crate) const ATTACHMENT_FILE: &str = "network.json";
pub(crate) const NETNS_FILE: &str = "netns";

impl Attachment {
    pub(crate) fn read(bundle: &Path) -> Option<Attachment> {
        serde_json::from_slice(&std::fs::read(bundle.join(ATTACHMENT_FILE)).ok()?).ok()
    }

    pub(crate) fn write(&self, bundle: &Path) -> io::Result<()> {
        let json = serde_json::to_vec(self).map_err(io::Error::other)?;
        std::fs::write(bundle.join(ATTACHMENT_FILE), json)
    }
}

/// Hands out host addresses of the subnet, round-robin, never one in use.
#[derive(Debug)]
pub(crate) struct Allocator {
    config: NetworkConfig,
    used: HashSet<Ipv4Addr>,
    /// The host number tried next.
    next: u32,
}

impl Allocator {
    pub(crate) fn new(
        config: NetworkConfig,
        used: impl IntoIterator<Item = Ipv4Addr>,
    ) -> Allocator {
        Allocator {
            config,
            used: used.into_iter().collect(),
            next: 2,
        }
    }

    /// A free address and its veth name, marked used; `None` when the subnet is full.
    pub(crate) fn allocate(&mut self) -> Option<Attachment> {
        let subnet = self.config.subnet;
        // Host numbers 2 ..= size - 2 (network, gateway and broadcast excluded).
        let last = u32::try_from(subnet.size() - 2).ok()?;
        let count = last.checked_sub(1)?;
        for _ in 0..count {
            let n = self.next;
            self.next = if n >= last { 2 } else { n + 1 };
            let address = subnet.host(n);
            if self.used.insert(address) {
                return Some(Attachment {
                    address,
                    veth: self.config.veth_name(n),
                    addon_ports: Vec::new(),
                });
            }
        }
        None
    }

    pub(crate) fn free(&mut self, address: Ipv4Addr) {
        self.used.remove(&address);
    }
}

/// Creates the container's network namespace, bind-mounted at `path`, with `lo` up and, with an
/// attachment, `eth0` joined to the bridge.
///
/// Call it on a thread of its own that ends afterwards: it moves the calling thread into the
/// new namespace.
pub(crate) fn create_netns(
    path: &Path,
    attach: Option<(&NetworkConfig, &Attachment)>,
) -> Result<(), NetError> {
    use nix::mount::{mount, MsFlags};
    // Opened and looked up before `unshare`: this socket stays in the host's namespace.
    let (mut host, bridge_index) = match attach {
        Some((config, _)) => (
            Some(Netlink::open().map_err(|e| format!("netlink: {e}"))?),
            if_index(&config.bridge)
                .ok_or_else(|| format!("the dyno bridge {} is missing", config.bridge))?,
        ),
        None => (None, 0),
    };
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("cannot create a network namespace: {e}"))?;
    std::fs::File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    mount(
        Some("/proc/thread-self/ns/net"),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| format!("cannot bind-mount the network namespace: {e}"))?;
    // Interfaces created from now on get no IPv6 (lo keeps ::1).
    let _ = std::fs::write("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
    let mut ns = Netlink::open().map_err(|e| format!("netlink: {e}"))?;
    ns.set_up(1, None).map_err(|e| format!("lo up: {e}"))?;
    let (Some(host), Some((config, attachment))) = (host.as_mut(), attach) else {
        return Ok(());
    };
    let ns_fd = std::fs::File::open("/proc/thread-self/ns/net")
        .map_err(|e| format!("cannot open the network namespace: {e}"))?;
    let veth = attachment.veth.as_str();
    let create = |host: &mut Netlink| host.new_veth(veth, "eth0", bridge_index, ns_fd.as_raw_fd());
    match create(host) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
            // A leftover of a container that was not cleaned up: replace it.
            let _ = host.del_link(veth);
            create(host)
        }
        other => other,
    }
    .map_err(|e| format!("cannot create the veth pair {veth}: {e}"))?;
    let result = (|| {
        host.set_isolated_by_name(veth)
            .map_err(|e| format!("bridge port isolation on {veth}: {e}"))?;
        // `if_nametoindex` asks this thread's namespace: the container's.
        let eth0 = if_index("eth0").ok_or("eth0 did not arrive in the namespace")?;
        ns.add_address(eth0, attachment.address, config.subnet.prefix())
            .map_err(|e| format!("address {} on eth0: {e}", attachment.address))?;
        ns.set_up(eth0, None).map_err(|e| format!("eth0 up: {e}"))?;
        ns.add_default_route(eth0, config.subnet.gateway())
            .map_err(|e| format!("default route: {e}"))
    })();
    if result.is_err() {
        let _ = host.del_link(veth);
    }
    result
}

/// Removes a container's veth (both ends), if it exists. The namespace's mount is removed
/// with the bundle.
pub(crate) fn delete_veth(veth: &str) {
    if if_index(veth).is_none() {
        return;
    }
    match Netlink::open().and_then(|mut nl| nl.del_link(veth)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => {}
        Err(e) => tracing::warn!(veth, error = %e, "removing a container's veth failed"),
    }
}

/// The interface's index in the calling thread's network namespace.
#[allow(unsafe_code)]
fn if_index(name: &str) -> Option<u32> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (index != 0).then_some(index)
}

// rtnetlink constants (linux/rtnetlink.h, linux/if_link.h, linux/veth.h).
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const IFLA_INFO_SLAVE_KIND: u16 = 4;
const IFLA_INFO_SLAVE_DATA: u16 = 5;
const IFLA_BRPORT_ISOLATED: u16 = 33;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const IFF_UP: u32 = 1;

/// A minimal rtnetlink client: one request at a time, each acknowledged.
struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

/// A netlink message body under construction (attributes 4-byte aligned).
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn bytes(&mut self, data: &[u8]) -> &mut Self {
        self.0.extend_from_slice(data);
        self
    }

    fn align(&mut self) {
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
    }

    fn attr(&mut self, typ: u16, data: &[u8]) -> &mut Self {
        let len = (4 + data.len()) as u16;
        self.0.extend_from_slice(&len.to_ne_bytes());
        self.0.extend_from_slice(&typ.to_ne_bytes());
        self.0.extend_from_slice(data);
        self.align();
        self
    }

    fn attr_str(&mut self, typ: u16, s: &str) -> &mut Self {
        let mut data = s.as_bytes().to_vec();
        data.push(0);
        self.attr(typ, &data)
    }

    /// Starts a nested attribute; [`Msg::end`] with the returned offset closes it.
    fn begin(&mut self, typ: u16) -> usize {
        let at = self.0.len();
        self.attr(typ, &[]);
        at
    }

    fn end(&mut self, at: usize) {
        let len = (self.0.len() - at) as u16;
        self.0[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// `struct ifinfomsg`.
    fn ifinfo(&mut self, index: i32, flags: u32, change: u32) -> &mut Self {
        self.bytes(&[0, 0, 0, 0])
            .bytes(&index.to_ne_bytes())
            .bytes(&flags.to_ne_bytes())
            .bytes(&change.to_ne_bytes())
    }
}

#[allow(unsafe_code)]
impl Netlink {
    fn open() -> io::Result<Netlink> {
        // SAFETY: plain socket(2); the fd is owned right away.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: an all-zero sockaddr_nl is valid; bind lets the kernel pick the port id.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: `addr` is a valid sockaddr_nl of the given size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &addr as *const libc::sockaddr_nl as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Netlink { fd, seq: 0 })
    }

    /// Sends one request and waits for its acknowledgement.
    fn request(&mut self, typ: u16, flags: u16, body: &Msg) -> io::Result<()> {
        self.seq += 1;
        let len = 16 + body.0.len();
        let mut buf = Vec::with_capacity(len);
        buf.extend_from_slice(&(len as u32).to_ne_bytes());
        buf.extend_from_slice(&typ.to_ne_bytes());
        buf.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK | flags).to_ne_bytes());
        buf.extend_from_slice(&self.seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&body.0);
        // SAFETY: `buf` is a valid buffer of `buf.len()` bytes.
        let sent = unsafe { libc::send(self.fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut reply = vec![0u8; 8192];
        loop {
            // SAFETY: `reply` is a valid writable buffer of its length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    reply.as_mut_ptr().cast(),
                    reply.len(),
                    0,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let mut at = 0usize;
            let n = n as usize;
            while at + 16 <= n {
                let field = |o: usize| {
                    u32::from_ne_bytes(reply[at + o..at + o + 4].try_into().unwrap_or_default())
                };
                let msg_len = field(0) as usize;
                let msg_type = u16::from_ne_bytes([reply[at + 4], reply[at + 5]]);
                let seq = field(8);
                if msg_len < 16 || at + msg_len > n {
                    return Err(io::Error::other("truncated netlink reply"));
                }
                if msg_type == NLMSG_ERROR && seq == self.seq && msg_len >= 20 {
                    let code =
                        i32::from_ne_bytes(reply[at + 16..at + 20].try_into().unwrap_or_default());
                    return if code == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(-code))
                    };
                }
                at += (msg_len + 3) & !3;
            }
        }
    }

    /// Creates a veth pair: `name` here, joined to `master` and up; `peer` in the namespace
    /// `ns_fd`.
    fn new_veth(&mut self, name: &str, peer: &str, master: u32, ns_fd: i32) -> io::Result<()> {
        let mut m = Msg::default();
        m.ifinfo(0, IFF_UP, IFF_UP)
            .attr_str(IFLA_IFNAME, name)
            .attr(IFLA_MASTER, &master.to_ne_bytes());
        let info = m.begin(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "veth");
        let data = m.begin(IFLA_INFO_DATA);
        let peer_at = m.begin(VETH_INFO_PEER);
        m.ifinfo(0, 0, 0)
            .attr_str(IFLA_IFNAME, peer)
            .attr(IFLA_NET_NS_FD, &ns_fd.to_ne_bytes());
        m.end(peer_at);
        m.end(data);
        m.end(info);
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &m)
    }

    /// `bridge link set dev <index> isolated on`: no traffic to other isolated ports.
    fn set_isolated_by_name(&mut self, name: &str) -> io::Result<()> {
        let mut m = Msg::default();
        m.ifinfo(0, 0, 0).attr_str(IFLA_IFNAME, name);
        let info = m.begin(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_SLAVE_KIND, "bridge");
        let data = m.begin(IFLA_INFO_SLAVE_DATA);
        m.attr(IFLA_BRPORT_ISOLATED, &[1]);
        m.end(data);
        m.end(info);
        self.request(RTM_NEWLINK, 0, &m)
    }

    fn set_up(&mut self, index: u32, _name: Option<&str>) -> io::Result<()> {
        let mut m = Msg::default();
        m.ifinfo(index as i32, IFF_UP, IFF_UP);
        self.request(RTM_NEWLINK, 0, &m)
    }

    fn del_link(&mut self, name: &str) -> io::Result<()> {
        let mut m = Msg::default();
        m.ifinfo(0, 0, 0).attr_str(IFLA_IFNAME, name);
        self.request(RTM_DELLINK, 0, &m)
    }

    fn add_address(&mut self, index: u32, address: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let mut m = Msg::default();
        // struct ifaddrmsg: family, prefixlen, flags, scope, index.
        m.bytes(&[libc::AF_INET as u8, prefix, 0, 0])
            .bytes(&index.to_ne_bytes())
            .attr(IFA_LOCAL, &address.octets())
            .attr(IFA_ADDRESS, &address.octets());
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &m)
    }

    fn add_default_route(&mut self, index: u32, gateway: Ipv4Addr) -> io::Result<()> {
        const RT_TABLE_MAIN: u8 = 254;
        const RTPROT_BOOT: u8 = 3;
        const RT_SCOPE_UNIVERSE: u8 = 0;
        const RTN_UNICAST: u8 = 1;
        let mut m = Msg::default();
        // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
        m.bytes(&[
            libc::AF_INET as u8,
            0,
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_BOOT,
            RT_SCOPE_UNIVERSE,
            RTN_UNICAST,
        ])
        .bytes(&0u32.to_ne_bytes())
        .attr(RTA_GATEWAY, &gateway.octets())
        .attr(RTA_OIF, &index.to_ne_bytes());
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        let s: Ipv4Subnet = "172.30.0.0/16".parse().unwrap();
        assert_eq!(s.gateway(), Ipv4Addr::new(172, 30, 0, 1));
        assert!(s.contains(Ipv4Addr::new(172, 30, 255, 254)));
        assert!(!s.contains(Ipv4Addr::new(172, 31, 0, 1)));
        let wide: Ipv4Subnet = "172.16.0.0/12".parse().unwrap();
        assert!(s.overlaps(&wide) && wide.overlaps(&s));
        let other: Ipv4Subnet = "10.0.0.0/8".parse().unwrap();
        assert!(!s.overlaps(&other));
        assert!("172.30.1.0/16"
            .parse::<Ipv4Subnet>()
            .unwrap_err()
            .contains("172.30.0.0/16"));
        assert!("172.30.0.0/30".parse::<Ipv4Subnet>().is_err());
        assert!("nonsense".parse::<Ipv4Subnet>().is_err());
        assert_eq!(s.to_string(), "172.30.0.0/16");
    }

    #[test]
    fn addon_ports_open_the_gateway_only_to_the_containers_allowed() {
        let mut config = NetworkConfig::for_key("10.9.8.0/24".parse().unwrap(), Path::new("/x"));
        config.addon_ports = vec![54320..=54320, 54400..=54599];
        let running = [
            Attachment {
                address: Ipv4Addr::new(10, 9, 8, 7),
                veth: "v1".into(),
                addon_ports: vec![54320, 54401],
            },
            Attachment {
                address: Ipv4Addr::new(10, 9, 8, 8),
                veth: "v2".into(),
                addon_ports: vec![],
            },
        ];
        let rules = ruleset(&config, &running);
        assert!(
            rules.contains("elements = { 54320, 54400-54599 }"),
            "{rules}"
        );
        assert!(
            rules.contains("elements = { 10.9.8.7 . 54320, 10.9.8.7 . 54401 }"),
            "{rules}"
        );
        assert!(
            rules.contains(&format!(
                "iifname \"{}\" ip saddr 10.9.8.0/24 ip daddr 10.9.8.1 tcp dport @addon_ports ip saddr . tcp dport @addon_reach accept",
                config.bridge
            )),
            "{rules}"
        );
        // No running container: the set is declared empty.
        assert!(!ruleset(&config, &[]).contains(" . 54"));
        // nftables itself accepts the ruleset (check mode changes nothing), where it can run.
        for rules in [rules, ruleset(&config, &[])] {
            nft_accepts(&rules);
        }
    }

    #[test]
    fn a_container_reaches_only_add_on_ports_and_its_reach_is_removed_idempotently() {
        let mut config = NetworkConfig::for_key("10.9.8.0/24".parse().unwrap(), Path::new("/y"));
        config.addon_ports = vec![54320..=54320, 54400..=54599];
        // The API's or the router's port on the host is not an add-on port: never allowed.
        assert_eq!(
            addon_ports_of(&config, &[54401, 8080, 54320, 54401, 22, 54600]),
            vec![54320, 54401]
        );
        let attachment = Attachment {
            address: Ipv4Addr::new(10, 9, 8, 9),
            veth: "v".into(),
            addon_ports: vec![54320],
        };
        let table = config.table();
        assert_eq!(
            reach_script(&config, &attachment, true).unwrap(),
            format!("add element inet {table} addon_reach {{ 10.9.8.9 . 54320 }}\n")
        );
        assert_eq!(
            reach_script(&config, &attachment, false).unwrap(),
            format!(
                "add element inet {table} addon_reach {{ 10.9.8.9 . 54320 }}\ndelete element inet {table} addon_reach {{ 10.9.8.9 . 54320 }}\n"
            )
        );
        let none = Attachment {
            addon_ports: vec![],
            ..attachment.clone()
        };
        assert!(reach_script(&config, &none, true).is_none());
        // An attachment from before add-on reach reads with none.
        let old: Attachment = serde_json::from_str(r#"{"address":"10.9.8.9","veth":"v"}"#).unwrap();
        assert!(old.addon_ports.is_empty());
    }

    fn nft_accepts(rules: &str) {
        let checked = Command::new("nft")
            .args(["-c", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .map(|mut s| s.write_all(rules.as_bytes()));
                child.wait_with_output()
            });
        if let Ok(out) = checked {
            if nix_is_root() {
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }

    fn nix_is_root() -> bool {
        std::fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
            .unwrap_or(false)
    }

    #[test]
    fn allocator_never_reuses_an_address_in_use() {
        let config = NetworkConfig {
            bridge: "slwtest".into(),
            subnet: "10.9.9.0/28".parse().unwrap(),
            public_ports: vec![],
            addon_ports: vec![],
            routed_from: vec![],
        };
        let taken = Ipv4Addr::new(10, 9, 9, 3);
        let mut alloc = Allocator::new(config, [taken]);
        let mut got = Vec::new();
        while let Some(a) = alloc.allocate() {
            assert!(a.veth.len() <= 15, "{}", a.veth);
            got.push(a.address);
        }
        // .2 ..= .14 minus the taken .3: 12 addresses, none the gateway or broadcast.
        assert_eq!(got.len(), 12);
        assert!(!got.contains(&taken));
        assert!(!got.contains(&Ipv4Addr::new(10, 9, 9, 1)));
        assert!(!got.contains(&Ipv4Addr::new(10, 9, 9, 15)));
        alloc.free(Ipv4Addr::new(10, 9, 9, 7));
        assert_eq!(
            alloc.allocate().unwrap().address,
            Ipv4Addr::new(10, 9, 9, 7)
        );
        assert!(alloc.allocate().is_none());
    }

    #[test]
    fn bridge_names_are_short_and_distinct() {
        let s: Ipv4Subnet = "10.1.0.0/16".parse().unwrap();
        let a = NetworkConfig::for_key(s, Path::new("/var/lib/slipway"));
        let b = NetworkConfig::for_key(s, Path::new("/tmp/other"));
        assert_ne!(a.bridge, b.bridge);
        assert!(a.bridge.len() <= 15);
        assert!(a.veth_name(65534).len() <= 15);
    }
}
