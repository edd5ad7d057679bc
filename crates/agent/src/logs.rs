//! The agent's log buffer: every container's output lines, shipped to the control plane in
//! batches (never through the store). The buffer is bounded: when the control plane is slow or
//! away, new lines are dropped and counted per container, and the next batch says how many
//! (the control plane logs them as logplex's L10). Pushing never blocks a container's output.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use slipway_runtime::{OutputSink, Stream};

use crate::wire::{LogBatch, LogRecord};

#[cfg(test)]
mod tests;

/// Lines an agent holds for the control plane at most (logplex's 1024-line drain buffer,
/// times a few, for a host with many dynos).
pub(crate) const BUFFER_LINES: usize = 10_000;

/// Lines per batch at most.
pub(crate) const BATCH_LINES: usize = 1000;

#[derive(Default)]
struct Inner {
    lines: VecDeque<LogRecord>,
    dropped: BTreeMap<String, u64>,
}

/// Shared between every container's output sink and the shipping task.
#[derive(Clone)]
pub(crate) struct LogBuffer {
    inner: Arc<Mutex<Inner>>,
    capacity: usize,
    ready: Arc<tokio::sync::Notify>,
}

impl LogBuffer {
    pub(crate) fn new(capacity: usize) -> LogBuffer {
        LogBuffer {
            inner: Arc::default(),
            capacity,
            ready: Arc::default(),
        }
    }

    /// Adds a line of `container`'s output, or counts it dropped when the buffer is full.
    pub(crate) fn push(&self, container: &str, line: &str) {
        let mut inner = self.inner.lock().expect("the log buffer is never poisoned");
        if inner.lines.len() >= self.capacity {
            *inner.dropped.entry(container.to_owned()).or_default() += 1;
            return;
        }
        inner.lines.push_back(LogRecord {
            container: container.to_owned(),
            line: line.to_owned(),
        });
        drop(inner);
        self.ready.notify_one();
    }

    /// The next batch (at most `max` lines, and the drop counts), or `None` when empty.
    pub(crate) fn take(&self, max: usize) -> Option<LogBatch> {
        let mut inner = self.inner.lock().expect("the log buffer is never poisoned");
        if inner.lines.is_empty() && inner.dropped.is_empty() {
            return None;
        }
        let n = inner.lines.len().min(max);
        Some(LogBatch {
            lines: inner.lines.drain(..n).collect(),
            dropped: std::mem::take(&mut inner.dropped),
        })
    }

    /// Counts a batch that could not be delivered as dropped.
    pub(crate) fn lost(&self, batch: LogBatch) {
        let mut inner = self.inner.lock().expect("the log buffer is never poisoned");
        for line in batch.lines {
            *inner.dropped.entry(line.container).or_default() += 1;
        }
        for (container, n) in batch.dropped {
            *inner.dropped.entry(container).or_default() += n;
        }
    }

    /// Waits until a line was pushed (or returns at once if one was since the last wait).
    pub(crate) async fn wait(&self) {
        self.ready.notified().await;
    }

    /// The output sink of one container.
    pub(crate) fn sink(&self, container: &str) -> OutputSink {
        let buffer = self.clone();
        let container = container.to_owned();
        Arc::new(move |_stream: Stream, line: &str| buffer.push(&container, line))
    }
}
