//! `slipway run` and `slipway run:detached`: one-off dynos. `run` creates an attached dyno
//! (`POST /apps/{app}/dynos` with the body the real `heroku run` sends), connects to its
//! `rendezvous://HOST:PORT/SECRET` attach URL over TLS, trusting the platform's CA, in the
//! listener's Slipway mode ([`slipway_api_types::rendezvous`]), and connects the local
//! terminal to it: raw mode and window-size changes with a local TTY, plain bytes and an end
//! of input without one. It exits with the remote process's status. `run:detached --tail`
//! follows the detached dyno's log lines until its `Process exited` line.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::SubsecRound as _;
use futures::StreamExt as _;
use reqwest::{Method, Url};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use slipway_api_types::rendezvous::{self as proto, Frame};
use slipway_api_types::{Dyno, DynoCreate, LogSession, LogSessionCreate};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::client::Client;
use crate::format::APP_MARK;
use crate::logs::{event_lines, LogStreamError, SseParser};

#[cfg(test)]
mod tests;

/// How long connecting to the rendezvous listener (TCP, TLS, the secret) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// The dyno's flags `run` and `run:detached` share.
#[derive(Debug, Clone, clap::Args)]
pub struct DynoArgs {
    /// Dyno size (e.g. Standard-1X).
    #[arg(short = 's', long)]
    pub size: Option<String>,
    /// Process type to use for the dyno's name and logs.
    #[arg(long = "type")]
    pub process_type: Option<String>,
    /// Environment variables for the dyno, separated by semicolons: "K=V;K2=V2".
    #[arg(short = 'e', long)]
    pub env: Option<String>,
}

impl DynoArgs {
    /// The body of `POST /apps/{app}/dynos` for `command`: the `--env` vars, the local
    /// `TERM`, then `extra_env`.
    fn dyno_create(
        self,
        command: String,
        attach: bool,
        force_no_tty: Option<bool>,
        extra_env: BTreeMap<String, String>,
    ) -> Result<DynoCreate, RunError> {
        let mut env = parse_env(self.env.as_deref())?;
        if let Ok(term) = std::env::var("TERM") {
            env.insert("TERM".to_owned(), term);
        }
        env.extend(extra_env);
        Ok(DynoCreate {
            command,
            attach: Some(attach),
            env: Some(env),
            force_no_tty,
            size: self.size,
            process_type: self.process_type,
            time_to_live: None,
        })
    }
}

/// `slipway run`'s arguments (Heroku's `run`).
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub dyno: DynoArgs,
    /// Run without a terminal even when there is a local one.
    #[arg(long)]
    pub no_tty: bool,
    /// Exit with the remote command's status (always so; accepted for Heroku habits).
    #[arg(short = 'x', long)]
    pub exit_code: bool,
    /// The command to run, with its arguments (put them after `--`).
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `slipway run:detached`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct DetachedArgs {
    #[command(flatten)]
    pub dyno: DynoArgs,
    /// Stream the dyno's logs until its process exits.
    #[arg(short = 't', long)]
    pub tail: bool,
    /// The command to run, with its arguments (put them after `--`).
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// The remote process's status, when it is not 0: `slipway run` exits with it.
#[derive(Debug, thiserror::Error)]
#[error("Process exited with code {code}")]
pub struct RemoteExit {
    pub code: i32,
    /// Whether to say so (`--exit-code`, as Heroku does); otherwise the status speaks alone.
    pub report: bool,
}

/// Why `run` could not start or stay connected. The secret is never part of a message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    #[error("{arg:?} is invalid. Must be in the format FOO=bar;BAZ=qux.")]
    InvalidEnv { arg: String },
    #[error("The API returned no attach URL for {dyno}, so there is nothing to connect to.")]
    NoAttachUrl { dyno: String },
    #[error("The attach URL for {dyno} is not a rendezvous://HOST:PORT/SECRET URL.")]
    BadAttachUrl { dyno: String },
    #[error("Could not read the platform CA from {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("No certificate in the platform CA ({source_name}). Set SLIPWAY_CA_CERT to the output of `slipway ca`.")]
    NoCaCertificate { source_name: String },
    #[error("Could not connect to {dyno} at {addr}: {reason}")]
    Connect {
        dyno: String,
        addr: String,
        reason: String,
    },
    #[error("{dyno}: {message}")]
    Refused { dyno: String, message: String },
    #[error("The connection to {dyno} was lost before the process exited ({reason}).")]
    Lost { dyno: String, reason: String },
}

