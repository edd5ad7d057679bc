//! Reading a log session's `logplex_url`: Server-Sent Events (what the heroku CLI expects
//! and Slipway serves) or plain text, printed line by line as it arrives.

use std::io::Write;
use std::time::Duration;

use futures::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::StatusCode;

#[cfg(test)]
mod tests;

/// How long to wait before reconnecting a tail whose stream ended, unless the server
/// sent `retry:`. Same as EventSource's default.
const DEFAULT_RECONNECT: Duration = Duration::from_secs(3);

/// Why streaming logs stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum LogStreamError {
    #[error("Logs stream failed with HTTP {status} from {url}")]
    Status { status: StatusCode, url: String },
    #[error("Log stream timed out. Please try again.")]
    Expired,
    #[error("Could not read the log stream at {url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("Could not write logs to the output: {0}")]
    Output(#[from] std::io::Error),
}

/// One dispatched Server-Sent Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    pub(crate) event: Option<String>,
    pub(crate) data: String,
}

/// An incremental Server-Sent Events parser (the subset EventSource implements: `data`,
/// `event`, `id`, `retry`, comments), fed arbitrary byte chunks.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    /// SSE is a line protocol: the parser reads what the splitter completes.
    lines: LineSplitter,
    data: Option<String>,
    event: Option<String>,
    pub(crate) last_event_id: Option<String>,
    pub(crate) retry: Option<Duration>,
}

impl SseParser {
    /// Consumes a chunk and returns the events it completed.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let lines = self.lines.feed(chunk);
        lines.iter().filter_map(|line| self.line(line)).collect()
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let data = self.data.take()?;
            let event = self.event.take();
            return Some(SseEvent {
                event,
                data: data.strip_suffix('\n').unwrap_or(&data).to_owned(),
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => {
                let data = self.data.get_or_insert_with(String::new);
                data.push_str(value);
                data.push('\n');
            }
            "event" => self.event = Some(value.to_owned()),
            "id" => self.last_event_id = Some(value.to_owned()),
            "retry" => {
                if let Ok(ms) = value.parse() {
                    self.retry = Some(Duration::from_millis(ms));
                }
            }
            _ => {}
        }
        None
    }
}

/// The lines of an event to print: unnamed (`message`) events only, data trimmed and split
/// on newlines with blank lines dropped, as the heroku CLI does.
pub(crate) fn event_lines(event: &SseEvent) -> Vec<&str> {
    match event.event.as_deref() {
        None | Some("message") | Some("") => event
            .data
            .trim()
            .split('\n')
            .map(|line| line.trim_end_matches('\r'))
            .filter(|line| !line.is_empty())
            .collect(),
        Some(_) => Vec::new(),
    }
}

/// Splits a plain-text stream into lines across chunk boundaries.
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Consumes a chunk and returns the complete lines in it (without `\n`/`\r\n`).
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(chunk);
        let mut lines = Vec::new();
        while let Some(newline) = self.pending.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = self.pending.drain(..=newline).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            lines.push(String::from_utf8_lossy(&line).into_owned());
        }
        lines
    }

    /// The unterminated last line, if any, at end of stream.
    pub(crate) fn finish(self) -> Option<String> {
        (!self.pending.is_empty()).then(|| String::from_utf8_lossy(&self.pending).into_owned())
    }
}

/// GETs `url` (no credentials: the URL is the capability) and prints every log line to
/// `out` as it arrives. With `tail`, an SSE stream that ends is reopened with
/// `Last-Event-ID` until the server answers 404/403 (session expired) or the user presses
/// Ctrl-C.
pub(crate) async fn stream_logs(
    http: &reqwest::Client,
    url: &str,
    tail: bool,
    out: &mut dyn Write,
) -> Result<(), LogStreamError> {
    let transport = |e: reqwest::Error| LogStreamError::Transport {
        url: url.to_owned(),
        reason: crate::client::root_cause(&e),
    };
    let mut parser = SseParser::default();
    let mut reconnecting = false;
    loop {
        let mut request = http
            .get(url)
            .header(ACCEPT, "text/event-stream, text/plain;q=0.9");
        if let Some(id) = &parser.last_event_id {
            request = request.header("Last-Event-ID", id.as_str());
        }
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        if reconnecting && matches!(status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN) {
            return Err(LogStreamError::Expired);
        }
        if !status.is_success() {
            return Err(LogStreamError::Status {
                status,
                url: url.to_owned(),
            });
        }
        let is_sse = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let mut body = response.bytes_stream();
        let mut splitter = LineSplitter::default();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(transport)?;
            if is_sse {
                for event in parser.feed(&chunk) {
                    for line in event_lines(&event) {
                        writeln!(out, "{line}")?;
                    }
                }
            } else {
                for line in splitter.feed(&chunk) {
                    writeln!(out, "{line}")?;
                }
            }
            out.flush()?;
        }
        if let Some(rest) = splitter.finish() {
            writeln!(out, "{rest}")?;
            out.flush()?;
        }
        if !(tail && is_sse) {
            return Ok(());
        }
        reconnecting = true;
        tokio::time::sleep(parser.retry.unwrap_or(DEFAULT_RECONNECT)).await;
    }
}
