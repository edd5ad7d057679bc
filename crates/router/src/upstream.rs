//! Connections from the router to dynos for the HTTP/1 engine: a keep-alive pool keyed by dyno
//! address (90 s idle, dropped when the dyno leaves the route table), the per-router quarantine
//! of dynos whose connect failed (reference §6.1) and the per-app backlog counters behind H11.
//!
//! Idle connections are also keyed by the router thread that opened them
//! ([`crate::threads::worker`]): a connection is registered with its thread's event loop, so
//! handing it to another thread would route every readiness event through two threads.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

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
pub(crate) enum ConnectFailure {
    #[error("connecting to dyno at {addr} failed: {source}")]
    Refused {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("connecting to dyno at {addr} took longer than {timeout:?}")]
    Timeout { addr: SocketAddr, timeout: Duration },
}

/// Router-wide upstream state.
#[derive(Debug)]
pub(crate) struct Upstreams {
    /// Idle connections by (router thread, dyno address).
    idle: Mutex<HashMap<(usize, SocketAddr), Vec<Upstream>>>,
    quarantine: Mutex<HashMap<SocketAddr, Instant>>,
    quarantined: AtomicUsize,
    backlog: Mutex<HashMap<String, Arc<AtomicUsize>>>,
    pub(crate) idle_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) quarantine_for: Duration,
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
        let list = idle.get_mut(&(crate::threads::worker(), addr))?;
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
        let list = idle
            .entry((crate::threads::worker(), upstream.addr))
            .or_default();
        if list.len() < self.max_idle {
            list.push(upstream);
        }
    }

    /// Opens a new connection, within the connect timeout.
    pub(crate) async fn connect(&self, addr: SocketAddr) -> Result<Upstream, ConnectFailure> {
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
            Ok(Err(source)) => Err(ConnectFailure::Refused { addr, source }),
            Err(_) => Err(ConnectFailure::Timeout { addr, timeout }),
        }
    }

    /// Keeps requests away from `addr` for the quarantine period.
    pub(crate) fn quarantine(&self, addr: SocketAddr) {
        if self.quarantine_for.is_zero() {
            return;
        }
        let mut quarantine = lock(&self.quarantine);
        quarantine.insert(addr, Instant::now() + self.quarantine_for);
        self.quarantined.store(quarantine.len(), Ordering::Relaxed);
        drop(quarantine);
        lock(&self.idle).retain(|(_, pooled), _| *pooled != addr);
    }

    pub(crate) fn is_quarantined(&self, addr: SocketAddr) -> bool {
        if self.quarantined.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let mut quarantine = lock(&self.quarantine);
        let now = Instant::now();
        quarantine.retain(|_, until| *until > now);
        self.quarantined.store(quarantine.len(), Ordering::Relaxed);
        quarantine.contains_key(&addr)
    }

    /// Lifts the quarantine of a dyno that answered.
    pub(crate) fn healthy(&self, addr: SocketAddr) {
        if self.quarantined.load(Ordering::Relaxed) > 0 {
            let mut quarantine = lock(&self.quarantine);
            quarantine.remove(&addr);
            self.quarantined.store(quarantine.len(), Ordering::Relaxed);
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
    /// routed (every thread runs its own reaper; see [`crate::threads::worker`]).
    pub(crate) fn reap(&self, live: Option<&HashSet<SocketAddr>>) -> usize {
        let worker = crate::threads::worker();
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
