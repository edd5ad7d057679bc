//! The router's HTTP/1.x engine: one task per client connection reads request heads itself
//! (Heroku's limits, a 400 for anything malformed), forwards each request over a pooled
//! connection to a dyno and relays the response, all without hyper, per-request tasks or
//! whole-body buffering. Bodies stream through reused buffers; chunked bodies are relayed
//! verbatim while a scanner finds their end.
//!
//! Time rules (reference §6.2): a client has `header_read_timeout` to send a head once it
//! started one and `client_keepalive_idle` between requests; the dyno has `request_timeout`
//! from the end of the request body to its response head (H12); after that a rolling
//! `idle_timeout` window applies in both directions (H15 for a silent dyno, H28 for a silent
//! client), for upgraded connections too.

use std::future::{poll_fn, Future};
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use crate::logline::{format_request_log, ErrorCode, RequestLog};
use crate::pages;
use crate::policy::{self, classify, Forwarded, Kind, Listener, VIA_TOKEN};
use crate::route::{AppRoute, RouteTable};
use crate::shared::Shared;
use crate::upstream::{InFlight, Upstream};
use crate::wire::{
    self, BodyLength, Buf, Chunked, HeadError, HeadLimits, HeaderRange, RequestLine,
};

/// Initial client read buffer; it grows for big heads and shrinks back after.
const CLIENT_BUF: usize = wire::HEAD_BUF;
/// Largest body read buffer in either direction.
const BODY_BUF: usize = wire::BODY_BUF;
/// A keep-alive connection idle this long frees its body buffer.
const IDLE_TRIM: Duration = Duration::from_secs(2);
/// A parkable keep-alive connection idle this long is parked (see [`Ended::Parked`]); under
/// load requests follow each other far sooner, so the engine stays in place.
const IDLE_PARK: Duration = Duration::from_millis(250);

/// A single per-connection timer that is only re-armed when a deadline moves earlier, so
/// steady keep-alive traffic costs no timer-wheel operations.
struct Timer {
    sleep: Pin<Box<Sleep>>,
}

impl Timer {
    fn new() -> Timer {
        Timer {
            sleep: Box::pin(tokio::time::sleep(Duration::from_secs(3600))),
        }
    }

    /// True once `deadline` has passed; otherwise arranges a wake-up no later than it.
    fn poll_passed(&mut self, deadline: Instant, cx: &mut Context<'_>) -> bool {
        if self.sleep.deadline() > deadline {
            self.sleep.as_mut().reset(deadline);
        }
        loop {
            match self.sleep.as_mut().poll(cx) {
                Poll::Pending => return false,
                Poll::Ready(()) if self.sleep.deadline() >= deadline => return true,
                Poll::Ready(()) => self.sleep.as_mut().reset(deadline),
            }
        }
    }
}

/// What a request head says, gathered in one pass.
struct Req {
    method: String,
    minor: u8,
    is_head: bool,
    path: String,
    host: String,
    body: BodyLength,
    keep_alive: bool,
    upgrade: bool,
    expect_continue: bool,
    request_id: String,
    fwd: String,
}

/// How a response body is delimited on the dyno side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RespBody {
    None,
    Length(u64),
    Chunked,
    Close,
}

/// How the relay writes the body to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relay {
    /// Bytes as the dyno sent them.
    Pass,
    /// Chunked from the dyno, plain to an HTTP/1.0 client.
    Dechunk,
    /// Close-delimited from the dyno, chunked to an HTTP/1.1 client.
    Rechunk,
}

/// Why forwarding a request ended without a relayed response.
#[derive(Debug)]
enum Failure {
    /// The reused connection turned out closed before any response byte.
    Stale,
    Code(ErrorCode),
}

fn eq(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

fn has_token(value: &[u8], token: &str) -> bool {
    wire::tokens(value).any(|t| eq(t, token))
}

/// Is `name` listed in one of the `Connection` headers?
fn named_in_connection(buf: &[u8], connection: &[std::ops::Range<usize>], name: &[u8]) -> bool {
    connection
        .iter()
        .any(|range| wire::tokens(&buf[range.clone()]).any(|t| t.eq_ignore_ascii_case(name)))
}

/// Polls writing `first` then `second` (vectored) until both are written. `written` counts
/// bytes of the pair already written.
fn poll_write_pair<S: AsyncWrite + Unpin>(
    io: &mut S,
    first: &[u8],
    second: &[u8],
    written: &mut usize,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    let total = first.len() + second.len();
    while *written < total {
        let n = if *written < first.len() {
            if second.is_empty() {
                std::task::ready!(Pin::new(&mut *io).poll_write(cx, &first[*written..]))?
            } else {
                let parts = [IoSlice::new(&first[*written..]), IoSlice::new(second)];
                std::task::ready!(Pin::new(&mut *io).poll_write_vectored(cx, &parts))?
            }
        } else {
            std::task::ready!(Pin::new(&mut *io).poll_write(cx, &second[*written - first.len()..]))?
        };
        if n == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        *written += n;
    }
    Poll::Ready(Ok(()))
}

/// Moves request body bytes from the client to the dyno. `Ok(true)` when bytes moved; once
/// the dyno stops taking bytes, `dyno_failed` is set and the body is no longer relayed (the
/// dyno may still answer).
fn poll_request_body<S: AsyncRead + Unpin>(
    io: &mut S,
    rbuf: &mut Buf,
    dyno: &mut tokio::net::TcpStream,
    body: &mut Progress,
    dyno_failed: &mut bool,
    cx: &mut Context<'_>,
) -> Result<bool, ErrorCode> {
    if body.is_done() || *dyno_failed {
        return Ok(false);
    }
    // Request bodies are not counted in the log line.
    let mut uncounted = 0;
    let ready = body
        .ready(rbuf.filled(), &mut uncounted)
        .map_err(|_| ErrorCode::H26)?;
    if ready > 0 {
        match Pin::new(dyno).poll_write(cx, &rbuf.filled()[..ready]) {
            Poll::Ready(Ok(n)) if n > 0 => {
                rbuf.consume(n);
                body.relayed(n, &mut uncounted);
                Ok(true)
            }
            Poll::Ready(_) => {
                *dyno_failed = true;
                Ok(true)
            }
            Poll::Pending => Ok(false),
        }
    } else {
        match rbuf.poll_fill(io, BODY_BUF, cx) {
            Poll::Ready(Ok(n)) if n > 0 => Ok(true),
            Poll::Ready(_) => Err(ErrorCode::H27),
            Poll::Pending => Ok(false),
        }
    }
}

/// The first bytes of a plain TCP client connection, read without waiting into a fresh head
/// buffer: `Ok(None)` when nothing was there after all, an error at end of stream.
pub(crate) fn first_read(stream: &tokio::net::TcpStream) -> io::Result<Option<Buf>> {
    let mut buf = Buf::with_capacity(CLIENT_BUF);
    match buf.fill_with(|spare| stream.try_read(spare)) {
        Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
        Ok(_) => Ok(Some(buf)),
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(error) => Err(error),
    }
}

/// Serves one client connection until it closes, fails, idles out or the router stops, and
/// hands the stream back: a plain TCP stream is just dropped (closing sends the FIN), a TLS
/// stream is shut down first.
pub(crate) async fn serve_connection<S>(
    shared: Arc<Shared>,
    io: S,
    peer: SocketAddr,
    listener: Listener,
    stopping: watch::Receiver<bool>,
) -> S
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let rbuf = Buf::with_capacity(CLIENT_BUF);
    let start = Start {
        rbuf,
        parkable: false,
    };
    match serve_connection_with(shared, io, peer, listener, stopping, start).await {
        Ended::Closed(io) | Ended::Parked { io, .. } => io,
    }
}

