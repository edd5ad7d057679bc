//! The hub: per-app history, live fan-out to tails, and the app's drains.
//!
//! Apps are spread over independently locked shards; publishing a line takes one shard lock,
//! appends it to the app's history, hands it to each drain's queue and broadcasts it to tails.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::Utc;
use tokio::sync::broadcast;

use crate::drain::{
    check_drain_url, Drain, DrainConfig, DrainError, DrainInfo, DrainOptions, ReportLine,
    MAX_DRAINS_PER_APP,
};
use crate::line::{LogFilter, LogLine};

/// Heroku keeps the last 1500 lines of each app.
pub const DEFAULT_HISTORY: usize = 1500;
/// How many lines a tail may fall behind before it starts losing them.
pub(crate) const TAIL_BUFFER: usize = 4096;
/// Apps are spread over this many independently locked shards.
const SHARDS: usize = 16;

/// What a tail receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailEvent {
    Line(Arc<LogLine>),
    /// The tail fell behind and this many lines were skipped (reported as `Error L11`).
    Missed(u64),
}

/// What a tail receives, with each line's sequence number (for SSE `id:` fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeqTailEvent {
    Line(u64, Arc<LogLine>),
    /// The tail fell behind and this many lines were skipped (reported as `Error L11`).
    Missed(u64),
}

/// A line and its per-app sequence number.
pub type SeqLine = (u64, Arc<LogLine>);

/// A live subscription to one app's new lines.
#[derive(Debug)]
pub struct Tail {
    receiver: broadcast::Receiver<SeqLine>,
}

impl Tail {
    /// The next line, or `None` once the hub has forgotten the app.
    pub async fn next(&mut self) -> Option<TailEvent> {
        Some(match self.next_seq().await? {
            SeqTailEvent::Line(_, line) => TailEvent::Line(line),
            SeqTailEvent::Missed(count) => TailEvent::Missed(count),
        })
    }

    /// The next line with its sequence number, or `None` once the hub has forgotten the app.
    pub async fn next_seq(&mut self) -> Option<SeqTailEvent> {
        match self.receiver.recv().await {
            Ok((seq, line)) => Some(SeqTailEvent::Line(seq, line)),
            Err(broadcast::error::RecvError::Lagged(missed)) => Some(SeqTailEvent::Missed(missed)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

struct AppLog {
    next_seq: u64,
    history: VecDeque<SeqLine>,
    live: broadcast::Sender<SeqLine>,
    drains: Vec<Drain>,
}

impl AppLog {
    fn new() -> AppLog {
        // Microseconds since the epoch: later than any number handed out before a restart.
        let start = u64::try_from(Utc::now().timestamp_micros()).unwrap_or(0);
        AppLog {
            next_seq: start.max(1),
            history: VecDeque::with_capacity(64),
            live: broadcast::channel(TAIL_BUFFER).0,
            drains: Vec::new(),
        }
    }

    fn append(&mut self, limit: usize, line: Arc<LogLine>, to_drains: bool) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        if to_drains {
            for drain in &self.drains {
                drain.queue.push(line.clone());
            }
        }
        if self.history.len() >= limit {
            self.history.pop_front();
        }
        if limit > 0 {
            self.history.push_back((seq, line.clone()));
        }
        // An error only means that nobody is tailing right now.
        let _ = self.live.send((seq, line));
        seq
    }

    /// The last `count` lines with a sequence number above `after` matching `filter`.
    fn select(&self, after: u64, count: usize, filter: &LogFilter) -> Vec<SeqLine> {
        let start = self.history.partition_point(|(seq, _)| *seq <= after);
        let mut lines: Vec<SeqLine> = self
            .history
            .range(start..)
            .rev()
            .filter(|(_, line)| filter.matches(line))
            .take(count)
            .cloned()
            .collect();
        lines.reverse();
        lines
    }
}

type Shard = Mutex<HashMap<String, AppLog>>;

pub(crate) struct HubInner {
    shards: Box<[Shard]>,
    history_limit: usize,
    drain_options: DrainOptions,
}

impl HubInner {
    fn shard(&self, app: &str) -> MutexGuard<'_, HashMap<String, AppLog>> {
        let mut hasher = DefaultHasher::new();
        app.hash(&mut hasher);
        let index = (hasher.finish() % self.shards.len() as u64) as usize;
        self.shards[index]
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn with_app<T>(&self, app: &str, f: impl FnOnce(&mut AppLog) -> T) -> T {
        let mut shard = self.shard(app);
        if let Some(log) = shard.get_mut(app) {
            return f(log);
        }
        f(shard.entry(app.to_owned()).or_insert_with(AppLog::new))
    }

    fn publish(&self, app: &str, line: LogLine, to_drains: bool) -> u64 {
        let line = Arc::new(line);
        self.with_app(app, |log| log.append(self.history_limit, line, to_drains))
    }

    /// History and tails only: how drains report their own troubles (L10, L14). Does nothing
    /// if the app was forgotten meanwhile (its drains are being stopped).
    pub(crate) fn publish_local(&self, app: &str, line: LogLine) {
        if let Some(log) = self.shard(app).get_mut(app) {
            log.append(self.history_limit, Arc::new(line), false);
        }
    }
}

/// The per-app history buffers, live fan-out and drains. Cheap to clone.
#[derive(Clone)]
pub struct LogHub {
    inner: Arc<HubInner>,
}

impl fmt::Debug for LogHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogHub")
            .field("history_limit", &self.inner.history_limit)
            .finish_non_exhaustive()
    }
}

impl Default for LogHub {
    fn default() -> Self {
        LogHub::new(DEFAULT_HISTORY)
    }
}

impl LogHub {
    pub fn new(history_limit: usize) -> LogHub {
        LogHub::with_drain_options(history_limit, DrainOptions::default())
    }

