//! The hyper-based path, used for HTTP/2 clients (over TLS, negotiated with ALPN): each
//! request finds its app and is answered by the router or forwarded to a dyno over HTTP/1.1
//! (hyper's client) on a connection from the dyno pool both engines share (`upstream`). Dynos
//! never see HTTP/2.
//!
//! The same rules as the HTTP/1 engine apply, from the same `policy`: Heroku's headers,
//! admission (H10, H11 backlog, H14, H80, H81), the dyno choice with quarantine (H19, H21,
//! H99); and H12 request timeout, H15 idle timeout, one log line per request, and a
//! connection without open streams for `client_keepalive_idle` is closed (GOAWAY) like an idle
//! HTTP/1 keep-alive.
//!
//! The client side of the idle rule: a client silent mid-body for `idle_timeout` fails its
//! request with H28 ([`RequestBody`]); a connection whose responses wait on a client that
//! has read nothing for `idle_timeout` is cut, and those streams are logged H28. A stream the
//! client resets before its response ended is logged H27 (status 499).
//!
//! WebSockets over HTTP/2 (RFC 8441): the router advertises extended CONNECT; a `CONNECT` with
//! `:protocol websocket` (or any other protocol) goes to the dyno as an HTTP/1.1 `GET` with
//! `Connection: upgrade`, `Upgrade: <protocol>` (and a `Sec-WebSocket-Key`, which HTTP/2
//! clients do not send); the dyno's `101` becomes a `200` for the client, and the stream then
//! carries the bytes both ways.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::header::{HeaderValue, CONNECTION, CONTENT_TYPE, EXPECT, HOST, UPGRADE};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use tokio::sync::{oneshot, watch};

use crate::body::{DynoConnection, PendingLog, Proxied, RequestBody, ResponseBody};
use crate::logline::{ErrorCode, RequestLog};
use crate::pages;
use crate::policy::{self, add_via, append_list, strip_hop_by_hop, Forwarded, Listener};
use crate::route::AppRoute;
use crate::shared::Shared;
use crate::upstream::{InFlight, Upstream};

fn html(status: StatusCode, page: String) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(page));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response.headers_mut().insert(
        "cache-control",
        HeaderValue::from_static("no-cache, no-store"),
    );
    response
}

/// 400, closing the client connection: after a malformed request its framing is suspect.
fn bad_request(reason: &str) -> Response<ResponseBody> {
    let mut response = html(StatusCode::BAD_REQUEST, pages::bad_request(reason));
    response
        .headers_mut()
        .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The routing host of a request (see [`policy::routing_host`]): HTTP/2's `:authority`
/// when it has one.
fn request_host(request: &Request<Incoming>) -> Result<String, &'static str> {
    let mut hosts = request.headers().get_all(HOST).iter();
    let host = hosts.next();
    let host_headers = usize::from(host.is_some()) + hosts.count();
    policy::routing_host(
        request
            .uri()
            .authority()
            .map(|authority| authority.as_str().as_bytes()),
        host_headers,
        host.map(HeaderValue::as_bytes),
    )
}

/// Open streams of one HTTP/2 connection and when the last one finished, so a connection
/// without streams for `client_keepalive_idle` can be closed like an idle HTTP/1 keep-alive.
struct Activity {
    /// Streams whose response is still being produced or sent.
    open: std::sync::atomic::AtomicUsize,
    /// When the connection last had no open stream.
    idle_since: std::sync::Mutex<tokio::time::Instant>,
    /// Streams whose last body frame is still waiting for the client to take it.
    awaiting_client: std::sync::atomic::AtomicUsize,
    /// When the client last took a response body frame (any stream).
    client_progress: std::sync::Mutex<tokio::time::Instant>,
    /// Set when the connection is cut because the client stopped reading (H28).
    stalled: std::sync::atomic::AtomicBool,
}