/// How [`serve_connection_with`] starts.
pub(crate) struct Start {
    /// Bytes the client already sent.
    pub(crate) rbuf: Buf,
    /// Whether the engine may hand back an idle connection ([`Ended::Parked`]) instead of
    /// waiting in it: only for streams whose readiness the caller can wait on without reading.
    pub(crate) parkable: bool,
}

/// How [`serve_connection_with`] ended.
pub(crate) enum Ended<S> {
    /// The connection is done; dropping the stream closes it.
    Closed(S),
    /// The keep-alive connection idled with nothing buffered: its buffers are freed and its
    /// dyno connection is back in the pool. The caller waits for the client's next bytes
    /// (until `idle_until`) and starts the engine again.
    Parked { io: S, idle_until: Instant },
}

/// [`serve_connection`] with bytes the client already sent, and optional parking.
pub(crate) async fn serve_connection_with<S>(
    shared: Arc<Shared>,
    io: S,
    peer: SocketAddr,
    listener: Listener,
    mut stopping: watch::Receiver<bool>,
    start: Start,
) -> Ended<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut conn = Conn {
        routes: shared.routes.clone(),
        table: shared.routes.borrow().clone(),
        shared: &shared,
        io,
        peer_ip: peer.ip().to_string(),
        listener,
        rbuf: start.rbuf,
        bbuf: Buf::default(),
        wbuf: Vec::new(),
        fwd: Vec::new(),
        stage: Vec::new(),
        headers: Vec::new(),
        resp_headers: Vec::new(),
        connection_names: Vec::new(),
        timer: Timer::new(),
        upstream: None,
        backlog: None,
        body_unfinished: false,
        parkable: start.parkable,
        parked: None,
    };
    conn.run(&mut stopping).await;
    if let Some(upstream) = conn.upstream.take() {
        shared.upstreams.put(upstream);
    }
    match conn.parked {
        Some(idle_until) => Ended::Parked {
            io: conn.io,
            idle_until,
        },
        None => Ended::Closed(conn.io),
    }
}

