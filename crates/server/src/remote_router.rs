//! `slipway router`: a standalone router that serves every app from the route table it is
//! streamed by the control planes, for hosts that run no control plane.
//!
//! The router crate is the same as inside `slipway server`; only its input differs. A task
//! follows `GET /slipway/cluster/routes` on one control plane after another (round robin
//! through `--server`), turns each snapshot into a `RouteTable` and publishes it on the
//! router's `watch` channel; while no control plane answers, the router keeps serving the last
//! table it had. A silent stream (no line for three heartbeats) counts as a lost one.
//! Reconnections back off from 100 ms to 5 s and start again from 100 ms once a snapshot
//! arrives ([`Backoff`]).
//!
//! The router's log lines and wake-ups go into a bounded queue ([`EVENT_QUEUE`] events; the
//! router's threads only `try_send`, so a slow or absent control plane never holds a
//! request) and a second task streams them to `POST /slipway/cluster/router-events`. What
//! does not fit is counted and the count sent as a `dropped` event once there is room.
//!
//! With `--https ADDR` it also serves apps over HTTPS, with certificates by SNI from `GET
//! /slipway/cluster/certs`, followed like the route stream: each custom domain's uploaded
//! certificate, and for `<app>.<domain>` one the control plane's platform CA issued (the
//! router never holds the CA's key). Those lines carry private keys, so the router asks for
//! them only over `https://` or from a control plane on loopback ([`check_cert_source`]); a
//! name without a certificate gets the router's self-signed fallback, as in `slipway server`.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use slipway_api_types::cluster::{
    CertSnapshot, CertStreamMessage, RouteStreamMessage, RouterEvent, CERTS_PATH, HEARTBEAT_SECS,
    MAX_LINE_BYTES, NDJSON, ROUTER_EVENTS_PATH, ROUTES_PATH,
};
use slipway_model::SecretToken;
use slipway_router::{CertIssuer, CertTable, RouteTable, ServerCert};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::cluster::table_of;

#[cfg(test)]
mod tests;

/// Events the router may hold while no control plane takes them (about a minute of a busy
/// router's lines); beyond, they are dropped and counted.
pub const EVENT_QUEUE: usize = 10_000;

/// What `slipway router` needs.
#[derive(Debug, Clone)]
pub struct RemoteRouterConfig {
    /// The control planes' API URLs (`http://HOST:PORT` or `https://HOST:PORT`), tried in
    /// turn.
    pub servers: Vec<String>,
    /// The cluster token (`<data>/cluster-token` of a control plane).
    pub token: SecretToken,
    /// Where the router serves apps over HTTP (port 0: any free port).
    pub http_addr: SocketAddr,
    /// Where the router serves apps over HTTPS, if anywhere (port 0: any free port).
    pub https_addr: Option<SocketAddr>,
    /// Threads serving the listener (default: one per core).
    pub threads: Option<usize>,
    /// The CA to trust for `https://` control planes (the platform CA's `router-ca.pem`),
    /// besides the system's.
    pub server_ca_file: Option<PathBuf>,
}