/// Runs `args.command` in a new one-off dyno attached to this terminal; returns when the
/// remote process has exited, with [`RemoteExit`] as the error when its status is not 0.
pub(crate) async fn run(client: &Client, app: &str, args: RunArgs) -> anyhow::Result<()> {
    let command = join_command(&args.command);
    let tty = !args.no_tty && stdin_is_tty() && stdout_is_tty();
    let mut window = BTreeMap::new();
    let size = if stdout_is_tty() { window_size() } else { None };
    if let Some((cols, rows)) = size {
        window.insert("COLUMNS".to_owned(), cols.to_string());
        window.insert("LINES".to_owned(), rows.to_string());
    }
    let body = args
        .dyno
        .dyno_create(command.clone(), true, (!tty).then_some(true), window)?;
    let mut err = std::io::stderr();
    write!(err, "Running `{command}` on {APP_MARK} {app}... ")?;
    err.flush()?;
    let started = async {
        let dyno: Dyno = client
            .send(Method::POST, &["apps", app, "dynos"], Some(&body))
            .await?;
        let url = dyno
            .attach_url
            .clone()
            .ok_or_else(|| RunError::NoAttachUrl {
                dyno: dyno.name.clone(),
            })?;
        let target = parse_attach_url(&url).ok_or_else(|| RunError::BadAttachUrl {
            dyno: dyno.name.clone(),
        })?;
        let roots = platform_roots(client).await?;
        let connection = connect(&dyno.name, &target, roots).await?;
        anyhow::Ok((dyno, connection))
    };
    let (dyno, (stream, pending)) = match started.await {
        Ok(started) => started,
        Err(e) => {
            writeln!(err, "!")?;
            return Err(e);
        }
    };
    writeln!(err, "up, {}", dyno.name)?;
    let code = attached(&dyno.name, stream, pending, tty).await?;
    if code == 0 {
        Ok(())
    } else {
        Err(RemoteExit {
            code,
            report: args.exit_code,
        }
        .into())
    }
}

/// `run:detached`: the dyno's output goes to the app's logs; prints the dyno's name and how
/// to see them.
pub(crate) async fn detached(
    client: &Client,
    app: &str,
    args: DetachedArgs,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let command = join_command(&args.command);
    let body = args
        .dyno
        .dyno_create(command.clone(), false, None, BTreeMap::new())?;
    let mut err = std::io::stderr();
    write!(err, "Running `{command}` on {APP_MARK} {app}... ")?;
    err.flush()?;
    let dyno: Dyno = match client
        .send(Method::POST, &["apps", app, "dynos"], Some(&body))
        .await
    {
        Ok(dyno) => dyno,
        Err(e) => {
            writeln!(err, "!")?;
            return Err(e.into());
        }
    };
    writeln!(err, "done, {}", dyno.name)?;
    if args.tail {
        return tail_dyno(client, app, &dyno, out).await;
    }
    writeln!(
        out,
        "Run slipway logs --app {app} --dyno {} to view the output.",
        dyno.name
    )?;
    Ok(())
}