    /// A hub whose drains behave as `options` say (extra trusted roots, retries, buffer size).
    pub fn with_drain_options(history_limit: usize, options: DrainOptions) -> LogHub {
        LogHub {
            inner: Arc::new(HubInner {
                shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
                history_limit,
                drain_options: options,
            }),
        }
    }

    /// Appends a line to the app's history and sends it to its tails and drains. Never blocks on
    /// readers or drains.
    pub fn publish(&self, app: &str, line: LogLine) {
        self.inner.publish(app, line, true);
    }

    /// History and tails only, not the app's drains: for a line that another process of the
    /// platform also publishes and sends to the drains (an agent sends each batch to every
    /// control plane; only the leader's copy goes to the drains, so a drain gets it once).
    pub fn publish_without_drains(&self, app: &str, line: LogLine) {
        self.inner.publish(app, line, false);
    }

    /// Like [`LogHub::publish`], returning the line's sequence number.
    pub fn publish_seq(&self, app: &str, line: LogLine) -> u64 {
        self.inner.publish(app, line, true)
    }

    /// The sequence number of the app's latest line, if it has any.
    pub fn last_seq(&self, app: &str) -> Option<u64> {
        self.inner
            .shard(app)
            .get(app)
            .and_then(|log| log.history.back().map(|(seq, _)| *seq))
    }

    /// The last `count` lines of the app that match `filter`, oldest first.
    pub fn recent(&self, app: &str, count: usize, filter: &LogFilter) -> Vec<Arc<LogLine>> {
        let shard = self.inner.shard(app);
        let Some(log) = shard.get(app) else {
            return Vec::new();
        };
        log.select(0, count, filter)
            .into_iter()
            .map(|(_, line)| line)
            .collect()
    }

    /// The last `count` matching lines and a tail that continues right after them, taken
    /// atomically so no line is lost or shown twice in between.
    pub fn recent_and_tail(
        &self,
        app: &str,
        count: usize,
        filter: &LogFilter,
    ) -> (Vec<Arc<LogLine>>, Tail) {
        let (lines, tail) = self.recent_and_tail_seq(app, count, filter);
        (lines.into_iter().map(|(_, line)| line).collect(), tail)
    }

    /// [`LogHub::recent_and_tail`] with sequence numbers (what an SSE stream sends as `id:`).
    pub fn recent_and_tail_seq(
        &self,
        app: &str,
        count: usize,
        filter: &LogFilter,
    ) -> (Vec<SeqLine>, Tail) {
        self.inner.with_app(app, |log| {
            let lines = log.select(0, count, filter);
            let tail = Tail {
                receiver: log.live.subscribe(),
            };
            (lines, tail)
        })
    }

