//! The router's policy, with no IO: every decision both engines (HTTP/1 in `h1`, HTTP/2 in
//! `proxy`) take about a request, so they cannot drift apart.
//!
//! - Admission: whether an app can take a request at all, and the H code when not (H10, H11,
//!   H14, H20, H80, H81): [`admission`].
//! - The request's identity and the headers the dyno gets: [`routing_host`], [`request_id`],
//!   [`Forwarded`] (`X-Forwarded-For/-Proto/-Port`, `X-Request-Start`, `X-Request-Id`),
//!   [`VIA_TOKEN`], and which client headers are the router's own ([`classify`]).
//! - Which dyno to try next: [`DynoChoice`] over the [`Quarantine`] (a dyno whose connect
//!   failed gets no requests for a while; H19, H21 or H99 when no dyno is left).
//!
//! Time and randomness are arguments, so the tests in `policy/tests.rs` are tables over
//! injected instants.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE, VIA,
};
use tokio::time::Instant;

use crate::logline::ErrorCode;
use crate::route::{AppRoute, Backend, RouteStatus};

#[cfg(test)]
mod tests;

/// How clients reached a listener: `X-Forwarded-Proto` and `X-Forwarded-Port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Listener {
    pub(crate) proto: &'static str,
    pub(crate) port: u16,
}

/// The token the router adds to `Via` in both directions.
pub(crate) const VIA_TOKEN: &str = "1.1 slipway";

/// Whether an app takes a request. `Err` carries the H code the router answers with.
/// `enter` counts the request into the app's backlog and returns how many were in flight
/// before it; it is called only for an app that serves, so refused requests never count.
pub(crate) fn admission(
    route: &AppRoute,
    max_backlog_per_dyno: usize,
    enter: impl FnOnce() -> usize,
) -> Result<(), ErrorCode> {
    match route.status {
        RouteStatus::Serving if route.backends.is_empty() => Err(ErrorCode::H14),
        RouteStatus::Serving => {
            // Heroku's backlog: a fixed number of requests per running web dyno.
            let limit = max_backlog_per_dyno.saturating_mul(route.backends.len());
            if enter() >= limit {
                Err(ErrorCode::H11)
            } else {
                Ok(())
            }
        }
        RouteStatus::NoWebDynos => Err(ErrorCode::H14),
        RouteStatus::Crashed => Err(ErrorCode::H10),
        RouteStatus::NoRelease => Err(ErrorCode::H81),
        RouteStatus::Maintenance => Err(ErrorCode::H80),
        // Only reached when the wait for a booting dyno ended without one.
        RouteStatus::Idle => Err(ErrorCode::H20),
    }
}

/// `Host` header value → routing key: port stripped, lowercase, no trailing dot.
/// `None` when nothing usable is left.
pub(crate) fn normalize_host(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let host = if let Some(rest) = raw.strip_prefix('[') {
        // IPv6 literal: "[::1]:8080" -> "[::1]"
        let end = rest.find(']')?;
        &raw[..end + 2]
    } else {
        match raw.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            Some(_) => return None,
            None => raw,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty()
        || !host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':')
        })
    {
        return None;
    }
    Some(host.to_ascii_lowercase())
}

/// The host a request is routed by (and the dyno's `Host`): the request target's authority
/// (an absolute-form target, HTTP/2's `:authority`) replaces any `Host` header (RFC 9112
/// §3.2.2, RFC 9113 §8.3.1); else the one `Host` header. More than one `Host` header is
/// refused either way (RFC 9112 §3.2), as is a host [`normalize_host`] finds nothing in.
pub(crate) fn routing_host(
    authority: Option<&[u8]>,
    host_headers: usize,
    host: Option<&[u8]>,
) -> Result<String, &'static str> {
    if host_headers > 1 {
        return Err("The request carries more than one Host header.");
    }
    let raw = authority
        .or(host)
        .ok_or("The request has no Host header.")?;
    std::str::from_utf8(raw)
        .ok()
        .and_then(normalize_host)
        .ok_or("The Host header is not valid.")
}

/// Heroku keeps a client's `X-Request-Id` if it is 20–200 characters of `[A-Za-z0-9+/=-]`.
pub(crate) fn acceptable_request_id(value: &[u8]) -> bool {
    (20..=200).contains(&value.len())
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-'))
}

/// The request id: the client's `X-Request-Id` when acceptable, else a UUID v4 made from
/// `random` (callers pass the thread-local RNG's bytes; uuid's own v4 makes a getrandom
/// system call).
pub(crate) fn request_id(client: Option<&[u8]>, random: impl FnOnce() -> [u8; 16]) -> String {
    match client {
        Some(id) if acceptable_request_id(id) => String::from_utf8_lossy(id).into_owned(),
        _ => {
            let mut text = [0u8; 36];
            uuid::Builder::from_random_bytes(random())
                .into_uuid()
                .hyphenated()
                .encode_lower(&mut text)
                .to_owned()
        }
    }
}