/// `run:detached --tail`: prints `dyno`'s log lines (`app[run.N]`, `heroku[run.N]`) as
/// `slipway logs --tail --dyno run.N` does, and returns once its `Process exited` line has
/// been printed. The session asks for the dyno's recent history too, since the process may
/// have started (or ended) before the stream opened; lines stamped before the dyno was
/// created belong to an earlier dyno of the same name and are skipped.
async fn tail_dyno(
    client: &Client,
    app: &str,
    dyno: &Dyno,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let body = LogSessionCreate {
        dyno_name: Some(dyno.name.clone()),
        process_type: None,
        lines: Some(TAIL_HISTORY),
        source: None,
        tail: Some(true),
    };
    let session: LogSession = client
        .send(Method::POST, &["apps", app, "log-sessions"], Some(&body))
        .await?;
    let url = session.logplex_url;
    let transport = |reason: String| LogStreamError::Transport {
        url: url.clone(),
        reason,
    };
    let lines = DynoLines::new(&dyno.name, dyno.created_at);
    let mut parser = SseParser::default();
    loop {
        let mut request = client
            .http()
            .get(&url)
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(id) = &parser.last_event_id {
            request = request.header("Last-Event-ID", id.as_str());
        }
        let response = request
            .send()
            .await
            .map_err(|e| transport(crate::client::root_cause(&e)))?;
        if !response.status().is_success() {
            return Err(LogStreamError::Status {
                status: response.status(),
                url: url.clone(),
            }
            .into());
        }
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| transport(crate::client::root_cause(&e)))?;
            for event in parser.feed(&chunk) {
                for line in event_lines(&event) {
                    match lines.accept(line) {
                        Shown::Skip => {}
                        Shown::Print => writeln!(out, "{line}")?,
                        Shown::Last => {
                            writeln!(out, "{line}")?;
                            out.flush()?;
                            return Ok(());
                        }
                    }
                }
            }
            out.flush()?;
        }
        // The stream ended before the process did: reopen it where it stopped, as a tail does.
        tokio::time::sleep(parser.retry.unwrap_or(TAIL_RECONNECT)).await;
    }
}

/// How many past lines `run:detached --tail` asks for: the listener's most, so that a dyno
/// that printed a lot before the stream opened is still shown whole.
const TAIL_HISTORY: i64 = 1500;

/// How long `run:detached --tail` waits before reopening a stream that ended early.
const TAIL_RECONNECT: Duration = Duration::from_secs(1);

/// What to do with one log line while tailing a one-off dyno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shown {
    /// Not this dyno's, or from an earlier dyno of the same name.
    Skip,
    Print,
    /// The dyno's `Process exited` line: print it and stop.
    Last,
}

/// Picks a one-off dyno's lines out of a log stream.
pub(crate) struct DynoLines {
    app_tag: String,
    heroku_tag: String,
    exited: String,
    since: chrono::DateTime<chrono::Utc>,
}

impl DynoLines {
    pub(crate) fn new(dyno: &str, since: chrono::DateTime<chrono::Utc>) -> DynoLines {
        DynoLines {
            app_tag: format!(" app[{dyno}]: "),
            heroku_tag: format!(" heroku[{dyno}]: "),
            exited: format!(" heroku[{dyno}]: Process exited"),
            since,
        }
    }

    /// Classifies `line` (`TIMESTAMP SOURCE[DYNO]: MESSAGE`).
    pub(crate) fn accept(&self, line: &str) -> Shown {
        if !line.contains(&self.app_tag) && !line.contains(&self.heroku_tag) {
            return Shown::Skip;
        }
        let stamp = line
            .split(' ')
            .next()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        // Compared to the second, in case `created_at` is stated in whole seconds as Heroku does.
        let since = self.since.trunc_subsecs(0);
        if stamp.is_some_and(|t| t < since) {
            return Shown::Skip;
        }
        if line.contains(&self.exited) {
            Shown::Last
        } else {
            Shown::Print
        }
    }
}