/// Why the standalone router could not start.
#[derive(Debug, thiserror::Error)]
pub enum RemoteRouterError {
    #[error("no control plane given: pass --server URL (repeat it for each control plane)")]
    NoServer,
    #[error("control plane URL {url:?} must start with http:// or https://")]
    BadServerUrl { url: String },
    #[error("reading the control plane CA {}", path.display())]
    ReadCa {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} holds no usable PEM certificate", path.display())]
    BadCa {
        path: PathBuf,
        #[source]
        source: reqwest::Error,
    },
    #[error("--https needs the control planes' certificates and private keys, which travel only over https:// or on loopback; give {url:?} as https://HOST:PORT (with --server-ca-file)")]
    PlainCertSource { url: String },
    #[error("setting up the router's TLS")]
    Tls(#[source] std::io::Error),
    #[error("setting up the HTTP client for the control planes")]
    Client(#[source] reqwest::Error),
    #[error("listening for the router on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A running standalone router.
#[derive(Debug)]
pub struct RemoteRouterHandle {
    http_addr: SocketAddr,
    https_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    threads: slipway_router::RouterThreads,
    https_threads: Option<slipway_router::RouterThreads>,
    routes: JoinHandle<()>,
    certs: Option<JoinHandle<()>>,
    events: JoinHandle<()>,
    connected: watch::Receiver<Option<String>>,
}

impl RemoteRouterHandle {
    /// Where it serves apps.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Where it serves apps over HTTPS, if it does.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https_addr
    }

    /// The control plane whose route stream it follows now, if any.
    pub fn following(&self) -> Option<String> {
        self.connected.borrow().clone()
    }

    /// Serves until `stop` completes, then stops accepting, lets requests in flight finish
    /// and returns.
    pub async fn run_until(self, stop: impl Future<Output = ()>) {
        stop.await;
        let _ = self.stop.send(true);
        let _ = self.threads.stopped().await;
        if let Some(threads) = self.https_threads {
            let _ = threads.stopped().await;
        }
        if let Some(certs) = self.certs {
            certs.abort();
        }
        self.routes.abort();
        self.events.abort();
    }
}

/// Starts the standalone router: returns once it listens (it serves `H99`-free empty
/// answers, 404 for every host, until the first table arrives).
pub async fn run_router(
    config: RemoteRouterConfig,
) -> Result<RemoteRouterHandle, RemoteRouterError> {
    if config.servers.is_empty() {
        return Err(RemoteRouterError::NoServer);
    }
    let servers: Vec<String> = config
        .servers
        .iter()
        .map(|url| {
            let url = url.trim_end_matches('/');
            if url.starts_with("http://") || url.starts_with("https://") {
                Ok(url.to_owned())
            } else {
                Err(RemoteRouterError::BadServerUrl {
                    url: url.to_owned(),
                })
            }
        })
        .collect::<Result<_, _>>()?;
    if config.https_addr.is_some() {
        servers.iter().try_for_each(|url| check_cert_source(url))?;
    }
    let mut client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .tcp_keepalive(Duration::from_secs(HEARTBEAT_SECS));
    if let Some(path) = &config.server_ca_file {
        let pem = std::fs::read(path).map_err(|source| RemoteRouterError::ReadCa {
            path: path.clone(),
            source,
        })?;
        let ca =
            reqwest::Certificate::from_pem(&pem).map_err(|source| RemoteRouterError::BadCa {
                path: path.clone(),
                source,
            })?;
        client = client.add_root_certificate(ca);
    }
    let client = client.build().map_err(RemoteRouterError::Client)?;

    // X-Forwarded-Port needs the real port before the router exists.
    let http_addr = pick_port(config.http_addr)?;
    let https_addr = config.https_addr.map(pick_port).transpose()?;

    let (table, routes_rx) = watch::channel(Arc::new(RouteTable::new()));
    let (connected_tx, connected) = watch::channel(None);
    let (queue, events_rx) = EventQueue::new(EVENT_QUEUE);
    let (log_queue, wake_queue) = (queue.clone(), queue.clone());
    let router = slipway_router::Router::new(
        routes_rx,
        Arc::new(move |app: &str, line: slipway_logplex::LogLine| {
            log_queue.push(RouterEvent::Log {
                app: app.to_owned(),
                timestamp: line.timestamp,
                message: line.message,
            });
        }),
        slipway_router::RouterConfig {
            listen_port_for_header: http_addr.port(),
            wake: Some(slipway_router::WakeHook::new(move |app: &str| {
                wake_queue.push(RouterEvent::Wake {
                    app: app.to_owned(),
                })
            })),
            ..Default::default()
        },
    );
    let (stop, stopping) = watch::channel(false);
    let threads = config
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let http_threads = router
        .clone()
        .serve_per_core(
            http_addr,
            threads,
            slipway_router::Protocol::Http,
            stopping.clone(),
        )
        .map_err(|source| RemoteRouterError::Bind {
            addr: http_addr,
            source,
        })?;
    let token = Arc::new(config.token);
    let (https_threads, certs) = match https_addr {
        None => (None, None),
        Some(addr) => {
            let (cert_table, cert_rx) = watch::channel(Arc::new(CertTable::new()));
            // The CA's key stays on the control plane, which streams a certificate for every
            // routed name; this issuer is for a domain no route has, so a name missing from
            // the stream gets the fallback certificate, never one signed by an untrusted CA.
            let issuer = CertIssuer::generate(UNROUTED_DOMAIN)
                .map_err(|error| RemoteRouterError::Tls(std::io::Error::other(error)))?;
            let tls = slipway_router::TlsSettings {
                certs: cert_rx,
                issuer: Arc::new(issuer),
                port_for_header: addr.port(),
            };
            let threads = router
                .clone()
                .serve_per_core(
                    addr,
                    threads,
                    slipway_router::Protocol::Https(tls),
                    stopping.clone(),
                )
                .map_err(|source| RemoteRouterError::Bind { addr, source })?;
            let certs = tokio::spawn(follow_certs(
                client.clone(),
                servers.clone(),
                token.clone(),
                cert_table,
            ));
            (Some(threads), Some(certs))
        }
    };
    let routes = tokio::spawn(follow_routes(
        client.clone(),
        servers.clone(),
        token.clone(),
        table,
        connected_tx,
    ));
    let events = tokio::spawn(forward_events(client, servers, token, queue, events_rx));
    Ok(RemoteRouterHandle {
        http_addr,
        https_addr,
        stop,
        threads: http_threads,
        https_threads,
        routes,
        certs,
        events,
        connected,
    })
}

/// The domain of the standalone router's stand-in issuer: reserved (RFC 2606), so no app is
/// ever routed under it.
const UNROUTED_DOMAIN: &str = "slipway-router.invalid";

/// `addr`, with a free port picked when it asks for port 0.
fn pick_port(addr: SocketAddr) -> Result<SocketAddr, RemoteRouterError> {
    if addr.port() != 0 {
        return Ok(addr);
    }
    std::net::TcpListener::bind(addr)
        .and_then(|listener| listener.local_addr())
        .map_err(|source| RemoteRouterError::Bind { addr, source })
}

/// Whether private keys may be asked of the control plane at `url`: over `https://`, or over
/// plain HTTP to a loopback address (a control plane on the same host).
pub(crate) fn check_cert_source(url: &str) -> Result<(), RemoteRouterError> {
    let refused = || RemoteRouterError::PlainCertSource {
        url: url.to_owned(),
    };
    let parsed = reqwest::Url::parse(url).map_err(|_| refused())?;
    let host = parsed.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(refused()),
    }
}

/// The router's certificate table from a snapshot: a certificate that does not parse with its
/// key is left out (and logged by name, never with its key).
pub(crate) fn cert_table_of(snapshot: &CertSnapshot) -> CertTable {
    let mut table = CertTable::new();
    for cert in &snapshot.certs {
        match ServerCert::from_pem(&cert.chain_pem, &cert.key_pem) {
            Ok(parsed) => table.insert(cert.hostname.as_str(), parsed),
            Err(error) => {
                tracing::warn!(hostname = %cert.hostname, %error, "the control plane streamed a certificate that cannot be served; that name gets the fallback certificate")
            }
        }
    }
    table
}

/// Reconnection delays: doubling from 100 ms to 5 s, back to 100 ms after a success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    pub(crate) fn new() -> Backoff {
        Backoff { next: Self::FIRST }
    }

    /// The delay before the next attempt.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        delay
    }

    pub(crate) fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