/// Milliseconds since the epoch, for `X-Request-Start`.
pub(crate) fn unix_millis(at: SystemTime) -> u128 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

/// The headers the router sets on every request to a dyno, replacing any the client sent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Forwarded<'a> {
    /// The client's `X-Forwarded-For` list with the peer's address appended
    /// ([`append_list`]).
    pub(crate) forwarded_for: &'a str,
    pub(crate) listener: Listener,
    pub(crate) received: SystemTime,
    pub(crate) request_id: &'a str,
}

impl Forwarded<'_> {
    /// Appends the headers as HTTP/1.1 header lines (the HTTP/1 engine's dyno-bound head).
    pub(crate) fn write_lines(&self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        let _ = write!(
            out,
            "X-Forwarded-For: {}\r\nX-Forwarded-Proto: {}\r\nX-Forwarded-Port: {}\r\nX-Request-Start: {}\r\nX-Request-Id: {}\r\n",
            self.forwarded_for,
            self.listener.proto,
            self.listener.port,
            unix_millis(self.received),
            self.request_id,
        );
    }

    /// Sets the headers in a header map (the hyper-based path).
    pub(crate) fn insert_into(&self, headers: &mut HeaderMap) {
        let mut set = |name: &'static str, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(name, value);
            }
        };
        set("x-forwarded-for", self.forwarded_for);
        set("x-forwarded-proto", self.listener.proto);
        set("x-forwarded-port", &self.listener.port.to_string());
        set("x-request-start", &unix_millis(self.received).to_string());
        set("x-request-id", self.request_id);
    }
}

/// Request and response headers the router handles itself rather than copying through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Host,
    Connection,
    ContentLength,
    TransferEncoding,
    Upgrade,
    Expect,
    ForwardedFor,
    RequestId,
    Via,
    /// Set by the router (`X-Forwarded-Proto`, `-Port`, `X-Request-Start`).
    Replaced,
    /// Hop-by-hop headers never passed on (`TE`, `Trailer`, `Keep-Alive`, `Proxy-*`).
    HopByHop,
    Other,
}

fn eq(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

/// What the router does with a header of this name.
pub(crate) fn classify(name: &[u8]) -> Kind {
    match name.first().map(u8::to_ascii_lowercase) {
        Some(b'h') if eq(name, "host") => Kind::Host,
        Some(b'c') if eq(name, "connection") => Kind::Connection,
        Some(b'c') if eq(name, "content-length") => Kind::ContentLength,
        Some(b't') if eq(name, "transfer-encoding") => Kind::TransferEncoding,
        Some(b't') if eq(name, "te") || eq(name, "trailer") => Kind::HopByHop,
        Some(b'u') if eq(name, "upgrade") => Kind::Upgrade,
        Some(b'e') if eq(name, "expect") => Kind::Expect,
        Some(b'k') if eq(name, "keep-alive") => Kind::HopByHop,
        Some(b'p') if name.len() > 6 && eq(&name[..6], "proxy-") => Kind::HopByHop,
        Some(b'v') if eq(name, "via") => Kind::Via,
        Some(b'x') if eq(name, "x-forwarded-for") => Kind::ForwardedFor,
        Some(b'x') if eq(name, "x-request-id") => Kind::RequestId,
        Some(b'x')
            if eq(name, "x-forwarded-proto")
                || eq(name, "x-forwarded-port")
                || eq(name, "x-request-start") =>
        {
            Kind::Replaced
        }
        _ => Kind::Other,
    }
}

/// Removes hop-by-hop headers from a header map: those [`classify`] calls connection-level
/// (`Connection`, `Transfer-Encoding`, `Upgrade`, `TE`, `Trailer`, `Keep-Alive`, `Proxy-*`)
/// plus every header named in `Connection`.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [CONNECTION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE] {
        headers.remove(name);
    }
    let hop_by_hop: Vec<HeaderName> = headers
        .keys()
        .filter(|name| classify(name.as_str().as_bytes()) == Kind::HopByHop)
        .cloned()
        .collect();
    for name in hop_by_hop {
        headers.remove(name);
    }
}

/// Appends `item` to a comma-separated list header (all existing values joined), returning the
/// new value. Values that are not valid UTF-8 are dropped.
pub(crate) fn append_list(headers: &HeaderMap, name: &str, item: &str) -> String {
    let mut out = String::new();
    for value in headers.get_all(name) {
        if let Ok(value) = value.to_str() {
            let value = value.trim();
            if !value.is_empty() {
                out.push_str(value);
                out.push_str(", ");
            }
        }
    }
    out.push_str(item);
    out
}

/// Adds the router to `Via`.
pub(crate) fn add_via(headers: &mut HeaderMap) {
    let via = append_list(headers, VIA.as_str(), VIA_TOKEN);
    if let Ok(value) = HeaderValue::from_str(&via) {
        headers.insert(VIA, value);
    }
}

/// Dynos whose connect failed, each until an instant (reference §6.1): the router sends them
/// no requests meanwhile. Shared by every connection of a router (behind a lock in
/// `upstream`); the clock is the caller's.
#[derive(Debug, Default)]
pub(crate) struct Quarantine {
    until: HashMap<SocketAddr, Instant>,
}

