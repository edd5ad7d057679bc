//! HTTP/1.x wire format for the router's own connection handling (reference §6.3): a reusable
//! byte buffer, request and response head parsing with Heroku's limits, and a chunked-encoding
//! scanner that lets bodies stream through without being decoded or buffered whole.

use std::cell::RefCell;
use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

/// A growable read buffer: bytes `start..end` of `data` are filled and not yet consumed.
#[derive(Debug, Default)]
pub(crate) struct Buf {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

/// Buffer sizes worth recycling: the client head buffer and the body buffer as it starts.
pub(crate) const HEAD_BUF: usize = 4096;
pub(crate) const BODY_BUF_START: usize = 16 * 1024;
/// A body buffer that reads fill up grows, doubling, to this.
pub(crate) const BODY_BUF: usize = 64 * 1024;
/// Spare buffers kept per thread and size (at most 32 × 20 KB).
const SPARE_MAX: usize = 32;

thread_local! {
    /// Buffers of closed connections, reused by new ones: a connection per request then costs
    /// no allocation and no zeroing of 64 KB.
    static SPARE: RefCell<[Vec<Vec<u8>>; 2]> = const { RefCell::new([Vec::new(), Vec::new()]) };
}

fn spare_slot(len: usize) -> Option<usize> {
    match len {
        HEAD_BUF => Some(0),
        BODY_BUF_START => Some(1),
        _ => None,
    }
}

/// A zeroed or recycled vector of exactly `len` bytes.
fn take_vec(len: usize) -> Vec<u8> {
    spare_slot(len)
        .and_then(|slot| {
            SPARE
                .try_with(|spare| spare.borrow_mut()[slot].pop())
                .ok()
                .flatten()
        })
        .unwrap_or_else(|| vec![0; len])
}

fn give_back(data: Vec<u8>) {
    if let Some(slot) = spare_slot(data.len()) {
        // `try_with`: a buffer dropped while its thread exits is simply freed.
        let _ = SPARE.try_with(|spare| {
            let list = &mut spare.borrow_mut()[slot];
            if list.len() < SPARE_MAX {
                list.push(data);
            }
        });
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        give_back(std::mem::take(&mut self.data));
    }
}

impl Buf {
    pub(crate) fn with_capacity(capacity: usize) -> Buf {
        Buf {
            data: take_vec(capacity),
            start: 0,
            end: 0,
        }
    }

    pub(crate) fn filled(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    pub(crate) fn len(&self) -> usize {
        self.end - self.start
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n.min(self.len());
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Room to read into: compacts, and grows (doubling, up to `max` bytes) when full. Empty
    /// only when `max` bytes are buffered.
    fn spare(&mut self, max: usize) -> &mut [u8] {
        if self.end == self.data.len() {
            if self.start > 0 {
                self.data.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.data.len() < max {
                let grown = (self.data.len() * 2).clamp(4096, max);
                self.data.resize(grown, 0);
            }
        }
        &mut self.data[self.end..]
    }

    /// Makes the buffer at least `capacity` bytes long (bodies stream through it).
    pub(crate) fn reserve(&mut self, capacity: usize) {
        if self.data.is_empty() {
            self.data = take_vec(capacity);
        } else if self.data.len() < capacity {
            self.data.resize(capacity, 0);
        }
    }

    /// Frees the memory of an empty buffer.
    pub(crate) fn release(&mut self) {
        if self.is_empty() {
            give_back(std::mem::take(&mut self.data));
            self.start = 0;
            self.end = 0;
        }
    }

    /// Whether a read with this `max` would have room.
    pub(crate) fn has_room(&self, max: usize) -> bool {
        self.len() < max
    }

    /// Returns memory beyond `capacity` once the buffer is (nearly) empty again.
    pub(crate) fn shrink(&mut self, capacity: usize) {
        if self.data.len() > capacity && self.len() <= capacity {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            self.data.truncate(capacity);
            self.data.shrink_to_fit();
        }
    }

    /// Fills the buffer's free room with `read` (a non-blocking read); its count as returned.
    pub(crate) fn fill_with(
        &mut self,
        read: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let spare = self.spare(self.data.len().max(HEAD_BUF));
        let n = read(spare)?;
        self.end += n.min(spare.len());
        Ok(n)
    }

    /// Reads once from `io` into the buffer; `Ok(0)` is end of stream.
    pub(crate) fn poll_fill<S: AsyncRead + Unpin + ?Sized>(
        &mut self,
        io: &mut S,
        max: usize,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        let spare = self.spare(max);
        if spare.is_empty() {
            return Poll::Ready(Err(io::Error::other("read buffer full")));
        }
        let room = spare.len();
        let mut read = ReadBuf::new(spare);
        ready!(Pin::new(io).poll_read(cx, &mut read))?;
        let n = read.filled().len();
        self.end += n;
        // A read that filled all the room asks for more next time (up to `max`).
        if n == room && self.data.len() < max {
            let grown = (self.data.len() * 2).min(max);
            self.data.resize(grown, 0);
        }
        Poll::Ready(Ok(n))
    }
}

/// Why a head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeadError {
    /// A line or the whole section is over the limit.
    TooLarge,
    TooManyHeaders,
    Malformed,
}

impl HeadError {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            HeadError::TooLarge => "A request line or header line is longer than 8192 bytes.",
            HeadError::TooManyHeaders => "The request has more than 1000 headers.",
            HeadError::Malformed => "The request is not valid HTTP/1.1.",
        }
    }
}

/// Limits on a header section.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadLimits {
    /// Longest request/status line and longest header line.
    pub(crate) max_line: usize,
    /// Most header lines.
    pub(crate) max_headers: usize,
    /// Largest whole section.
    pub(crate) max_total: usize,
}

