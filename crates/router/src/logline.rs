//! The router's one log line per request, in Heroku's `key=value` format (reference §6.6).
//!
//! All formatting lives in [`format_request_log`] so the field order and quoting are pinned by
//! the table tests below.

use std::fmt::Write as _;
use std::time::Duration;

use http::StatusCode;

/// The H codes the router emits (reference §6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The app's web dynos crashed.
    H10,
    /// The app's backlog of in-flight requests is full (200 per web dyno).
    H11,
    /// No response headers within the request timeout.
    H12,
    /// The dyno closed the connection (or sent garbage) without a response.
    H13,
    /// The app has no web dynos running.
    H14,
    /// The dyno went silent mid-response for longer than the idle timeout.
    H15,
    /// The dyno's connection broke after a partial response.
    H18,
    /// The client sent a malformed request body (bad chunk).
    H26,
    /// The client went away before the response was complete.
    H27,
    /// The client went silent mid-request for longer than the idle timeout.
    H28,
    /// Connecting to every tried dyno timed out.
    H19,
    /// Connecting to every tried dyno was refused.
    H21,
    /// The app is in maintenance mode.
    H80,
    /// The app has no release yet.
    H81,
    /// Every dyno stayed quarantined for the whole connect budget.
    H99,
    /// No web dyno came up within 75 s of the request (a sleeping app that did not wake).
    H20,
}

/// `at=` of a router log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Info,
    Warning,
    Error,
}

impl ErrorCode {
    /// `H12`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::H10 => "H10",
            ErrorCode::H11 => "H11",
            ErrorCode::H12 => "H12",
            ErrorCode::H13 => "H13",
            ErrorCode::H14 => "H14",
            ErrorCode::H15 => "H15",
            ErrorCode::H18 => "H18",
            ErrorCode::H26 => "H26",
            ErrorCode::H27 => "H27",
            ErrorCode::H28 => "H28",
            ErrorCode::H19 => "H19",
            ErrorCode::H21 => "H21",
            ErrorCode::H80 => "H80",
            ErrorCode::H81 => "H81",
            ErrorCode::H99 => "H99",
            ErrorCode::H20 => "H20",
        }
    }

    /// The `desc="..."` Heroku logs with the code.
    pub fn desc(self) -> &'static str {
        match self {
            ErrorCode::H10 => "App crashed",
            ErrorCode::H11 => "Backlog too deep",
            ErrorCode::H12 => "Request timeout",
            ErrorCode::H13 => "Connection closed without response",
            ErrorCode::H14 => "No web dynos running",
            ErrorCode::H15 => "Idle connection",
            ErrorCode::H18 => "Server Request Interrupted",
            ErrorCode::H26 => "Request Error",
            ErrorCode::H27 => "Client Request Interrupted",
            ErrorCode::H28 => "Client Connection Idle",
            ErrorCode::H19 => "Backend connection timeout",
            ErrorCode::H21 => "Backend connection refused",
            ErrorCode::H80 => "Maintenance mode",
            ErrorCode::H81 => "Blank app",
            ErrorCode::H99 => "Platform error",
            ErrorCode::H20 => "App boot timeout",
        }
    }

    pub(crate) fn level(self) -> Level {
        match self {
            ErrorCode::H80 | ErrorCode::H81 => Level::Info,
            ErrorCode::H27 | ErrorCode::H28 => Level::Warning,
            _ => Level::Error,
        }
    }

    /// `sock=backend` for codes caused by the dyno's socket mid-response.
    pub(crate) fn sock(self) -> Option<&'static str> {
        match self {
            ErrorCode::H18 => Some("backend"),
            ErrorCode::H27 | ErrorCode::H28 => Some("client"),
            _ => None,
        }
    }

    /// The status the client gets when the router answers with this code.
    pub(crate) fn status(self) -> StatusCode {
        match self {
            // Heroku logs 499 ("client closed request"); nothing reaches the client.
            ErrorCode::H27 | ErrorCode::H28 => {
                StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST)
            }
            ErrorCode::H26 => StatusCode::BAD_REQUEST,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Everything a router log line says about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestLog {
    pub(crate) code: Option<ErrorCode>,
    pub(crate) method: String,
    /// Path and query as the client sent them.
    pub(crate) path: String,
    pub(crate) host: String,
    pub(crate) request_id: String,
    /// The `X-Forwarded-For` value sent to the dyno.
    pub(crate) fwd: String,
    /// `None` when no dyno was involved (logged as `dyno=`).
    pub(crate) dyno: Option<String>,
    pub(crate) connect: Option<Duration>,
    pub(crate) service: Option<Duration>,
    pub(crate) status: u16,
    /// Body bytes relayed from the dyno to the client (router error pages count 0).
    pub(crate) bytes: u64,
    /// `http`, or `https` for requests that came over TLS (HTTP/1.1 and HTTP/2 alike).
    pub(crate) protocol: &'static str,
}

/// Escapes a value for a `key="value"` field.
fn quoted(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A bare `key=value` value: anything that would break the line is replaced by `_`.
fn bare(out: &mut String, value: &str) {
    out.extend(value.chars().map(|c| {
        if c.is_whitespace() || c.is_control() || c == '"' {
            '_'
        } else {
            c
        }
    }));
}

fn millis(out: &mut String, value: Option<Duration>) {
    if let Some(duration) = value {
        let _ = write!(out, "{}ms", duration.as_millis());
    }
}

/// Formats the message of a `heroku[router]` line, e.g.
/// `at=info method=GET path="/" host=demo.localhost request_id=… fwd="127.0.0.1" dyno=web.1
/// connect=0ms service=3ms status=200 bytes=13 protocol=http`.
pub(crate) fn format_request_log(entry: &RequestLog) -> String {
    let mut out = String::with_capacity(256);
    let level = entry.code.map_or(Level::Info, ErrorCode::level);
    out.push_str(match level {
        Level::Info => "at=info",
        Level::Warning => "at=warning",
        Level::Error => "at=error",
    });
    if let Some(code) = entry.code {
        if let Some(sock) = code.sock() {
            let _ = write!(out, " sock={sock}");
        }
        let _ = write!(out, " code={} desc=", code.as_str());
        quoted(&mut out, code.desc());
    }
    out.push_str(" method=");
    bare(&mut out, &entry.method);
    out.push_str(" path=");
    quoted(&mut out, &entry.path);
    out.push_str(" host=");
    bare(&mut out, &entry.host);
    out.push_str(" request_id=");
    bare(&mut out, &entry.request_id);
    out.push_str(" fwd=");
    quoted(&mut out, &entry.fwd);
    out.push_str(" dyno=");
    if let Some(dyno) = &entry.dyno {
        bare(&mut out, dyno);
    }
    out.push_str(" connect=");
    millis(&mut out, entry.connect);
    out.push_str(" service=");
    millis(&mut out, entry.service);
    let _ = write!(
        out,
        " status={} bytes={} protocol={}",
        entry.status, entry.bytes, entry.protocol
    );
    out
}

#[cfg(test)]
mod tests;
