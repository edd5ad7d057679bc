//! One-off dynos attached to a terminal: the core's side of the rendezvous
//! ([`slipway_rendezvous::Sessions`]). The listener hands over the secret a client presented;
//! the core finds the one-off dyno waiting for it (once, within its attach window) and starts
//! its container attached (`oneoff.rs`). A failed start leaves no record and no container.

use std::time::Instant;

use slipway_rendezvous::{ClaimError, Session, Sessions};

use crate::oneoff::start_claimed;
use crate::oneoff_registry::digest;
use crate::platform::Platform;

#[async_trait::async_trait]
impl Sessions for Platform {
    async fn claim(&self, secret: &str) -> Result<Session, ClaimError> {
        let (record, pending) = self.one_offs().claim(&digest(secret), Instant::now())?;
        let parts = self.one_off_parts();
        let dyno = record.name.clone();
        let attach = pending.attach;
        let (io, exited) = start_claimed(&parts, record, *pending)
            .await
            .map_err(ClaimError::Failed)?;
        Ok(Session {
            dyno,
            io,
            attach,
            exited,
            idle_timeout: self.config().dynos.one_off_idle_timeout,
        })
    }
}
