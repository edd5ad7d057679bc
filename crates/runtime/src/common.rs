//! Helpers shared by the runtimes: spec validation, draining a child's output pipes into an
//! [`OutputSink`] line by line, and converting process exit statuses.

use std::path::{Component, Path};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::{ContainerSpec, ExitStatus, OutputSink, RuntimeError, Stream};

/// Longest container id accepted (runc and cgroup paths stay short and predictable).
pub(crate) const MAX_ID_LEN: usize = 128;

/// Checks an id: 1..=[`MAX_ID_LEN`] characters from `[A-Za-z0-9_.-]`, not `.` or `..`.
pub(crate) fn validate_id(id: &str) -> Result<(), RuntimeError> {
    let reason = if id.is_empty() {
        Some("the id is empty".to_string())
    } else if id.len() > MAX_ID_LEN {
        Some(format!("the id is longer than {MAX_ID_LEN} characters"))
    } else if id == "." || id == ".." {
        Some("the id must not be `.` or `..`".to_string())
    } else if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        Some("the id may only contain the characters [A-Za-z0-9_.-]".to_string())
    } else {
        None
    };
    match reason {
        Some(reason) => Err(RuntimeError::InvalidSpec {
            id: id.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// True for an absolute path without `.`/`..` components.
pub(crate) fn is_clean_absolute(path: &Path) -> bool {
    path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
}

/// Validates everything both runtimes rely on: id, non-empty args, absolute clean paths,
/// existing `app_dir`/bind sources.
pub(crate) fn validate_spec(spec: &ContainerSpec) -> Result<(), RuntimeError> {
    validate_id(&spec.id)?;
    let invalid = |reason: String| RuntimeError::InvalidSpec {
        id: spec.id.clone(),
        reason,
    };
    if spec.args.is_empty() {
        return Err(invalid(
            "args is empty: give at least the program to run".into(),
        ));
    }
    if spec.args.iter().any(|a| a.contains('\0')) {
        return Err(invalid("an argument contains a NUL byte".into()));
    }
    for (k, v) in &spec.env {
        if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
            return Err(invalid(format!(
                "environment variable name {k:?} is empty or contains `=` or NUL, or its value contains NUL"
            )));
        }
    }
    if !is_clean_absolute(Path::new(&spec.cwd)) {
        return Err(invalid(format!(
            "cwd {:?} must be an absolute path without `.`/`..`",
            spec.cwd
        )));
    }
    if let Some(dir) = &spec.app_dir {
        if !is_clean_absolute(dir) {
            return Err(invalid(format!(
                "app_dir {} must be an absolute path without `.`/`..`",
                dir.display()
            )));
        }
        if !dir.is_dir() {
            return Err(invalid(format!(
                "app_dir {} does not exist or is not a directory",
                dir.display()
            )));
        }
    }
    if let crate::Rootfs::Dir(dir) = &spec.rootfs {
        if !is_clean_absolute(dir) {
            return Err(invalid(format!(
                "rootfs {} must be an absolute path without `.`/`..`",
                dir.display()
            )));
        }
        if !dir.join("usr").is_dir() {
            return Err(invalid(format!(
                "rootfs {} is not a stack's root filesystem (it has no usr directory); build \
                 the stack again",
                dir.display()
            )));
        }
    }
    for bind in &spec.binds {
        if !is_clean_absolute(&bind.source) {
            return Err(invalid(format!(
                "bind source {} must be an absolute path without `.`/`..`",
                bind.source.display()
            )));
        }
        if !bind.source.exists() {
            return Err(invalid(format!(
                "bind source {} does not exist",
                bind.source.display()
            )));
        }
        if !is_clean_absolute(Path::new(&bind.target)) || bind.target == "/" {
            return Err(invalid(format!(
                "bind target {:?} must be an absolute path without `.`/`..` other than `/`",
                bind.target
            )));
        }
    }
    Ok(())
}

/// Converts a host process exit status.
pub(crate) fn exit_status_from_std(status: std::process::ExitStatus) -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    ExitStatus {
        code: status.code(),
        signal: status.signal(),
    }
}

/// Waits until the exit status has been published; `None` if the publisher went away.
pub(crate) async fn wait_exit(
    rx: &mut tokio::sync::watch::Receiver<Option<ExitStatus>>,
) -> Option<ExitStatus> {
    let status = match rx.wait_for(|s| s.is_some()).await {
        Ok(status) => *status,
        Err(_) => None,
    };
    status
}

/// Lines held back until the caller knows the container really started (see [`OutputGate`]).
type Held = Vec<(Stream, String)>;

/// Routes output lines to the sink, optionally holding them back first.
///
/// `runc run` writes its own fatal errors to the same stderr as the container. While the gate
/// is closed lines are buffered; [`OutputGate::open`] flushes them in order to the sink once the
/// container is known to have started, while a failed start turns them into the error message.
#[derive(Clone)]
pub(crate) struct OutputGate {
    sink: OutputSink,
    held: Arc<Mutex<Option<Held>>>,
}

impl OutputGate {
    /// A gate that forwards every line immediately.
    pub(crate) fn open_now(sink: OutputSink) -> Self {
        OutputGate {
            sink,
            held: Arc::new(Mutex::new(None)),
        }
    }

    /// A gate that holds lines back until [`OutputGate::open`].
    pub(crate) fn closed(sink: OutputSink) -> Self {
        OutputGate {
            sink,
            held: Arc::new(Mutex::new(Some(Vec::new()))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn emit(&self, stream: Stream, line: String) {
        {
            let mut held = self.lock();
            if let Some(held) = held.as_mut() {
                held.push((stream, line));
                return;
            }
        }
        (self.sink)(stream, &line);
    }

    /// Flushes held lines to the sink and forwards all later ones directly.
    pub(crate) fn open(&self) {
        // Flush while holding the lock so concurrently arriving lines queue behind the
        // held ones and order is preserved.
        let mut held = self.lock();
        if let Some(lines) = held.take() {
            for (stream, line) in lines {
                (self.sink)(stream, &line);
            }
        }
    }

    /// The held stderr lines, joined (used as the error message of a failed start).
    pub(crate) fn held_stderr(&self) -> String {
        let held = self.lock();
        held.as_ref()
            .map(|lines| {
                lines
                    .iter()
                    .filter(|(s, _)| *s == Stream::Stderr)
                    .map(|(_, l)| l.as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    }
}

/// Longest line forwarded as one: a longer line is split into chunks of at most this many
/// bytes, as Heroku's logplex does (10,000 bytes). It also bounds the memory one output stream
/// holds, whatever a tenant writes: `pump_lines` never buffers more than this plus its read
/// buffer.
pub(crate) const MAX_LINE_BYTES: usize = 10_000;

/// Reads `reader` line by line (lossy UTF-8, trailing `\n`/`\r\n` stripped) into the gate
/// until EOF or a read error. A line longer than [`MAX_LINE_BYTES`] is emitted in chunks of at
/// most that size (split at a UTF-8 character boundary when the bytes allow), before more is
/// buffered, so memory per stream stays bounded even for input without newlines.
pub(crate) async fn pump_lines<R: AsyncRead + Unpin>(reader: R, stream: Stream, gate: OutputGate) {
    let mut reader = BufReader::with_capacity(8 * 1024, reader);
    let mut line: Vec<u8> = Vec::with_capacity(256);
    loop {
        let chunk = match reader.fill_buf().await {
            Ok([]) => break,
            Ok(chunk) => chunk,
            Err(e) => {
                tracing::debug!(error = %e, ?stream, "reading container output failed");
                break;
            }
        };
        let room = MAX_LINE_BYTES - line.len();
        let window = &chunk[..chunk.len().min(room)];
        match window.iter().position(|&b| b == b'\n') {
            Some(newline) => {
                line.extend_from_slice(&window[..newline]);
                reader.consume(newline + 1);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                gate.emit(stream, String::from_utf8_lossy(&line).into_owned());
                line.clear();
            }
            None => {
                let taken = window.len();
                line.extend_from_slice(window);
                reader.consume(taken);
                if line.len() >= MAX_LINE_BYTES {
                    let cut = utf8_cut(&line);
                    gate.emit(stream, String::from_utf8_lossy(&line[..cut]).into_owned());
                    line.drain(..cut);
                }
            }
        }
    }
    if !line.is_empty() {
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        gate.emit(stream, String::from_utf8_lossy(&line).into_owned());
    }
}

/// Where to split a full line buffer: after its last complete UTF-8 character when the tail
/// is an incomplete one (at most 3 bytes held back), else at its end.
fn utf8_cut(line: &[u8]) -> usize {
    match std::str::from_utf8(line) {
        Ok(_) => line.len(),
        Err(error) if error.error_len().is_none() && error.valid_up_to() > 0 => error.valid_up_to(),
        Err(_) => line.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "slipway.demo.web.1.3f2a9c", "A-b_c.9"] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        let long = "x".repeat(MAX_ID_LEN + 1);
        for bad in ["", ".", "..", "a/b", "a b", "ä", "a\n", long.as_str()] {
            assert!(
                matches!(validate_id(bad), Err(RuntimeError::InvalidSpec { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn clean_absolute() {
        for (p, ok) in [
            ("/app", true),
            ("/", true),
            ("app", false),
            ("/app/../etc", false),
            ("/app/./x", true), // `Path::components` normalises `.` away
            ("", false),
        ] {
            assert_eq!(is_clean_absolute(Path::new(p)), ok, "{p}");
        }
    }

    #[tokio::test]
    async fn pump_strips_newlines_and_is_lossy() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l = lines.clone();
        let sink: OutputSink = Arc::new(move |s, line: &str| {
            l.lock().unwrap().push((s, line.to_string()));
        });
        let input: &[u8] = b"one\r\ntwo\n\xffthree";
        pump_lines(input, Stream::Stdout, OutputGate::open_now(sink)).await;
        assert_eq!(
            *lines.lock().unwrap(),
            vec![
                (Stream::Stdout, "one".to_string()),
                (Stream::Stdout, "two".to_string()),
                (Stream::Stdout, "\u{fffd}three".to_string()),
            ]
        );
    }

    /// A reader that yields `total` bytes of `b'x'` without a newline, in 64 KiB reads.
    struct Endless {
        left: usize,
    }

    impl AsyncRead for Endless {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let n = self.left.min(buf.remaining()).min(64 * 1024);
            buf.put_slice(&vec![b'x'; n]);
            self.left -= n;
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn pump_splits_a_50_mb_line_into_bounded_chunks() {
        let total = 50 * 1024 * 1024;
        let stats = Arc::new(Mutex::new((0usize, 0usize, 0usize))); // (lines, bytes, longest)
        let s = stats.clone();
        let sink: OutputSink = Arc::new(move |_, line: &str| {
            let mut s = s.lock().unwrap();
            s.0 += 1;
            s.1 += line.len();
            s.2 = s.2.max(line.len());
        });
        pump_lines(
            Endless { left: total },
            Stream::Stdout,
            OutputGate::open_now(sink),
        )
        .await;
        let (lines, bytes, longest) = *stats.lock().unwrap();
        assert_eq!(bytes, total, "no byte is lost");
        assert_eq!(longest, MAX_LINE_BYTES);
        assert_eq!(lines, total.div_ceil(MAX_LINE_BYTES));
    }

    #[tokio::test]
    async fn pump_splits_long_lines_at_character_boundaries() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l = lines.clone();
        let sink: OutputSink = Arc::new(move |_, line: &str| {
            l.lock().unwrap().push(line.to_string());
        });
        // 9,999 ASCII bytes then a 3-byte character: the character must not be cut.
        let mut input = vec![b'a'; MAX_LINE_BYTES - 1];
        input.extend_from_slice("€".as_bytes());
        input.extend_from_slice(b"tail\nnext\n");
        pump_lines(&input[..], Stream::Stdout, OutputGate::open_now(sink)).await;
        let lines = lines.lock().unwrap();
        assert_eq!(
            lines.len(),
            3,
            "{:?}",
            lines.iter().map(|l| l.len()).collect::<Vec<_>>()
        );
        assert_eq!(lines[0], "a".repeat(MAX_LINE_BYTES - 1));
        assert_eq!(lines[1], "€tail");
        assert_eq!(lines[2], "next");
    }

    #[test]
    fn gate_holds_until_open() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l = lines.clone();
        let sink: OutputSink = Arc::new(move |s, line: &str| {
            l.lock().unwrap().push((s, line.to_string()));
        });
        let gate = OutputGate::closed(sink);
        gate.emit(Stream::Stdout, "a".into());
        gate.emit(Stream::Stderr, "b".into());
        assert!(lines.lock().unwrap().is_empty());
        assert_eq!(gate.held_stderr(), "b");
        gate.open();
        gate.emit(Stream::Stdout, "c".into());
        assert_eq!(lines.lock().unwrap().len(), 3);
        assert_eq!(gate.held_stderr(), "");
    }
}
