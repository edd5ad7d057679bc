//! Sleeping apps, as Heroku's eco dynos do: an app whose web dynos are `eco` sleeps after
//! `DynoManagerConfig::idle_after` (30 minutes) without web traffic — its eco dynos stop and
//! show as `idle` — and the next request wakes it.
//!
//! The router tells the platform about every request (`Platform::note_web_request`, one
//! atomic store per request once the app is known) and, for an app the route table shows as
//! idle, asks for it to be woken (`Platform::wake_app`, which only queues an event for the
//! dyno manager and returns). The dyno manager decides when to sleep and does the waking; see
//! `dyno_manager`. This module holds only the [`Activity`] records both sides share, so the
//! dyno manager needs no `Platform`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

/// When each app last had a web request, and where wake-ups go. Cloning gives another handle
/// on the same records: the platform notes requests, the dyno manager reads them.
#[derive(Debug, Default, Clone)]
pub(crate) struct Activity {
    /// App name → unix milliseconds of its last web request.
    last: Arc<RwLock<HashMap<String, Arc<AtomicI64>>>>,
    /// The dyno manager's inbox for wake-ups (set when it starts).
    wake: Arc<OnceLock<mpsc::UnboundedSender<String>>>,
}

impl Activity {
    pub(crate) fn touch(&self, app: &str) {
        let now = Utc::now().timestamp_millis();
        if let Ok(last) = self.last.read() {
            if let Some(at) = last.get(app) {
                at.store(now, Ordering::Relaxed);
                return;
            }
        }
        if let Ok(mut last) = self.last.write() {
            last.entry(app.to_owned())
                .or_insert_with(|| Arc::new(AtomicI64::new(now)))
                .store(now, Ordering::Relaxed);
        }
    }

    /// Notes a request for `app` and, if the dyno manager runs, asks it to wake the app.
    pub(crate) fn wake(&self, app: &str) {
        self.touch(app);
        if let Some(wake) = self.wake.get() {
            // The manager's inbox only closes when it stops; then nobody is there to wake.
            let _ = wake.send(app.to_owned());
        }
    }

    /// When the app last had a web request, if it had one since the server started.
    pub(crate) fn last_request(&self, app: &str) -> Option<DateTime<Utc>> {
        let millis = self.last.read().ok()?.get(app)?.load(Ordering::Relaxed);
        DateTime::from_timestamp_millis(millis)
    }

    /// Connects wake-ups to the dyno manager; returns its end of the channel.
    pub(crate) fn wake_inbox(&self) -> Option<mpsc::UnboundedReceiver<String>> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.wake.set(sender).ok()?;
        Some(receiver)
    }
}

#[cfg(test)]
mod tests;