struct Conn<'s, S> {
    shared: &'s Shared,
    io: S,
    peer_ip: String,
    listener: Listener,
    routes: watch::Receiver<Arc<RouteTable>>,
    table: Arc<RouteTable>,
    /// Client bytes not yet handled.
    rbuf: Buf,
    /// Dyno bytes not yet relayed.
    bbuf: Buf,
    /// Client-bound head or page.
    wbuf: Vec<u8>,
    /// Dyno-bound head (and a small body that arrived with it).
    fwd: Vec<u8>,
    /// Re-framed body bytes on their way to the client.
    stage: Vec<u8>,
    headers: Vec<HeaderRange>,
    resp_headers: Vec<HeaderRange>,
    connection_names: Vec<std::ops::Range<usize>>,
    timer: Timer,
    /// The dyno connection of the last request, kept for the next one.
    upstream: Option<Upstream>,
    backlog: Option<(String, Arc<AtomicUsize>)>,
    /// The current request's body has not been read to its end.
    body_unfinished: bool,
    /// See [`Start::parkable`].
    parkable: bool,
    /// `run` returned to park the connection until this keep-alive deadline (see
    /// [`Ended::Parked`]).
    parked: Option<Instant>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Conn<'_, S> {
    fn limits(&self) -> HeadLimits {
        let config = &self.shared.config;
        HeadLimits {
            max_line: config.max_header_bytes,
            max_headers: config.max_headers,
            max_total: config.max_header_bytes.saturating_mul(4).max(64 * 1024),
        }
    }

    async fn run(&mut self, stopping: &mut watch::Receiver<bool>) {
        loop {
            let line = match self.next_head(stopping).await {
                Some(Ok(line)) => line,
                Some(Err(error)) => {
                    self.write_page(
                        StatusCode::BAD_REQUEST,
                        &pages::bad_request(error.reason()),
                        false,
                    )
                    .await;
                    return;
                }
                None => return,
            };
            if !self.handle(line).await {
                return;
            }
            self.rbuf.shrink(CLIENT_BUF);
        }
    }

    /// The next request head; `None` when the connection should just close.
    async fn next_head(
        &mut self,
        stopping: &mut watch::Receiver<bool>,
    ) -> Option<Result<RequestLine, HeadError>> {
        let limits = self.limits();
        let config = &self.shared.config;
        let idle_deadline = Instant::now() + config.client_keepalive_idle;
        let mut head_deadline =
            (!self.rbuf.is_empty()).then(|| Instant::now() + config.header_read_timeout);
        loop {
            if !self.rbuf.is_empty() {
                match wire::parse_request(self.rbuf.filled(), &limits, &mut self.headers) {
                    Ok(Some(line)) => return Some(Ok(line)),
                    Ok(None) => {}
                    Err(error) => return Some(Err(error)),
                }
            }
            let deadline = head_deadline.unwrap_or(idle_deadline);
            let (rbuf, bbuf, io, timer, upstream) = (
                &mut self.rbuf,
                &mut self.bbuf,
                &mut self.io,
                &mut self.timer,
                &mut self.upstream,
            );
            let upstreams = &self.shared.upstreams;
            let idle = rbuf.is_empty();
            let parkable = self.parkable && idle;
            let mut park = false;
            // An idle keep-alive connection gives its body buffer back after a while, and its
            // dyno connection to the pool, so thousands of idle clients cost little memory and
            // hold no dyno connections.
            let trim_at = Instant::now() + if parkable { IDLE_PARK } else { IDLE_TRIM };
            let mut trimmed = bbuf.is_empty() && !idle;
            let read = poll_fn(|cx| {
                if let Poll::Ready(result) = rbuf.poll_fill(io, limits.max_total + 1, cx) {
                    return Poll::Ready(Some(result));
                }
                if !trimmed && trim_at < deadline {
                    if !timer.poll_passed(trim_at, cx) {
                        return Poll::Pending;
                    }
                    bbuf.release();
                    if let Some(upstream) = upstream.take() {
                        upstreams.put(upstream);
                    }
                    trimmed = true;
                    if parkable {
                        park = true;
                        return Poll::Ready(None);
                    }
                }
                if timer.poll_passed(deadline, cx) {
                    return Poll::Ready(None);
                }
                Poll::Pending
            });
            let result = if idle {
                if *stopping.borrow() {
                    return None;
                }
                tokio::select! {
                    biased;
                    result = read => result,
                    _ = stopping.changed() => return None,
                }
            } else {
                read.await
            };
            if park {
                self.parked = Some(deadline);
                return None;
            }
            match result {
                Some(Ok(n)) if n > 0 => {
                    head_deadline
                        .get_or_insert_with(|| Instant::now() + config.header_read_timeout);
                }
                // End of stream, a read error or a timeout (idle keep-alive or slowloris).
                _ => return None,
            }
        }
    }

    /// Reads the head's headers into a [`Req`] and writes the dyno-bound head into `fwd`.
    fn inspect(&mut self, line: &RequestLine, received: SystemTime) -> Result<Req, &'static str> {
        let buf = self.rbuf.filled();
        let method = &buf[line.method.clone()];
        let target = &buf[line.target.clone()];
        if eq(method, "CONNECT") {
            return Err("CONNECT is not supported.");
        }
        // Absolute form: take the authority for routing and send the origin form on.
        let (authority, path): (Option<&[u8]>, &[u8]) = if target.first() == Some(&b'/') {
            (None, target)
        } else if let Some(rest) = target
            .strip_prefix(b"http://")
            .or_else(|| target.strip_prefix(b"https://"))
        {
            match rest.iter().position(|&b| b == b'/' || b == b'?') {
                Some(at) if rest[at] == b'/' => (Some(&rest[..at]), &rest[at..]),
                Some(at) => (Some(&rest[..at]), &rest[at..]),
                None => (Some(rest), b"/"),
            }
        } else if target == b"*" && eq(method, "OPTIONS") {
            (None, target)
        } else {
            return Err("The request target is not valid.");
        };

        let mut host: Option<&[u8]> = None;
        let mut host_headers = 0;
        let mut framing = wire::Framing::default();
        let mut upgrade: Option<std::ops::Range<usize>> = None;
        let mut expect_continue = false;
        let mut request_id: Option<&[u8]> = None;
        let mut close = false;
        let mut keep_alive_token = false;
        let mut upgrade_token = false;
        self.connection_names.clear();
        for (name, value) in &self.headers {
            let value_bytes = &buf[value.clone()];
            match classify(&buf[name.clone()]) {
                Kind::Host => {
                    host = Some(value_bytes);
                    host_headers += 1;
                }
                Kind::Connection => {
                    for token in wire::tokens(value_bytes) {
                        if eq(token, "close") {
                            close = true;
                        } else if eq(token, "keep-alive") {
                            keep_alive_token = true;
                        } else if eq(token, "upgrade") {
                            upgrade_token = true;
                        }
                    }
                    self.connection_names.push(value.clone());
                }
                Kind::ContentLength => framing.content_length(value_bytes)?,
                Kind::TransferEncoding => framing.transfer_encoding(value_bytes),
                Kind::Upgrade => upgrade = Some(value.clone()),
                Kind::Expect => {
                    if eq(value_bytes.trim_ascii(), "100-continue") {
                        expect_continue = true;
                    } else {
                        return Err("The Expect header is not supported (only 100-continue is).");
                    }
                }
                Kind::RequestId => request_id = Some(value_bytes),
                _ => {}
            }
        }
        let body = framing.finish()?;
        let host = policy::routing_host(authority, host_headers, host)?;
        let keep_alive = if line.minor == 0 {
            keep_alive_token && !close
        } else {
            !close
        };
        let upgrade = upgrade.filter(|_| upgrade_token && line.minor == 1);
        let request_id = policy::request_id(request_id, rand::random);

        // The dyno-bound head.
        let fwd = &mut self.fwd;
        fwd.clear();
        fwd.extend_from_slice(method);
        fwd.push(b' ');
        fwd.extend_from_slice(path);
        fwd.extend_from_slice(b" HTTP/1.1\r\n");
        // RFC 9112 §3.2.2: the absolute form's authority replaces any Host header, for the
        // dyno as for routing.
        if let Some(authority) = authority {
            fwd.extend_from_slice(b"Host: ");
            fwd.extend_from_slice(authority);
            fwd.extend_from_slice(b"\r\n");
        }
        let mut forwarded_for = String::new();
        let mut via: Vec<u8> = Vec::new();
        for (name, value) in &self.headers {
            let name_bytes = &buf[name.clone()];
            let value_bytes = &buf[value.clone()];
            match classify(name_bytes) {
                Kind::Host if authority.is_some() => {}
                Kind::Host | Kind::Other => {
                    if !self.connection_names.is_empty()
                        && named_in_connection(buf, &self.connection_names, name_bytes)
                    {
                        continue;
                    }
                    fwd.extend_from_slice(name_bytes);
                    fwd.extend_from_slice(b": ");
                    fwd.extend_from_slice(value_bytes);
                    fwd.extend_from_slice(b"\r\n");
                }
                Kind::ForwardedFor => {
                    if let Ok(value) = std::str::from_utf8(value_bytes) {
                        let value = value.trim();
                        if !value.is_empty() {
                            forwarded_for.push_str(value);
                            forwarded_for.push_str(", ");
                        }
                    }
                }
                Kind::Via => {
                    let value = value_bytes.trim_ascii();
                    if !value.is_empty() {
                        via.extend_from_slice(value);
                        via.extend_from_slice(b", ");
                    }
                }
                _ => {}
            }
        }
        forwarded_for.push_str(&self.peer_ip);
        Forwarded {
            forwarded_for: &forwarded_for,
            listener: self.listener,
            received,
            request_id: &request_id,
        }
        .write_lines(fwd);
        fwd.extend_from_slice(b"Via: ");
        fwd.extend_from_slice(&via);
        fwd.extend_from_slice(VIA_TOKEN.as_bytes());
        fwd.extend_from_slice(b"\r\n");
        match body {
            BodyLength::None => {}
            BodyLength::Length(n) => {
                use std::io::Write as _;
                let _ = write!(fwd, "Content-Length: {n}\r\n");
            }
            BodyLength::Chunked => fwd.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        }
        if let Some(upgrade) = &upgrade {
            fwd.extend_from_slice(b"Connection: upgrade\r\nUpgrade: ");
            fwd.extend_from_slice(&buf[upgrade.clone()]);
            fwd.extend_from_slice(b"\r\n");
        }
        fwd.extend_from_slice(b"\r\n");

        Ok(Req {
            method: String::from_utf8_lossy(method).into_owned(),
            minor: line.minor,
            is_head: eq(method, "HEAD"),
            path: String::from_utf8_lossy(path).into_owned(),
            host,
            body,
            keep_alive,
            upgrade: upgrade.is_some(),
            expect_continue,
            request_id,
            fwd: forwarded_for,
        })
    }

    /// Handles one request whose head is at the front of `rbuf`. Returns whether the client
    /// connection stays open for another request.
    async fn handle(&mut self, line: RequestLine) -> bool {
        let received = SystemTime::now();
        let req = match self.inspect(&line, received) {
            Ok(req) => req,
            Err(reason) => {
                self.write_page(StatusCode::BAD_REQUEST, &pages::bad_request(reason), false)
                    .await;
                return false;
            }
        };
        self.rbuf.consume(line.len);
        if self.routes.has_changed().unwrap_or(false) {
            self.table = self.routes.borrow_and_update().clone();
        }
        let Some(route) = self.table.get(&req.host).cloned() else {
            let keep = req.keep_alive && req.body == BodyLength::None;
            return self
                .write_page(StatusCode::NOT_FOUND, &pages::no_such_app(), keep)
                .await
                && keep;
        };
        // A sleeping or booting app: hold the request until a web dyno is up (or H20).
        let held = route.clone();
        let woken =
            crate::wake::await_dynos(&self.shared.config, &self.routes, &req.host, route).await;
        if woken.is_ok() && self.routes.has_changed().unwrap_or(false) {
            self.table = self.routes.borrow_and_update().clone();
        }
        let mut entry = RequestLog {
            code: None,
            method: req.method.clone(),
            path: req.path.clone(),
            host: req.host.clone(),
            request_id: req.request_id.clone(),
            fwd: req.fwd.clone(),
            dyno: None,
            connect: None,
            service: None,
            status: 0,
            bytes: 0,
            protocol: self.listener.proto,
        };
        let route = match woken {
            Ok(route) => route,
            Err(code) => {
                let keep = req.keep_alive && req.body == BodyLength::None;
                return self.router_error(&held, entry, code, keep).await;
            }
        };
        let body_pending = req.body != BodyLength::None;
        let counter = match &self.backlog {
            Some((app, counter)) if *app == route.app => counter.clone(),
            _ => {
                let counter = self.shared.upstreams.backlog(&route.app);
                self.backlog = Some((route.app.clone(), counter.clone()));
                counter
            }
        };
        let mut in_flight = None;
        let admitted = policy::admission(&route, self.shared.config.max_backlog_per_dyno, || {
            let (guard, before) = InFlight::enter(counter);
            in_flight = Some(guard);
            before
        });
        if let Err(code) = admitted {
            return self
                .router_error(&route, entry, code, req.keep_alive && !body_pending)
                .await;
        }
        match self.forward(&req, &route, &mut entry).await {
            Ok(keep) => keep,
            Err(code) => {
                let keep = req.keep_alive && !self.body_unfinished;
                self.router_error(&route, entry, code, keep).await
            }
        }
    }
}

