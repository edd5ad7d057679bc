//! Watches of the etcd store: one etcd watch stream per [`Watcher`], its events with the
//! namespace stripped, compaction and broken streams reported as one error before the end.

use super::{convert_kv, etcd_error, is_compacted, plan, EtcdStore};
use crate::{EventKind, KeyValue, Revision, Store, StoreError, WatchEvent, Watcher};
use etcd_client::{EventType, GetOptions, WatchOptions, WatchStream};
use std::collections::VecDeque;
use std::time::Duration;

/// How long to wait for etcd to say which revision it compacted to, once a read has shown
/// that the asked-for one is gone.
const COMPACTION_ANSWER: Duration = Duration::from_secs(5);

struct WatchState {
    stream: WatchStream,
    namespace: String,
    closed: tokio::sync::watch::Receiver<()>,
    pending: VecDeque<WatchEvent>,
    /// Every event up to this revision has been queued.
    last: Revision,
    /// An error to yield once the events queued before it are delivered.
    error: Option<StoreError>,
    finished: bool,
}

/// Starts a watch of `prefix` for revisions after `after` (`None`: from now on).
pub(super) async fn start(
    store: &EtcdStore,
    prefix: &str,
    after: Option<Revision>,
) -> Result<Watcher, StoreError> {
    let from = store.full_key(prefix);
    let end = plan::prefix_end(&from).unwrap_or_else(|| vec![0]);
    let key = plan::range_start(&from);
    // "From now on" is from the revision current when the watch is asked for, not from when
    // etcd gets round to registering it: a write in between must not be missed.
    let after = match after {
        Some(after) => {
            check_not_compacted(store, &key, &end, after).await?;
            after
        }
        None => store.current_revision().await?,
    };
    let options = WatchOptions::new()
        .with_range(end)
        .with_prev_key()
        .with_start_revision(after.saturating_add(1));
    let stream = store
        .client
        .watch_client()
        .max_decoding_message_size(super::MAX_RESPONSE_BYTES)
        .watch(key, Some(options))
        .await
        .map_err(etcd_error("starting a watch"))?;
    let last = after;
    let state = WatchState {
        stream,
        namespace: store.namespace.clone(),
        closed: store.closed.subscribe(),
        pending: VecDeque::new(),
        last,
        error: None,
        finished: false,
    };
    Ok(Watcher::from_stream(futures::stream::unfold(state, |st| {
        st.step()
    })))
}

/// Fails with [`StoreError::Compacted`] if the history after `after` is gone: a read at
/// `after` fails if that revision was compacted away; a future revision is fine (the watch
/// then waits for it).
async fn check_not_compacted(
    store: &EtcdStore,
    key: &[u8],
    end: &[u8],
    after: Revision,
) -> Result<(), StoreError> {
    if after <= 0 {
        return Ok(());
    }
    let read = store
        .kv()
        .get(
            key.to_vec(),
            Some(GetOptions::new().with_revision(after).with_count_only()),
        )
        .await;
    match read {
        Ok(_) => Ok(()),
        Err(e) if is_compacted(&e) => Err(StoreError::Compacted {
            requested: after,
            compacted: compacted_revision(store, key, end, after).await?,
        }),
        Err(etcd_client::Error::GRpcStatus(status))
            if status.message().contains("future revision") =>
        {
            Ok(())
        }
        Err(e) => Err(etcd_error("checking a watch's start revision")(e)),
    }
}

/// Asks etcd which revision it compacted to: a watch from a compacted revision is cancelled
/// with that number.
async fn compacted_revision(
    store: &EtcdStore,
    key: &[u8],
    end: &[u8],
    after: Revision,
) -> Result<Revision, StoreError> {
    let mut stream = store
        .client
        .watch_client()
        .max_decoding_message_size(super::MAX_RESPONSE_BYTES)
        .watch(
            key.to_vec(),
            Some(
                WatchOptions::new()
                    .with_range(end.to_vec())
                    .with_start_revision(after.saturating_add(1).max(1)),
            ),
        )
        .await
        .map_err(etcd_error("finding the compacted revision"))?;
    let answer = tokio::time::timeout(COMPACTION_ANSWER, async {
        loop {
            match stream.message().await {
                Ok(Some(r)) if r.compact_revision() > 0 => return Ok(r.compact_revision()),
                Ok(Some(_)) => continue,
                Ok(None) => {
                    return Err(StoreError::Closed {
                        reason: "etcd closed the watch stream".into(),
                    })
                }
                Err(e) => return Err(etcd_error("finding the compacted revision")(e)),
            }
        }
    })
    .await;
    // If etcd said the revision is compacted but would not say up to where, the request is
    // still refused, with what is known.
    answer.unwrap_or(Ok(after.saturating_add(1)))
}

impl WatchState {
    async fn step(mut self) -> Option<(Result<WatchEvent, StoreError>, Self)> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Some((Ok(ev), self));
            }
            if let Some(error) = self.error.take() {
                return Some((Err(error), self));
            }
            if self.finished {
                return None;
            }
            let message = tokio::select! {
                message = self.stream.message() => message,
                // The store was dropped: the watch ends, as on SQLite.
                _ = self.closed.changed() => return None,
            };
            let response = match message {
                Ok(Some(response)) => response,
                Ok(None) => {
                    self.finished = true;
                    return Some((
                        Err(StoreError::Closed {
                            reason: "etcd ended the watch stream; range() again and watch from its revision".into(),
                        }),
                        self,
                    ));
                }
                Err(e) => {
                    self.finished = true;
                    return Some((Err(etcd_error("watching")(e)), self));
                }
            };
            if response.canceled() {
                self.finished = true;
                let error = if response.compact_revision() > 0 {
                    StoreError::Compacted {
                        requested: self.last,
                        compacted: response.compact_revision(),
                    }
                } else {
                    StoreError::Closed {
                        reason: format!("etcd cancelled the watch: {}", response.cancel_reason()),
                    }
                };
                return Some((Err(error), self));
            }
            for event in response.events() {
                match self.convert(event) {
                    Ok(Some(ev)) => {
                        self.last = self.last.max(ev.kv.mod_revision);
                        self.pending.push_back(ev);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        // The events before it are delivered first, then the error, then
                        // the end.
                        self.finished = true;
                        self.error = Some(e);
                        break;
                    }
                }
            }
        }
    }

    fn convert(&self, event: &etcd_client::Event) -> Result<Option<WatchEvent>, StoreError> {
        let Some(kv) = event.kv() else {
            return Ok(None);
        };
        let prev = event
            .prev_kv()
            .map(|p| convert_kv(&self.namespace, p))
            .transpose()?;
        let event = match event.event_type() {
            EventType::Put => WatchEvent {
                kind: EventKind::Put,
                kv: convert_kv(&self.namespace, kv)?,
                prev,
            },
            EventType::Delete => WatchEvent {
                kind: EventKind::Delete,
                kv: KeyValue::tombstone(
                    &super::strip_namespace(&self.namespace, kv.key())?,
                    kv.mod_revision(),
                ),
                prev,
            },
        };
        Ok(Some(event))
    }
}
