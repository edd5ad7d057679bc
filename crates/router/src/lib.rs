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
//! Differences from Heroku worth knowing:
//! - A request header section over `max_header_bytes` or with more than `max_headers` headers is
//!   answered by hyper with `431 Request Header Fields Too Large` (a too-long URI with `414`),
//!   not Heroku's plain 400; other malformed requests get 400 and the connection is closed.
//! - `bytes=` in the log counts body bytes relayed from the dyno; router error pages count 0.
//! - Idle keep-alive client connections are closed after `header_read_timeout` (hyper starts
//!   that clock as soon as it waits for the next request head).
//! - No H11 backlog limit and no per-router dyno quarantine after failed connects yet.

mod body;
mod headers;
mod logline;
mod pages;
mod pool;
mod proxy;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use logline::ErrorCode;

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
        }
    }
}

/// Receives each router log line with the name of the app it belongs to.
pub type RouterLogSink = Arc<dyn Fn(&str, slipway_logplex::LogLine) + Send + Sync>;

/// The HTTP router. Build with [`Router::new`], run with [`Router::serve`].
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
        Router {
            shared: Arc::new(proxy::Shared {
                routes,
                log,
                config,
                pool,
            }),
        }
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests finish
    /// (up to `shutdown_grace`) and returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let shared = self.shared;
        let config = &shared.config;
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .keep_alive(true)
            .header_read_timeout(config.header_read_timeout)
            .max_headers(config.max_headers)
            .max_header_size(config.max_header_bytes);
        // Every connection task holds a clone of `alive`; `closed` resolves when all are gone.
        let (stop, stopping) = watch::channel(false);
        let (alive, mut closed) = tokio::sync::mpsc::channel::<()>(1);
        let reaper = tokio::spawn(shared.pool.clone().reap_forever());
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        let shared = shared.clone();
                        let service = service_fn(move |request| {
                            let shared = shared.clone();
                            async move {
                                Ok::<_, Infallible>(proxy::handle(shared, request, peer).await)
                            }
                        });
                        let connection = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .with_upgrades();
                        let mut stopping = stopping.clone();
                        let alive = alive.clone();
                        tokio::spawn(async move {
                            tokio::pin!(connection);
                            let result = tokio::select! {
                                result = connection.as_mut() => result,
                                _ = stopping.changed() => {
                                    connection.as_mut().graceful_shutdown();
                                    connection.await
                                }
                            };
                            if let Err(error) = result {
                                tracing::debug!(%peer, %error, "client connection ended with an error");
                            }
                            drop(alive);
                        });
                    }
                    Err(error) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(%error, "router could not accept a connection; retrying");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        drop(listener);
        let _ = stop.send(true);
        drop(alive);
        if tokio::time::timeout(config.shutdown_grace, closed.recv())
            .await
            .is_err()
        {
            tracing::warn!(
                grace = ?config.shutdown_grace,
                "router shut down with requests still in flight"
            );
        }
        reaper.abort();
        Ok(())
    }
}