impl Activity {
    fn new() -> Activity {
        let now = tokio::time::Instant::now();
        Activity {
            open: std::sync::atomic::AtomicUsize::new(0),
            idle_since: std::sync::Mutex::new(now),
            awaiting_client: std::sync::atomic::AtomicUsize::new(0),
            client_progress: std::sync::Mutex::new(now),
            stalled: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn client_took_a_frame(&self) {
        *self
            .client_progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = tokio::time::Instant::now();
    }
}

/// Keeps its stream counted as open until the response body is dropped.
struct StreamGuard(Arc<Activity>);

impl StreamGuard {
    fn new(activity: &Arc<Activity>) -> StreamGuard {
        activity
            .open
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        StreamGuard(activity.clone())
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let mut idle_since = self
            .0
            .idle_since
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if self
            .0
            .open
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
            == 1
        {
            *idle_since = tokio::time::Instant::now();
        }
    }
}

/// A response body that holds its stream's [`StreamGuard`] and tells the connection whether
/// the client keeps taking what it is sent.
struct TrackedBody {
    inner: ResponseBody,
    guard: StreamGuard,
    /// The last frame went out and hyper has not asked for the next: the client's flow-control
    /// window decides when it will.
    handed_out: bool,
}

impl TrackedBody {
    fn new(inner: ResponseBody, guard: StreamGuard) -> TrackedBody {
        TrackedBody {
            inner,
            guard,
            handed_out: false,
        }
    }

    fn set_handed_out(&mut self, handed_out: bool) {
        use std::sync::atomic::Ordering;
        if self.handed_out != handed_out {
            self.handed_out = handed_out;
            let awaiting = &self.guard.0.awaiting_client;
            if handed_out {
                awaiting.fetch_add(1, Ordering::SeqCst);
            } else {
                awaiting.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        self.set_handed_out(false);
        // Dropped before its end: the client reset the stream (H27) or the connection was cut
        // because the client stopped reading (H28).
        if !hyper::body::Body::is_end_stream(&self.inner) {
            let stalled = self
                .guard
                .0
                .stalled
                .load(std::sync::atomic::Ordering::SeqCst);
            self.inner.interrupt(if stalled {
                ErrorCode::H28
            } else {
                ErrorCode::H27
            });
        }
    }
}

impl hyper::body::Body for TrackedBody {
    type Data = <ResponseBody as hyper::body::Body>::Data;
    type Error = <ResponseBody as hyper::body::Body>::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.handed_out {
            this.guard.0.client_took_a_frame();
            this.set_handed_out(false);
        }
        let polled = std::pin::Pin::new(&mut this.inner).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(_))) = &polled {
            this.set_handed_out(true);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Resolves once the connection has had no open stream for `idle`.
async fn idled_out(activity: &Activity, idle: Duration) {
    loop {
        let now = tokio::time::Instant::now();
        let deadline = if activity.open.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            let idle_since = *activity
                .idle_since
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if idle_since + idle <= now {
                return;
            }
            idle_since + idle
        } else {
            now + idle
        };
        tokio::time::sleep_until(deadline).await;
    }
}

/// Resolves once some response has waited `idle` for a client that took no frame meanwhile.
async fn client_stopped_reading(activity: &Activity, idle: Duration) {
    let period = (idle / 4).max(Duration::from_millis(10));
    loop {
        tokio::time::sleep(period).await;
        if activity
            .awaiting_client
            .load(std::sync::atomic::Ordering::SeqCst)
            > 0
        {
            let since = *activity
                .client_progress
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if since.elapsed() >= idle {
                return;
            }
        }
    }
}

/// Serves one HTTP/2 client connection until it closes, has had no open stream for
/// `client_keepalive_idle`, or the router stops (then it sends GOAWAY and lets in-flight
/// streams finish).
pub(crate) async fn serve_h2<S>(
    shared: Arc<Shared>,
    io: S,
    peer: SocketAddr,
    listener: Listener,
    mut stopping: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let idle = shared.config.client_keepalive_idle;
    let idle_timeout = shared.config.idle_timeout;
    let activity = Arc::new(Activity::new());
    let streams = activity.clone();
    let service = hyper::service::service_fn(move |request| {
        let shared = shared.clone();
        let guard = StreamGuard::new(&streams);
        async move {
            let response = handle(shared, request, peer, listener).await;
            Ok::<_, std::convert::Infallible>(response.map(|inner| TrackedBody::new(inner, guard)))
        }
    });
    let connection = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
        .timer(hyper_util::rt::TokioTimer::new())
        .max_concurrent_streams(256)
        .enable_connect_protocol()
        .serve_connection(hyper_util::rt::TokioIo::new(io), service);
    tokio::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%error, "HTTP/2 client connection ended with an error");
            }
            return;
        }
        _ = stopping.wait_for(|stop| *stop) => {}
        _ = idled_out(&activity, idle) => {
            tracing::debug!(%peer, "closing an idle HTTP/2 client connection");
        }
        _ = client_stopped_reading(&activity, idle_timeout) => {
            // H28: cut the connection; its unfinished streams are logged as they drop.
            tracing::debug!(%peer, "cutting an HTTP/2 client connection that stopped reading");
            activity.stalled.store(true, std::sync::atomic::Ordering::SeqCst);
            return;
        }
    }
    connection.as_mut().graceful_shutdown();
    let _ = connection.await;
}

