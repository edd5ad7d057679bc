//! What the platform keeps in memory about builds and uploads: each build's output (the last
//! [`OUTPUT_LINES`] lines of the last [`KEPT_OUTPUTS`] builds, streamed from its start to any
//! number of readers until the build ends) and slugs declared through the API, waiting for
//! their tarball. The operations that fill it are in `builds.rs`.
//!
//! Outputs are found by the SHA-256 digest of their URL's secret, never by the secret itself,
//! so how long a lookup takes says nothing about how close a guess came; each remembers who it
//! was issued to ([`OutputHolder`]), for the API to check that they may still see the app.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use uuid::Uuid;

use crate::model::Build;

/// Lines of output kept per build.
pub(crate) const OUTPUT_LINES: usize = 10_000;
/// Builds whose output is kept; the oldest finished one is forgotten first.
pub(crate) const KEPT_OUTPUTS: usize = 64;

/// A slug declared through the API, waiting for its tarball.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlugDeclaration {
    pub id: Uuid,
    pub app_id: Uuid,
    pub process_types: BTreeMap<String, String>,
    pub commit: Option<String>,
    pub checksum: Option<String>,
    pub stack: String,
    pub buildpack_description: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The unguessable part of the upload URL.
    pub upload_token: String,
}

/// In-memory state of builds and uploads: output buffers and declared slugs.
#[derive(Default)]
pub(crate) struct BuildState {
    outputs: Mutex<Outputs>,
    /// Declared slugs by upload token, with when they expire (`builds.rs` adds and takes
    /// them, through [`BuildState::uploads`]).
    uploads: Mutex<HashMap<String, (SlugDeclaration, Instant)>>,
}

#[derive(Default)]
struct Outputs {
    /// By the digest of their secret.
    by_secret: HashMap<String, (Arc<OutputBuffer>, OutputHolder)>,
    /// Digests of secrets, oldest first, for eviction.
    order: VecDeque<String>,
}

/// Who a build's output URL was issued to: the build's app and the user who started it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputHolder {
    pub app_id: Uuid,
    pub user_email: String,
}

/// The key a secret's output is kept under.
fn secret_digest(secret: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

/// One build's output: a bounded window of lines, numbered from 0, and whether it ended.
pub struct OutputBuffer {
    build_id: Uuid,
    state: Mutex<BufferState>,
    changed: tokio::sync::watch::Sender<u64>,
}

#[derive(Default)]
struct BufferState {
    lines: VecDeque<String>,
    /// Number of the first line in `lines`.
    first: u64,
    finished: bool,
}

impl OutputBuffer {
    fn new(build_id: Uuid) -> OutputBuffer {
        OutputBuffer {
            build_id,
            state: Mutex::new(BufferState::default()),
            changed: tokio::sync::watch::channel(0).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BufferState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn push(&self, line: &str) {
        let end = {
            let mut state = self.lock();
            state.lines.push_back(line.to_owned());
            if state.lines.len() > OUTPUT_LINES {
                state.lines.pop_front();
                state.first += 1;
            }
            state.first + state.lines.len() as u64
        };
        self.changed.send_replace(end);
    }

    pub(crate) fn finish(&self) {
        self.lock().finished = true;
        self.changed.send_modify(|_| {});
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.lock().finished
    }

    /// The build this output belongs to.
    pub fn build_id(&self) -> Uuid {
        self.build_id
    }

    /// Lines from number `from` on (or from the oldest kept), each with its number, and
    /// whether the build has ended with nothing after them.
    fn read_from(&self, from: u64) -> (Vec<(u64, String)>, bool) {
        let state = self.lock();
        let start = from.max(state.first);
        let lines: Vec<(u64, String)> = state
            .lines
            .iter()
            .enumerate()
            .skip((start - state.first) as usize)
            .map(|(i, line)| (state.first + i as u64, line.clone()))
            .collect();
        (lines, state.finished)
    }

    /// Streams the output from line `from` (0: the start), following it until the build
    /// ends.
    pub fn follow(
        self: Arc<Self>,
        from: u64,
    ) -> impl futures::Stream<Item = (u64, String)> + Send + 'static {
        let changes = self.changed.subscribe();
        futures::stream::unfold(
            (self, changes, from, false),
            |(buffer, mut changes, mut next, done)| async move {
                if done {
                    return None;
                }
                loop {
                    changes.borrow_and_update();
                    let (lines, finished) = buffer.read_from(next);
                    if let Some((last, _)) = lines.last() {
                        next = last + 1;
                        let ended = finished && buffer.read_from(next).0.is_empty();
                        return Some((
                            futures::stream::iter(lines),
                            (buffer, changes, next, ended),
                        ));
                    }
                    if finished {
                        return None;
                    }
                    if changes.changed().await.is_err() {
                        return None;
                    }
                }
            },
        )
        .flatten()
    }
}

impl BuildState {
    /// The declared slugs, locked. A panic while they were held leaves nothing half-done
    /// (each change is one map operation), so a poisoned lock is taken as it is.
    pub(crate) fn uploads(&self) -> MutexGuard<'_, HashMap<String, (SlugDeclaration, Instant)>> {
        self.uploads.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn register(
        &self,
        secret: &str,
        build_id: Uuid,
        holder: OutputHolder,
    ) -> Arc<OutputBuffer> {
        let buffer = Arc::new(OutputBuffer::new(build_id));
        let digest = secret_digest(secret);
        let mut outputs = self.outputs.lock().unwrap_or_else(|p| p.into_inner());
        outputs
            .by_secret
            .insert(digest.clone(), (buffer.clone(), holder));
        outputs.order.push_back(digest);
        while outputs.order.len() > KEPT_OUTPUTS {
            // Forget the oldest finished build; running ones are never forgotten.
            let Some(position) = outputs.order.iter().position(|s| {
                outputs
                    .by_secret
                    .get(s)
                    .is_none_or(|(b, _)| b.is_finished())
            }) else {
                break;
            };
            if let Some(secret) = outputs.order.remove(position) {
                outputs.by_secret.remove(&secret);
            }
        }
        buffer
    }

    pub(crate) fn output(&self, secret: &str) -> Option<Arc<OutputBuffer>> {
        self.output_and_holder(secret).map(|(buffer, _)| buffer)
    }

    /// The output a secret names, and who it was issued to.
    pub(crate) fn output_and_holder(
        &self,
        secret: &str,
    ) -> Option<(Arc<OutputBuffer>, OutputHolder)> {
        let outputs = self.outputs.lock().unwrap_or_else(|p| p.into_inner());
        outputs.by_secret.get(&secret_digest(secret)).cloned()
    }

    pub(crate) fn is_running(&self, build: &Build) -> bool {
        self.output(&build.output_secret)
            .is_some_and(|b| !b.is_finished())
    }
}

#[cfg(test)]
mod tests;
