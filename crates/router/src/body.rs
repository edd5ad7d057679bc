//! Streaming bodies in both directions.
//!
//! [`RequestBody`] relays the client's body to the dyno and signals when it has been sent
//! completely (the H12 clock starts then); a client that stops sending its body for the idle
//! window fails the request (H28). [`ResponseBody`] relays the dyno's body to the client,
//! counts the bytes, enforces the idle window (H15), returns the dyno connection to the pool
//! when the response ended cleanly, and emits the request's log line when it is dropped.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use tokio::sync::oneshot;
use tokio::time::Sleep;

use crate::config::RouterLogSink;
use crate::logline::{format_request_log, ErrorCode, RequestLog};

pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;

/// The client's request body on its way to the dyno.
pub(crate) struct RequestBody {
    inner: Incoming,
    sent: Option<oneshot::Sender<()>>,
    idle_timeout: Duration,
    /// Armed while the body waits for the client; reset by every frame it sends.
    idle: Option<Pin<Box<Sleep>>>,
    /// Set when the client fell silent mid-body for `idle_timeout` (H28).
    client_idle: Arc<AtomicBool>,
}

impl RequestBody {
    /// `sent` fires once the whole body has been handed to the dyno connection; `client_idle`
    /// is set if the client goes silent mid-body for `idle_timeout`.
    pub(crate) fn new(
        inner: Incoming,
        sent: oneshot::Sender<()>,
        idle_timeout: Duration,
        client_idle: Arc<AtomicBool>,
    ) -> RequestBody {
        let mut body = RequestBody {
            inner,
            sent: Some(sent),
            idle_timeout,
            idle: None,
            client_idle,
        };
        if body.inner.is_end_stream() {
            body.finished();
        }
        body
    }