/// Answers one client request.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
    peer: SocketAddr,
    listener: Listener,
) -> Response<ResponseBody> {
    let received = SystemTime::now();
    let host = match request_host(&request) {
        Ok(host) => host,
        Err(reason) => return bad_request(reason),
    };
    let table = shared.routes.borrow().clone();
    let Some(route) = table.get(&host).cloned() else {
        return html(StatusCode::NOT_FOUND, pages::no_such_app());
    };
    drop(table);

    let headers = request.headers();
    let request_id = policy::request_id(
        headers.get("x-request-id").map(HeaderValue::as_bytes),
        rand::random,
    );
    let fwd = append_list(headers, "x-forwarded-for", &peer.ip().to_string());
    let path = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |pq| pq.as_str().to_owned(),
    );
    let entry = RequestLog {
        code: None,
        method: request.method().as_str().to_owned(),
        path,
        host,
        request_id,
        fwd,
        dyno: None,
        connect: None,
        service: None,
        status: 0,
        bytes: 0,
        protocol: listener.proto,
    };
    let log = PendingLog::new(shared.log.clone(), route.app.clone(), entry);

    // A sleeping or booting app: hold the request until a web dyno is up (or H20).
    let host = log.entry.host.clone();
    let route = match crate::wake::await_dynos(&shared.config, &shared.routes, &host, route).await {
        Ok(route) => route,
        Err(code) => return router_error(log, code),
    };
    let counter = shared.upstreams.backlog(&route.app);
    let mut in_flight = None;
    let admitted = policy::admission(&route, shared.config.max_backlog_per_dyno, || {
        let (guard, before) = InFlight::enter(counter);
        in_flight = Some(guard);
        before
    });
    if let Err(code) = admitted {
        return router_error(log, code);
    }
    forward(&shared, &route, request, received, log, listener).await
}

/// Logs `code` and answers with its error page.
fn router_error(mut log: PendingLog, code: ErrorCode) -> Response<ResponseBody> {
    let status = code.status();
    log.entry.code = Some(code);
    log.entry.status = status.as_u16();
    log.emit();
    html(status, pages::error_page(code))
}

/// The `Upgrade` value when the client asks to switch protocols (`Connection: upgrade`).
fn requested_upgrade(headers: &http::HeaderMap) -> Option<HeaderValue> {
    let wants = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    wants.then(|| headers.get(UPGRADE).cloned()).flatten()
}

/// Puts back the headers of a protocol switch after hop-by-hop stripping.
fn restore_upgrade(headers: &mut http::HeaderMap, upgrade: HeaderValue) {
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, upgrade);
}

/// The protocol of an HTTP/2 extended CONNECT (RFC 8441), such as `websocket`.
fn extended_connect(request: &Request<Incoming>) -> Option<HeaderValue> {
    if request.method() != http::Method::CONNECT {
        return None;
    }
    let protocol = request.extensions().get::<hyper::ext::Protocol>()?;
    HeaderValue::from_str(protocol.as_str()).ok()
}

