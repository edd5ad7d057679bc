//! The route table: which app answers to which hostname, whether it can serve, and its web
//! dynos. Immutable once published; the router reads a fresh snapshot per request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// Hostname (lowercase, no port) → the app answering to it. Immutable once published.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    hosts: HashMap<String, Arc<AppRoute>>,
}

impl RouteTable {
    pub fn new() -> Self {
        RouteTable::default()
    }

    /// Routes `hostname` (case-insensitive, without port) to `route`.
    pub fn insert(&mut self, hostname: impl Into<String>, route: Arc<AppRoute>) {
        self.hosts
            .insert(hostname.into().to_ascii_lowercase(), route);
    }

    /// The route for a normalised hostname (lowercase, no port).
    pub fn get(&self, host: &str) -> Option<&Arc<AppRoute>> {
        self.hosts.get(host)
    }

    /// Every routed app (an app with several hostnames appears once per hostname).
    pub(crate) fn routes(&self) -> impl Iterator<Item = &Arc<AppRoute>> {
        self.hosts.values()
    }

    /// Every hostname with its route, so that a snapshot can be sent over the network to a
    /// standalone router.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Arc<AppRoute>)> {
        self.hosts
            .iter()
            .map(|(host, route)| (host.as_str(), route))
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }
}

/// How one app is routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRoute {
    /// The app's name, passed to the log sink.
    pub app: String,
    pub status: RouteStatus,
    /// Running web dynos; used only when `status` is [`RouteStatus::Serving`] (an empty list
    /// then behaves like [`RouteStatus::NoWebDynos`]).
    pub backends: Vec<Backend>,
}

/// Whether an app can take requests, and which H code it answers with when not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteStatus {
    Serving,
    /// H14: web is scaled to 0.
    NoWebDynos,
    /// H10: the web dynos crashed.
    Crashed,
    /// H81: nothing deployed yet.
    NoRelease,
    /// H80: maintenance mode.
    Maintenance,
    /// No web dyno is up, but one is asleep (`idle`) or booting: the request is held, the
    /// app woken through `RouterConfig::wake`, and served once a dyno is up (H20 after
    /// `RouterConfig::boot_wait`).
    Idle,
}

/// One web dyno the router may send requests to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// `web.1`
    pub dyno: String,
    pub addr: SocketAddr,
}
