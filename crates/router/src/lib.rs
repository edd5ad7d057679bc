//! Slipway's HTTP router: every request to every app goes through it (Heroku reference §6).
//!
//! The router finds the app by the `Host` header in an immutable [`RouteTable`] snapshot read
//! from a `tokio::sync::watch` channel per request, so route updates take effect for the next
//! request without disturbing in-flight requests or keep-alive client connections. For a
//! serving app it picks a web dyno at random, forwards the request over a keep-alive connection
//! pool with Heroku's headers added, streams bodies both ways, and logs exactly one
//! `heroku[router]` line per request through a [`RouterLogSink`]. Apps that cannot serve get
//! Heroku's H-code error pages.
//!
//! Architecture Invariant: this crate knows nothing of the database or the API; it only reads
//! route table snapshots and writes log lines.
//!
//! HTTP/1.x clients are served by the router's own engine (`h1`): request heads are parsed
//! with Heroku's limits (8 KB lines, 1000 headers, a plain 400 beyond), bodies stream through
//! reused buffers, and each client connection keeps its dyno connection for the next request.
//! `slipway server` runs it thread per core ([`Router::serve_per_core`], module `threads`).
//!
//! Differences from Heroku worth knowing:
//! - `bytes=` in the log counts body bytes relayed from the dyno; router error pages count 0.
//! - The backlog behind H11 counts in-flight requests per app (the router has no queue).
//! - HTTP/2 clients (over TLS only, see `tls`) go through the hyper-based path (`proxy`, `body`,
//!   `pool`); the backlog behind H11 counts their requests until the response head.

#[allow(dead_code)]
mod body;
mod h1;
mod headers;
mod logline;
mod pages;
#[allow(dead_code)]
mod pool;
#[allow(dead_code)]
mod proxy;
mod threads;
mod tls;
mod upstream;
mod wake;
mod wire;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use logline::ErrorCode;
pub use threads::{Protocol, RouterThreads};
pub use tls::{verifies, CertError, CertIssuer, CertTable, ServerCert, TlsSettings};
pub use wake::WakeHook;

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
    /// app woken through [`RouterConfig::wake`], and served once a dyno is up (H20 after
    /// [`RouterConfig::boot_wait`]).
    Idle,
}

/// One web dyno the router may send requests to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// `web.1`
    pub dyno: String,
    pub addr: SocketAddr,
}

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
    /// Wakes a sleeping app (see [`RouteStatus::Idle`]); `None`: nothing wakes apps.
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

/// The HTTP router. Build with [`Router::new`], run with [`Router::serve`] (and, on a clone
/// sharing the same dyno connections and backlogs, [`Router::serve_tls`]).
#[derive(Clone)]
pub struct Router {
    shared: Arc<proxy::Shared>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl Router {
    pub fn new(
        routes: watch::Receiver<Arc<RouteTable>>,
        log: RouterLogSink,
        config: RouterConfig,
    ) -> Self {
        let pool = pool::Pool::new(
            config.backend_pool_idle,
            config.connect_timeout,
            config.backend_pool_max_idle,
        );
        let upstreams = upstream::Upstreams::new(
            config.backend_pool_idle,
            config.connect_timeout,
            config.quarantine,
            config.backend_pool_max_idle,
        );
        Router {
            shared: Arc::new(proxy::Shared {
                routes,
                log,
                config,
                pool,
                upstreams,
            }),
        }
    }

    /// Serves plain HTTP until `shutdown` resolves, then stops accepting, closes idle
    /// connections, lets in-flight requests (upgraded ones included) finish for up to
    /// `shutdown_grace` and returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let shared = self.shared;
        let config = &shared.config;
        let header = h1::Listener {
            proto: "http",
            port: config.listen_port_for_header,
        };
        let connection_shared = shared.clone();
        accept_until(
            shared,
            listener,
            shutdown,
            "HTTP",
            move |stream, peer, stopping| {
                serve_when_readable(connection_shared.clone(), stream, peer, header, stopping)
            },
        )
        .await
    }
}