/// A fresh `Sec-WebSocket-Key` (16 random bytes, base64) for a WebSocket the client opened
/// over HTTP/2, where the key does not exist; the dyno's HTTP/1.1 handshake needs one.
fn websocket_key() -> HeaderValue {
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>());
    HeaderValue::from_str(&key).expect("base64 is a valid header value")
}

/// Request headers as the dyno sees them. Returns the requested `Upgrade`, if any.
fn prepare_request(
    listener: Listener,
    request: &mut Request<Incoming>,
    received: SystemTime,
    log: &PendingLog,
) -> Option<HeaderValue> {
    let upgrade = match extended_connect(request) {
        Some(protocol) => {
            // HTTP/2 WebSocket (RFC 8441) → the HTTP/1.1 handshake the dyno expects.
            *request.method_mut() = http::Method::GET;
            if protocol.as_bytes().eq_ignore_ascii_case(b"websocket")
                && !request.headers().contains_key("sec-websocket-key")
            {
                request
                    .headers_mut()
                    .insert("sec-websocket-key", websocket_key());
            }
            Some(protocol)
        }
        None => requested_upgrade(request.headers()),
    };
    // HTTP/2 carries the host in `:authority`; dynos speak HTTP/1.1 and need `Host`. The
    // authority the request was routed by replaces any `Host` the client sent.
    if let Some(host) = request
        .uri()
        .authority()
        .and_then(|authority| HeaderValue::from_str(authority.as_str()).ok())
    {
        request.headers_mut().insert(HOST, host);
    }
    let origin_form: Uri = request
        .uri()
        .path_and_query()
        .cloned()
        .map_or_else(|| Uri::from_static("/"), Uri::from);
    *request.uri_mut() = origin_form;
    *request.version_mut() = Version::HTTP_11;
    let headers = request.headers_mut();
    strip_hop_by_hop(headers);
    // The router answers `Expect: 100-continue` itself (hyper does when the body is read).
    headers.remove(EXPECT);
    add_via(headers);
    Forwarded {
        forwarded_for: &log.entry.fwd,
        listener,
        received,
        request_id: &log.entry.request_id,
    }
    .insert_into(headers);
    if let Some(upgrade) = &upgrade {
        restore_upgrade(headers, upgrade.clone());
    }
    upgrade
}

/// Waits for the dyno's response headers; the request timeout starts once the whole request
/// body has been sent. `None` means the timeout passed.
async fn await_response<F: std::future::Future>(
    response: F,
    body_sent: &mut Option<oneshot::Receiver<()>>,
    timeout: Duration,
) -> Option<F::Output> {
    tokio::pin!(response);
    let deadline = async {
        if let Some(sent) = body_sent.as_mut() {
            let _ = sent.await;
        }
        *body_sent = None;
        tokio::time::sleep(timeout).await;
    };
    tokio::select! {
        output = &mut response => Some(output),
        () = deadline => None,
    }
}