/// A header as byte ranges into the buffer the head was parsed from.
pub(crate) type HeaderRange = (Range<usize>, Range<usize>);

/// A parsed request line; ranges index the parsed buffer.
#[derive(Debug, Clone)]
pub(crate) struct RequestLine {
    pub(crate) method: Range<usize>,
    pub(crate) target: Range<usize>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub(crate) minor: u8,
    /// Length of the whole head, blank line included.
    pub(crate) len: usize,
}

/// A parsed status line.
#[derive(Debug, Clone)]
pub(crate) struct StatusLine {
    pub(crate) minor: u8,
    pub(crate) code: u16,
    pub(crate) reason: Range<usize>,
    pub(crate) len: usize,
}

fn range_of(base: &[u8], part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - base.as_ptr() as usize;
    start..start + part.len()
}

/// Refuses a partial head whose current line or total size is already over the limits.
fn check_partial(buf: &[u8], limits: &HeadLimits) -> Result<(), HeadError> {
    let line_start = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if buf.len() - line_start > limits.max_line + 1 || buf.len() > limits.max_total {
        return Err(HeadError::TooLarge);
    }
    Ok(())
}

fn check_lines(
    buf: &[u8],
    first_line: usize,
    headers: &[HeaderRange],
    limits: &HeadLimits,
) -> Result<(), HeadError> {
    if first_line > limits.max_line {
        return Err(HeadError::TooLarge);
    }
    for (name, value) in headers {
        if value.end - name.start > limits.max_line {
            return Err(HeadError::TooLarge);
        }
    }
    let _ = buf;
    Ok(())
}

/// Parses a request head from the start of `buf`; `Ok(None)` when more bytes are needed.
/// Header ranges go to `out` (cleared first).
pub(crate) fn parse_request(
    buf: &[u8],
    limits: &HeadLimits,
    out: &mut Vec<HeaderRange>,
) -> Result<Option<RequestLine>, HeadError> {
    out.clear();
    let mut small = [httparse::EMPTY_HEADER; 48];
    let mut request = httparse::Request::new(&mut small);
    let status = match request.parse(buf) {
        Err(httparse::Error::TooManyHeaders) => {
            let mut many = vec![httparse::EMPTY_HEADER; limits.max_headers];
            let mut request = httparse::Request::new(&mut many);
            return match request.parse(buf) {
                Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooManyHeaders),
                Err(_) => Err(HeadError::Malformed),
                Ok(httparse::Status::Partial) => check_partial(buf, limits).map(|()| None),
                Ok(httparse::Status::Complete(len)) => {
                    finish_request(buf, &request, len, limits, out)
                }
            };
        }
        Err(_) => return Err(HeadError::Malformed),
        Ok(status) => status,
    };
    match status {
        httparse::Status::Partial => check_partial(buf, limits).map(|()| None),
        httparse::Status::Complete(len) => finish_request(buf, &request, len, limits, out),
    }
}

fn finish_request(
    buf: &[u8],
    request: &httparse::Request<'_, '_>,
    len: usize,
    limits: &HeadLimits,
    out: &mut Vec<HeaderRange>,
) -> Result<Option<RequestLine>, HeadError> {
    let (Some(method), Some(target), Some(minor)) = (request.method, request.path, request.version)
    else {
        return Err(HeadError::Malformed);
    };
    if len > limits.max_total {
        return Err(HeadError::TooLarge);
    }
    for header in request.headers.iter() {
        out.push((
            range_of(buf, header.name.as_bytes()),
            range_of(buf, header.value),
        ));
    }
    let method = range_of(buf, method.as_bytes());
    let target = range_of(buf, target.as_bytes());
    check_lines(buf, target.end + 10 - method.start, out, limits)?;
    Ok(Some(RequestLine {
        method,
        target,
        minor,
        len,
    }))
}

