//! The outbound-URL policy: where the platform itself may connect on a tenant's behalf.
//!
//! Tenants give the server URLs to fetch from or send to (a build's `source_blob.url`, log
//! drains). Left alone, the server would connect from inside the host to whatever those name:
//! its own loopback services, the API, dynos, the cloud's metadata service (server-side request
//! forgery). [`OutboundPolicy`] decides, after DNS resolution, whether an address may be
//! reached, and then connects to exactly the address it checked:
//!
//! * a host name is resolved once; if **any** of its addresses is refused, the name is refused
//!   (a name with one public and one private address is not a load balancer we need to honour);
//! * refused: loopback, unspecified, private (RFC 1918, ULA `fc00::/7`), link-local
//!   (`169.254/16`, `fe80::/10`), shared/CGNAT (`100.64/10`), multicast, broadcast, the
//!   documentation and benchmarking ranges, other reserved ranges, IPv4 addresses embedded in
//!   IPv6 (mapped, NAT64) judged as the IPv4 address, and any address of one of this host's
//!   interfaces (whatever its range: found by trying to bind it, so a kernel that allows binding
//!   any address refuses everything, failing closed);
//! * no second resolution: [`OutboundPolicy::connect_tcp`] connects to the checked addresses,
//!   and HTTP clients built by [`OutboundPolicy::http_client`] resolve through the policy
//!   ([`reqwest::dns::Resolve`]), follow no redirect by themselves, and use no proxy;
//!   [`OutboundPolicy::get`] follows redirects itself (at most [`MAX_REDIRECTS`]) and checks
//!   every hop, IP literals included (reqwest does not resolve those).
//!
//! `slipway server --allow-private-urls` ([`OutboundPolicy::allow_private`]) turns the checks off,
//! for development and tests on one machine.
//!
//! **Invariant:** every outbound connection made for a tenant goes through one policy, and no
//! address reaches a socket without having been checked by it.

use std::error::Error as StdError;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

/// Redirects [`OutboundPolicy::get`] follows before giving up.
pub const MAX_REDIRECTS: usize = 5;

/// A boxed future, as [`Resolver`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Name resolution, injectable so that tests can make a public-looking name resolve anywhere.
pub trait Resolver: Send + Sync + 'static {
    /// The addresses of `host` (ports are ignored).
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, std::io::Result<Vec<IpAddr>>>;
}

/// The system's resolver (`getaddrinfo`, through tokio).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, std::io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host, 0))
                .await?
                .map(|addr| addr.ip())
                .collect())
        })
    }
}

/// Why an outbound connection was not made.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The policy refuses the address (this message may be shown to the tenant: it says
    /// nothing about whether anything listens there).
    #[error("{}; Slipway connects only to public addresses (an administrator can allow private ones with `slipway server --allow-private-urls`)", refused_target(host, addr, kind))]
    Refused {
        host: String,
        addr: IpAddr,
        kind: &'static str,
    },
    /// The URL cannot be used at all.
    #[error("{url:?} is not a usable URL: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// The name did not resolve, the connection failed, timed out, TLS failed, or the server
    /// answered an error: one kind, so that callers give tenants one message for all of them
    /// (telling them apart would make the server a port scanner). `detail` is for the server's
    /// own log only.
    #[error("{host} is not reachable or did not answer ({detail})")]
    Unreachable { host: String, detail: String },
    /// More than [`MAX_REDIRECTS`] redirects.
    #[error("{host} redirected more than {MAX_REDIRECTS} times")]
    TooManyRedirects { host: String },
}

/// "10.0.0.1 is a private address", "blob.example.com resolves to 10.0.0.1, a private address".
fn refused_target(host: &str, addr: &IpAddr, kind: &str) -> String {
    if host == addr.to_string() {
        format!("{host} is a {kind} address")
    } else {
        format!("{host} resolves to {addr}, a {kind} address")
    }
}

impl OutboundError {
    /// Whether the policy refused the target (as opposed to the target failing).
    pub fn is_refused(&self) -> bool {
        matches!(self, OutboundError::Refused { .. })
    }
}