/// Speaks HTTP/1.1 through hyper over a dyno connection from the pool. Unless the request
/// switches protocols, the connection goes back to the pool once its response ended cleanly
/// (see [`DynoConnection`]) and hyper has finished with it.
async fn open(
    shared: &Arc<Shared>,
    upstream: Upstream,
    upgrades: bool,
) -> Result<DynoConnection, hyper::Error> {
    let addr = upstream.addr;
    let (sender, connection) = hyper::client::conn::http1::Builder::new()
        .handshake(hyper_util::rt::TokioIo::new(upstream.stream))
        .await?;
    if upgrades {
        tokio::spawn(async move {
            if let Err(error) = connection.with_upgrades().await {
                tracing::debug!(%addr, %error, "dyno connection ended with an error");
            }
        });
        return Ok(DynoConnection::new(sender, None));
    }
    let (give_back, given_back) = oneshot::channel();
    let shared = shared.clone();
    tokio::spawn(async move {
        let connection = connection.without_shutdown();
        tokio::pin!(connection);
        let mut sender: hyper::client::conn::http1::SendRequest<RequestBody> = tokio::select! {
            // The dyno closed, or the response did not end cleanly: nothing to pool.
            _ = &mut connection => return,
            returned = given_back => match returned {
                Ok(sender) => sender,
                Err(_) => {
                    let _ = connection.await;
                    return;
                }
            },
        };
        // Ready for another request means hyper keeps the connection open (no
        // `Connection: close`, the response fully read).
        let ready = tokio::select! {
            ready = sender.ready() => ready.is_ok(),
            _ = &mut connection => false,
        };
        drop(sender);
        match connection.await {
            Ok(parts) if ready && parts.read_buf.is_empty() => {
                shared.upstreams.put(Upstream {
                    stream: parts.io.into_inner(),
                    addr,
                    idle_since: std::time::Instant::now(),
                });
            }
            Ok(_) => {}
            Err(error) => tracing::debug!(%addr, %error, "dyno connection ended with an error"),
        }
    });
    Ok(DynoConnection::new(sender, Some(give_back)))
}

async fn forward(
    shared: &Arc<Shared>,
    route: &AppRoute,
    mut request: Request<Incoming>,
    received: SystemTime,
    mut log: PendingLog,
    listener: Listener,
) -> Response<ResponseBody> {
    let config = &shared.config;
    let over_h2 = request.version() == Version::HTTP_2;
    let upgrading = prepare_request(listener, &mut request, received, &log).is_some();
    let mut client_upgrade = upgrading.then(|| hyper::upgrade::on(&mut request));
    let (sent_tx, sent_rx) = oneshot::channel();
    let mut body_sent = Some(sent_rx);
    let client_idle = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut outgoing = request
        .map(|body| RequestBody::new(body, sent_tx, config.idle_timeout, client_idle.clone()));
    let found = shared
        .upstreams
        .connect_to_app(config, route, &mut None, &mut log.entry)
        .await;
    let (mut upstream, mut reused) = match found {
        Ok(found) => found,
        Err(code) => return router_error(log, code),
    };
    loop {
        let addr = upstream.addr;
        let mut connection = match open(shared, upstream, upgrading).await {
            Ok(connection) => connection,
            Err(error) => {
                tracing::debug!(app = %route.app, %addr, %error, "HTTP handshake with a dyno failed");
                return router_error(log, ErrorCode::H13);
            }
        };
        let service_start = Instant::now();
        let response = connection.sender.try_send_request(outgoing);
        match await_response(response, &mut body_sent, config.request_timeout).await {
            Some(Ok(response)) => {
                if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                    if let Some(client_side) = client_upgrade.take() {
                        return switch_protocols(
                            response,
                            client_side,
                            log,
                            service_start,
                            over_h2,
                            config.idle_timeout,
                        );
                    }
                }
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                add_via(&mut parts.headers);
                log.entry.status = parts.status.as_u16();
                let idle = Box::pin(tokio::time::sleep(config.idle_timeout));
                let proxied = Proxied {
                    body,
                    log: Some(log),
                    service_start,
                    idle_timeout: config.idle_timeout,
                    idle,
                    connection: Some(connection),
                    ended: false,
                    failure: None,
                };
                return Response::from_parts(parts, ResponseBody::proxied(proxied));
            }
            Some(Err(mut error)) => {
                if let (Some(unsent), true) = (error.take_message(), reused) {
                    // The pooled connection was closed by the dyno before the request was
                    // written: it is safe to send it again on a fresh connection.
                    outgoing = unsent;
                    upstream = match shared.upstreams.connect(addr).await {
                        Ok(fresh) => fresh,
                        Err(error) => {
                            tracing::debug!(app = %route.app, %error, "dyno reconnect failed");
                            return router_error(log, ErrorCode::H13);
                        }
                    };
                    reused = false;
                    continue;
                }
                log.entry.service = Some(service_start.elapsed());
                if client_idle.load(std::sync::atomic::Ordering::SeqCst) {
                    return router_error(log, ErrorCode::H28);
                }
                tracing::debug!(app = %route.app, %addr, error = %error.error(), "dyno closed without response");
                return router_error(log, ErrorCode::H13);
            }
            None => {
                log.entry.service = Some(service_start.elapsed());
                return router_error(log, ErrorCode::H12);
            }
        }
    }
}

