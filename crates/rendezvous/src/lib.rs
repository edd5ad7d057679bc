//! The rendezvous listener: where `heroku run` and `slipway run` connect to a one-off dyno's
//! terminal (Heroku's `rendezvous://HOST:PORT/SECRET` attach URLs).
//!
//! The listener speaks TLS only. A client sends the secret line; the listener claims the dyno
//! waiting for that secret from [`Sessions`] (the core, which starts the container attached),
//! answers with the greeting the real CLI expects, and then copies bytes both ways until the
//! process exits. This crate knows nothing of apps, releases or the store: [`Sessions`] is
//! its only view of the platform.

use std::sync::Arc;
use std::time::Duration;

use slipway_runtime::{AttachedIo, ExitStatus};

/// A one-off dyno, started and attached, handed to the client that presented its secret.
#[derive(Debug)]
pub struct Session {
    /// The dyno's name (`run.4821`), for log lines.
    pub dyno: String,
    pub io: AttachedIo,
    /// Resolves when the dyno's process has exited.
    pub exited: tokio::sync::oneshot::Receiver<ExitStatus>,
    /// How long the session may go without input or output before it is ended (Heroku: 1 h).
    pub idle_timeout: Duration,
}

/// Why a secret did not open a session. The client is told only that it was refused (and
/// the reason for an app with no release or a failed start); the secret is never echoed.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("no one-off dyno is waiting for this secret")]
    Unknown,
    #[error("the secret has expired")]
    Expired,
    #[error("the secret has already been used")]
    AlreadyUsed,
    #[error("{0}")]
    Failed(String),
}

/// The platform's side: hands out the dyno waiting for a secret, once.
#[async_trait::async_trait]
pub trait Sessions: Send + Sync + 'static {
    /// Claims the one-off dyno waiting for `secret` and starts it attached. A secret is good
    /// for one claim within its window.
    async fn claim(&self, secret: &str) -> Result<Session, ClaimError>;
}

/// Serves rendezvous connections on `listener` with `tls` until `stop` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    sessions: Arc<dyn Sessions>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    // Seam only: the implementation lands with the rendezvous work.
    let _ = (listener, tls, sessions);
    let _ = stop.wait_for(|stop| *stop).await;
    Ok(())
}