/// Largest response head from a dyno (Heroku allows 512 KB header lines).
const RESPONSE_HEAD_MAX: usize = 1024 * 1024;

/// Where the relay is waiting when its idle window runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    Dyno,
    Client,
}

/// A body's progress through the router, in either direction: what is left of it and, for
/// a chunked body, the scanner and the scanned bytes at the front of the buffer.
enum Progress {
    Done,
    Length(u64),
    /// Scanner and the scanned bytes at the front of the buffer.
    Chunked(Chunked, usize),
    /// Until the dyno closes (responses only).
    Close,
}

impl Progress {
    fn is_done(&self) -> bool {
        matches!(self, Progress::Done)
    }

    /// Body bytes at the front of `buffered` that may be relayed as they are; data bytes
    /// newly seen are added to `data`.
    fn ready(&mut self, buffered: &[u8], data: &mut u64) -> Result<usize, wire::BadChunk> {
        match self {
            Progress::Done => Ok(0),
            Progress::Length(left) => Ok(usize::try_from(*left)
                .unwrap_or(usize::MAX)
                .min(buffered.len())),
            Progress::Chunked(scanner, scanned) => {
                if !scanner.is_done() && *scanned < buffered.len() {
                    *scanned +=
                        scanner.scan(&buffered[*scanned..], |range| *data += range.len() as u64)?;
                }
                Ok(*scanned)
            }
            Progress::Close => Ok(buffered.len()),
        }
    }

