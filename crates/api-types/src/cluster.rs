//! What a control plane and a standalone router (`slipway router`) say to each other, as
//! newline-delimited JSON: the control plane streams [`RouteStreamMessage`]s (route table
//! snapshots and heartbeats) on `GET /slipway/cluster/routes`, and the router streams
//! [`RouterEvent`]s (its request log lines and wake-ups) on `POST /slipway/cluster/router-events`.
//! Both carry the cluster token (`<data>/cluster-token`) as a Bearer credential.
//!
//! These are wire types only: the server converts them to and from the router's
//! `RouteTable`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

/// The route table stream's path.
pub const ROUTES_PATH: &str = "/slipway/cluster/routes";

/// The router events stream's path.
pub const ROUTER_EVENTS_PATH: &str = "/slipway/cluster/router-events";

/// The media type of both streams: one JSON value per line.
pub const NDJSON: &str = "application/x-ndjson";

/// The longest line either side reads (a snapshot of every app's routes is one line); a
/// longer one ends the stream, so a broken or hostile peer cannot make the other buffer
/// without bound.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// The longest router event line the control plane accepts: a router log line is a few
/// hundred bytes, its path cut at the router's 8 KB request line.
pub const MAX_EVENT_LINE_BYTES: usize = 16 * 1024;

/// Seconds between heartbeats on the route stream when the table does not change.
pub const HEARTBEAT_SECS: u64 = 5;

/// One line of the route stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RouteStreamMessage {
    /// The whole route table, replacing the previous one.
    Snapshot(RouteSnapshot),
    /// Nothing changed; the control plane is alive.
    Heartbeat,
}

/// Every hostname the platform routes, with how it is routed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteSnapshot {
    pub routes: Vec<HostRoute>,
}

/// How one hostname is routed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRoute {
    /// Lowercase, without a port: `myapp.slipway.local`, or a custom domain.
    pub hostname: String,
    pub app: String,
    pub status: RouteStatus,
    /// The web dynos that are up, where the router reaches them.
    pub backends: Vec<RouteBackend>,
}

/// The router's `RouteStatus`, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteStatus {
    Serving,
    NoWebDynos,
    Crashed,
    NoRelease,
    Maintenance,
    Idle,
}

/// One web dyno.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteBackend {
    /// `web.1`
    pub dyno: String,
    /// `IP:PORT`
    pub addr: std::net::SocketAddr,
}

/// One line of the router events stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RouterEvent {
    /// A `heroku[router]` line for `app`'s log (the request also counts as web traffic).
    Log {
        app: String,
        timestamp: DateTime<Utc>,
        message: String,
    },
    /// A request waits for `app`, which has no web dyno up: wake it.
    Wake { app: String },
    /// The router dropped this many events since it last said so (its queue was full while
    /// the control plane was unreachable or slow).
    Dropped { count: u64 },
}

/// The certificate stream's path: what a standalone router serves over HTTPS.
pub const CERTS_PATH: &str = "/slipway/cluster/certs";

/// One line of the certificate stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CertStreamMessage {
    /// Every certificate to serve, replacing the previous set.
    Snapshot(CertSnapshot),
    /// Nothing changed; the control plane is alive.
    Heartbeat,
}

/// The certificate a router serves for each hostname it routes over HTTPS: the app's uploaded
/// one (`certs:add`) for a custom domain, one issued by the platform CA for `<app>.<domain>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertSnapshot {
    pub certs: Vec<HostCert>,
}

/// One hostname's certificate chain (leaf first) and private key, PEM.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostCert {
    /// Lowercase, as the SNI name is looked up.
    pub hostname: String,
    pub chain_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for HostCert {
    // The private key is a secret: it never shows in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostCert")
            .field("hostname", &self.hostname)
            .finish_non_exhaustive()
    }
}