/// The argv joined as the real CLI does: a single argument as is (`run "rake test"`),
/// otherwise arguments with a space or `"` in `"…"`, with `\"` escapes.
pub(crate) fn join_command(argv: &[String]) -> String {
    if let [only] = argv {
        return only.clone();
    }
    argv.iter()
        .map(|arg| {
            if arg.contains(' ') || arg.contains('"') {
                format!("\"{}\"", arg.replace('"', "\\\""))
            } else {
                arg.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `--env "K=V;K2=V2"` as a map; empty entries are skipped, values may contain `=`.
pub(crate) fn parse_env(arg: Option<&str>) -> Result<BTreeMap<String, String>, RunError> {
    let mut env = BTreeMap::new();
    for entry in arg.unwrap_or("").split(';').map(str::trim) {
        if entry.is_empty() {
            continue;
        }
        match entry.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                env.insert(key.to_owned(), value.to_owned());
            }
            _ => {
                return Err(RunError::InvalidEnv {
                    arg: entry.to_owned(),
                })
            }
        }
    }
    Ok(env)
}

/// Where an attach URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AttachTarget {
    pub(crate) host: String,
    pub(crate) port: u16,
    /// The URL's path and query without the leading `/`, as the real CLI sends it.
    pub(crate) secret: String,
}

/// Parses `rendezvous://HOST:PORT/SECRET`.
pub(crate) fn parse_attach_url(url: &str) -> Option<AttachTarget> {
    let url = Url::parse(url).ok()?;
    if url.scheme() != "rendezvous" {
        return None;
    }
    let host = match url.host()? {
        url::Host::Domain(name) => name.to_owned(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
    };
    let mut secret = url.path().trim_start_matches('/').to_owned();
    if let Some(query) = url.query() {
        secret.push('?');
        secret.push_str(query);
    }
    let plausible = !secret.is_empty() && secret.bytes().all(|b| b.is_ascii_graphic());
    plausible.then_some(AttachTarget {
        host,
        port: url.port()?,
        secret,
    })
}

/// The certificates to trust for the rendezvous listener: the file in `SLIPWAY_CA_CERT`,
/// else the platform CA the API serves at `/slipway/ca.pem`.
async fn platform_roots(client: &Client) -> anyhow::Result<rustls::RootCertStore> {
    let (pem, source_name) = match std::env::var("SLIPWAY_CA_CERT")
        .ok()
        .filter(|p| !p.is_empty())
    {
        Some(path) => {
            let pem = std::fs::read(&path).map_err(|e| RunError::CaFile {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            (pem, path)
        }
        None => {
            let pem = client.get_bytes(&["slipway", "ca.pem"]).await?;
            (pem, client.url(&["slipway", "ca.pem"]).to_string())
        }
    };
    roots_from_pem(&pem).ok_or(RunError::NoCaCertificate { source_name }.into())
}

/// A root store of every certificate in `pem`, or `None` when there is none.
pub(crate) fn roots_from_pem(pem: &[u8]) -> Option<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem).flatten() {
        let _ = roots.add(cert);
    }
    (!roots.is_empty()).then_some(roots)
}

type Stream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// Connects in Slipway mode and waits for the listener's `Ready`; returns the stream and
/// any bytes that came after it.
async fn connect(
    dyno: &str,
    target: &AttachTarget,
    roots: rustls::RootCertStore,
) -> anyhow::Result<(Stream, Vec<u8>)> {
    let addr = format!("{}:{}", target.host, target.port);
    let failed = |reason: String| RunError::Connect {
        dyno: dyno.to_owned(),
        addr: addr.clone(),
        reason,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| failed(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(target.host.clone()).map_err(|e| failed(e.to_string()))?;
    let connecting = async {
        let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port)).await?;
        let _ = tcp.set_nodelay(true);
        let mut stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await?;
        let line = format!("{}{}\r\n", target.secret, proto::SLIPWAY_MODE_SUFFIX);
        stream.write_all(line.as_bytes()).await?;
        stream.flush().await?;
        let mut pending = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            if let Some((frame, used)) = proto::decode(&pending).map_err(std::io::Error::other)? {
                pending.drain(..used);
                return Ok::<_, std::io::Error>((stream, pending, frame));
            }
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Err(std::io::Error::other("the listener closed the connection"));
            }
            pending.extend_from_slice(&buf[..n]);
        }
    };
    let (stream, pending, first) = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .map_err(|_| failed("timed out".to_owned()))?
        .map_err(|e| failed(crate::client::root_cause(&e)))?;
    match first {
        Frame::Ready { .. } => Ok((stream, pending)),
        Frame::Error { message } => Err(RunError::Refused {
            dyno: dyno.to_owned(),
            message,
        }
        .into()),
        other => Err(failed(format!("unexpected first frame {other:?}")).into()),
    }
}

