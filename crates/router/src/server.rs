//! The [`Router`] handle and the accept loop every listener shares: plain HTTP connections are
//! served by the HTTP/1 engine once they send bytes; idle dyno connections are reaped per
//! thread.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{RouterConfig, RouterLogSink};
use crate::h1;
use crate::policy::Listener;
use crate::route::RouteTable;
use crate::shared::Shared;
use crate::upstream::Upstreams;

/// The HTTP router. Build with [`Router::new`], run with [`Router::serve`] (and, on a clone
/// sharing the same dyno connections and backlogs, [`Router::serve_tls`]).
#[derive(Clone)]
pub struct Router {
    pub(crate) shared: Arc<Shared>,
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
        let upstreams = Upstreams::new(
            config.backend_pool_idle,
            config.connect_timeout,
            config.quarantine,
            config.backend_pool_max_idle,
        );
        Router {
            shared: Arc::new(Shared {
                routes,
                log,
                config,
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
        let header = Listener {
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
    shared: Arc<Shared>,
    mut stream: tokio::net::TcpStream,
    peer: SocketAddr,
    header: Listener,
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
pub(crate) async fn accept_until<F, Fut>(
    shared: Arc<Shared>,
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
async fn reap_forever(shared: Arc<Shared>) {
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
            .routes()
            .flat_map(|route| route.backends.iter().map(|backend| backend.addr))
            .collect();
        shared.upstreams.reap(Some(&live));
    }
}