/// Relays a `101 Switching Protocols` (WebSocket and any other `Upgrade`) and then copies bytes
/// both ways between client and dyno until either side closes. To an HTTP/2 client (extended
/// CONNECT) the switch is a `200` without connection headers.
fn switch_protocols(
    mut response: Response<Incoming>,
    client_side: hyper::upgrade::OnUpgrade,
    mut log: PendingLog,
    service_start: Instant,
    over_h2: bool,
    idle: Duration,
) -> Response<ResponseBody> {
    let dyno_side = hyper::upgrade::on(&mut response);
    let (mut parts, _) = response.into_parts();
    let upgrade = parts.headers.get(UPGRADE).cloned();
    strip_hop_by_hop(&mut parts.headers);
    add_via(&mut parts.headers);
    if over_h2 {
        parts.status = StatusCode::OK;
        parts.headers.remove("sec-websocket-accept");
    } else if let Some(upgrade) = upgrade {
        restore_upgrade(&mut parts.headers, upgrade);
    }
    // Logged as the dyno answered (101), whatever the client saw.
    log.entry.status = StatusCode::SWITCHING_PROTOCOLS.as_u16();
    log.entry.service = Some(service_start.elapsed());
    log.emit();
    tokio::spawn(async move {
        match (client_side.await, dyno_side.await) {
            (Ok(client), Ok(dyno)) => {
                let client = hyper_util::rt::TokioIo::new(client);
                let dyno = hyper_util::rt::TokioIo::new(dyno);
                if !relay_until_idle(client, dyno, idle).await {
                    tracing::debug!(?idle, "upgraded connection idle in both directions; closed");
                }
            }
            (client, dyno) => {
                tracing::debug!(
                    client_ok = client.is_ok(),
                    dyno_ok = dyno.is_ok(),
                    "protocol switch failed"
                );
            }
        }
    });
    Response::from_parts(parts, ResponseBody::full(bytes::Bytes::new()))
}

/// Copies bytes both ways until both sides have finished (each end of stream is passed on as
/// a shutdown) or nothing moved in either direction for `idle` (the 55 s rule for upgraded
/// connections). False when it ended for idleness.
async fn relay_until_idle<A, B>(client: A, dyno: B, idle: Duration) -> bool
where
    A: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    B: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use std::sync::atomic::{AtomicU64, Ordering};
    let start = tokio::time::Instant::now();
    // Milliseconds after `start` of the last byte in either direction.
    let last = AtomicU64::new(0);
    let (client_read, client_write) = tokio::io::split(client);
    let (dyno_read, dyno_write) = tokio::io::split(dyno);
    let both = async {
        let (up, down) = tokio::join!(
            pump(client_read, dyno_write, &last, start),
            pump(dyno_read, client_write, &last, start)
        );
        if let Err(error) = up.and(down) {
            tracing::debug!(%error, "upgraded connection ended with an error");
        }
    };
    let watchdog = async {
        loop {
            let quiet_until = start + Duration::from_millis(last.load(Ordering::Relaxed)) + idle;
            if tokio::time::Instant::now() >= quiet_until {
                return;
            }
            tokio::time::sleep_until(quiet_until).await;
        }
    };
    tokio::select! {
        () = both => true,
        () = watchdog => false,
    }
}

/// One direction of [`relay_until_idle`]: copies until end of stream, then shuts `to` down.
async fn pump(
    mut from: impl tokio::io::AsyncRead + Unpin,
    mut to: impl tokio::io::AsyncWrite + Unpin,
    last: &std::sync::atomic::AtomicU64,
    start: tokio::time::Instant,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buf[..n]).await?;
        last.store(
            start.elapsed().as_millis() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}

#[cfg(test)]
mod tests;
