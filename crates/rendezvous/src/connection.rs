//! One rendezvous connection: the TLS handshake, the secret line, the claim, and then the
//! copy both ways until the process exits, the client leaves, the session idles out or the
//! listener stops.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use slipway_api_types::rendezvous::{self as proto, Frame};
use slipway_runtime::{Attach, AttachedIo, ExitStatus};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::session::{Session, Sessions};

/// The longest first line accepted: secrets are short, so anything longer is not a client.
pub(crate) const FIRST_LINE_CAP: usize = 512;
/// How long a client has for the TLS handshake and, again, for its first line.
pub(crate) const FIRST_LINE_TIMEOUT: Duration = Duration::from_secs(10);
/// What Heroku's rendezvous answers; the real CLI throws its first chunk away whole.
pub(crate) const GREETING: &[u8] = b"rendezvous\r\n";
/// A pause after the greeting so that the process's first output arrives in a chunk of its
/// own: the real CLI would throw it away with the greeting if both came together.
pub(crate) const GREETING_PAUSE: Duration = Duration::from_millis(200);
/// How long the last words to a client (an error, the end of the stream) may take.
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the output may keep flowing after the process has exited (a background child
/// holding the stream open must not keep the session alive).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(1);
const EOT: u8 = 0x04;

type Client = BufReader<tokio_rustls::server::TlsStream<TcpStream>>;

/// Serves one accepted connection to its end; failures are logged, never returned.
pub(crate) async fn handle(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    sessions: Arc<dyn Sessions>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let tls = match tokio::time::timeout(FIRST_LINE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "rendezvous TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "rendezvous TLS handshake timed out");
            return;
        }
    };
    let mut client = BufReader::new(tls);
    let line = match tokio::time::timeout(FIRST_LINE_TIMEOUT, read_first_line(&mut client)).await {
        Ok(Ok(line)) => line,
        Ok(Err(reason)) => {
            tracing::info!(%peer, reason, "rendezvous connection refused");
            farewell(&mut client, format!("error: {reason}\r\n").as_bytes()).await;
            return;
        }
        Err(_) => {
            tracing::info!(%peer, "rendezvous client sent no secret in time");
            farewell(&mut client, b"error: timed out waiting for the secret\r\n").await;
            return;
        }
    };
    let (secret, slipway) = proto::parse_first_line(&line);
    if !plausible_secret(secret) {
        // The secret is neither logged nor echoed, even when it is garbage.
        tracing::info!(%peer, "rendezvous connection refused: malformed secret");
        refuse(&mut client, slipway, "the secret is not valid").await;
        return;
    }
    let session = match sessions.claim(secret).await {
        Ok(session) => session,
        Err(e) => {
            tracing::info!(%peer, reason = %e, "rendezvous connection refused");
            refuse(&mut client, slipway, &e.to_string()).await;
            return;
        }
    };
    let dyno = session.dyno.clone();
    tracing::info!(%peer, dyno, slipway, "rendezvous attached");
    let end = attach(client, session, slipway, stop).await;
    tracing::info!(%peer, dyno, end = ?end, "rendezvous session ended");
}

/// Reads the first line, without its `\r\n`, at most [`FIRST_LINE_CAP`] bytes. Bytes after
/// it stay in `client`'s buffer (a Slipway-mode client may send frames right away).
async fn read_first_line(client: &mut Client) -> Result<String, &'static str> {
    let mut line = Vec::new();
    loop {
        let buf = client
            .fill_buf()
            .await
            .map_err(|_| "the connection failed before the secret")?;
        if buf.is_empty() {
            return Err("the connection closed before the secret");
        }
        let (taken, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(end) => (end + 1, true),
            None => (buf.len(), false),
        };
        if line.len() + taken > FIRST_LINE_CAP + 1 {
            return Err("the first line is too long");
        }
        line.extend_from_slice(&buf[..taken]);
        client.consume(taken);
        if done {
            break;
        }
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| "the first line is not text")
}

/// Whether `secret` could be one: printable ASCII without spaces, as in a URL.
fn plausible_secret(secret: &str) -> bool {
    !secret.is_empty() && secret.bytes().all(|b| b.is_ascii_graphic())
}

