//! What the listener needs from the platform: [`Sessions`], which hands out the attached
//! one-off dyno ([`Session`]) waiting for a secret, or says why not ([`ClaimError`]).

use std::time::Duration;

use slipway_runtime::{Attach, AttachedIo, ExitStatus};

/// A one-off dyno, started and attached, handed to the client that presented its secret.
#[derive(Debug)]
pub struct Session {
    /// The dyno's name (`run.4821`), for log lines.
    pub dyno: String,
    pub io: AttachedIo,
    /// How the process was attached: a lone `0x04` from the real CLI ends a pipes session's
    /// input but is typed into a terminal.
    pub attach: Attach,
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