/// What kind of address `ip` is, if it is one the policy refuses by its range alone.
pub fn forbidden_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(if ip.is_loopback() {
        "loopback"
    } else if ip.is_unspecified() || a == 0 {
        "unspecified (\"this network\")"
    } else if ip.is_private() {
        "private"
    } else if ip.is_link_local() {
        "link-local"
    } else if a == 100 && (b & 0xc0) == 64 {
        "shared (carrier-grade NAT)"
    } else if ip.is_broadcast() {
        "broadcast"
    } else if ip.is_multicast() {
        "multicast"
    } else if ip.is_documentation() {
        "documentation"
    } else if a == 198 && (b & 0xfe) == 18 {
        "benchmarking"
    } else if a == 192 && b == 0 && c == 0 {
        "IETF protocol assignment"
    } else if a >= 240 {
        "reserved"
    } else {
        return None;
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) reaches the embedded IPv4 address.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let v4 = Ipv4Addr::new(
            (segments[6] >> 8) as u8,
            segments[6] as u8,
            (segments[7] >> 8) as u8,
            segments[7] as u8,
        );
        return forbidden_v4(v4);
    }
    Some(if ip.is_loopback() {
        "loopback"
    } else if ip.is_unspecified() {
        "unspecified"
    } else if (segments[0] & 0xfe00) == 0xfc00 {
        "private (unique local)"
    } else if (segments[0] & 0xffc0) == 0xfe80 {
        "link-local"
    } else if (segments[0] & 0xffc0) == 0xfec0 {
        "site-local"
    } else if ip.is_multicast() {
        "multicast"
    } else if segments[0] == 0x2001 && segments[1] == 0x0db8 {
        "documentation"
    } else if segments[..6] == [0, 0, 0, 0, 0, 0] {
        // ::a.b.c.d, the deprecated IPv4-compatible form.
        "reserved"
    } else if segments[0] == 0x0100 && segments[1..4] == [0, 0, 0] {
        "discard-only"
    } else {
        return None;
    })
}

/// Whether `ip` is assigned to one of this host's interfaces: it can be bound. (Where the
/// kernel lets any address be bound, every address reads as the host's own: refused.)
pub fn is_own_address(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

struct Inner {
    allow_private: bool,
    /// Addresses allowed despite their range (tests; an administrator's list later).
    allowed: Vec<IpAddr>,
    resolver: Arc<dyn Resolver>,
}

/// Where the platform may connect for a tenant; cheap to clone.
#[derive(Clone)]
pub struct OutboundPolicy {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for OutboundPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundPolicy")
            .field("allow_private", &self.inner.allow_private)
            .field("allowed", &self.inner.allowed)
            .finish_non_exhaustive()
    }
}

impl Default for OutboundPolicy {
    /// The strict policy with the system resolver.
    fn default() -> Self {
        OutboundPolicy::new(false)
    }
}

impl OutboundPolicy {
    /// The policy with the system resolver; `allow_private` turns every check off.
    pub fn new(allow_private: bool) -> OutboundPolicy {
        OutboundPolicy::with_resolver(allow_private, Vec::new(), Arc::new(SystemResolver))
    }

    /// A policy that resolves names with `resolver` and allows the addresses in `allowed`
    /// whatever their range.
    pub fn with_resolver(
        allow_private: bool,
        allowed: Vec<IpAddr>,
        resolver: Arc<dyn Resolver>,
    ) -> OutboundPolicy {
        OutboundPolicy {
            inner: Arc::new(Inner {
                allow_private,
                allowed,
                resolver,
            }),
        }
    }

    /// Whether private targets are allowed (`--allow-private-urls`).
    pub fn allows_private(&self) -> bool {
        self.inner.allow_private
    }

