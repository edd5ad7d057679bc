//! The backend-neutral [`Watcher`] handle returned by [`crate::Store::watch`].

use crate::{StoreError, WatchEvent};
use futures::stream::{BoxStream, Stream, StreamExt};
use std::pin::Pin;
use std::task::{Context, Poll};

/// An ordered stream of [`WatchEvent`]s for one prefix.
///
/// Events arrive in revision order (and, within one revision, in the order the
/// transaction applied them), never duplicated and never skipped. `next()` returns
/// `None` once the store has been dropped. If the watcher cannot continue (for example it
/// fell so far behind that the history it needs was compacted), it yields one `Err` and
/// then `None`; the consumer should `range()` again and start a new watch from that
/// revision.
///
/// Also implements [`futures::Stream`].
pub struct Watcher {
    inner: BoxStream<'static, Result<WatchEvent, StoreError>>,
}

impl Watcher {
    /// Wraps any event stream (used by store implementations).
    pub fn from_stream(
        stream: impl Stream<Item = Result<WatchEvent, StoreError>> + Send + 'static,
    ) -> Self {
        Watcher {
            inner: stream.boxed(),
        }
    }

    /// The next event, or `None` when the watch has ended.
    pub async fn next(&mut self) -> Option<Result<WatchEvent, StoreError>> {
        self.inner.next().await
    }
}

impl Stream for Watcher {
    type Item = Result<WatchEvent, StoreError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").finish_non_exhaustive()
    }
}