    /// The matching lines still in history whose sequence number is above `after_seq` (an SSE
    /// client's `Last-Event-ID`), and a tail that continues right after them, taken atomically.
    /// Lines that have left the 1500-line history since are not returned.
    pub fn since(&self, app: &str, after_seq: u64, filter: &LogFilter) -> (Vec<SeqLine>, Tail) {
        self.inner.with_app(app, |log| {
            let lines = log.select(after_seq, usize::MAX, filter);
            let tail = Tail {
                receiver: log.live.subscribe(),
            };
            (lines, tail)
        })
    }

    /// Forgets an app's history, ends its tails and stops its drains (the app was destroyed).
    pub fn forget(&self, app: &str) {
        let removed = self.inner.shard(app).remove(app);
        // Dropped outside the lock: stopping drains aborts their tasks.
        drop(removed);
    }

    /// Moves an app's history, tails and drains to its new name (the app was renamed): the
    /// log history carries over and a `logs --tail` that was running keeps streaming. The
    /// drains keep the old name in their own error reports until restarted under the new one.
    pub fn rename(&self, old: &str, new: &str) {
        let moved = self.inner.shard(old).remove(old);
        if let Some(log) = moved {
            // The new name's entry, if something created one meanwhile, is replaced whole:
            // dropped outside the lock, as in `forget`.
            let replaced = self.inner.shard(new).insert(new.to_owned(), log);
            drop(replaced);
        }
    }

    /// Checks a drain URL against this hub's outbound policy ([`check_drain_url`]): call it
    /// before [`LogHub::add_drain`] for a URL a tenant gives.
    pub async fn check_drain_url(&self, url: &str) -> Result<(), DrainError> {
        check_drain_url(url, &self.inner.drain_options.outbound).await
    }

    /// Starts draining the app's log to `config.url`. Must be called within a tokio runtime.
    /// Fails if the URL or token is invalid, the app already has [`MAX_DRAINS_PER_APP`] drains,
    /// or already drains to that URL.
    pub fn add_drain(&self, app: &str, config: DrainConfig) -> Result<(), DrainError> {
        // Validate and build outside the lock; the start is cheap and undone on failure.
        let hub = Arc::downgrade(&self.inner);
        let report: ReportLine = Box::new(move |app, line| match hub.upgrade() {
            Some(hub) => {
                hub.publish_local(app, line);
                true
            }
            None => false,
        });
        let drain = Drain::start(report, app, config, &self.inner.drain_options)?;
        self.inner.with_app(app, |log| {
            if log.drains.len() >= MAX_DRAINS_PER_APP {
                return Err(DrainError::TooManyDrains {
                    app: app.to_owned(),
                    limit: MAX_DRAINS_PER_APP,
                });
            }
            for existing in &log.drains {
                if existing.config.url == drain.config.url {
                    return Err(DrainError::DuplicateUrl {
                        app: app.to_owned(),
                        url: drain.config.url.clone(),
                    });
                }
                if existing.config.id == drain.config.id
                    || existing.config.token == drain.config.token
                {
                    return Err(DrainError::DuplicateId {
                        app: app.to_owned(),
                        id: drain.config.id.clone(),
                    });
                }
            }
            log.drains.push(drain);
            Ok(())
        })
    }

    /// Stops and removes the drain whose id, token or URL is `query`, returning it.
    pub fn remove_drain(&self, app: &str, query: &str) -> Result<DrainConfig, DrainError> {
        let removed = {
            let mut shard = self.inner.shard(app);
            shard.get_mut(app).and_then(|log| {
                let index = log.drains.iter().position(|d| d.config.matches(query))?;
                Some(log.drains.remove(index))
            })
        };
        match removed {
            Some(drain) => Ok(drain.config.clone()),
            None => Err(DrainError::NotFound {
                app: app.to_owned(),
                query: query.to_owned(),
            }),
        }
    }

    /// The app's drains, in the order they were added, with their counters.
    pub fn drains(&self, app: &str) -> Vec<DrainInfo> {
        let shard = self.inner.shard(app);
        let Some(log) = shard.get(app) else {
            return Vec::new();
        };
        log.drains
            .iter()
            .map(|drain| DrainInfo {
                config: drain.config.clone(),
                stats: drain.queue.stats(),
            })
            .collect()
    }
}