    /// Checks one address; `host` names it in the error.
    pub fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), OutboundError> {
        if self.inner.allow_private || self.inner.allowed.contains(&ip) {
            return Ok(());
        }
        // ::ffff:a.b.c.d reaches a.b.c.d: judge (and bind-test) the IPv4 address.
        let canonical = ip.to_canonical();
        let kind = forbidden_range(canonical)
            .or_else(|| is_own_address(canonical).then_some("this host's own"));
        match kind {
            Some(kind) => Err(OutboundError::Refused {
                host: host.to_owned(),
                addr: ip,
                kind,
            }),
            None => Ok(()),
        }
    }

    /// Resolves `host` (a name or an IP literal, IPv6 with or without brackets) and checks
    /// every address; returns them all, or the refusal of the first refused one.
    pub async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, OutboundError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => {
                let addrs = self.inner.resolver.resolve(bare).await.map_err(|error| {
                    OutboundError::Unreachable {
                        host: bare.to_owned(),
                        detail: format!("name resolution failed: {error}"),
                    }
                })?;
                if addrs.is_empty() {
                    return Err(OutboundError::Unreachable {
                        host: bare.to_owned(),
                        detail: "the name has no address".into(),
                    });
                }
                addrs
            }
        };
        for ip in &addrs {
            self.check_ip(bare, *ip)?;
        }
        Ok(addrs)
    }

    /// Like [`OutboundPolicy::resolve`], but a name that does not resolve (now) passes: for
    /// checks when a URL is registered, before the connection-time check.
    pub async fn check_host(&self, host: &str) -> Result<(), OutboundError> {
        match self.resolve(host).await {
            Ok(_) | Err(OutboundError::Unreachable { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Checks an `http(s)` URL's host (see [`OutboundPolicy::check_host`]).
    pub async fn check_url(&self, url: &Url) -> Result<(), OutboundError> {
        let host = url_host(url)?;
        self.check_host(&host).await
    }

    /// Resolves and checks `host`, then connects to one of the checked addresses (each tried
    /// in turn within `timeout`).
    pub async fn connect_tcp(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<tokio::net::TcpStream, OutboundError> {
        let addrs = self.resolve(host).await?;
        let mut last = String::from("no address");
        for ip in addrs {
            let addr = SocketAddr::new(ip, port);
            match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => return Ok(stream),
                Ok(Err(error)) => last = format!("{addr}: {error}"),
                Err(_) => last = format!("{addr}: timed out"),
            }
        }
        Err(OutboundError::Unreachable {
            host: host.to_owned(),
            detail: last,
        })
    }

    /// A reqwest resolver that resolves through this policy.
    pub fn reqwest_resolver(&self) -> Arc<PolicyResolver> {
        Arc::new(PolicyResolver(self.clone()))
    }

    /// Configures `builder` to connect only where this policy allows: names resolve through
    /// the policy, no proxy, no automatic redirects. Requests to IP literals must still be
    /// checked with [`OutboundPolicy::check_url`] (or made with [`OutboundPolicy::get`]).
    pub fn http_client(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        builder
            .dns_resolver(self.reqwest_resolver())
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
    }

    /// Checks the host of `url` right before a request: IP literals by their range, names by
    /// resolution (the connection then resolves through the policy again, which checks the
    /// addresses it actually connects to).
    fn check_literal(&self, url: &Url) -> Result<(), OutboundError> {
        let host = url_host(url)?;
        match host.parse::<IpAddr>() {
            Ok(ip) => self.check_ip(&host, ip),
            Err(_) => Ok(()),
        }
    }

    /// GETs `url` with `client` (made by [`OutboundPolicy::http_client`]), following up to
    /// [`MAX_REDIRECTS`] redirects, each hop checked. Returns the final response, whatever
    /// its status.
    pub async fn get(
        &self,
        client: &reqwest::Client,
        url: Url,
    ) -> Result<reqwest::Response, OutboundError> {
        let mut url = url;
        let mut hops = 0;
        loop {
            self.check_literal(&url)?;
            let host = url_host(&url)?;
            let response = client.get(url.clone()).send().await.map_err(|error| {
                refusal_in(&error).unwrap_or_else(|| OutboundError::Unreachable {
                    host: host.clone(),
                    detail: error_chain(&error),
                })
            })?;
            if !response.status().is_redirection() {
                return Ok(response);
            }
            let Some(location) = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|location| url.join(location).ok())
            else {
                return Ok(response);
            };
            hops += 1;
            if hops > MAX_REDIRECTS {
                return Err(OutboundError::TooManyRedirects { host });
            }
            tracing::debug!(from = %url, to = %location, "following a redirect");
            url = location;
        }
    }
}

/// An `http(s)` URL's host, without IPv6 brackets.
pub fn url_host(url: &Url) -> Result<String, OutboundError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(OutboundError::InvalidUrl {
            url: url.to_string(),
            reason: format!("the scheme is {}, not http or https", url.scheme()),
        });
    }
    match url.host() {
        Some(url::Host::Domain(name)) => Ok(name.to_owned()),
        Some(url::Host::Ipv4(ip)) => Ok(ip.to_string()),
        Some(url::Host::Ipv6(ip)) => Ok(ip.to_string()),
        None => Err(OutboundError::InvalidUrl {
            url: url.to_string(),
            reason: "it has no host".into(),
        }),
    }
}

/// The policy's refusal inside an error's source chain (reqwest wraps its resolver's errors).
pub fn refusal_in(error: &(dyn StdError + 'static)) -> Option<OutboundError> {
    find_in_chain(
        error,
        &|error| match error.downcast_ref::<OutboundError>() {
            Some(OutboundError::Refused { host, addr, kind }) => Some(OutboundError::Refused {
                host: host.clone(),
                addr: *addr,
                kind,
            }),
            _ => None,
        },
    )
}

/// The first thing `pick` finds in an error or its sources. HTTP clients bury the errors that
/// matter (a refusal, a certificate problem) several layers deep, and `io::Error::source()`
/// skips the error an `io::Error` wraps, so the wrapped error's chain is searched too.
pub fn find_in_chain<T>(
    error: &(dyn StdError + 'static),
    pick: &impl Fn(&(dyn StdError + 'static)) -> Option<T>,
) -> Option<T> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(error) = current {
        if let Some(found) = pick(error) {
            return Some(found);
        }
        let wrapped = error
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref);
        if let Some(found) = wrapped.and_then(|inner| find_in_chain(inner, pick)) {
            return Some(found);
        }
        current = error.source();
    }
    None
}

/// An error and its sources, for the server's log.
pub fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut current = error.source();
    while let Some(source) = current {
        text.push_str(": ");
        text.push_str(&source.to_string());
        current = source.source();
    }
    text
}

/// Name resolution for reqwest through an [`OutboundPolicy`]: refused names fail to resolve.
pub struct PolicyResolver(OutboundPolicy);

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let addrs = policy
                .resolve(name.as_str())
                .await
                .map_err(|error| Box::new(error) as Box<dyn StdError + Send + Sync>)?;
            let addrs: Vec<SocketAddr> =
                addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect();
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests;