/// Parses a response head from the start of `buf`; `Ok(None)` when more bytes are needed.
pub(crate) fn parse_response(
    buf: &[u8],
    limits: &HeadLimits,
    out: &mut Vec<HeaderRange>,
) -> Result<Option<StatusLine>, HeadError> {
    out.clear();
    let mut small = [httparse::EMPTY_HEADER; 48];
    let mut response = httparse::Response::new(&mut small);
    match response.parse(buf) {
        Err(httparse::Error::TooManyHeaders) => {
            let mut many = vec![httparse::EMPTY_HEADER; limits.max_headers];
            let mut response = httparse::Response::new(&mut many);
            match response.parse(buf) {
                Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooManyHeaders),
                Err(_) => Err(HeadError::Malformed),
                Ok(httparse::Status::Partial) => check_partial(buf, limits).map(|()| None),
                Ok(httparse::Status::Complete(len)) => finish_response(buf, &response, len, out),
            }
        }
        Err(_) => Err(HeadError::Malformed),
        Ok(httparse::Status::Partial) => check_partial(buf, limits).map(|()| None),
        Ok(httparse::Status::Complete(len)) => finish_response(buf, &response, len, out),
    }
}

fn finish_response(
    buf: &[u8],
    response: &httparse::Response<'_, '_>,
    len: usize,
    out: &mut Vec<HeaderRange>,
) -> Result<Option<StatusLine>, HeadError> {
    let (Some(minor), Some(code)) = (response.version, response.code) else {
        return Err(HeadError::Malformed);
    };
    for header in response.headers.iter() {
        out.push((
            range_of(buf, header.name.as_bytes()),
            range_of(buf, header.value),
        ));
    }
    let reason = response
        .reason
        .map_or(0..0, |reason| range_of(buf, reason.as_bytes()));
    Ok(Some(StatusLine {
        minor,
        code,
        reason,
        len,
    }))
}

/// How a request body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyLength {
    None,
    Length(u64),
    Chunked,
}

/// The framing headers of a request (`Content-Length`, `Transfer-Encoding`), added one by
/// one as the head is read; [`Framing::finish`] gives one unambiguous body length or refuses
/// the request with the reason for its 400. Refused: a `Content-Length` that is not a plain
/// number or differs from another one, `Transfer-Encoding` whose last coding is not a single
/// `chunked`, and both headers at once (RFC 9112 §6.1: a request smuggling pattern).
#[derive(Debug, Default)]
pub(crate) struct Framing {
    content_length: Option<u64>,
    transfer_encoding: bool,
    chunked: usize,
    last_chunked: bool,
}

impl Framing {
    pub(crate) fn content_length(&mut self, value: &[u8]) -> Result<(), &'static str> {
        let n = content_length(value).ok_or("The Content-Length header is not valid.")?;
        if self.content_length.is_some_and(|previous| previous != n) {
            return Err("The request carries conflicting Content-Length headers.");
        }
        self.content_length = Some(n);
        Ok(())
    }

    pub(crate) fn transfer_encoding(&mut self, value: &[u8]) {
        self.transfer_encoding = true;
        for token in tokens(value) {
            self.last_chunked = token.eq_ignore_ascii_case(b"chunked");
            if self.last_chunked {
                self.chunked += 1;
            }
        }
    }

    pub(crate) fn finish(self) -> Result<BodyLength, &'static str> {
        if self.transfer_encoding {
            if !self.last_chunked || self.chunked != 1 {
                return Err("The request's Transfer-Encoding must end with chunked.");
            }
            if self.content_length.is_some() {
                return Err("The request carries both Content-Length and Transfer-Encoding.");
            }
            return Ok(BodyLength::Chunked);
        }
        Ok(match self.content_length {
            Some(0) | None => BodyLength::None,
            Some(n) => BodyLength::Length(n),
        })
    }
}

/// A malformed chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked encoding")]
pub(crate) struct BadChunk;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum ChunkState {
    #[default]
    Size,
    Ext,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    TrailerLf,
    EndLf,
    Done,
}