    fn finished(&mut self) {
        if let Some(sent) = self.sent.take() {
            let _ = sent.send(());
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the client sent nothing for {0:?} in the middle of its request body (H28)")]
struct ClientIdle(Duration);

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => self.finished(),
            Poll::Ready(Some(Ok(_))) => {
                self.idle = None;
                if self.inner.is_end_stream() {
                    self.finished();
                }
            }
            Poll::Pending => {
                let deadline = tokio::time::Instant::now() + self.idle_timeout;
                let idle = self
                    .idle
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if idle.as_mut().poll(cx).is_ready() {
                    self.client_idle.store(true, Ordering::SeqCst);
                    return Poll::Ready(Some(Err(Box::new(ClientIdle(self.idle_timeout)))));
                }
            }
        }
        polled.map(|frame| frame.map(|result| result.map_err(BoxError::from)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The log line of a request, emitted exactly once: by [`PendingLog::emit`], or when dropped
/// unemitted (the client went away while the router waited for the dyno) as H27.
pub(crate) struct PendingLog {
    pub(crate) sink: RouterLogSink,
    pub(crate) app: String,
    pub(crate) entry: RequestLog,
    /// For `service=` of an H27.
    pub(crate) started: Instant,
    emitted: bool,
}

impl PendingLog {
    pub(crate) fn new(sink: RouterLogSink, app: String, entry: RequestLog) -> PendingLog {
        PendingLog {
            sink,
            app,
            entry,
            started: Instant::now(),
            emitted: false,
        }
    }

    fn write(&self) {
        let message = format_request_log(&self.entry);
        (self.sink)(
            &self.app,
            slipway_logplex::LogLine::heroku("router", message),
        );
    }

    pub(crate) fn emit(mut self) {
        self.write();
        self.emitted = true;
    }
}

impl Drop for PendingLog {
    fn drop(&mut self) {
        if !self.emitted {
            self.entry.code = Some(ErrorCode::H27);
            self.entry.status = ErrorCode::H27.status().as_u16();
            if self.entry.service.is_none() && self.entry.dyno.is_some() {
                self.entry.service = Some(self.started.elapsed());
            }
            self.write();
        }
    }
}

/// A dyno connection carrying one request through hyper. A response that ended cleanly hands
/// the sender back (`give_back`), and the connection's task returns the connection to the
/// dyno pool; dropping it unreturned closes the connection.
pub(crate) struct DynoConnection {
    pub(crate) sender: SendRequest<RequestBody>,
    give_back: Option<oneshot::Sender<SendRequest<RequestBody>>>,
}

impl DynoConnection {
    pub(crate) fn new(
        sender: SendRequest<RequestBody>,
        give_back: Option<oneshot::Sender<SendRequest<RequestBody>>>,
    ) -> DynoConnection {
        DynoConnection { sender, give_back }
    }

    fn reuse(self) {
        if let Some(give_back) = self.give_back {
            let _ = give_back.send(self.sender);
        }
    }
}

/// A dyno's response body being relayed to the client.
pub(crate) struct Proxied {
    pub(crate) body: Incoming,
    pub(crate) log: Option<PendingLog>,
    /// When the request was sent to the dyno (`service=` runs from here to the body's end).
    pub(crate) service_start: Instant,
    pub(crate) idle_timeout: Duration,
    pub(crate) idle: Pin<Box<Sleep>>,
    pub(crate) connection: Option<DynoConnection>,
    pub(crate) ended: bool,
    pub(crate) failure: Option<ErrorCode>,
}

enum Inner {
    Full(Option<Bytes>),
    Proxied(Box<Proxied>),
}

/// What the router sends to the client.
pub(crate) struct ResponseBody {
    inner: Inner,
}

impl ResponseBody {
    pub(crate) fn full(bytes: impl Into<Bytes>) -> ResponseBody {
        let bytes = bytes.into();
        ResponseBody {
            inner: Inner::Full((!bytes.is_empty()).then_some(bytes)),
        }
    }

    pub(crate) fn proxied(proxied: Proxied) -> ResponseBody {
        ResponseBody {
            inner: Inner::Proxied(Box::new(proxied)),
        }
    }

    /// The client side gave up on an unfinished response (`H27`: the client went away;
    /// `H28`: it stopped reading): logged with that code and status 499, and the dyno
    /// connection is not reused.
    pub(crate) fn interrupt(&mut self, code: ErrorCode) {
        if let Inner::Proxied(proxied) = &mut self.inner {
            let ended = proxied.ended || proxied.body.is_end_stream();
            if !ended && proxied.failure.is_none() {
                proxied.failure = Some(code);
            }
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().inner {
            Inner::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Inner::Proxied(proxied) => proxied.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Full(bytes) => bytes.is_none(),
            Inner::Proxied(proxied) => proxied.ended || proxied.body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Inner::Proxied(proxied) => proxied.body.size_hint(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the dyno sent nothing for {0:?} in the middle of a response (H15)")]
struct IdleTimeout(Duration);

impl Proxied {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.ended || self.failure.is_some() {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(log)) = (frame.data_ref(), self.log.as_mut()) {
                    log.entry.bytes += data.len() as u64;
                }
                if self.body.is_end_stream() {
                    self.ended = true;
                } else {
                    let deadline = tokio::time::Instant::now() + self.idle_timeout;
                    self.idle.as_mut().reset(deadline);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                self.failure = Some(ErrorCode::H18);
                Poll::Ready(Some(Err(error.into())))
            }
            Poll::Ready(None) => {
                self.ended = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                if self.idle.as_mut().poll(cx).is_ready() {
                    self.failure = Some(ErrorCode::H15);
                    return Poll::Ready(Some(Err(Box::new(IdleTimeout(self.idle_timeout)))));
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for Proxied {
    fn drop(&mut self) {
        let ended = self.failure.is_none() && (self.ended || self.body.is_end_stream());
        if let Some(connection) = self.connection.take() {
            if ended {
                connection.reuse();
            }
        }
        if let Some(mut log) = self.log.take() {
            log.entry.service = Some(self.service_start.elapsed());
            if let Some(code) = self.failure {
                log.entry.code = Some(code);
                if matches!(code, ErrorCode::H27 | ErrorCode::H28) {
                    log.entry.status = code.status().as_u16();
                }
            }
            log.emit();
        }
    }
}
