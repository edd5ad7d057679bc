//! The rendezvous listener's Slipway mode: the small framed protocol `slipway run` speaks to
//! a one-off dyno, as pure encode/decode functions shared by the CLI and the listener.
//!
//! The real `heroku` CLI sends `SECRET\r\n` and then raw bytes. `slipway run` sends
//! `SECRET slipway/1\r\n` instead (a space never occurs in a URL's path or query, so the two
//! first lines cannot be confused), and from then on both sides speak frames: one tag byte,
//! a big-endian `u32` payload length, then the payload (at most [`MAX_PAYLOAD`] bytes).
//! Framing is what lets a window resize, the end of input and the process's exit status
//! travel next to the terminal's bytes without any byte value being reserved.

#[cfg(test)]
mod tests;

/// What `slipway run` appends to the secret on the first line to choose Slipway mode.
pub const SLIPWAY_MODE_SUFFIX: &str = " slipway/1";

/// The largest payload a frame may carry; a longer one is a protocol error, so a hostile
/// peer cannot make the other side buffer without bound.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// Bytes before the payload: the tag and the length.
pub const HEADER_LEN: usize = 5;

const TAG_DATA: u8 = 1;
const TAG_RESIZE: u8 = 2;
const TAG_END_OF_INPUT: u8 = 3;
const TAG_EXIT: u8 = 4;
const TAG_READY: u8 = 5;
const TAG_ERROR: u8 = 6;

/// One message of the Slipway-mode protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Terminal or pipe bytes: typed input (client to server) or output (server to client).
    Data(Vec<u8>),
    /// The client's window is now `cols` by `rows` (client to server).
    Resize { cols: u16, rows: u16 },
    /// The client's input has ended (client to server).
    EndOfInput,
    /// The process exited with this status, `128 + signal` when killed (server to client,
    /// always the last frame).
    Exit { code: i32 },
    /// The secret was accepted and the dyno is attached (server to client, the first frame).
    Ready { dyno: String },
    /// The session could not be opened or was ended by the server (server to client).
    Error { message: String },
}

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("unknown rendezvous frame type {0}")]
    UnknownTag(u8),
    #[error("rendezvous frame of {0} bytes is over the {MAX_PAYLOAD}-byte limit")]
    TooLong(usize),
    #[error("malformed rendezvous frame of type {tag}: {reason}")]
    Malformed { tag: u8, reason: &'static str },
}

/// Appends `frame`'s encoding to `out`. A [`Frame::Data`], [`Frame::Ready`] or
/// [`Frame::Error`] payload over [`MAX_PAYLOAD`] is split (data) or cut (text) so every
/// encoded frame decodes.
pub fn encode(frame: &Frame, out: &mut Vec<u8>) {
    match frame {
        Frame::Data(bytes) => {
            if bytes.is_empty() {
                push(out, TAG_DATA, &[]);
            }
            for chunk in bytes.chunks(MAX_PAYLOAD) {
                push(out, TAG_DATA, chunk);
            }
        }
        Frame::Resize { cols, rows } => {
            let mut payload = [0u8; 4];
            payload[..2].copy_from_slice(&cols.to_be_bytes());
            payload[2..].copy_from_slice(&rows.to_be_bytes());
            push(out, TAG_RESIZE, &payload);
        }
        Frame::EndOfInput => push(out, TAG_END_OF_INPUT, &[]),
        Frame::Exit { code } => push(out, TAG_EXIT, &code.to_be_bytes()),
        Frame::Ready { dyno } => push(out, TAG_READY, cut(dyno)),
        Frame::Error { message } => push(out, TAG_ERROR, cut(message)),
    }
}

/// The encoding of one frame, as a new buffer.
pub fn encode_to_vec(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::new();
    encode(frame, &mut out);
    out
}

/// Decodes the frame at the start of `buf`: `Ok(None)` when more bytes are needed, else the
/// frame and how many bytes it used. Never panics, whatever `buf` holds.
pub fn decode(buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
    let Some(header) = buf.get(..HEADER_LEN) else {
        // A bad tag is reported as soon as it arrives rather than after a full header.
        if let Some(&tag) = buf.first() {
            if !(TAG_DATA..=TAG_ERROR).contains(&tag) {
                return Err(FrameError::UnknownTag(tag));
            }
        }
        return Ok(None);
    };
    let tag = header[0];
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if !(TAG_DATA..=TAG_ERROR).contains(&tag) {
        return Err(FrameError::UnknownTag(tag));
    }
    if len > MAX_PAYLOAD {
        return Err(FrameError::TooLong(len));
    }
    let Some(payload) = buf.get(HEADER_LEN..HEADER_LEN + len) else {
        return Ok(None);
    };
    let malformed = |reason| FrameError::Malformed { tag, reason };
    let frame = match tag {
        TAG_DATA => Frame::Data(payload.to_vec()),
        TAG_RESIZE => match payload {
            [c0, c1, r0, r1] => Frame::Resize {
                cols: u16::from_be_bytes([*c0, *c1]),
                rows: u16::from_be_bytes([*r0, *r1]),
            },
            _ => return Err(malformed("a resize carries 4 bytes")),
        },
        TAG_END_OF_INPUT if payload.is_empty() => Frame::EndOfInput,
        TAG_END_OF_INPUT => return Err(malformed("end of input carries no payload")),
        TAG_EXIT => match payload {
            [a, b, c, d] => Frame::Exit {
                code: i32::from_be_bytes([*a, *b, *c, *d]),
            },
            _ => return Err(malformed("an exit status carries 4 bytes")),
        },
        TAG_READY => Frame::Ready {
            dyno: text(payload).ok_or_else(|| malformed("the dyno name is not UTF-8"))?,
        },
        _ => Frame::Error {
            message: text(payload).ok_or_else(|| malformed("the message is not UTF-8"))?,
        },
    };
    Ok(Some((frame, HEADER_LEN + len)))
}

/// Splits the first line a client sends into the secret and whether it chose Slipway mode.
/// The line has its `\r\n` (or `\n`) already removed.
pub fn parse_first_line(line: &str) -> (&str, bool) {
    match line.strip_suffix(SLIPWAY_MODE_SUFFIX) {
        Some(secret) => (secret, true),
        None => (line, false),
    }
}

fn push(out: &mut Vec<u8>, tag: u8, payload: &[u8]) {
    out.push(tag);
    // Callers keep payloads within MAX_PAYLOAD, which fits a u32.
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

/// `text`'s bytes cut to at most [`MAX_PAYLOAD`] at a character boundary.
fn cut(text: &str) -> &[u8] {
    let mut end = text.len().min(MAX_PAYLOAD);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text.as_bytes()[..end]
}

fn text(payload: &[u8]) -> Option<String> {
    std::str::from_utf8(payload).ok().map(str::to_owned)
}
