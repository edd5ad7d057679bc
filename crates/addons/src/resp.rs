//! A minimal RESP2 client for the platform's own talks with Redis servers (an admin creating
//! ACL users, `redis:info`): commands as arrays of bulk strings, replies read with caps on
//! every length and on nesting, and a deadline on every exchange. A server is not a tenant,
//! but an admin URL may point anywhere, so nothing it sends is trusted to be small.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The longest bulk string read (an `INFO` is about 5 KB; `SCAN` pages are small).
const MAX_BULK: usize = 1024 * 1024;
/// The most elements of one array (a `SCAN` page asked for 1000 keys).
const MAX_ARRAY: usize = 100_000;
/// The deepest nesting of arrays (`SCAN` answers two levels).
const MAX_DEPTH: usize = 4;
/// The longest status or error line.
const MAX_LINE: u64 = 4096;
/// How long one exchange (connecting included) may take: a server that is up answers in
/// milliseconds.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);

/// A reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// Whether this is a non-null array (`ACL GETUSER` of a user that exists).
    pub(crate) fn is_some_array(&self) -> bool {
        matches!(self, Reply::Array(Some(_)))
    }

    /// The reply as text, for bulk and status replies.
    pub(crate) fn text(&self) -> Option<String> {
        match self {
            Reply::Status(s) => Some(s.clone()),
            Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }
}

/// A connection to a Redis server.
pub(crate) struct Conn {
    stream: BufReader<TcpStream>,
}

impl Conn {
    /// Connects to `host:port`.
    pub(crate) async fn connect(host: &str, port: u16) -> Result<Conn, String> {
        let stream = tokio::time::timeout(TIMEOUT, TcpStream::connect((host, port)))
            .await
            .map_err(|_| format!("no connection within {TIMEOUT:?}"))?
            .map_err(|e| format!("cannot connect: {e}"))?;
        Ok(Conn {
            stream: BufReader::new(stream),
        })
    }

    /// Sends one command and reads its reply. An error reply is a `Reply::Error`, not an
    /// `Err`: the caller knows which errors it expects.
    pub(crate) async fn call(&mut self, args: &[&str]) -> Result<Reply, String> {
        let request = encode(args);
        tokio::time::timeout(TIMEOUT, async {
            self.stream
                .get_mut()
                .write_all(&request)
                .await
                .map_err(|e| format!("cannot send: {e}"))?;
            read_reply(&mut self.stream, 0).await
        })
        .await
        .map_err(|_| format!("no answer within {TIMEOUT:?}"))?
    }

    /// Like [`Conn::call`], with an error reply as an `Err` carrying `what` and the server's
    /// message (which never repeats the arguments, so no password reaches it).
    pub(crate) async fn ok(&mut self, what: &str, args: &[&str]) -> Result<Reply, String> {
        match self.call(args).await? {
            Reply::Error(message) => Err(format!("{what}: {message}")),
            reply => Ok(reply),
        }
    }
}

/// A command as a RESP array of bulk strings.
pub(crate) fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> Result<String, String> {
    let mut line = String::new();
    let read = (&mut *reader)
        .take(MAX_LINE)
        .read_line(&mut line)
        .await
        .map_err(|e| format!("cannot read: {e}"))?;
    if read == 0 {
        return Err("the server closed the connection".into());
    }
    if !line.ends_with("\r\n") {
        return Err("the server sent an overlong or truncated line".into());
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

/// Reads one reply, bounded.
pub(crate) fn read_reply<'a, R: tokio::io::AsyncBufRead + Unpin + Send>(
    reader: &'a mut R,
    depth: usize,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Reply, String>> + Send + 'a>> {
    Box::pin(async move {
        let line = read_line(reader).await?;
        let (kind, rest) = line.split_at(line.chars().next().map_or(0, char::len_utf8));
        let length = |max: usize| -> Result<Option<usize>, String> {
            if rest == "-1" {
                return Ok(None);
            }
            rest.parse::<usize>()
                .ok()
                .filter(|n| *n <= max)
                .map(Some)
                .ok_or_else(|| format!("unexpected length {rest:?} in the answer"))
        };
        match kind {
            "+" => Ok(Reply::Status(rest.to_owned())),
            "-" => Ok(Reply::Error(rest.to_owned())),
            ":" => rest
                .parse()
                .map(Reply::Int)
                .map_err(|_| format!("unexpected integer {rest:?} in the answer")),
            "$" => match length(MAX_BULK)? {
                None => Ok(Reply::Bulk(None)),
                Some(n) => {
                    let mut body = vec![0u8; n + 2];
                    reader
                        .read_exact(&mut body)
                        .await
                        .map_err(|e| format!("cannot read: {e}"))?;
                    body.truncate(n);
                    Ok(Reply::Bulk(Some(body)))
                }
            },
            "*" => {
                if depth >= MAX_DEPTH {
                    return Err("the answer is nested too deeply".into());
                }
                match length(MAX_ARRAY)? {
                    None => Ok(Reply::Array(None)),
                    Some(n) => {
                        let mut items = Vec::with_capacity(n.min(1024));
                        for _ in 0..n {
                            items.push(read_reply(reader, depth + 1).await?);
                        }
                        Ok(Reply::Array(Some(items)))
                    }
                }
            }
            _ => Err("the server does not speak RESP".into()),
        }
    })
}

#[cfg(test)]
mod tests;
