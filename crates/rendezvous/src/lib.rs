//! The rendezvous listener: where `heroku run` and `slipway run` connect to a one-off dyno's
//! terminal (Heroku's `rendezvous://HOST:PORT/SECRET` attach URLs).
//!
//! The listener speaks TLS only. A client sends the secret line; the listener claims the dyno
//! waiting for that secret from [`Sessions`] (the core, which starts the container attached),
//! answers with the greeting the real CLI expects, and then copies bytes both ways until the
//! process exits. This crate knows nothing of apps, releases or the store: [`Sessions`] is
//! its only view of the platform.
//!
//! Two modes, chosen by the first line (see [`slipway_api_types::rendezvous`]):
//! - **Heroku mode** (`SECRET\r\n`, the real `heroku` CLI): the greeting `rendezvous\r\n`
//!   in a chunk of its own (the CLI throws its first chunk away whole), then raw bytes both
//!   ways. In a [`Attach::Pipes`] session a lone `0x04`, which the CLI sends when its stdin
//!   ends, is the end of input; in a TTY session every byte is typed as is (the terminal
//!   makes `0x04` an end of file). The exit status travels only as the marker the command
//!   itself prints for `heroku run --exit-code`.
//! - **Slipway mode** (`SECRET slipway/1\r\n`, `slipway run`): frames carrying data,
//!   window sizes, the end of input and, last, the exit status.

mod connection;
mod session;
#[cfg(feature = "test-support")]
pub mod testing;

use std::sync::Arc;
use std::time::Duration;

pub use session::{ClaimError, Session, Sessions};

/// Serves rendezvous connections on `listener` with `tls` until `stop` turns true. Every
/// connection runs in its own task, so a slow or silent client holds up only itself; when
/// `stop` turns true the attached sessions are hung up and closed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    sessions: Arc<dyn Sessions>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Running out of descriptors must not end the listener for good.
                        tracing::warn!(error = %e, "rendezvous accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                connections.spawn(connection::handle(
                    tcp,
                    peer,
                    acceptor.clone(),
                    sessions.clone(),
                    stop.clone(),
                ));
            }
            // Reaps finished connections so the set does not grow with every one served.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
        }
    }
    // Each connection sees `stop` too and hangs its session up; give them a moment to say so.
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(2), drain)
        .await
        .is_err()
    {
        connections.abort_all();
    }
    Ok(())
}
