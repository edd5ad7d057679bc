//! The plumbing of attached containers ([`Runtime::start_attached`](crate::Runtime::start_attached)),
//! shared by both runtimes: a host pseudo-terminal or a pair of pipes, the child's ends of it,
//! and the caller's [`AttachedIo`] over the other ends.
//!
//! - [`Attach::Tty`]: a pty pair opened with `O_CLOEXEC` (so concurrently spawned children never
//!   inherit it) and sized as asked. The slave becomes the child's stdin, stdout and stderr;
//!   the caller reads and writes the master. Reading the master fails with `EIO` once every
//!   slave fd is closed (the child and whatever it spawned are gone): that is the output's end
//!   of file here.
//! - [`Attach::Pipes`]: one pipe for stdin (shutting the input down closes its write end, the
//!   child's end of input) and one for stdout and stderr together.
//!
//! Dropping the output early does not leave the child blocked on a full pipe or terminal: the
//! rest is drained and thrown away in the background until end of file, which also releases
//! the fd. The master of a terminal is kept open by the runtime until the child has exited, so
//! dropping [`AttachedIo`] is not a hang-up; [`AttachControl::hangup`] is.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::unix::pipe;

use crate::{Attach, AttachControl, AttachedIo};

/// The child's ends of one attachment: its stdin, stdout and stderr.
pub(crate) type ChildEnds = [OwnedFd; 3];

/// The caller's ends of one attachment.
pub(crate) struct Plumbing {
    pub(crate) input: Pin<Box<dyn AsyncWrite + Send>>,
    pub(crate) output: Pin<Box<dyn AsyncRead + Send>>,
    /// The terminal's master, for [`Attach::Tty`]: kept open by the runtime until the child
    /// has exited, and used to resize.
    pub(crate) master: Option<Arc<OwnedFd>>,
}

/// Whether the host terminal interprets what is typed (the process runtime: the child is the
/// terminal's own user) or passes every byte through (runc: the container has a terminal of
/// its own, which runc feeds from this one, and only that one may turn `0x03` into SIGINT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostTerminal {
    Cooked,
    Raw,
}

/// Opens the terminal or pipes for `attach`. Must be called within a Tokio runtime.
pub(crate) fn plumb(attach: Attach, host: HostTerminal) -> io::Result<(ChildEnds, Plumbing)> {
    match attach {
        Attach::Tty { cols, rows } => {
            use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
            let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
            grantpt(&master)?;
            unlockpt(&master)?;
            let name = ptsname(&master, Vec::new())?;
            let slave: OwnedFd = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NOCTTY)
                .open(std::ffi::OsStr::from_bytes(name.as_bytes()))?
                .into();
            if host == HostTerminal::Raw {
                let mut termios = rustix::termios::tcgetattr(&slave)?;
                termios.make_raw();
                rustix::termios::tcsetattr(
                    &slave,
                    rustix::termios::OptionalActions::Now,
                    &termios,
                )?;
            }
            set_size(&master, cols, rows)?;
            rustix::io::ioctl_fionbio(&master, true)?;
            let reader = pipe::Receiver::from_owned_fd_unchecked(master.try_clone()?)?;
            let writer = pipe::Sender::from_owned_fd_unchecked(master.try_clone()?)?;
            let child = [slave.try_clone()?, slave.try_clone()?, slave];
            let plumbing = Plumbing {
                input: Box::pin(writer),
                output: Box::pin(DrainOnDrop(Some(TtyOutput(reader)))),
                master: Some(Arc::new(master)),
            };
            Ok((child, plumbing))
        }
        Attach::Pipes => {
            let (stdin, input) = std::io::pipe()?;
            let (output, stdout) = std::io::pipe()?;
            let stdout: OwnedFd = stdout.into();
            let input = pipe::Sender::from_owned_fd(input.into())?;
            let output = pipe::Receiver::from_owned_fd(output.into())?;
            let child = [stdin.into(), stdout.try_clone()?, stdout];
            let plumbing = Plumbing {
                input: Box::pin(ClosingInput(Some(input))),
                output: Box::pin(DrainOnDrop(Some(output))),
                master: None,
            };
            Ok((child, plumbing))
        }
    }
}

/// Sets a terminal's size; the kernel sends SIGWINCH to its foreground process group.
pub(crate) fn set_size(master: impl AsFd, cols: u16, rows: u16) -> io::Result<()> {
    rustix::termios::tcsetwinsize(
        master,
        rustix::termios::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )?;
    Ok(())
}