/// Tells the client its secret opened nothing. The real CLI throws away its first chunk, so
/// in Heroku mode the reason follows a greeting, where the person at the terminal sees it.
async fn refuse(client: &mut Client, slipway: bool, message: &str) {
    if slipway {
        let frame = proto::encode_to_vec(&Frame::Error {
            message: message.to_owned(),
        });
        farewell(client, &frame).await;
    } else {
        let greeted = async {
            client.write_all(GREETING).await?;
            client.flush().await?;
            tokio::time::sleep(GREETING_PAUSE).await;
            std::io::Result::Ok(())
        };
        if tokio::time::timeout(FAREWELL_TIMEOUT, greeted)
            .await
            .is_ok()
        {
            farewell(client, format!("Error: {message}\r\n").as_bytes()).await;
        }
    }
}

/// Writes `bytes` and closes the connection, giving up on a client that does not read.
async fn farewell<W: AsyncWrite + Unpin>(client: &mut W, bytes: &[u8]) {
    let said = async {
        client.write_all(bytes).await?;
        client.flush().await?;
        client.shutdown().await
    };
    let _ = tokio::time::timeout(FAREWELL_TIMEOUT, said).await;
}

/// Why an attached session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    /// The process exited and all its output was sent.
    Exited(i32),
    /// The client closed the connection or it failed.
    ClientGone,
    /// Nothing went either way for the session's idle timeout.
    Idle,
    /// The listener is stopping.
    Stopped,
    /// A Slipway-mode client sent something that is not a valid frame.
    Protocol(String),
}

/// The last time anything went either way, shared by both directions of one session.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let now = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(now, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