impl Quarantine {
    /// Keeps requests away from `addr` until `now + period`.
    pub(crate) fn add(&mut self, addr: SocketAddr, now: Instant, period: Duration) {
        if !period.is_zero() {
            self.until.insert(addr, now + period);
        }
    }

    /// Whether `addr` is quarantined at `now`; forgets quarantines that ended.
    pub(crate) fn contains(&mut self, addr: SocketAddr, now: Instant) -> bool {
        self.until.retain(|_, until| *until > now);
        self.until.contains_key(&addr)
    }

    /// Lifts the quarantine of a dyno that took a connection.
    pub(crate) fn lift(&mut self, addr: SocketAddr) {
        self.until.remove(&addr);
    }

    pub(crate) fn len(&self) -> usize {
        self.until.len()
    }
}

/// How a connect to a dyno failed, as far as the H code goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectFailed {
    /// Refused or reset (H21 when no dyno is left).
    Refused,
    /// No answer within the connect timeout (H19 when no dyno is left).
    TimedOut,
}

/// What to do next to find a dyno for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pick {
    /// Connect to the backend at this index.
    Try(usize),
    /// Every dyno not yet tried is quarantined: wait this long, then ask again.
    Wait(Duration),
    /// No dyno: answer with this code.
    GiveUp(ErrorCode),
}

/// The search for a dyno of one request: random order, each dyno at most once, quarantined
/// ones skipped, at most `max_attempts` connects, and while every dyno left is quarantined,
/// waiting with backoff until the connect budget runs out (H99).
#[derive(Debug)]
pub(crate) struct DynoChoice {
    tried: Vec<usize>,
    attempts: usize,
    max_attempts: usize,
    last_failure: Option<ConnectFailed>,
    backoff: Duration,
    budget_ends: Instant,
}

impl DynoChoice {
    pub(crate) fn new(now: Instant, max_attempts: usize, connect_budget: Duration) -> DynoChoice {
        DynoChoice {
            tried: Vec::new(),
            attempts: 0,
            max_attempts: max_attempts.max(1),
            last_failure: None,
            backoff: Duration::from_millis(20),
            budget_ends: now + connect_budget,
        }
    }

    /// The next step. `quarantined` says whether a dyno is quarantined now; `random(n)` picks
    /// a number below `n`.
    pub(crate) fn next(
        &mut self,
        backends: &[Backend],
        mut quarantined: impl FnMut(SocketAddr) -> bool,
        now: Instant,
        random: impl FnOnce(usize) -> usize,
    ) -> Pick {
        if backends.len() == self.tried.len() || self.attempts >= self.max_attempts {
            return Pick::GiveUp(match self.last_failure {
                Some(ConnectFailed::TimedOut) => ErrorCode::H19,
                _ => ErrorCode::H21,
            });
        }
        let tried = &self.tried;
        let open = (0..backends.len())
            .filter(|i| !tried.contains(i) && !quarantined(backends[*i].addr))
            .collect::<OpenSet>();
        if open.is_empty() {
            if now >= self.budget_ends {
                return Pick::GiveUp(ErrorCode::H99);
            }
            let wait = self.backoff.min(self.budget_ends - now);
            self.backoff = (self.backoff * 2).min(Duration::from_secs(1));
            return Pick::Wait(wait);
        }
        let nth = if open.len() == 1 {
            0
        } else {
            random(open.len()).min(open.len() - 1)
        };
        self.attempts += 1;
        Pick::Try(open.get(nth))
    }

    /// The connect to the backend at `index` failed.
    pub(crate) fn failed(&mut self, index: usize, how: ConnectFailed) {
        self.tried.push(index);
        self.last_failure = Some(how);
    }
}

/// The indexes of dynos open to a request, without allocating for the common case of a
/// handful of dynos.
enum OpenSet {
    Few { len: usize, items: [usize; 16] },
    Many(Vec<usize>),
}

impl OpenSet {
    fn len(&self) -> usize {
        match self {
            OpenSet::Few { len, .. } => *len,
            OpenSet::Many(items) => items.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, nth: usize) -> usize {
        match self {
            OpenSet::Few { items, .. } => items[nth],
            OpenSet::Many(items) => items[nth],
        }
    }
}

impl FromIterator<usize> for OpenSet {
    fn from_iter<I: IntoIterator<Item = usize>>(iter: I) -> OpenSet {
        let mut set = OpenSet::Few {
            len: 0,
            items: [0; 16],
        };
        for item in iter {
            match &mut set {
                OpenSet::Few { len, items } if *len < items.len() => {
                    items[*len] = item;
                    *len += 1;
                }
                OpenSet::Few { items, .. } => {
                    let mut all = items.to_vec();
                    all.push(item);
                    set = OpenSet::Many(all);
                }
                OpenSet::Many(all) => all.push(item),
            }
        }
        set
    }
}