    fn relayed(&mut self, n: usize, data: &mut u64) {
        match self {
            Progress::Done => {}
            Progress::Length(left) => {
                *data += n as u64;
                *left -= n as u64;
                if *left == 0 {
                    *self = Progress::Done;
                }
            }
            Progress::Chunked(scanner, scanned) => {
                *scanned -= n;
                if *scanned == 0 && scanner.is_done() {
                    *self = Progress::Done;
                }
            }
            Progress::Close => *data += n as u64,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Conn<'_, S> {
    fn emit(&self, app: &str, entry: &RequestLog) {
        let message = format_request_log(entry);
        (self.shared.log)(app, slipway_logplex::LogLine::heroku("router", message));
    }

    /// Logs `code` and answers with its page (nothing for codes whose client is gone).
    async fn router_error(
        &mut self,
        route: &AppRoute,
        mut entry: RequestLog,
        code: ErrorCode,
        keep: bool,
    ) -> bool {
        let status = code.status();
        entry.code = Some(code);
        entry.status = status.as_u16();
        self.emit(&route.app, &entry);
        if matches!(code, ErrorCode::H27 | ErrorCode::H28) {
            return false;
        }
        self.write_page(status, &pages::error_page(code), keep)
            .await
            && keep
    }

    /// Writes a complete HTML response; false when the client could not take it.
    async fn write_page(&mut self, status: StatusCode, page: &str, keep: bool) -> bool {
        use std::io::Write as _;
        self.wbuf.clear();
        let _ = write!(
            self.wbuf,
            "HTTP/1.1 {} {}\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-cache, no-store\r\nContent-Length: {}\r\n{}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error"),
            page.len(),
            if keep { "" } else { "Connection: close\r\n" },
        );
        let deadline = Instant::now() + self.shared.config.idle_timeout;
        let (io, wbuf, timer) = (&mut self.io, &self.wbuf, &mut self.timer);
        let mut written = 0;
        poll_fn(
            |cx| match poll_write_pair(io, wbuf, page.as_bytes(), &mut written, cx) {
                Poll::Ready(result) => Poll::Ready(result.is_ok()),
                Poll::Pending if timer.poll_passed(deadline, cx) => Poll::Ready(false),
                Poll::Pending => Poll::Pending,
            },
        )
        .await
    }

    /// Forwards a request to a dyno and relays the answer. `Ok` means the log line was
    /// emitted (and says whether the client connection stays open); `Err` means nothing was
    /// sent to the client yet and the caller answers with the code's page.
    async fn forward(
        &mut self,
        req: &Req,
        route: &AppRoute,
        entry: &mut RequestLog,
    ) -> Result<bool, ErrorCode> {
        let shared = self.shared;
        let mut body = match req.body {
            BodyLength::None => Progress::Done,
            BodyLength::Length(n) => Progress::Length(n),
            BodyLength::Chunked => Progress::Chunked(Chunked::default(), 0),
        };
        // A small body that arrived with the head goes out in the same write.
        if let Progress::Length(n) = body {
            if n <= 16 * 1024 && n as usize <= self.rbuf.len() {
                self.fwd
                    .extend_from_slice(&self.rbuf.filled()[..n as usize]);
                self.rbuf.consume(n as usize);
                body = Progress::Done;
            }
        }
        let replayable = body.is_done();
        self.body_unfinished = !body.is_done();
        let (mut upstream, mut reused) = shared
            .upstreams
            .connect_to_app(&shared.config, route, &mut self.upstream, entry)
            .await?;
        self.bbuf.reserve(wire::BODY_BUF_START);
        if req.expect_continue && !body.is_done() && self.rbuf.is_empty() {
            let deadline = Instant::now() + shared.config.idle_timeout;
            let (io, timer) = (&mut self.io, &mut self.timer);
            let mut written = 0;
            let sent = poll_fn(|cx| {
                match poll_write_pair(io, b"HTTP/1.1 100 Continue\r\n\r\n", b"", &mut written, cx) {
                    Poll::Ready(result) => Poll::Ready(result.is_ok()),
                    Poll::Pending if timer.poll_passed(deadline, cx) => Poll::Ready(false),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await;
            if !sent {
                return Err(ErrorCode::H27);
            }
        }
        let service_start = Instant::now();
        let line = loop {
            match self.exchange(&mut upstream, &mut body).await {
                Ok(line) => break line,
                Err(Failure::Stale) if reused && replayable => {
                    // The pooled connection was closed by the dyno: once more, fresh.
                    self.bbuf.consume(self.bbuf.len());
                    upstream = shared
                        .upstreams
                        .connect(upstream.addr)
                        .await
                        .map_err(|_| ErrorCode::H13)?;
                    reused = false;
                }
                Err(failure) => {
                    entry.service = Some(service_start.elapsed());
                    self.bbuf.consume(self.bbuf.len());
                    return Err(match failure {
                        Failure::Stale => ErrorCode::H13,
                        Failure::Code(code) => code,
                    });
                }
            }
        };
        self.relay(
            req,
            &route.app,
            upstream,
            &mut body,
            line,
            entry,
            service_start,
        )
        .await
    }

    /// Sends the request head and body to the dyno and waits for its response head.
    async fn exchange(
        &mut self,
        upstream: &mut Upstream,
        body: &mut Progress,
    ) -> Result<wire::StatusLine, Failure> {
        let config = &self.shared.config;
        let (request_timeout, idle_timeout) = (config.request_timeout, config.idle_timeout);
        let limits = HeadLimits {
            max_line: RESPONSE_HEAD_MAX,
            max_headers: config.max_headers,
            max_total: RESPONSE_HEAD_MAX,
        };
        let (fwd, rbuf, bbuf, io, timer, headers) = (
            &self.fwd,
            &mut self.rbuf,
            &mut self.bbuf,
            &mut self.io,
            &mut self.timer,
            &mut self.resp_headers,
        );
        let mut written = 0;
        let mut sent_at: Option<Instant> = None;
        let mut active = Instant::now();
        let mut dyno_write_failed = false;
        poll_fn(|cx| loop {
            let mut progress = false;
            if written < fwd.len() {
                match Pin::new(&mut upstream.stream).poll_write(cx, &fwd[written..]) {
                    Poll::Ready(Ok(n)) if n > 0 => {
                        written += n;
                        progress = true;
                    }
                    Poll::Ready(_) => return Poll::Ready(Err(Failure::Stale)),
                    Poll::Pending => {}
                }
            } else if !body.is_done() && !dyno_write_failed {
                match poll_request_body(
                    io,
                    rbuf,
                    &mut upstream.stream,
                    body,
                    &mut dyno_write_failed,
                    cx,
                ) {
                    Ok(true) => {
                        active = Instant::now();
                        progress = true;
                    }
                    Ok(false) => {}
                    Err(code) => return Poll::Ready(Err(Failure::Code(code))),
                }
            } else if rbuf.has_room(CLIENT_BUF) {
                // Notice a client that hangs up while the dyno works (pipelined bytes stay).
                match rbuf.poll_fill(io, CLIENT_BUF, cx) {
                    Poll::Ready(Ok(n)) if n > 0 => progress = true,
                    Poll::Ready(_) => return Poll::Ready(Err(Failure::Code(ErrorCode::H27))),
                    Poll::Pending => {}
                }
            }
            if written == fwd.len() && body.is_done() && sent_at.is_none() {
                sent_at = Some(Instant::now());
            }
            match bbuf.poll_fill(&mut upstream.stream, limits.max_total, cx) {
                Poll::Ready(Ok(n)) if n > 0 => {
                    loop {
                        match wire::parse_response(bbuf.filled(), &limits, headers) {
                            Ok(Some(line))
                                if (100..200).contains(&line.code) && line.code != 101 =>
                            {
                                bbuf.consume(line.len);
                            }
                            Ok(Some(line)) => return Poll::Ready(Ok(line)),
                            Ok(None) => break,
                            Err(_) => return Poll::Ready(Err(Failure::Code(ErrorCode::H13))),
                        }
                    }
                    progress = true;
                }
                Poll::Ready(_) if bbuf.is_empty() => return Poll::Ready(Err(Failure::Stale)),
                Poll::Ready(_) => return Poll::Ready(Err(Failure::Code(ErrorCode::H13))),
                Poll::Pending => {}
            }
            if progress {
                continue;
            }
            let (deadline, code) = match sent_at {
                Some(sent) => (sent + request_timeout, ErrorCode::H12),
                None => (active + idle_timeout, ErrorCode::H28),
            };
            if timer.poll_passed(deadline, cx) {
                return Poll::Ready(Err(Failure::Code(code)));
            }
            return Poll::Pending;
        })
        .await
    }

    /// Relays the dyno's response (head already parsed at the front of `bbuf`) to the client
    /// and emits the log line.
    #[allow(clippy::too_many_arguments)]
    async fn relay(
        &mut self,
        req: &Req,
        app: &str,
        mut upstream: Upstream,
        body: &mut Progress,
        line: wire::StatusLine,
        entry: &mut RequestLog,
        service_start: Instant,
    ) -> Result<bool, ErrorCode> {
        use std::io::Write as _;
        let shared = self.shared;
        let buf = self.bbuf.filled();
        let code = line.code;
        let mut content_length: Option<u64> = None;
        let mut transfer_encoding = false;
        let mut chunked = false;
        let mut close = false;
        let mut keep_alive_token = false;
        let mut upgrade: Option<std::ops::Range<usize>> = None;
        self.connection_names.clear();
        for (name, value) in &self.resp_headers {
            let value_bytes = &buf[value.clone()];
            match classify(&buf[name.clone()]) {
                Kind::Connection => {
                    close |= has_token(value_bytes, "close");
                    keep_alive_token |= has_token(value_bytes, "keep-alive");
                    self.connection_names.push(value.clone());
                }
                Kind::ContentLength => {
                    let n = wire::content_length(value_bytes).ok_or(ErrorCode::H13)?;
                    if content_length.is_some_and(|previous| previous != n) {
                        return Err(ErrorCode::H13);
                    }
                    content_length = Some(n);
                }
                Kind::TransferEncoding => {
                    transfer_encoding = true;
                    chunked = wire::tokens(value_bytes)
                        .last()
                        .is_some_and(|t| eq(t, "chunked"));
                }
                Kind::Upgrade => upgrade = Some(value.clone()),
                _ => {}
            }
        }
        let switching = code == 101;
        if switching && (!req.upgrade || upgrade.is_none()) {
            return Err(ErrorCode::H13);
        }
        let resp_body = if req.is_head || code == 204 || code == 304 || switching {
            RespBody::None
        } else if transfer_encoding {
            if chunked {
                RespBody::Chunked
            } else {
                RespBody::Close
            }
        } else if let Some(n) = content_length {
            RespBody::Length(n)
        } else {
            RespBody::Close
        };
        let (mode, framed) = match resp_body {
            RespBody::None | RespBody::Length(_) => (Relay::Pass, true),
            RespBody::Chunked if req.minor == 1 => (Relay::Pass, true),
            RespBody::Chunked => (Relay::Dechunk, false),
            RespBody::Close if req.minor == 1 => (Relay::Rechunk, true),
            RespBody::Close => (Relay::Pass, false),
        };
        let keep = req.keep_alive && framed && !switching;
        let dyno_keep = if line.minor == 1 {
            !close
        } else {
            keep_alive_token
        };

        let wbuf = &mut self.wbuf;
        wbuf.clear();
        let reason = &buf[line.reason.clone()];
        let _ = write!(wbuf, "HTTP/1.1 {code} ");
        if reason.is_empty() {
            let canonical = StatusCode::from_u16(code)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Unknown");
            wbuf.extend_from_slice(canonical.as_bytes());
        } else {
            wbuf.extend_from_slice(reason);
        }
        wbuf.extend_from_slice(b"\r\n");
        let mut via: Vec<u8> = Vec::new();
        for (name, value) in &self.resp_headers {
            let name_bytes = &buf[name.clone()];
            let value_bytes = &buf[value.clone()];
            match classify(name_bytes) {
                Kind::Connection
                | Kind::ContentLength
                | Kind::TransferEncoding
                | Kind::Upgrade
                | Kind::HopByHop => {}
                Kind::Via => {
                    let value = value_bytes.trim_ascii();
                    if !value.is_empty() {
                        via.extend_from_slice(value);
                        via.extend_from_slice(b", ");
                    }
                }
                _ => {
                    if !self.connection_names.is_empty()
                        && named_in_connection(buf, &self.connection_names, name_bytes)
                    {
                        continue;
                    }
                    wbuf.extend_from_slice(name_bytes);
                    wbuf.extend_from_slice(b": ");
                    wbuf.extend_from_slice(value_bytes);
                    wbuf.extend_from_slice(b"\r\n");
                }
            }
        }
        wbuf.extend_from_slice(b"Via: ");
        wbuf.extend_from_slice(&via);
        wbuf.extend_from_slice(VIA_TOKEN.as_bytes());
        wbuf.extend_from_slice(b"\r\n");
        match (resp_body, mode) {
            (RespBody::Length(n), _) => {
                let _ = write!(wbuf, "Content-Length: {n}\r\n");
            }
            (RespBody::None, _) => {
                if let (Some(n), false) = (content_length, switching || code == 204) {
                    let _ = write!(wbuf, "Content-Length: {n}\r\n");
                }
            }
            (_, Relay::Rechunk) | (RespBody::Chunked, Relay::Pass) => {
                wbuf.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
            }
            _ => {}
        }
        if switching {
            if let Some(upgrade) = &upgrade {
                wbuf.extend_from_slice(b"Connection: upgrade\r\nUpgrade: ");
                wbuf.extend_from_slice(&buf[upgrade.clone()]);
                wbuf.extend_from_slice(b"\r\n");
            }
        } else if !keep {
            wbuf.extend_from_slice(b"Connection: close\r\n");
        } else if req.minor == 0 {
            wbuf.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        wbuf.extend_from_slice(b"\r\n");
        self.bbuf.consume(line.len);
        entry.status = code;

        if switching {
            entry.service = Some(service_start.elapsed());
            self.emit(app, entry);
            self.tunnel(upstream).await;
            return Ok(false);
        }

        let mut state = match resp_body {
            RespBody::None | RespBody::Length(0) => Progress::Done,
            RespBody::Length(n) => Progress::Length(n),
            RespBody::Chunked => Progress::Chunked(Chunked::default(), 0),
            RespBody::Close => Progress::Close,
        };
        let idle_timeout = shared.config.idle_timeout;
        let (io, wbuf, rbuf, bbuf, stage, timer) = (
            &mut self.io,
            &self.wbuf,
            &mut self.rbuf,
            &mut self.bbuf,
            &mut self.stage,
            &mut self.timer,
        );
        let mut dyno_write_failed = false;
        stage.clear();
        let mut head_done = false;
        let mut written = 0;
        let mut data = 0u64;
        let mut active = Instant::now();
        let mut final_chunk = false;
        let outcome: Result<(), ErrorCode> = poll_fn(|cx| loop {
            // Make the next output ready.
            let ready = match mode {
                Relay::Pass => state
                    .ready(bbuf.filled(), &mut data)
                    .map_err(|_| ErrorCode::H18)?,
                Relay::Dechunk => {
                    if stage.is_empty() && !bbuf.is_empty() {
                        if let Progress::Chunked(scanner, _) = &mut state {
                            let filled = bbuf.filled();
                            let used = scanner
                                .scan(filled, |range| stage.extend_from_slice(&filled[range]))
                                .map_err(|_| ErrorCode::H18)?;
                            data += stage.len() as u64;
                            let finished = scanner.is_done();
                            bbuf.consume(used);
                            if finished {
                                state = Progress::Done;
                            }
                        }
                    }
                    0
                }
                Relay::Rechunk => {
                    if stage.is_empty() && !bbuf.is_empty() {
                        let filled = bbuf.filled();
                        let _ = write!(stage, "{:x}\r\n", filled.len());
                        stage.extend_from_slice(filled);
                        stage.extend_from_slice(b"\r\n");
                        data += filled.len() as u64;
                        let n = filled.len();
                        bbuf.consume(n);
                    } else if stage.is_empty() && state.is_done() && !final_chunk {
                        stage.extend_from_slice(b"0\r\n\r\n");
                        final_chunk = true;
                    }
                    0
                }
            };
            let out: &[u8] = match mode {
                Relay::Pass => &bbuf.filled()[..ready],
                _ => stage,
            };
            let mut waiting = Waiting::Dyno;
            if !head_done || !out.is_empty() {
                let first: &[u8] = if head_done { b"" } else { wbuf };
                match poll_write_pair(io, first, out, &mut written, cx) {
                    Poll::Ready(Ok(())) => {
                        let body_part = written - first.len();
                        match mode {
                            Relay::Pass => {
                                bbuf.consume(body_part);
                                state.relayed(body_part, &mut data);
                            }
                            _ => stage.clear(),
                        }
                        head_done = true;
                        written = 0;
                        active = Instant::now();
                        continue;
                    }
                    Poll::Ready(Err(_)) => return Poll::Ready(Err(ErrorCode::H27)),
                    Poll::Pending => waiting = Waiting::Client,
                }
            } else if state.is_done() {
                if mode == Relay::Rechunk && !final_chunk {
                    continue;
                }
                if body.is_done() || dyno_write_failed || !dyno_keep {
                    return Poll::Ready(Ok(()));
                }
            } else {
                match bbuf.poll_fill(&mut upstream.stream, BODY_BUF, cx) {
                    Poll::Ready(Ok(n)) if n > 0 => {
                        active = Instant::now();
                        continue;
                    }
                    Poll::Ready(_) if matches!(state, Progress::Close) => {
                        state = Progress::Done;
                        continue;
                    }
                    Poll::Ready(_) => return Poll::Ready(Err(ErrorCode::H18)),
                    Poll::Pending => {}
                }
            }
            // A dyno may answer while the request body still streams in (echo, early errors).
            match poll_request_body(
                io,
                rbuf,
                &mut upstream.stream,
                body,
                &mut dyno_write_failed,
                cx,
            ) {
                Ok(true) => {
                    active = Instant::now();
                    continue;
                }
                Ok(false) => {}
                Err(code) => return Poll::Ready(Err(code)),
            }
            if timer.poll_passed(active + idle_timeout, cx) {
                return Poll::Ready(Err(match waiting {
                    Waiting::Dyno => ErrorCode::H15,
                    Waiting::Client => ErrorCode::H28,
                }));
            }
            return Poll::Pending;
        })
        .await;
        entry.bytes = data;
        entry.service = Some(service_start.elapsed());
        self.body_unfinished = !body.is_done();
        let keep = keep && !self.body_unfinished;
        match outcome {
            Ok(()) => {
                if dyno_keep
                    && resp_body != RespBody::Close
                    && !self.body_unfinished
                    && self.bbuf.is_empty()
                {
                    upstream.idle_since = std::time::Instant::now();
                    self.upstream = Some(upstream);
                } else {
                    self.bbuf.consume(self.bbuf.len());
                }
                self.emit(app, entry);
                Ok(keep)
            }
            Err(code) => {
                self.bbuf.consume(self.bbuf.len());
                entry.code = Some(code);
                if matches!(code, ErrorCode::H27 | ErrorCode::H28) {
                    entry.status = code.status().as_u16();
                }
                self.emit(app, entry);
                Ok(false)
            }
        }
    }

    /// Copies bytes both ways after a protocol switch until either side closes or the idle
    /// window passes with no byte in either direction.
    async fn tunnel(&mut self, mut upstream: Upstream) {
        let idle_timeout = self.shared.config.idle_timeout;
        let (io, wbuf, rbuf, bbuf, timer) = (
            &mut self.io,
            &self.wbuf,
            &mut self.rbuf,
            &mut self.bbuf,
            &mut self.timer,
        );
        let mut head_written = 0;
        let mut active = Instant::now();
        let (mut client_eof, mut dyno_eof) = (false, false);
        let (mut client_shut, mut dyno_shut) = (false, false);
        poll_fn(|cx| loop {
            let mut progress = false;
            // Dyno to client (the 101 head first).
            if head_written < wbuf.len() {
                match poll_write_pair(io, wbuf, b"", &mut head_written, cx) {
                    Poll::Ready(Ok(())) => progress = true,
                    Poll::Ready(Err(_)) => return Poll::Ready(()),
                    Poll::Pending => {}
                }
            } else if !bbuf.is_empty() {
                match Pin::new(&mut *io).poll_write(cx, bbuf.filled()) {
                    Poll::Ready(Ok(n)) if n > 0 => {
                        bbuf.consume(n);
                        progress = true;
                    }
                    Poll::Ready(_) => return Poll::Ready(()),
                    Poll::Pending => {}
                }
            } else if !dyno_eof {
                match bbuf.poll_fill(&mut upstream.stream, BODY_BUF, cx) {
                    Poll::Ready(Ok(n)) if n > 0 => progress = true,
                    Poll::Ready(_) => {
                        dyno_eof = true;
                        progress = true;
                    }
                    Poll::Pending => {}
                }
            } else if !client_shut {
                match Pin::new(&mut *io).poll_shutdown(cx) {
                    Poll::Ready(_) => {
                        client_shut = true;
                        progress = true;
                    }
                    Poll::Pending => {}
                }
            }
            // Client to dyno.
            if !rbuf.is_empty() {
                match Pin::new(&mut upstream.stream).poll_write(cx, rbuf.filled()) {
                    Poll::Ready(Ok(n)) if n > 0 => {
                        rbuf.consume(n);
                        progress = true;
                    }
                    Poll::Ready(_) => return Poll::Ready(()),
                    Poll::Pending => {}
                }
            } else if !client_eof {
                match rbuf.poll_fill(io, BODY_BUF, cx) {
                    Poll::Ready(Ok(n)) if n > 0 => progress = true,
                    Poll::Ready(_) => {
                        client_eof = true;
                        progress = true;
                    }
                    Poll::Pending => {}
                }
            } else if !dyno_shut {
                match Pin::new(&mut upstream.stream).poll_shutdown(cx) {
                    Poll::Ready(_) => {
                        dyno_shut = true;
                        progress = true;
                    }
                    Poll::Pending => {}
                }
            }
            if client_shut && dyno_shut {
                return Poll::Ready(());
            }
            if progress {
                active = Instant::now();
                continue;
            }
            if timer.poll_passed(active + idle_timeout, cx) {
                return Poll::Ready(());
            }
            return Poll::Pending;
        })
        .await;
        self.rbuf.consume(self.rbuf.len());
        self.bbuf.consume(self.bbuf.len());
    }
}