/// Follows a chunked body byte by byte without copying it, so it can be relayed verbatim and
/// its end found. Strict where a lenient reader could disagree with the dyno's about where the
/// body ends (request smuggling): every line ends with CRLF (no bare LF), a chunk size has at
/// most 15 hex digits (no overflow), extensions and trailers hold no control bytes.
#[derive(Debug, Default)]
pub(crate) struct Chunked {
    state: ChunkState,
    size: u64,
    digits: u8,
    line: usize,
}

impl Chunked {
    pub(crate) fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Scans `input`; returns how many bytes of it belong to the body (all of it unless the
    /// body ends inside). `on_data` gets the ranges of chunk data within `input`.
    pub(crate) fn scan(
        &mut self,
        input: &[u8],
        mut on_data: impl FnMut(Range<usize>),
    ) -> Result<usize, BadChunk> {
        let mut i = 0;
        while i < input.len() {
            let byte = input[i];
            match self.state {
                ChunkState::Done => return Ok(i),
                ChunkState::Data => {
                    let take =
                        (input.len() - i).min(usize::try_from(self.size).unwrap_or(usize::MAX));
                    on_data(i..i + take);
                    self.size -= take as u64;
                    i += take;
                    if self.size == 0 {
                        self.state = ChunkState::DataCr;
                    }
                    continue;
                }
                ChunkState::Size => match byte {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        let digit = (byte as char).to_digit(16).unwrap_or(0) as u64;
                        self.digits += 1;
                        if self.digits > 15 {
                            return Err(BadChunk);
                        }
                        self.size = self.size * 16 + digit;
                    }
                    b';' | b' ' | b'\t' if self.digits > 0 => {
                        self.state = ChunkState::Ext;
                        self.line = 0;
                    }
                    b'\r' if self.digits > 0 => self.state = ChunkState::SizeLf,
                    _ => return Err(BadChunk),
                },
                ChunkState::Ext => match byte {
                    b'\r' => self.state = ChunkState::SizeLf,
                    // A bare LF or another control byte in an extension: the dyno could see
                    // the line end elsewhere.
                    b'\t' | b' '..=b'~' | 0x80..=0xff => {
                        self.line += 1;
                        if self.line > 4096 {
                            return Err(BadChunk);
                        }
                    }
                    _ => return Err(BadChunk),
                },
                ChunkState::SizeLf => {
                    expect(byte, b'\n')?;
                    self.end_size_line();
                }
                ChunkState::DataCr => {
                    expect(byte, b'\r')?;
                    self.state = ChunkState::DataLf;
                }
                ChunkState::DataLf => {
                    expect(byte, b'\n')?;
                    self.next_chunk();
                }
                ChunkState::TrailerStart => match byte {
                    b'\r' => self.state = ChunkState::EndLf,
                    b'\n' => return Err(BadChunk),
                    _ => {
                        self.state = ChunkState::TrailerLine;
                        self.line = 1;
                    }
                },
                ChunkState::TrailerLine => match byte {
                    b'\r' => self.state = ChunkState::TrailerLf,
                    b'\n' => return Err(BadChunk),
                    _ => {
                        self.line += 1;
                        if self.line > 8192 {
                            return Err(BadChunk);
                        }
                    }
                },
                ChunkState::TrailerLf => {
                    expect(byte, b'\n')?;
                    self.state = ChunkState::TrailerStart;
                }
                ChunkState::EndLf => {
                    expect(byte, b'\n')?;
                    self.state = ChunkState::Done;
                }
            }
            i += 1;
        }
        Ok(i)
    }

    fn end_size_line(&mut self) {
        self.state = if self.size == 0 {
            ChunkState::TrailerStart
        } else {
            ChunkState::Data
        };
    }

    fn next_chunk(&mut self) {
        self.state = ChunkState::Size;
        self.size = 0;
        self.digits = 0;
    }
}

/// The one byte a line ending allows at this point of a chunked body, or [`BadChunk`].
#[inline]
fn expect(byte: u8, wanted: u8) -> Result<(), BadChunk> {
    if byte == wanted {
        Ok(())
    } else {
        Err(BadChunk)
    }
}

/// Comma-separated tokens of a header value, trimmed, empty ones skipped.
pub(crate) fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(|token| token.trim_ascii())
        .filter(|token| !token.is_empty())
}

/// Parses a Content-Length value (a comma list of equal numbers is one number).
pub(crate) fn content_length(value: &[u8]) -> Option<u64> {
    let mut found = None;
    for token in tokens(value) {
        if token.is_empty() || token.len() > 19 || !token.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = std::str::from_utf8(token).ok()?.parse::<u64>().ok()?;
        match found {
            Some(previous) if previous != n => return None,
            _ => found = Some(n),
        }
    }
    found
}

#[cfg(test)]
mod tests;