/// Serves a plain TCP client connection whenever it has sent something. While it has not, it
/// costs only this small future and its socket: the engine's state (several KB, boxed) and
/// its buffers are made when bytes arrive, and the first read is the engine's own (no extra
/// system call). A keep-alive connection that idles is handed back by the engine (parked:
/// buffers freed, dyno connection pooled) and waited on here again, so thousands of idle
/// clients cost about a kilobyte each. A connection that sends nothing within the keep-alive
/// idle time is closed.
async fn serve_when_readable(
    shared: Arc<proxy::Shared>,
    mut stream: tokio::net::TcpStream,
    peer: SocketAddr,
    header: h1::Listener,
    mut stopping: watch::Receiver<bool>,
) {
    let mut idle_until = tokio::time::Instant::now() + shared.config.client_keepalive_idle;
    loop {
        let rbuf = loop {
            // `readable` may report a fresh socket ready; the read below tells for sure.
            tokio::select! {
                biased;
                readable = stream.readable() => if readable.is_err() {
                    return;
                },
                _ = stopping.wait_for(|stop| *stop) => return,
                () = tokio::time::sleep_until(idle_until) => return,
            }
            match h1::first_read(&stream) {
                Ok(Some(buf)) => break buf,
                Ok(None) => continue,
                Err(_) => return,
            }
        };
        let start = h1::Start {
            rbuf,
            parkable: true,
        };
        let engine = h1::serve_connection_with(
            shared.clone(),
            stream,
            peer,
            header,
            stopping.clone(),
            start,
        );
        match Box::pin(engine).await {
            // Dropping the stream closes the connection.
            h1::Ended::Closed(_) => return,
            h1::Ended::Parked {
                io,
                idle_until: until,
            } => {
                stream = io;
                idle_until = until;
            }
        }
    }
}

/// The accept loop both listeners share: runs `serve_one` for each connection until
/// `shutdown` resolves, then stops accepting, tells connections to finish (`stopping`), and
/// waits up to `shutdown_grace` for them. `what` names the listener in log messages.
///
/// Each connection holds its clone of `stopping` until it ends, so the receivers double as
/// the count of live connections; the connection future is spawned as it is (no wrapper
/// future around it, which would store it twice).
async fn accept_until<F, Fut>(
    shared: Arc<proxy::Shared>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    what: &'static str,
    serve_one: F,
) -> std::io::Result<()>
where
    F: Fn(tokio::net::TcpStream, SocketAddr, watch::Receiver<bool>) -> Fut,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let config = &shared.config;
    let (stop, stopping) = watch::channel(false);
    let reaper = tokio::spawn(reap_forever(shared.clone()));
    // Accepted sockets inherit TCP_NODELAY from a listener that has it (as the per-core
    // listeners do), saving a system call per connection.
    let inherits_nodelay = socket2::SockRef::from(&listener)
        .tcp_nodelay()
        .unwrap_or(false);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if !inherits_nodelay {
                        let _ = stream.set_nodelay(true);
                    }
                    tokio::spawn(serve_one(stream, peer, stopping.clone()));
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, listener = what, "router could not accept a connection; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    drop(stopping);
    let _ = stop.send(true);
    if tokio::time::timeout(config.shutdown_grace, stop.closed())
        .await
        .is_err()
    {
        tracing::warn!(
            grace = ?config.shutdown_grace,
            listener = what,
            "router shut down with requests still in flight"
        );
    }
    reaper.abort();
    Ok(())
}

/// Closes pooled dyno connections that idled out or whose dyno left the route table.
async fn reap_forever(shared: Arc<proxy::Shared>) {
    let period = (shared.config.backend_pool_idle / 4)
        .clamp(Duration::from_millis(50), Duration::from_secs(10));
    let mut routes = shared.routes.clone();
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            changed = routes.changed() => if changed.is_err() {
                routes = shared.routes.clone();
                interval.tick().await;
            },
        }
        let live: std::collections::HashSet<SocketAddr> = routes
            .borrow_and_update()
            .hosts
            .values()
            .flat_map(|route| route.backends.iter().map(|backend| backend.addr))
            .collect();
        shared.upstreams.reap(Some(&live));
        shared.pool.reap();
    }
}