/// Copies both ways between the client and the attached process until one side ends.
async fn attach(
    mut client: Client,
    session: Session,
    slipway: bool,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> End {
    let Session {
        dyno,
        io,
        attach,
        exited,
        idle_timeout,
    } = session;
    let AttachedIo {
        mut input,
        mut output,
        control,
    } = io;
    let tty = matches!(attach, Attach::Tty { .. });
    let hello = if slipway {
        proto::encode_to_vec(&Frame::Ready { dyno: dyno.clone() })
    } else {
        GREETING.to_vec()
    };
    let greeted = async {
        client.write_all(&hello).await?;
        client.flush().await?;
        if !slipway {
            tokio::time::sleep(GREETING_PAUSE).await;
        }
        std::io::Result::Ok(())
    };
    if !matches!(
        tokio::time::timeout(FAREWELL_TIMEOUT, greeted).await,
        Ok(Ok(()))
    ) {
        hang_up(&*control, &dyno);
        return End::ClientGone;
    }

    let activity = Activity::new();
    let (mut client_rd, mut client_wr) = tokio::io::split(client);

    let upstream = async {
        let mut buf = vec![0u8; 16 * 1024];
        let mut pending: Vec<u8> = Vec::new();
        // Once the process's input is closed (end of input, or it stopped reading), the
        // client is still read, to notice it leaving.
        let mut input_open = true;
        loop {
            let n = match client_rd.read(&mut buf).await {
                Ok(0) | Err(_) => return End::ClientGone,
                Ok(n) => n,
            };
            activity.touch();
            if !slipway {
                if !input_open {
                    continue;
                }
                let chunk = &buf[..n];
                if !tty && chunk == [EOT] {
                    let _ = input.shutdown().await;
                    input_open = false;
                } else if write_input(&mut input, chunk).await.is_err() {
                    input_open = false;
                }
                continue;
            }
            pending.extend_from_slice(&buf[..n]);
            let mut used = 0;
            loop {
                let (frame, len) = match proto::decode(&pending[used..]) {
                    Ok(Some(decoded)) => decoded,
                    Ok(None) => break,
                    Err(e) => return End::Protocol(e.to_string()),
                };
                used += len;
                match frame {
                    Frame::Data(bytes) => {
                        if input_open && write_input(&mut input, &bytes).await.is_err() {
                            input_open = false;
                        }
                    }
                    Frame::Resize { cols, rows } => {
                        if let Err(e) = control.resize(cols, rows) {
                            tracing::debug!(dyno, error = %e, "resizing a one-off dyno's terminal failed");
                        }
                    }
                    Frame::EndOfInput if input_open => {
                        // A terminal has no end of input of its own: Ctrl-D is how one types it.
                        if tty {
                            let _ = write_input(&mut input, &[EOT]).await;
                        } else {
                            let _ = input.shutdown().await;
                            input_open = false;
                        }
                    }
                    Frame::EndOfInput => {}
                    Frame::Exit { .. } | Frame::Ready { .. } | Frame::Error { .. } => {
                        return End::Protocol("a client sent a server-only frame".into());
                    }
                }
            }
            pending.drain(..used);
        }
    };

    let downstream = async {
        let mut buf = vec![0u8; 16 * 1024];
        let mut exited = exited;
        let mut status: Option<Option<ExitStatus>> = None;
        let mut drain_until = None;
        loop {
            let read = match (status.is_some(), drain_until) {
                (false, _) => tokio::select! {
                    read = output.read(&mut buf) => read,
                    exit = &mut exited => {
                        status = Some(exit.ok());
                        drain_until = Some(tokio::time::Instant::now() + DRAIN_AFTER_EXIT);
                        continue;
                    }
                },
                (true, Some(until)) => {
                    match tokio::time::timeout_at(until, output.read(&mut buf)).await {
                        Ok(read) => read,
                        Err(_) => break,
                    }
                }
                (true, None) => break,
            };
            let n = match read {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            activity.touch();
            let sent = if slipway {
                let frame = proto::encode_to_vec(&Frame::Data(buf[..n].to_vec()));
                client_wr.write_all(&frame).await
            } else {
                client_wr.write_all(&buf[..n]).await
            };
            if sent.is_err() || client_wr.flush().await.is_err() {
                return End::ClientGone;
            }
            activity.touch();
        }
        let status = match status {
            Some(status) => status,
            None => exited.await.ok(),
        };
        let code = exit_code(status);
        if slipway {
            let frame = proto::encode_to_vec(&Frame::Exit { code });
            if client_wr.write_all(&frame).await.is_err() {
                return End::ClientGone;
            }
        }
        let _ = client_wr.flush().await;
        End::Exited(code)
    };

    let idle = async {
        loop {
            let idle_for = activity.idle_for();
            if idle_for >= idle_timeout {
                return;
            }
            tokio::time::sleep(idle_timeout - idle_for).await;
        }
    };

    let end = tokio::select! {
        end = downstream => end,
        end = upstream => end,
        () = idle => End::Idle,
        _ = stop.wait_for(|stop| *stop) => End::Stopped,
    };

    let mut client = client_rd.unsplit(client_wr);
    let last_words = match &end {
        End::Exited(_) | End::ClientGone => None,
        End::Idle => Some("the session was idle for too long".to_owned()),
        End::Stopped => Some("the platform is shutting down".to_owned()),
        End::Protocol(reason) => Some(reason.clone()),
    };
    if !matches!(end, End::Exited(_)) {
        hang_up(&*control, &dyno);
    }
    match (last_words, slipway) {
        (Some(message), true) => {
            farewell(
                &mut client,
                &proto::encode_to_vec(&Frame::Error { message }),
            )
            .await
        }
        (Some(message), false) => {
            farewell(&mut client, format!("\r\nError: {message}\r\n").as_bytes()).await
        }
        (None, _) => farewell(&mut client, &[]).await,
    }
    end
}

async fn write_input(
    input: &mut std::pin::Pin<Box<dyn AsyncWrite + Send>>,
    bytes: &[u8],
) -> std::io::Result<()> {
    input.write_all(bytes).await?;
    input.flush().await
}

fn hang_up(control: &dyn slipway_runtime::AttachControl, dyno: &str) {
    if let Err(e) = control.hangup() {
        tracing::warn!(dyno, error = %e, "hanging up a one-off dyno failed");
    }
}

/// The status `slipway run` exits with: the code, or `128 + signal` as shells report it, or
/// 255 when the platform lost track of the process.
pub(crate) fn exit_code(status: Option<ExitStatus>) -> i32 {
    match status {
        Some(ExitStatus {
            code: Some(code), ..
        }) => code,
        Some(ExitStatus {
            signal: Some(signal),
            ..
        }) => 128 + signal,
        _ => 255,
    }
}
