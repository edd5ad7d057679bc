//! The router's configuration (Heroku's limits and timeouts), its log sink and its wake hook:
//! plain data every other module reads.

use std::sync::Arc;
use std::time::Duration;

/// Router limits and timeouts. `Default` gives Heroku's values.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// No response headers this long after the request was fully sent → H12 (30 s).
    pub request_timeout: Duration,
    /// Connecting to a dyno longer than this → try another, then H19 (5 s).
    pub connect_timeout: Duration,
    /// The dyno sending nothing this long mid-response → H15, connection cut (55 s).
    pub idle_timeout: Duration,
    /// Idle keep-alive connections to dynos are closed after this (90 s).
    pub backend_pool_idle: Duration,
    /// Idle keep-alive connections kept per dyno.
    pub backend_pool_max_idle: usize,
    /// Value of `X-Forwarded-Port` (the port clients connect to).
    pub listen_port_for_header: u16,
    /// Dynos tried per request when connecting fails (Heroku: 10).
    pub max_connect_attempts: usize,
    /// A client must send its whole header section within this (slowloris guard; 30 s).
    pub header_read_timeout: Duration,
    /// Largest request header section (request line + headers), in bytes.
    pub max_header_bytes: usize,
    /// Most request headers.
    pub max_headers: usize,
    /// On shutdown, in-flight requests get this long to finish.
    pub shutdown_grace: Duration,
    /// An idle keep-alive client connection is closed after this (Heroku: 1 minute).
    pub client_keepalive_idle: Duration,
    /// In-flight requests allowed per running web dyno before H11 (Heroku: 200).
    pub max_backlog_per_dyno: usize,
    /// A dyno whose connect failed gets no requests from this router for this long (5 s).
    pub quarantine: Duration,
    /// Total time to find a dyno that is not quarantined before H99 (75 s).
    pub connect_budget: Duration,
    /// Wakes a sleeping app (see `RouteStatus::Idle`); `None`: nothing wakes apps.
    pub wake: Option<WakeHook>,
    /// How long a request waits for an idle or booting app's first web dyno before H20 (75 s).
    pub boot_wait: Duration,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(55),
            backend_pool_idle: Duration::from_secs(90),
            backend_pool_max_idle: 128,
            listen_port_for_header: 80,
            max_connect_attempts: 10,
            header_read_timeout: Duration::from_secs(30),
            max_header_bytes: 8192,
            max_headers: 1000,
            shutdown_grace: Duration::from_secs(30),
            client_keepalive_idle: Duration::from_secs(60),
            max_backlog_per_dyno: 200,
            quarantine: Duration::from_secs(5),
            connect_budget: Duration::from_secs(75),
            wake: None,
            boot_wait: Duration::from_secs(75),
        }
    }
}

/// Receives each router log line with the name of the app it belongs to.
pub type RouterLogSink = Arc<dyn Fn(&str, slipway_logplex::LogLine) + Send + Sync>;

/// Called with an app's name when a request arrives for it while it sleeps. Must return at
/// once (start the dynos in the background).
#[derive(Clone)]
pub struct WakeHook(pub Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for WakeHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WakeHook")
    }
}

impl WakeHook {
    pub fn new(wake: impl Fn(&str) + Send + Sync + 'static) -> WakeHook {
        WakeHook(Arc::new(wake))
    }
}
