//! One-off dynos attached to a terminal: the core's side of the rendezvous
//! ([`slipway_rendezvous::Sessions`]). The listener hands over the secret a client presented;
//! the core finds the one-off dyno waiting for it and starts its container attached.

use crate::platform::Platform;
use slipway_rendezvous::{ClaimError, Session, Sessions};

#[async_trait::async_trait]
impl Sessions for Platform {
    async fn claim(&self, secret: &str) -> Result<Session, ClaimError> {
        // Seam only: one-off dynos land with issue 12's core work.
        let _ = secret;
        Err(ClaimError::Unknown)
    }
}
