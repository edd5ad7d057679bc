//! Connections from the router to dynos, for both engines: a keep-alive pool of TCP
//! connections keyed by dyno address (90 s idle, dropped when the dyno leaves the route
//! table), the per-router quarantine of dynos whose connect failed (reference §6.1), the
//! per-app backlog counters behind H11, and [`Upstreams::connect_to_app`], which walks the
//! policy's [`DynoChoice`] until a dyno takes a connection.
//!
//! Idle connections are also keyed by the router thread that opened them ([`worker`]): a
//! connection is registered with its thread's event loop, so handing it to another thread
//! would route every readiness event through two threads.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use crate::config::RouterConfig;
use crate::logline::{ErrorCode, RequestLog};
use crate::policy::{ConnectFailed, DynoChoice, Pick, Quarantine};
use crate::route::AppRoute;

thread_local! {
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Numbers router threads process-wide (the HTTP and the HTTPS threads run separate event
/// loops, so they must not share a number).
static NEXT_WORKER: AtomicUsize = AtomicUsize::new(1);

/// The router thread this code runs on: 1.. on `Router::serve_per_core` threads, each its
/// own number; 0 anywhere else (a multi-threaded runtime, where tasks move between threads
/// anyway).
pub(crate) fn worker() -> usize {
    WORKER.with(Cell::get)
}

/// Gives the calling thread its own number for [`worker`].
pub(crate) fn number_this_thread() {
    WORKER.with(|worker| worker.set(NEXT_WORKER.fetch_add(1, Ordering::Relaxed)));
}

/// One TCP connection to a dyno.
#[derive(Debug)]
pub(crate) struct Upstream {
    pub(crate) stream: TcpStream,
    pub(crate) addr: SocketAddr,
    pub(crate) idle_since: Instant,
}

impl Upstream {
    /// Whether an idle connection still looks open: the dyno has not closed it or sent bytes
    /// nobody asked for. Only checked after a second of idleness (one syscall).
    pub(crate) fn looks_alive(&self) -> bool {
        if self.idle_since.elapsed() < Duration::from_secs(1) {
            return true;
        }
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}

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
}

impl ConnectError {
    fn failed(&self) -> ConnectFailed {
        match self {
            ConnectError::Refused { .. } => ConnectFailed::Refused,
            ConnectError::Timeout { .. } => ConnectFailed::TimedOut,
        }
    }
}

/// Router-wide upstream state.
#[derive(Debug)]
pub(crate) struct Upstreams {
    /// Idle connections by (router thread, dyno address).
    idle: Mutex<HashMap<(usize, SocketAddr), Vec<Upstream>>>,
    quarantine: Mutex<Quarantine>,
    /// How many dynos are quarantined, so the common case (none) takes no lock.
    quarantined: AtomicUsize,
    backlog: Mutex<HashMap<String, Arc<AtomicUsize>>>,
    idle_timeout: Duration,
    connect_timeout: Duration,
    quarantine_for: Duration,
    max_idle: usize,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

impl Upstreams {
    pub(crate) fn new(
        idle_timeout: Duration,
        connect_timeout: Duration,
        quarantine_for: Duration,
        max_idle: usize,
    ) -> Upstreams {
        Upstreams {
            idle: Mutex::default(),
            quarantine: Mutex::default(),
            quarantined: AtomicUsize::new(0),
            backlog: Mutex::default(),
            idle_timeout,
            connect_timeout,
            quarantine_for,
            max_idle,
        }
    }

    /// An idle pooled connection to `addr` that still looks usable.
    pub(crate) fn take(&self, addr: SocketAddr) -> Option<Upstream> {
        let mut idle = lock(&self.idle);
        let list = idle.get_mut(&(worker(), addr))?;
        while let Some(upstream) = list.pop() {
            if upstream.idle_since.elapsed() < self.idle_timeout && upstream.looks_alive() {
                return Some(upstream);
            }
        }
        None
    }

    /// Pools a connection whose last response ended cleanly.
    pub(crate) fn put(&self, mut upstream: Upstream) {
        upstream.idle_since = Instant::now();
        let mut idle = lock(&self.idle);
        let list = idle.entry((worker(), upstream.addr)).or_default();
        if list.len() < self.max_idle {
            list.push(upstream);
        }
    }

    /// Opens a new connection, within the connect timeout.
    pub(crate) async fn connect(&self, addr: SocketAddr) -> Result<Upstream, ConnectError> {
        let timeout = self.connect_timeout;
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                Ok(Upstream {
                    stream,
                    addr,
                    idle_since: Instant::now(),
                })
            }
            Ok(Err(source)) => Err(ConnectError::Refused { addr, source }),
            Err(_) => Err(ConnectError::Timeout { addr, timeout }),
        }
    }

    /// Keeps requests away from `addr` for the quarantine period.
    fn quarantine(&self, addr: SocketAddr) {
        if self.quarantine_for.is_zero() {
            return;
        }
        let mut quarantine = lock(&self.quarantine);
        quarantine.add(addr, tokio::time::Instant::now(), self.quarantine_for);
        self.quarantined.store(quarantine.len(), Ordering::Relaxed);
        drop(quarantine);
        lock(&self.idle).retain(|(_, pooled), _| *pooled != addr);
    }

    fn is_quarantined(&self, addr: SocketAddr) -> bool {
        if self.quarantined.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let mut quarantine = lock(&self.quarantine);
        let quarantined = quarantine.contains(addr, tokio::time::Instant::now());
        self.quarantined.store(quarantine.len(), Ordering::Relaxed);
        quarantined
    }

    /// Lifts the quarantine of a dyno that answered.
    fn healthy(&self, addr: SocketAddr) {
        if self.quarantined.load(Ordering::Relaxed) > 0 {
            let mut quarantine = lock(&self.quarantine);
            quarantine.lift(addr);
            self.quarantined.store(quarantine.len(), Ordering::Relaxed);
        }
    }

    /// Finds a web dyno of `route` that takes a connection, as [`DynoChoice`] decides:
    /// `kept` (the client connection's dyno connection from its last request) if that dyno
    /// is picked, else a pooled connection, else a new one; a dyno whose connect fails is
    /// quarantined. Records the dyno and the connect time in `entry`. The `bool` says whether
    /// the connection was used before (it may turn out closed by the dyno).
    pub(crate) async fn connect_to_app(
        &self,
        config: &RouterConfig,
        route: &AppRoute,
        kept: &mut Option<Upstream>,
        entry: &mut RequestLog,
    ) -> Result<(Upstream, bool), ErrorCode> {
        let backends = &route.backends;
        let mut choice = DynoChoice::new(
            tokio::time::Instant::now(),
            config.max_connect_attempts,
            config.connect_budget,
        );
        loop {
            let pick = choice.next(
                backends,
                |addr| self.is_quarantined(addr),
                tokio::time::Instant::now(),
                |n| rand::Rng::gen_range(&mut rand::thread_rng(), 0..n),
            );
            let index = match pick {
                Pick::Try(index) => index,
                Pick::Wait(wait) => {
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Pick::GiveUp(code) => return Err(code),
            };
            let backend = &backends[index];
            entry.dyno = Some(backend.dyno.clone());
            if let Some(local) = kept.take() {
                if local.addr == backend.addr && local.looks_alive() {
                    entry.connect = Some(Duration::ZERO);
                    return Ok((local, true));
                }
                if local.addr != backend.addr {
                    self.put(local);
                }
            }
            if let Some(pooled) = self.take(backend.addr) {
                entry.connect = Some(Duration::ZERO);
                return Ok((pooled, true));
            }
            let started = Instant::now();
            match self.connect(backend.addr).await {
                Ok(upstream) => {
                    entry.connect = Some(started.elapsed());
                    self.healthy(backend.addr);
                    return Ok((upstream, false));
                }
                Err(error) => {
                    tracing::debug!(app = %route.app, dyno = %backend.dyno, %error, "dyno connect failed; quarantining it");
                    self.quarantine(backend.addr);
                    choice.failed(index, error.failed());
                }
            }
        }
    }

    /// The in-flight counter of an app (H11).
    pub(crate) fn backlog(&self, app: &str) -> Arc<AtomicUsize> {
        let mut backlog = lock(&self.backlog);
        if let Some(counter) = backlog.get(app) {
            return counter.clone();
        }
        let counter = Arc::new(AtomicUsize::new(0));
        backlog.insert(app.to_owned(), counter.clone());
        counter
    }

    /// Drops this router thread's idle connections that timed out or whose dyno is no longer
    /// routed (every thread runs its own reaper; see [`worker`]).
    pub(crate) fn reap(&self, live: Option<&HashSet<SocketAddr>>) -> usize {
        let worker = worker();
        let mut idle = lock(&self.idle);
        idle.retain(|(owner, addr), list| {
            if *owner != worker {
                return true;
            }
            if live.is_some_and(|live| !live.contains(addr)) {
                return false;
            }
            list.retain(|upstream| upstream.idle_since.elapsed() < self.idle_timeout);
            !list.is_empty()
        });
        idle.values().map(Vec::len).sum()
    }
}

/// Counts a request in its app's backlog (H11) until dropped. Both engines hold one per
/// request: HTTP/1 until the response ended, HTTP/2 until the response head is ready.
pub(crate) struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    /// Counts a request in; returns the guard and how many were in flight before it.
    pub(crate) fn enter(counter: Arc<AtomicUsize>) -> (InFlight, usize) {
        let before = counter.fetch_add(1, Ordering::AcqRel);
        (InFlight(counter), before)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
