//! Tests of the outbound policy: address ranges, injected resolvers (public names resolving to
//! private addresses), and redirects checked hop by hop against real loopback servers.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// Resolves names from a fixed table; anything else fails to resolve.
struct StaticResolver(HashMap<&'static str, Vec<IpAddr>>);

impl Resolver for StaticResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, std::io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            self.0
                .get(host)
                .cloned()
                .ok_or_else(|| std::io::Error::other("no such name"))
        })
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn policy_with(names: &[(&'static str, &[&str])], allowed: &[&str]) -> OutboundPolicy {
    let table = names
        .iter()
        .map(|(name, addrs)| (*name, addrs.iter().map(|a| ip(a)).collect()))
        .collect();
    OutboundPolicy::with_resolver(
        false,
        allowed.iter().map(|a| ip(a)).collect(),
        Arc::new(StaticResolver(table)),
    )
}

#[test]
fn private_loopback_link_local_and_special_ranges_are_refused() {
    let policy = OutboundPolicy::new(false);
    for (addr, kind) in [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "shared"),
        ("100.127.255.1", "shared"),
        ("224.0.0.1", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("192.0.2.10", "documentation"),
        ("198.18.0.1", "benchmarking"),
        ("240.0.0.1", "reserved"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fd00::2", "unique local"),
        ("fc00::1", "unique local"),
        ("fe80::1", "link-local"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a00:1", "private"),
        ("2001:db8::1", "documentation"),
    ] {
        match policy.check_ip(addr, ip(addr)) {
            Err(OutboundError::Refused { kind: found, .. }) => {
                assert!(found.contains(kind), "{addr}: {found} is not {kind}")
            }
            other => panic!("{addr} was not refused: {other:?}"),
        }
    }
    assert_eq!(
        policy.check_ip("10.1.2.3", ip("10.1.2.3")).unwrap_err().to_string(),
        "10.1.2.3 is a private address; Slipway connects only to public addresses (an administrator can allow private ones with `slipway server --allow-private-urls`)"
    );
    for public in [
        "93.184.216.34",
        "8.8.8.8",
        "100.128.0.1",
        "172.32.0.1",
        "2606:4700::1111",
    ] {
        policy.check_ip(public, ip(public)).unwrap();
    }
}

#[test]
fn the_hosts_own_addresses_are_refused_whatever_their_range() {
    assert!(is_own_address(ip("127.0.0.1")));
    assert!(!is_own_address(ip("93.184.216.34")));
    // Every address of every interface of this machine (`ip -o addr`) is the host's own.
    let output = std::process::Command::new("ip")
        .args(["-o", "addr"])
        .output()
        .expect("ip -o addr (iproute2)");
    let text = String::from_utf8_lossy(&output.stdout);
    let mut seen = 0;
    for line in text.lines() {
        let Some(cidr) = line
            .split_whitespace()
            .skip_while(|w| !w.starts_with("inet"))
            .nth(1)
        else {
            continue;
        };
        let Ok(addr) = cidr.split('/').next().unwrap_or("").parse::<IpAddr>() else {
            continue;
        };
        if matches!(addr, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80) {
            continue; // link-local needs a scope id to bind; refused by range anyway
        }
        assert!(is_own_address(addr), "{addr} is this host's");
        assert!(OutboundPolicy::new(false).check_ip("x", addr).is_err());
        seen += 1;
    }
    assert!(seen > 0, "no interface address found in {text}");
}

#[tokio::test]
async fn a_public_name_resolving_to_a_private_address_is_refused() {
    let policy = policy_with(
        &[
            ("blob.example.com", &["10.0.0.7"]),
            ("metadata.example.com", &["169.254.169.254"]),
            ("mixed.example.com", &["93.184.216.34", "127.0.0.1"]),
            ("v6.example.com", &["fd12::1"]),
            ("public.example.com", &["93.184.216.34"]),
        ],
        &[],
    );
    for name in [
        "blob.example.com",
        "metadata.example.com",
        "mixed.example.com",
        "v6.example.com",
    ] {
        let error = policy.resolve(name).await.unwrap_err();
        assert!(error.is_refused(), "{name}: {error}");
        assert!(
            error.to_string().contains("--allow-private-urls"),
            "{error}"
        );
        let url = Url::parse(&format!("https://{name}/x.tgz")).unwrap();
        assert!(policy.check_url(&url).await.unwrap_err().is_refused());
    }
    assert_eq!(
        policy.resolve("public.example.com").await.unwrap(),
        vec![ip("93.184.216.34")]
    );
    // A name that does not resolve is not refused when registered (it is when connecting).
    policy.check_host("nowhere.example.com").await.unwrap();
    assert!(!policy
        .resolve("nowhere.example.com")
        .await
        .unwrap_err()
        .is_refused());
    // --allow-private-urls lets everything through.
    let open = OutboundPolicy::with_resolver(
        true,
        Vec::new(),
        Arc::new(StaticResolver(HashMap::from([(
            "blob.example.com",
            vec![ip("10.0.0.7")],
        )]))),
    );
    open.resolve("blob.example.com").await.unwrap();
}

/// A one-response-per-connection HTTP server counting its connections.
async fn http_server(addr: &str, response: String) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind(addr).await.unwrap();
    let local = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let response = response.replace("{self}", &local.to_string());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let response = response.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (local, hits)
}

fn redirect_to(location: &str) -> String {
    format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

fn client(policy: &OutboundPolicy) -> reqwest::Client {
    policy
        .http_client(reqwest::Client::builder().timeout(Duration::from_secs(5)))
        .build()
        .unwrap()
}

#[tokio::test]
async fn every_redirect_hop_is_checked_and_a_refused_hop_is_never_connected() {
    // The target is on 127.0.0.2 (loopback); only the first hop's 127.0.0.1 is allowed, as a
    // public server would be.
    let (target, target_hits) = http_server("127.0.0.2:0", OK.into()).await;
    let (literal, _) = http_server("127.0.0.1:0", redirect_to(&format!("http://{target}/"))).await;
    let (named, _) = http_server(
        "127.0.0.1:0",
        redirect_to(&format!("http://internal.example.com:{}/", target.port())),
    )
    .await;
    let policy = policy_with(&[("internal.example.com", &["127.0.0.2"])], &["127.0.0.1"]);
    for first in [literal, named] {
        let url = Url::parse(&format!("http://{first}/blob.tgz")).unwrap();
        let error = policy.get(&client(&policy), url).await.unwrap_err();
        assert!(error.is_refused(), "{first}: {error}");
        assert!(error.to_string().contains("127.0.0.2"), "{error}");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        target_hits.load(Ordering::SeqCst),
        0,
        "the refused hop was reached"
    );

    // The same redirects with the target allowed reach it: the refusal above is the policy's.
    let open = policy_with(
        &[("internal.example.com", &["127.0.0.2"])],
        &["127.0.0.1", "127.0.0.2"],
    );
    for first in [literal, named] {
        let url = Url::parse(&format!("http://{first}/blob.tgz")).unwrap();
        let response = open.get(&client(&open), url).await.unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(target_hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn redirect_loops_stop_after_five_hops() {
    let (looping, hits) = http_server("127.0.0.1:0", redirect_to("http://{self}/again")).await;
    let policy = policy_with(&[], &["127.0.0.1"]);
    let url = Url::parse(&format!("http://{looping}/")).unwrap();
    let error = policy.get(&client(&policy), url).await.unwrap_err();
    assert!(
        matches!(error, OutboundError::TooManyRedirects { .. }),
        "{error}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), MAX_REDIRECTS + 1);
}

#[tokio::test]
async fn tcp_connections_go_only_to_checked_addresses() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let policy = policy_with(&[("logs.example.com", &["127.0.0.1"])], &[]);
    for host in ["logs.example.com", "127.0.0.1", "[::1]"] {
        let error = policy
            .connect_tcp(host, port, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(error.is_refused(), "{host}: {error}");
    }
    let accepted = tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
    assert!(accepted.is_err(), "a refused address was connected to");
    let allowed = policy_with(&[("logs.example.com", &["127.0.0.1"])], &["127.0.0.1"]);
    allowed
        .connect_tcp("logs.example.com", port, Duration::from_secs(1))
        .await
        .unwrap();
}

#[tokio::test]
async fn localhost_through_the_system_resolver_is_refused() {
    let policy = OutboundPolicy::new(false);
    let error = policy.resolve("localhost").await.unwrap_err();
    assert!(error.is_refused(), "{error}");
    assert!(policy
        .check_url(&Url::parse("http://localhost:1/x").unwrap())
        .await
        .unwrap_err()
        .is_refused());
}

/// An error that names another as its source, as HTTP clients layer theirs.
#[derive(Debug)]
struct Layer(Box<dyn StdError + Send + Sync>);

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("layer")
    }
}

impl StdError for Layer {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(self.0.as_ref())
    }
}

#[test]
fn refusal_in_finds_a_refusal_inside_an_io_error_in_the_chain() {
    let refused = OutboundError::Refused {
        host: "metadata.internal".into(),
        addr: "169.254.169.254".parse().unwrap(),
        kind: "link-local",
    };
    // `io::Error::source()` skips what it wraps, so only looking inside it finds the refusal.
    let wrapped = std::io::Error::other(Layer(Box::new(refused)));
    let error = Layer(Box::new(wrapped));
    match refusal_in(&error) {
        Some(OutboundError::Refused { host, kind, .. }) => {
            assert_eq!((host.as_str(), kind), ("metadata.internal", "link-local"));
        }
        other => panic!("expected the refusal, got {other:?}"),
    }
    let unrelated = Layer(Box::new(std::io::Error::other("connection reset")));
    assert!(refusal_in(&unrelated).is_none());
    assert_eq!(
        find_in_chain(&unrelated, &|e| Some(e.to_string())).as_deref(),
        Some("layer")
    );
}
