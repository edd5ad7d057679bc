//! The wire formats of drains: RFC 5424 syslog messages and RFC 6587 octet-counted framing.
//!
//! Syslog drains (`syslog://`, `syslog+tls://`) get full RFC 5424 messages whose HOSTNAME is the
//! drain token: `<190>1 2026-11-26T12:00:00.123456+00:00 d.<uuid> app web.1 - - hello`.
//! HTTP drains get Logplex's `application/logplex-1` flavour, whose HOSTNAME is the literal
//! `host` and which has a single `-` (MSGID) and no STRUCTURED-DATA:
//! `<190>1 2026-11-26T12:00:00.123456+00:00 host app web.1 - hello`.
//! Both are sent octet-counted: `LEN SP MESSAGE`, LEN being the byte length of MESSAGE.

use std::io::Write as _;

use crate::line::{LogLine, Source};

/// Priority of lines written by dynos: facility local7 (23), severity info (6).
pub const PRI_APP: u8 = 190;
/// Priority of the router's access lines: facility local3 (19), severity info (6).
pub const PRI_ROUTER: u8 = 158;
/// Priority of other platform lines (`heroku[web.1]`, `heroku[api]`, L10/L14 errors):
/// facility syslog (5), severity notice (5).
pub const PRI_PLATFORM: u8 = 45;

/// The syslog PRI Heroku gives a line: `<190>` for `app`, `<158>` for `heroku[router]`, `<45>`
/// for other `heroku` lines.
pub fn priority(line: &LogLine) -> u8 {
    match line.source {
        Source::App => PRI_APP,
        Source::Heroku if line.process == "router" => PRI_ROUTER,
        Source::Heroku => PRI_PLATFORM,
    }
}

/// A field of the header must be printable US-ASCII without spaces; anything else becomes `-`
/// (RFC 5424's NILVALUE) so that the header stays parseable.
fn header_field(value: &str) -> &str {
    if value.is_empty() || !value.bytes().all(|b| (33..=126).contains(&b)) {
        "-"
    } else {
        value
    }
}

fn write_header(out: &mut Vec<u8>, line: &LogLine, hostname: &str) {
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "<{}>1 {} {} {} {} -",
        priority(line),
        line.formatted_timestamp(),
        header_field(hostname),
        line.source.as_str(),
        header_field(&line.process),
    );
}

/// The RFC 5424 message a syslog drain sends: HOSTNAME is the drain token, APP-NAME the source,
/// PROCID the dyno, then `- -` (no MSGID, no STRUCTURED-DATA) and the message.
pub fn syslog_message(line: &LogLine, token: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(80 + line.message.len());
    write_header(&mut out, line, token);
    out.extend_from_slice(b" - ");
    out.extend_from_slice(line.message.as_bytes());
    out
}

/// The message an HTTP drain sends inside an `application/logplex-1` body: HOSTNAME `host`, a
/// single `-` and the message (Logplex's format, which has no STRUCTURED-DATA field).
pub fn logplex_message(line: &LogLine) -> Vec<u8> {
    let mut out = Vec::with_capacity(80 + line.message.len());
    write_header(&mut out, line, "host");
    out.push(b' ');
    out.extend_from_slice(line.message.as_bytes());
    out
}

/// Appends `message` to `out` octet-counted (RFC 6587 §3.4.1): its byte length in decimal, a
/// space, then the message itself.
pub fn write_octet_counted(out: &mut Vec<u8>, message: &[u8]) {
    let _ = write!(out, "{} ", message.len());
    out.extend_from_slice(message);
}

/// Why a buffer is not a sequence of octet-counted frames.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("frame at byte {offset}: expected a decimal length followed by a space")]
    BadLength { offset: usize },
    #[error(
        "frame at byte {offset} announces {length} bytes but only {available} remain; \
         the sender cut the frame short"
    )]
    Truncated {
        offset: usize,
        length: usize,
        available: usize,
    },
}

/// Splits a buffer of octet-counted frames (an `application/logplex-1` body, or what a syslog
/// drain wrote) into its messages.
pub fn split_octet_counted(mut data: &[u8]) -> Result<Vec<&[u8]>, FramingError> {
    let mut frames = Vec::new();
    let mut offset = 0;
    while !data.is_empty() {
        let digits = data.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 9 || data.get(digits) != Some(&b' ') {
            return Err(FramingError::BadLength { offset });
        }
        // At most 9 ASCII digits: always valid UTF-8 and within usize.
        let length: usize = std::str::from_utf8(&data[..digits])
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or(FramingError::BadLength { offset })?;
        let start = digits + 1;
        let available = data.len() - start;
        if length > available {
            return Err(FramingError::Truncated {
                offset,
                length,
                available,
            });
        }
        frames.push(&data[start..start + length]);
        data = &data[start + length..];
        offset += start + length;
    }
    Ok(frames)
}