/// Why a route stream ended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StreamError {
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("refused with {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("no line for {0:?} (the control plane is gone or partitioned)")]
    Silent(Duration),
    #[error("the stream ended")]
    Ended,
    #[error("a line longer than {MAX_LINE_BYTES} bytes")]
    TooLong,
    #[error("an unreadable line: {0}")]
    Unreadable(#[from] serde_json::Error),
}

/// Follows the route stream of one control plane after another, for ever.
async fn follow_routes(
    client: reqwest::Client,
    servers: Vec<String>,
    token: Arc<SecretToken>,
    table: watch::Sender<Arc<RouteTable>>,
    connected: watch::Sender<Option<String>>,
) {
    let mut backoff = Backoff::new();
    for server in servers.iter().cycle() {
        let result = stream_routes(&client, server, &token, &table, &connected, &mut backoff).await;
        connected.send_replace(None);
        if let Err(error) = result {
            tracing::warn!(%server, %error, "lost the route stream; serving the last route table until a control plane answers");
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// Reads one control plane's route stream until it fails, publishing each snapshot.
async fn stream_routes(
    client: &reqwest::Client,
    server: &str,
    token: &SecretToken,
    table: &watch::Sender<Arc<RouteTable>>,
    connected: &watch::Sender<Option<String>>,
    backoff: &mut Backoff,
) -> Result<(), StreamError> {
    stream_lines(client, server, ROUTES_PATH, token, |message| match message {
        RouteStreamMessage::Snapshot(snapshot) => {
            table.send_replace(Arc::new(table_of(&snapshot)));
            if connected.borrow().is_none() {
                tracing::info!(%server, routes = snapshot.routes.len(), "following the route table of the control plane");
                connected.send_replace(Some(server.to_owned()));
            }
            backoff.reset();
        }
        RouteStreamMessage::Heartbeat => {}
    })
    .await
}

/// Follows the certificate stream of one control plane after another, for ever; the last
/// certificates stay served while none answers.
async fn follow_certs(
    client: reqwest::Client,
    servers: Vec<String>,
    token: Arc<SecretToken>,
    table: watch::Sender<Arc<CertTable>>,
) {
    let mut backoff = Backoff::new();
    for server in servers.iter().cycle() {
        let result = stream_lines(
            &client,
            server,
            CERTS_PATH,
            &token,
            |message| match message {
                CertStreamMessage::Snapshot(snapshot) => {
                    let certs = cert_table_of(&snapshot);
                    tracing::debug!(%server, certs = certs.len(), "new certificates");
                    table.send_replace(Arc::new(certs));
                    backoff.reset();
                }
                CertStreamMessage::Heartbeat => {}
            },
        )
        .await;
        if let Err(error) = result {
            tracing::warn!(%server, %error, "lost the certificate stream; serving the last certificates until a control plane answers");
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// Reads one control plane's NDJSON stream at `path` until it fails, handing each line to
/// `on_message`.
async fn stream_lines<M: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    server: &str,
    path: &str,
    token: &SecretToken,
    mut on_message: impl FnMut(M),
) -> Result<(), StreamError> {
    let response = client
        .get(format!("{server}{path}"))
        .bearer_auth(token.expose())
        .header(reqwest::header::ACCEPT, NDJSON)
        .send()
        .await?;
    let status = response.status();
    if !status.is_success() {
        return Err(StreamError::Refused {
            status: status.as_u16(),
            message: error_message(response).await,
        });
    }
    let silence = Duration::from_secs(HEARTBEAT_SECS * 3);
    let mut body = response.bytes_stream();
    let mut buffer: Vec<u8> = Vec::new();
    loop {
        let chunk = tokio::time::timeout(silence, body.next())
            .await
            .map_err(|_| StreamError::Silent(silence))?
            .ok_or(StreamError::Ended)??;
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            on_message(serde_json::from_slice::<M>(&line)?);
        }
        if buffer.len() > MAX_LINE_BYTES {
            return Err(StreamError::TooLong);
        }
    }
}

/// The `message` of a Heroku-style error body, or the start of whatever came.
async fn error_message(response: reqwest::Response) -> String {
    let body = response.bytes().await.unwrap_or_default();
    let body = &body[..body.len().min(1024)];
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| value["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}

/// The router's side of its events: a bounded queue that never blocks, and what it dropped.
#[derive(Clone)]
pub(crate) struct EventQueue {
    sender: mpsc::Sender<RouterEvent>,
    dropped: Arc<AtomicU64>,
}

impl EventQueue {
    pub(crate) fn new(capacity: usize) -> (EventQueue, mpsc::Receiver<RouterEvent>) {
        let (sender, receiver) = mpsc::channel(capacity);
        let queue = EventQueue {
            sender,
            dropped: Arc::default(),
        };
        (queue, receiver)
    }

    /// Queues `event`, or counts it dropped when the queue is full. Never waits.
    pub(crate) fn push(&self, event: RouterEvent) {
        if self.sender.try_send(event).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The events dropped since the last call, as one event to send, if any.
    pub(crate) fn take_dropped(&self) -> Option<RouterEvent> {
        match self.dropped.swap(0, Ordering::Relaxed) {
            0 => None,
            count => Some(RouterEvent::Dropped { count }),
        }
    }
}

/// Streams the queued events to one control plane after another, for ever.
async fn forward_events(
    client: reqwest::Client,
    servers: Vec<String>,
    token: Arc<SecretToken>,
    queue: EventQueue,
    mut events: mpsc::Receiver<RouterEvent>,
) {
    let mut backoff = Backoff::new();
    for server in servers.iter().cycle() {
        // The request's body is a channel the loop below feeds line by line.
        let (body, lines) = mpsc::channel::<Result<Vec<u8>, std::io::Error>>(64);
        let stream = futures::stream::unfold(lines, |mut lines| async move {
            lines.recv().await.map(|line| (line, lines))
        });
        let request = client
            .post(format!("{server}{ROUTER_EVENTS_PATH}"))
            .bearer_auth(token.expose())
            .header(reqwest::header::CONTENT_TYPE, NDJSON)
            .body(reqwest::Body::wrap_stream(stream))
            .send();
        tokio::pin!(request);
        let mut sent: u64 = 0;
        let ended = loop {
            tokio::select! {
                answer = &mut request => break answer,
                event = events.recv() => {
                    // Every sender lives in the router, which lives as long as this task.
                    let Some(event) = event else { return };
                    let mut batch = queue.take_dropped().into_iter().collect::<Vec<_>>();
                    batch.push(event);
                    let mut lines = Vec::new();
                    for event in &batch {
                        if let Ok(mut line) = serde_json::to_vec(event) {
                            line.push(b'\n');
                            lines.extend_from_slice(&line);
                        }
                    }
                    if body.send(Ok(lines)).await.is_err() {
                        queue.dropped.fetch_add(batch.len() as u64, Ordering::Relaxed);
                        break request.await;
                    }
                    sent += 1;
                    if sent == 1 {
                        tracing::info!(%server, "forwarding router log lines and wake-ups to the control plane");
                    }
                    backoff.reset();
                }
            }
        };
        match ended {
            Ok(response) if response.status().is_success() => {}
            Ok(response) => {
                let status = response.status().as_u16();
                let message = error_message(response).await;
                tracing::warn!(%server, status, %message, "the control plane refused router events");
            }
            Err(error) => {
                tracing::warn!(%server, %error, "lost the router events stream; queueing until a control plane answers")
            }
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}
