//! Thread per core: the way the router runs in `slipway server`.
//!
//! [`Router::serve_per_core`] starts one OS thread per core, each with a single-threaded tokio
//! runtime and its own listening socket on the same address (`SO_REUSEPORT`, so the kernel
//! spreads new connections over the threads). A client connection, its dyno connection and
//! every wake-up for them stay on one thread: no work stealing, no cross-thread wake-ups, no
//! shared queues on the request path — the shape of nginx's worker processes. What the threads
//! share (route table, certificate table, quarantine, backlog counters) is read-mostly.
//!
//! Before forming the `SO_REUSEPORT` group the address is probed with a plain bind, so a port
//! some other process already listens on is refused with "address in use" instead of being
//! silently shared.

use std::future::Future;
use std::net::SocketAddr;
use std::thread::JoinHandle;

use socket2::{Domain, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::server::Router;
use crate::tls::Acceptor;
use crate::tls::TlsSettings;

/// What a set of router threads serves.
pub enum Protocol {
    /// Plain HTTP/1.1.
    Http,
    /// HTTPS with HTTP/2 or HTTP/1.1 by ALPN (see [`Router::serve_tls`]).
    Https(TlsSettings),
}

/// Router threads started by [`Router::serve_per_core`].
#[derive(Debug)]
pub struct RouterThreads {
    addr: SocketAddr,
    handles: Vec<JoinHandle<std::io::Result<()>>>,
}

impl RouterThreads {
    /// The address the threads listen on (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many threads serve the address.
    pub fn threads(&self) -> usize {
        self.handles.len()
    }

    /// Waits (blocking) until every thread has stopped; the first error any of them returned.
    pub fn join(self) -> std::io::Result<()> {
        let mut result = Ok(());
        for handle in self.handles {
            let outcome = handle
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("a router thread panicked")));
            if result.is_ok() {
                result = outcome;
            }
        }
        result
    }

    /// [`RouterThreads::join`] from async code, without blocking the runtime.
    pub async fn stopped(self) -> std::io::Result<()> {
        tokio::task::spawn_blocking(move || self.join())
            .await
            .map_err(std::io::Error::other)?
    }
}

impl Router {
    /// Serves `addr` on `threads` threads (at least one), each a single-threaded runtime with
    /// its own `SO_REUSEPORT` listener (see the module documentation), until `shutdown` turns
    /// true; each thread then shuts down as [`Router::serve`] does. Binding errors are
    /// returned here, before any thread starts.
    pub fn serve_per_core(
        self,
        addr: SocketAddr,
        threads: usize,
        protocol: Protocol,
        shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<RouterThreads> {
        let listeners = bind_group(addr, threads.max(1))?;
        let addr = listeners[0].local_addr()?;
        let acceptor = match protocol {
            Protocol::Http => None,
            Protocol::Https(tls) => Some(Acceptor::new(&self, tls)?),
        };
        let mut handles = Vec::with_capacity(listeners.len());
        for (index, listener) in listeners.into_iter().enumerate() {
            let router = self.clone();
            let acceptor = acceptor.clone();
            let mut shutdown = shutdown.clone();
            let stop = async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            };
            let handle = std::thread::Builder::new()
                .name(format!("router-{}", index + 1))
                .spawn(move || {
                    crate::upstream::number_this_thread();
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    runtime.block_on(serve_listener(router, listener, acceptor, stop))
                })?;
            handles.push(handle);
        }
        Ok(RouterThreads { addr, handles })
    }
}

async fn serve_listener(
    router: Router,
    listener: std::net::TcpListener,
    acceptor: Option<Acceptor>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = TcpListener::from_std(listener)?;
    match acceptor {
        None => router.serve(listener, stop).await,
        Some(acceptor) => router.serve_tls_with(listener, acceptor, stop).await,
    }
}

/// `count` listening sockets on one address in one `SO_REUSEPORT` group.
fn bind_group(addr: SocketAddr, count: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    if addr.port() != 0 {
        // Refuse a port someone already listens on (with SO_REUSEPORT the bind would succeed).
        drop(std::net::TcpListener::bind(addr)?);
    }
    let first = bind_reuseport(addr)?;
    let addr = first.local_addr()?;
    let mut group = vec![first];
    for _ in 1..count {
        group.push(bind_reuseport(addr)?);
    }
    Ok(group)
}

fn bind_reuseport(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}
