//! A [`Sessions`] whose one-off dynos are local processes (`sh -c COMMAND`) on a real
//! pseudo-terminal or real pipes: a legitimate stand-in for the runtime's attached containers
//! in tests of the listener and of `slipway run`, where no platform is running.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use slipway_runtime::{
    Attach, AttachControl, AttachedIo, ClosingInput, ExitStatus, TtyOutput, DEFAULT_SIGNALS,
};
use tokio::io::AsyncWrite;
use tokio::net::unix::pipe;

use crate::session::{ClaimError, Session, Sessions};

/// Secrets waiting for a client, each for a local command.
pub struct LocalSessions {
    waiting: Mutex<HashMap<String, Waiting>>,
    hangups: Arc<AtomicUsize>,
    window: Duration,
}

struct Waiting {
    command: String,
    attach: Attach,
    idle_timeout: Duration,
    created: Instant,
    used: bool,
}

impl LocalSessions {
    /// Sessions whose secrets are good for `window` after [`LocalSessions::add`].
    pub fn new(window: Duration) -> Arc<LocalSessions> {
        Arc::new(LocalSessions {
            waiting: Mutex::default(),
            hangups: Arc::default(),
            window,
        })
    }

    /// Makes `secret` start `sh -c command`, attached as `attach`, ended after an hour idle.
    pub fn add(&self, secret: &str, command: &str, attach: Attach) {
        self.add_with_idle(secret, command, attach, Duration::from_secs(3600));
    }

    /// As [`LocalSessions::add`], with its own idle timeout.
    pub fn add_with_idle(&self, secret: &str, command: &str, attach: Attach, idle: Duration) {
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                secret.to_owned(),
                Waiting {
                    command: command.to_owned(),
                    attach,
                    idle_timeout: idle,
                    created: Instant::now(),
                    used: false,
                },
            );
    }

    /// How many times a session was hung up (its client went away, or it idled out).
    pub fn hangups(&self) -> usize {
        self.hangups.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl Sessions for LocalSessions {
    async fn claim(&self, secret: &str) -> Result<Session, ClaimError> {
        let (command, attach, idle_timeout) = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            let entry = waiting.get_mut(secret).ok_or(ClaimError::Unknown)?;
            if entry.used {
                return Err(ClaimError::AlreadyUsed);
            }
            if entry.created.elapsed() > self.window {
                return Err(ClaimError::Expired);
            }
            entry.used = true;
            (entry.command.clone(), entry.attach, entry.idle_timeout)
        };
        let (io, exited) = spawn(&command, attach, self.hangups.clone())
            .map_err(|e| ClaimError::Failed(format!("could not start the process: {e}")))?;
        Ok(Session {
            dyno: "run.1".to_owned(),
            io,
            attach,
            exited,
            idle_timeout,
        })
    }
}

type Exited = tokio::sync::oneshot::Receiver<ExitStatus>;

fn spawn(
    command: &str,
    attach: Attach,
    hangups: Arc<AtomicUsize>,
) -> std::io::Result<(AttachedIo, Exited)> {
    // Every signal at its default disposition, as the runtimes start dynos: a test run under
    // `nohup` or in the background would otherwise hand the shell an ignored SIGHUP/SIGINT.
    let [env, reset] = DEFAULT_SIGNALS;
    let mut cmd = tokio::process::Command::new(env);
    cmd.arg(reset).arg("/bin/sh").arg("-c").arg(command);
    let (io_parts, master) = match attach {
        Attach::Tty { cols, rows } => {
            let size = nix::pty::Winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            let pty = nix::pty::openpty(Some(&size), None)?;
            cmd.stdin(Stdio::from(pty.slave.try_clone()?))
                .stdout(Stdio::from(pty.slave.try_clone()?))
                .stderr(Stdio::from(pty.slave));
            controlling_terminal(&mut cmd);
            let input = pipe::Sender::from_owned_fd_unchecked(pty.master.try_clone()?)?;
            let output = pipe::Receiver::from_owned_fd_unchecked(pty.master.try_clone()?)?;
            let input: Pin<Box<dyn AsyncWrite + Send>> = Box::pin(input);
            ((Some(input), output), Some(pty.master))
        }
        Attach::Pipes => {
            let (read, write) = nix::unistd::pipe()?;
            cmd.stdin(Stdio::piped())
                .stdout(Stdio::from(write.try_clone()?))
                .stderr(Stdio::from(write))
                .process_group(0);
            ((None, pipe::Receiver::from_owned_fd(read)?), None)
        }
    };
    let mut child = cmd.spawn()?;
    // The parent's copies of the child's ends go with the command, so the output ends
    // when the child's last copy closes.
    drop(cmd);
    let pid = child.id().unwrap_or(0) as i32;
    let (input, output) = io_parts;
    let input = match (input, child.stdin.take()) {
        (Some(input), _) => input,
        (None, Some(stdin)) => Box::pin(ClosingInput::new(stdin)),
        (None, None) => return Err(std::io::Error::other("the child has no stdin")),
    };
    let (tx, exited) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        if let Ok(status) = child.wait().await {
            let _ = tx.send(ExitStatus {
                code: status.code(),
                signal: status.signal(),
            });
        }
    });
    let io = AttachedIo {
        input,
        output: Box::pin(TtyOutput::new(output)),
        control: Arc::new(LocalControl {
            master,
            pid,
            hangups,
        }),
    };
    Ok((io, exited))
}

/// Makes the child a session leader with the pty (its stdin) as controlling terminal, so
/// Ctrl-C and SIGWINCH reach it as they would a dyno's shell.
#[allow(unsafe_code)]
fn controlling_terminal(cmd: &mut tokio::process::Command) {
    // SAFETY: the closure only makes two system calls, both async-signal-safe, and borrows
    // descriptor 0, which the child's stdin (the pty) occupies by then.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::setsid()?;
            rustix::process::ioctl_tiocsctty(std::os::fd::BorrowedFd::borrow_raw(0))?;
            Ok(())
        });
    }
}

struct LocalControl {
    master: Option<OwnedFd>,
    pid: i32,
    hangups: Arc<AtomicUsize>,
}

impl AttachControl for LocalControl {
    fn resize(&self, cols: u16, rows: u16) -> std::io::Result<()> {
        if let Some(master) = &self.master {
            let size = rustix::termios::Winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            rustix::termios::tcsetwinsize(master, size)?;
        }
        Ok(())
    }

    fn hangup(&self) -> std::io::Result<()> {
        self.hangups.fetch_add(1, Ordering::SeqCst);
        let group = nix::unistd::Pid::from_raw(self.pid);
        match nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGHUP) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
