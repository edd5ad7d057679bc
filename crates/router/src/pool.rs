//! Keep-alive connections from the router to dynos, keyed by backend address.
//!
//! Connecting is separate from sending, so the router can time the connect (`connect=` in the
//! log), tell a refused connection (H21) from a timed-out one (H19) and retry another dyno
//! without having consumed the request body. Idle connections are closed after
//! `backend_pool_idle` (Heroku: 90 s).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::body::RequestBody;

/// Why no connection to a dyno could be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("connecting to dyno at {addr} failed: {source}")]
    Refused {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("connecting to dyno at {addr} took longer than {timeout:?}")]
    Timeout { addr: SocketAddr, timeout: Duration },
    #[error("HTTP handshake with dyno at {addr} failed: {source}")]
    Handshake {
        addr: SocketAddr,
        source: hyper::Error,
    },
}

/// A connection ready for one request.
pub(crate) struct Checkout {
    pub(crate) sender: SendRequest<RequestBody>,
    /// Time spent connecting; zero for a reused connection.
    pub(crate) connect_time: Duration,
    pub(crate) reused: bool,
}

struct Idle {
    sender: SendRequest<RequestBody>,
    since: Instant,
}

struct PoolInner {
    idle: Mutex<HashMap<SocketAddr, Vec<Idle>>>,
    idle_timeout: Duration,
    connect_timeout: Duration,
    max_idle_per_backend: usize,
}

/// Cheap to clone.
#[derive(Clone)]
pub(crate) struct Pool {
    inner: Arc<PoolInner>,
}

impl Pool {
    pub(crate) fn new(
        idle_timeout: Duration,
        connect_timeout: Duration,
        max_idle_per_backend: usize,
    ) -> Pool {
        Pool {
            inner: Arc::new(PoolInner {
                idle: Mutex::new(HashMap::new()),
                idle_timeout,
                connect_timeout,
                max_idle_per_backend,
            }),
        }
    }

    fn idle_map(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Vec<Idle>>> {
        self.inner
            .idle
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// An idle pooled connection if `allow_pooled` and one is usable, otherwise a new one.
    pub(crate) async fn checkout(
        &self,
        addr: SocketAddr,
        allow_pooled: bool,
    ) -> Result<Checkout, ConnectError> {
        if allow_pooled {
            if let Some(sender) = self.take_idle(addr) {
                return Ok(Checkout {
                    sender,
                    connect_time: Duration::ZERO,
                    reused: true,
                });
            }
        }
        let started = Instant::now();
        let timeout = self.inner.connect_timeout;
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => return Err(ConnectError::Refused { addr, source }),
            Err(_) => return Err(ConnectError::Timeout { addr, timeout }),
        };
        let connect_time = started.elapsed();
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|source| ConnectError::Handshake { addr, source })?;
        tokio::spawn(async move {
            if let Err(error) = connection.with_upgrades().await {
                tracing::debug!(%addr, %error, "dyno connection ended with an error");
            }
        });
        Ok(Checkout {
            sender,
            connect_time,
            reused: false,
        })
    }

    fn take_idle(&self, addr: SocketAddr) -> Option<SendRequest<RequestBody>> {
        let mut map = self.idle_map();
        let list = map.get_mut(&addr)?;
        while let Some(idle) = list.pop() {
            if idle.since.elapsed() < self.inner.idle_timeout
                && !idle.sender.is_closed()
                && idle.sender.is_ready()
            {
                return Some(idle.sender);
            }
        }
        None
    }

    /// Returns a connection whose response finished; it rejoins the pool once hyper says it can
    /// take another request.
    pub(crate) fn put(&self, addr: SocketAddr, mut sender: SendRequest<RequestBody>) {
        if sender.is_ready() {
            self.insert(addr, sender);
            return;
        }
        if sender.is_closed() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let pool = self.clone();
        runtime.spawn(async move {
            if sender.ready().await.is_ok() {
                pool.insert(addr, sender);
            }
        });
    }

    fn insert(&self, addr: SocketAddr, sender: SendRequest<RequestBody>) {
        let mut map = self.idle_map();
        let list = map.entry(addr).or_default();
        if list.len() < self.inner.max_idle_per_backend {
            list.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    /// Closes idle connections older than the idle timeout; returns how many are left.
    pub(crate) fn reap(&self) -> usize {
        let timeout = self.inner.idle_timeout;
        let mut map = self.idle_map();
        map.retain(|_, list| {
            list.retain(|idle| idle.since.elapsed() < timeout && !idle.sender.is_closed());
            !list.is_empty()
        });
        map.values().map(Vec::len).sum()
    }

    /// Runs [`Pool::reap`] periodically, forever.
    pub(crate) async fn reap_forever(self) {
        let period =
            (self.inner.idle_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(10));
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            self.reap();
        }
    }
}
