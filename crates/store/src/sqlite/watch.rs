//! Watch streams of the SQLite store: live batches from the writer, gaps filled from history.
//!
//! Each watcher owns a `tokio::sync::broadcast` receiver. Writers never wait for watchers:
//! if a watcher falls more than `watch_buffer` revisions behind, the channel drops its
//! oldest batches and the watcher notices (either `Lagged` or a revision gap) and re-reads
//! the missing revisions from the `log` table, page by page, before continuing with live
//! batches. Only if the history it needs has already been compacted does it yield
//! [`StoreError::Compacted`] and end.

use super::engine::Batch;
use super::Shared;
use crate::{Revision, StoreError, WatchEvent, Watcher};
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::broadcast::{self, error::RecvError};

/// Revisions read from history per catch-up query.
const HISTORY_PAGE: i64 = 256;

pub(crate) struct WatchState {
    pub(crate) shared: Arc<Shared>,
    pub(crate) prefix: String,
    pub(crate) rx: broadcast::Receiver<Arc<Batch>>,
    /// Every event with revision <= `last` has been queued (or filtered out).
    pub(crate) last: Revision,
    /// Revisions up to `target` are committed and must be read from history.
    pub(crate) target: Revision,
    pub(crate) pending: VecDeque<WatchEvent>,
    /// A live batch that arrived ahead of `last + 1`, kept until the gap is filled.
    pub(crate) held: Option<Arc<Batch>>,
    pub(crate) finished: bool,
}

impl WatchState {
    pub(crate) fn into_watcher(self) -> Watcher {
        Watcher::from_stream(futures::stream::unfold(self, |st| st.step()))
    }

    async fn step(mut self) -> Option<(Result<WatchEvent, StoreError>, Self)> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Some((Ok(ev), self));
            }
            if self.finished {
                return None;
            }
            if self.last < self.target {
                let limit = Some(self.target);
                if let Err(e) = self.catch_up(limit).await {
                    self.finished = true;
                    return Some((Err(e), self));
                }
                continue;
            }
            let batch = match self.held.take() {
                Some(b) => b,
                None => match self.rx.recv().await {
                    Ok(b) => b,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, prefix = %self.prefix, "watcher lagged; reading history");
                        if let Err(e) = self.catch_up(None).await {
                            self.finished = true;
                            return Some((Err(e), self));
                        }
                        continue;
                    }
                    // The store was dropped and every published batch has been seen.
                    Err(RecvError::Closed) => return None,
                },
            };
            if batch.revision <= self.last {
                continue; // already delivered from history
            }
            if batch.revision > self.last + 1 {
                self.target = self.target.max(batch.revision - 1);
                self.held = Some(batch);
                continue;
            }
            self.pending.extend(
                batch
                    .events
                    .iter()
                    .filter(|e| e.kv.key.starts_with(self.prefix.as_str()))
                    .cloned(),
            );
            self.last = batch.revision;
        }
    }

    /// Reads one page of history after `last` (up to `limit`, or the current revision).
    async fn catch_up(&mut self, limit: Option<Revision>) -> Result<(), StoreError> {
        let shared = self.shared.clone();
        let prefix = self.prefix.clone();
        let after = self.last;
        let (events, upto, current) = tokio::task::spawn_blocking(move || {
            shared
                .lock()
                .history_page(&prefix, after, limit, HISTORY_PAGE)
        })
        .await
        .map_err(|e| StoreError::Closed {
            reason: format!("history reader failed: {e}"),
        })??;
        self.pending.extend(events);
        self.last = upto;
        if limit.is_none() {
            self.target = self.target.max(current);
        }
        Ok(())
    }
}
