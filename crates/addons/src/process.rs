//! Keeps one server process running: started as an unprivileged user, restarted with a
//! backoff when it dies, stopped with its own graceful signal when the platform stops.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::process::Command;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The first restart waits this long; each quick death doubles it up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A process that ran this long before dying restarts with the first backoff again.
const HEALTHY_RUN: Duration = Duration::from_secs(60);
/// How long a graceful stop may take before the process is killed.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// How to run one server.
#[derive(Debug, Clone)]
pub(crate) struct ProcessSpec {
    /// For log lines: `postgres`, `redis redis_curved_1234`.
    pub(crate) what: String,
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    /// Run as this uid and gid (none when the platform itself is unprivileged).
    pub(crate) user: Option<(u32, u32)>,
    /// The server's stdout and stderr are appended here.
    pub(crate) log: PathBuf,
    /// The signal that asks for a clean, durable shutdown.
    pub(crate) stop_signal: Signal,
}

/// A running supervisor; [`Supervised::stop`] ends it and its process.
#[derive(Debug)]
pub(crate) struct Supervised {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Supervised {
    pub(crate) fn spawn(spec: ProcessSpec) -> Supervised {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(supervise(spec, stopped));
        Supervised { stop, task }
    }

    /// Stops the process gracefully (killed after [`STOP_GRACE`]) and waits for it.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Whether the supervisor still runs (it ends only when stopped).
    pub(crate) fn is_running(&self) -> bool {
        !self.task.is_finished()
    }
}

fn command(spec: &ProcessSpec) -> std::io::Result<Command> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)?;
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .kill_on_drop(true);
    if let Some((uid, gid)) = spec.user {
        cmd.uid(uid).gid(gid);
    }
    Ok(cmd)
}

async fn supervise(spec: ProcessSpec, mut stopped: watch::Receiver<bool>) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        if *stopped.borrow() {
            return;
        }
        let started = tokio::time::Instant::now();
        let child = command(&spec).and_then(|mut cmd| cmd.spawn());
        let mut child = match child {
            Ok(child) => child,
            Err(error) => {
                tracing::error!(server = %spec.what, %error, "cannot start the add-on server; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stopped.changed() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        tokio::select! {
            status = child.wait() => {
                tracing::warn!(server = %spec.what, ?status, "add-on server exited; restarting");
                if started.elapsed() >= HEALTHY_RUN {
                    backoff = FIRST_BACKOFF;
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stopped.changed() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            _ = stopped.changed() => {
                if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), spec.stop_signal);
                }
                if tokio::time::timeout(STOP_GRACE, child.wait()).await.is_err() {
                    tracing::warn!(server = %spec.what, "add-on server did not stop in time; killing it");
                    let _ = child.kill().await;
                }
                return;
            }
        }
    }
}
