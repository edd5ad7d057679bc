//! The kernel's OOM notifications for a container's memory cgroup (cgroup v1
//! `cgroup.event_control` with an eventfd), so that a dyno the kernel killed at its hard
//! memory limit can be reported as such (Heroku's R15) rather than as a plain crash.
//!
//! One small thread per container waits for the eventfd (with a timeout, so it also notices
//! the cgroup going away) and records the container's id when the kernel signals an OOM (a
//! signal while the cgroup exists, a count of two when it is gone: the removal signals too)
//! or the cgroup's `oom_kill` counter is non-zero. On hosts without the v1 memory controller nothing is watched.

use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Containers whose cgroup saw an OOM kill, until [`OomKills::take`] reports them.
#[derive(Debug, Default, Clone)]
pub(crate) struct OomKills(Arc<Mutex<HashSet<String>>>);

impl OomKills {
    /// True once if the container's memory cgroup had a process OOM-killed.
    pub(crate) fn take(&self, id: &str) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(id)
    }

    /// Starts watching the memory cgroup at `dir` for the container `id`.
    pub(crate) fn watch(&self, id: &str, dir: PathBuf) {
        let Ok(control) = File::open(dir.join("memory.oom_control")) else {
            return;
        };
        let Some(event) = new_eventfd() else {
            return;
        };
        let registration = format!("{} {}", event.as_raw_fd(), control.as_raw_fd());
        if let Err(error) = std::fs::write(dir.join("cgroup.event_control"), registration) {
            tracing::debug!(%error, id, "cannot register for a container's OOM events");
            return;
        }
        let kills = self.clone();
        let id = id.to_owned();
        let spawned = std::thread::Builder::new()
            .name("slipway-oom".into())
            .spawn(move || {
                let _control = control;
                let mut event = File::from(event);
                let record = || {
                    kills
                        .0
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(id.clone());
                };
                loop {
                    let signalled = wait_readable(&event, 1000);
                    // Each OOM and the cgroup's removal add 1 to the eventfd's counter.
                    let mut events = 0;
                    if signalled {
                        let mut counter = [0u8; 8];
                        if event.read_exact(&mut counter).is_err() {
                            return;
                        }
                        events = u64::from_ne_bytes(counter);
                    }
                    match oom_kill_count(&dir) {
                        // Gone: an OOM if more than the removal was signalled.
                        None => {
                            if events >= 2 {
                                record();
                            }
                            return;
                        }
                        // Still there: the signal was an OOM (the kill may not be counted
                        // yet), or one happened since.
                        Some(count) if count > 0 || events > 0 => record(),
                        Some(_) => {}
                    }
                }
            });
        if let Err(error) = spawned {
            tracing::debug!(%error, "cannot watch a container's OOM events");
        }
    }
}

/// `oom_kill N` of `memory.oom_control`; `None` once the cgroup is gone.
fn oom_kill_count(dir: &std::path::Path) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("memory.oom_control")).ok()?;
    Some(
        text.lines()
            .find_map(|line| line.strip_prefix("oom_kill "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0),
    )
}

#[allow(unsafe_code)]
fn new_eventfd() -> Option<OwnedFd> {
    // SAFETY: eventfd has no memory-safety preconditions; it returns a new descriptor or -1.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` is a freshly created descriptor that nothing else owns.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Waits up to `timeout_ms` for `file` to become readable.
#[allow(unsafe_code)]
fn wait_readable(file: &File, timeout_ms: i32) -> bool {
    let mut poll = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `poll` points to one valid pollfd for the duration of the call.
    let ready = unsafe { libc::poll(&mut poll, 1, timeout_ms) };
    ready > 0 && poll.revents & libc::POLLIN != 0
}