/// Copies between the local terminal and the dyno until its exit status arrives.
async fn attached(
    dyno: &str,
    stream: Stream,
    mut pending: Vec<u8>,
    tty: bool,
) -> anyhow::Result<i32> {
    let lost = |reason: String| RunError::Lost {
        dyno: dyno.to_owned(),
        reason,
    };
    // Restored on every way out of this function, unwinding panics included.
    let _raw = if tty { Some(RawMode::enable()?) } else { None };
    let mut winch = if tty {
        Some(signal(SignalKind::window_change())?)
    } else {
        None
    };
    let mut signals = Ending::new()?;
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut stdin = spawn_stdin_reader();
    let mut stdin_open = true;
    let mut stdout = std::io::stdout();
    if tty {
        if let Some((cols, rows)) = window_size() {
            wr.write_all(&proto::encode_to_vec(&Frame::Resize { cols, rows }))
                .await?;
        }
    }
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // Frames already received are handled before waiting for more.
        while let Some((frame, used)) = proto::decode(&pending).map_err(|e| lost(e.to_string()))? {
            pending.drain(..used);
            match frame {
                Frame::Data(bytes) => {
                    stdout.write_all(&bytes)?;
                    stdout.flush()?;
                }
                Frame::Exit { code } => return Ok(code),
                Frame::Error { message } => {
                    return Err(RunError::Refused {
                        dyno: dyno.to_owned(),
                        message,
                    }
                    .into())
                }
                Frame::Ready { .. } => {}
                Frame::Resize { .. } | Frame::EndOfInput => {
                    return Err(lost("the listener sent a client-only frame".into()).into())
                }
            }
        }
        tokio::select! {
            read = rd.read(&mut buf) => match read {
                Ok(0) => return Err(lost("closed without an exit status".into()).into()),
                Ok(n) => pending.extend_from_slice(&buf[..n]),
                Err(e) => return Err(lost(crate::client::root_cause(&e)).into()),
            },
            chunk = stdin.recv(), if stdin_open => {
                let frame = match chunk {
                    Some(bytes) => Frame::Data(bytes),
                    None => {
                        stdin_open = false;
                        // A terminal's Ctrl-D is sent as a byte; only piped input ends.
                        if tty { continue }
                        Frame::EndOfInput
                    }
                };
                wr.write_all(&proto::encode_to_vec(&frame)).await.map_err(|e| lost(crate::client::root_cause(&e)))?;
                wr.flush().await?;
            },
            () = window_changed(&mut winch) => {
                if let Some((cols, rows)) = window_size() {
                    wr.write_all(&proto::encode_to_vec(&Frame::Resize { cols, rows })).await?;
                    wr.flush().await?;
                }
            },
            code = signals.ended() => {
                // The dyno is hung up when this connection goes; the terminal is restored
                // as `_raw` drops.
                return Ok(code);
            },
        }
    }
}

/// Reads stdin on a thread of its own (not tokio's blocking pool, which would keep the
/// process from exiting while a read waits); `None` is the end of input.
fn spawn_stdin_reader() -> tokio::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let spawned = std::thread::Builder::new()
        .name("slipway-run-stdin".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if tx.blocking_send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        });
    // Without a reader the session still runs; the remote side just gets no input.
    drop(spawned);
    rx
}

/// The next window change; never, without a terminal.
async fn window_changed(winch: &mut Option<Signal>) {
    match winch {
        Some(winch) => {
            winch.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// The signals that end `run` (it restores the terminal and exits, hanging the dyno up).
struct Ending {
    term: Signal,
    hup: Signal,
    int: Signal,
}

impl Ending {
    fn new() -> std::io::Result<Ending> {
        Ok(Ending {
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves with the shell's status for the signal that ended `run`.
    async fn ended(&mut self) -> i32 {
        tokio::select! {
            _ = self.hup.recv() => 129,
            _ = self.int.recv() => 130,
            _ = self.term.recv() => 143,
        }
    }
}

/// The local terminal in raw mode until dropped.
struct RawMode {
    saved: rustix::termios::Termios,
}

impl RawMode {
    fn enable() -> anyhow::Result<RawMode> {
        let stdin = std::io::stdin();
        let saved = rustix::termios::tcgetattr(&stdin).context("reading the terminal's mode")?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw)
            .context("putting the terminal in raw mode")?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}

fn stdin_is_tty() -> bool {
    rustix::termios::isatty(std::io::stdin())
}

fn stdout_is_tty() -> bool {
    rustix::termios::isatty(std::io::stdout())
}

/// The local terminal's size as (columns, rows), from stdout.
fn window_size() -> Option<(u16, u16)> {
    let size = rustix::termios::tcgetwinsize(std::io::stdout()).ok()?;
    (size.ws_col > 0 && size.ws_row > 0).then_some((size.ws_col, size.ws_row))
}
