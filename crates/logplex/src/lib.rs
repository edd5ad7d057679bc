//! Logplex: one collated log stream per app.
//!
//! Every source (dyno output, the router, the dyno manager, the API, builds) publishes
//! [`LogLine`]s into the [`LogHub`]; the hub keeps the last lines of each app and fans new lines
//! out to tail sessions. Publishing never blocks: a tail that falls behind loses lines and is told
//! how many (Heroku's L11), it never slows the publisher.
//!
//! Architecture Invariant: log lines never pass through the store, and this crate knows nothing
//! of apps beyond their names.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};
use tokio::sync::broadcast;

/// Heroku keeps the last 1500 lines of each app.
pub const DEFAULT_HISTORY: usize = 1500;
/// Dyno lines longer than this are split into several log lines.
pub const MAX_LINE_BYTES: usize = 10_000;
/// How many lines a tail may fall behind before it starts losing them.
const TAIL_BUFFER: usize = 4096;

/// `app` for what dynos write, `heroku` for what the platform says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    App,
    Heroku,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::App => "app",
            Source::Heroku => "heroku",
        }
    }

    pub fn parse(text: &str) -> Option<Source> {
        match text {
            "app" => Some(Source::App),
            "heroku" => Some(Source::Heroku),
            _ => None,
        }
    }
}

/// One line of an app's log, displayed as `2026-11-26T12:00:00.123456+00:00 app[web.1]: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub timestamp: DateTime<Utc>,
    pub source: Source,
    /// `web.1`, `router`, `api`, `build`, ...
    pub process: String,
    pub message: String,
}

impl LogLine {
    pub fn new(source: Source, process: impl Into<String>, message: impl Into<String>) -> LogLine {
        LogLine {
            timestamp: Utc::now(),
            source,
            process: process.into(),
            message: message.into(),
        }
    }

    /// A line written by a dyno (`app[web.1]`).
    pub fn app(process: impl Into<String>, message: impl Into<String>) -> LogLine {
        LogLine::new(Source::App, process, message)
    }

    /// A line said by the platform (`heroku[router]`, `heroku[web.1]`).
    pub fn heroku(process: impl Into<String>, message: impl Into<String>) -> LogLine {
        LogLine::new(Source::Heroku, process, message)
    }

    /// Heroku's timestamp: RFC 3339 in UTC with microseconds and a `+00:00` offset.
    pub fn formatted_timestamp(&self) -> String {
        self.timestamp
            .to_rfc3339_opts(SecondsFormat::Micros, false)
            .replace('Z', "+00:00")
    }
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}[{}]: {}",
            self.formatted_timestamp(),
            self.source.as_str(),
            self.process,
            self.message
        )
    }
}

/// Splits one line a dyno wrote into log messages of at most [`MAX_LINE_BYTES`] bytes, never
/// cutting a UTF-8 character in half.
pub fn split_long_line(line: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = line;
    while rest.len() > MAX_LINE_BYTES {
        let mut cut = MAX_LINE_BYTES;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        parts.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    parts.push(rest);
    parts
}

/// Which lines a reader wants: `--source app|heroku` and `--ps web|web.1|router`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    pub source: Option<Source>,
    /// A process type (`web`, matching `web.1`, `web.2`, ...) or an exact process (`web.1`).
    pub process: Option<String>,
}

impl LogFilter {
    pub fn matches(&self, line: &LogLine) -> bool {
        if let Some(source) = self.source {
            if line.source != source {
                return false;
            }
        }
        match &self.process {
            None => true,
            Some(wanted) => {
                line.process == *wanted
                    || (!wanted.contains('.')
                        && line
                            .process
                            .strip_prefix(wanted.as_str())
                            .is_some_and(|rest| rest.starts_with('.')))
            }
        }
    }
}

/// What a tail receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailEvent {
    Line(Arc<LogLine>),
    /// The tail fell behind and this many lines were skipped (reported as `Error L11`).
    Missed(u64),
}

/// A live subscription to one app's new lines.
#[derive(Debug)]
pub struct Tail {
    receiver: broadcast::Receiver<Arc<LogLine>>,
}

impl Tail {
    /// The next line, or `None` once the hub has forgotten the app.
    pub async fn next(&mut self) -> Option<TailEvent> {
        match self.receiver.recv().await {
            Ok(line) => Some(TailEvent::Line(line)),
            Err(broadcast::error::RecvError::Lagged(missed)) => Some(TailEvent::Missed(missed)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

struct AppLog {
    history: VecDeque<Arc<LogLine>>,
    live: broadcast::Sender<Arc<LogLine>>,
}

/// The per-app history buffers and live fan-out. Cheap to clone.
#[derive(Clone)]
pub struct LogHub {
    inner: Arc<Mutex<HashMap<String, AppLog>>>,
    history_limit: usize,
}

impl fmt::Debug for LogHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogHub")
            .field("history_limit", &self.history_limit)
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
        LogHub {
            inner: Arc::new(Mutex::new(HashMap::new())),
            history_limit,
        }
    }

    /// Appends a line to the app's history and sends it to its tails. Never blocks on readers.
    pub fn publish(&self, app: &str, line: LogLine) {
        let line = Arc::new(line);
        let mut apps = self
            .inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let log = apps.entry(app.to_owned()).or_insert_with(|| AppLog {
            history: VecDeque::with_capacity(64),
            live: broadcast::channel(TAIL_BUFFER).0,
        });
        if log.history.len() == self.history_limit {
            log.history.pop_front();
        }
        log.history.push_back(line.clone());
        // An error only means that nobody is tailing right now.
        let _ = log.live.send(line);
    }

    /// The last `count` lines of the app that match `filter`, oldest first.
    pub fn recent(&self, app: &str, count: usize, filter: &LogFilter) -> Vec<Arc<LogLine>> {
        let apps = self
            .inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let Some(log) = apps.get(app) else {
            return Vec::new();
        };
        let mut lines: Vec<Arc<LogLine>> = log
            .history
            .iter()
            .rev()
            .filter(|line| filter.matches(line))
            .take(count)
            .cloned()
            .collect();
        lines.reverse();
        lines
    }

    /// The last `count` matching lines and a tail that continues right after them, taken
    /// atomically so no line is lost or shown twice in between.
    pub fn recent_and_tail(
        &self,
        app: &str,
        count: usize,
        filter: &LogFilter,
    ) -> (Vec<Arc<LogLine>>, Tail) {
        let mut apps = self
            .inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let log = apps.entry(app.to_owned()).or_insert_with(|| AppLog {
            history: VecDeque::with_capacity(64),
            live: broadcast::channel(TAIL_BUFFER).0,
        });
        let mut lines: Vec<Arc<LogLine>> = log
            .history
            .iter()
            .rev()
            .filter(|line| filter.matches(line))
            .take(count)
            .cloned()
            .collect();
        lines.reverse();
        let tail = Tail {
            receiver: log.live.subscribe(),
        };
        (lines, tail)
    }

    /// Forgets an app's history and ends its tails (the app was destroyed).
    pub fn forget(&self, app: &str) {
        let mut apps = self
            .inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        apps.remove(app);
    }
}

#[cfg(test)]
mod tests;