/// util-linux's `setsid`, which starts a program in a session of its own and, with `--ctty`,
/// makes the terminal on its stdin the session's controlling terminal (this crate has no
/// unsafe code, so it cannot do that itself between fork and exec).
pub(crate) fn setsid_binary() -> io::Result<&'static std::path::Path> {
    ["/usr/bin/setsid", "/bin/setsid"]
        .into_iter()
        .map(std::path::Path::new)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "util-linux's setsid is not installed (looked for /usr/bin/setsid and /bin/setsid)",
            )
        })
}

/// coreutils' `env` and the arguments that make the program it runs start with every signal's
/// default disposition. A server started with `nohup`, or as a background job of a
/// non-interactive shell, has SIGHUP (and SIGINT, SIGQUIT) ignored, and an ignored signal stays
/// ignored across `exec` — through runc into the dyno, where a hung-up terminal or Ctrl-C would
/// then do nothing. This crate has no unsafe code to reset them between fork and exec.
pub const DEFAULT_SIGNALS: [&str; 2] = ["/usr/bin/env", "--default-signal"];

/// What a runtime does on [`AttachControl::hangup`].
pub(crate) type Hangup = Box<dyn Fn() -> io::Result<()> + Send + Sync>;

/// The [`AttachControl`] of both runtimes: resizing through the master (a no-op without a
/// terminal), hanging up as the runtime says.
pub(crate) struct Control {
    pub(crate) master: Option<Arc<OwnedFd>>,
    pub(crate) hangup: Hangup,
}

impl AttachControl for Control {
    fn resize(&self, cols: u16, rows: u16) -> io::Result<()> {
        match &self.master {
            Some(master) => set_size(master.as_fd(), cols, rows),
            None => Ok(()),
        }
    }

    fn hangup(&self) -> io::Result<()> {
        (self.hangup)()
    }
}

impl Plumbing {
    /// The caller's [`AttachedIo`]: these streams, resizing through the master, hanging up as
    /// the runtime says.
    pub(crate) fn into_attached(self, hangup: Hangup) -> AttachedIo {
        AttachedIo {
            input: self.input,
            output: self.output,
            control: Arc::new(Control {
                master: self.master,
                hangup,
            }),
        }
    }
}

/// The master side of a terminal as a reader: `EIO` (no slave left) is end of file.
pub struct TtyOutput(pipe::Receiver);

impl TtyOutput {
    /// Reads the terminal whose master is `master`.
    pub fn new(master: pipe::Receiver) -> TtyOutput {
        TtyOutput(master)
    }
}

impl AsyncRead for TtyOutput {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.0).poll_read(cx, buf) {
            Poll::Ready(Err(e)) if e.raw_os_error() == Some(libc::EIO) => Poll::Ready(Ok(())),
            other => other,
        }
    }
}

/// The write end of a child's input; shutting it down closes it, the child's end of input.
pub struct ClosingInput<W>(Option<W>);

impl<W> ClosingInput<W> {
    /// Writes to `input` until shut down.
    pub fn new(input: W) -> ClosingInput<W> {
        ClosingInput(Some(input))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for ClosingInput<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.0.as_mut() {
            Some(sender) => Pin::new(sender).poll_write(cx, buf),
            None => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the input was shut down",
            ))),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.0.as_mut() {
            Some(sender) => Pin::new(sender).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0 = None;
        Poll::Ready(Ok(()))
    }
}

/// A reader that, when dropped before its end, keeps reading (and discarding) in the
/// background until end of file, so the writer never blocks on a full pipe or terminal.
struct DrainOnDrop<R: AsyncRead + Send + Unpin + 'static>(Option<R>);

impl<R: AsyncRead + Send + Unpin + 'static> AsyncRead for DrainOnDrop<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let Some(reader) = self.0.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let before = buf.filled().len();
        let poll = Pin::new(reader).poll_read(cx, buf);
        // At end of file (or a read error) there is nothing left to drain.
        if matches!(&poll, Poll::Ready(Err(_)))
            || matches!(&poll, Poll::Ready(Ok(())) if buf.filled().len() == before && buf.remaining() > 0)
        {
            self.0 = None;
        }
        poll
    }
}

impl<R: AsyncRead + Send + Unpin + 'static> Drop for DrainOnDrop<R> {
    fn drop(&mut self) {
        let Some(mut reader) = self.0.take() else {
            return;
        };
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = tokio::io::copy(&mut reader, &mut tokio::io::sink()).await;
            });
        }
    }
}

#[cfg(test)]
mod tests;
