//! Log drains: each app may forward its log to up to five URLs.
//!
//! A drain is a tokio task with its own bounded queue (1024 lines). [`crate::LogHub::publish`]
//! pushes into the queue without waiting; when the queue is full the oldest line is dropped and
//! counted, and the drain later says so with an `Error L10 (output buffer overflow)` line, both in
//! the app's stream and in what it sends. A slow, failing or dead drain therefore never slows the
//! dynos, the tails or the other drains.
//!
//! * `syslog://host:port` and `syslog+tls://host:port`: RFC 5424 over TCP (or TLS, with
//!   certificate verification; failures are reported as `Error L14`), octet-counted.
//! * `http://` and `https://`: batches of about 100 KB POSTed as `application/logplex-1`, with
//!   `Logplex-Msg-Count`, `Logplex-Frame-Id` and `Logplex-Drain-Token`. 5xx, 429 and network
//!   errors are retried with the same frame id; other 4xx (and redirects, which are not
//!   followed) drop the batch.
//!
//! Every connection goes through the [`OutboundPolicy`] in [`DrainOptions::outbound`]: a drain
//! whose host is (or resolves to) a loopback, private, link-local or this host's own address is
//! refused when it is added ([`check_drain_url`]) and, since names can change, again at every
//! connection, which goes to the very addresses that were checked.

use std::collections::VecDeque;
use std::error::Error as StdError;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use rustls::pki_types::{CertificateDer, ServerName};
use slipway_outbound::OutboundPolicy;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use url::Url;

use crate::line::LogLine;
use crate::syslog::{logplex_message, syslog_message, write_octet_counted};

/// Heroku allows at most five drains per app.
pub const MAX_DRAINS_PER_APP: usize = 5;
/// Each drain buffers this many lines before it drops the oldest (Heroku's L10).
pub const DRAIN_BUFFER: usize = 1024;
/// HTTP drains aim for POST bodies of about this many bytes.
pub const HTTP_BATCH_BYTES: usize = 102_400;
/// A drain puts at most one L10 line per this interval into the app's stream (every report still
/// goes to the drain itself).
const STREAM_REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// What went wrong adding, finding or running a drain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DrainError {
    #[error("drain URL {url:?} is not a valid URL ({reason}); use e.g. syslog+tls://logs.example.com:6514 or https://user:pass@logs.example.com/path")]
    InvalidUrl { url: String, reason: String },
    #[error("drain URL {url:?} has scheme {scheme:?}; supported schemes are syslog://, syslog+tls://, http:// and https://")]
    UnsupportedScheme { url: String, scheme: String },
    #[error("drain URL {url:?} has no host; give one, e.g. syslog://logs.example.com:514")]
    MissingHost { url: String },
    #[error(
        "drain URL {url:?} has no port; syslog drains need one, e.g. syslog://logs.example.com:514"
    )]
    MissingPort { url: String },
    #[error("drain token {token:?} is not of the form d.<uuid>")]
    InvalidToken { token: String },
    #[error("app {app:?} already has {limit} drains, the most an app may have; remove one first")]
    TooManyDrains { app: String, limit: usize },
    #[error("app {app:?} already drains to {url:?}")]
    DuplicateUrl { app: String, url: String },
    #[error("app {app:?} already has a drain with id or token {id:?}")]
    DuplicateId { app: String, id: String },
    #[error("app {app:?} has no drain with id, token or URL {query:?}; list them with `drains`")]
    NotFound { app: String, query: String },
    #[error("drains run as tokio tasks: add_drain must be called from within a tokio runtime")]
    NoRuntime,
    #[error("cannot set up TLS for drain {url:?}: {reason}")]
    Tls { url: String, reason: String },
    #[error("drain URL {url:?} is refused: {reason}")]
    Refused { url: String, reason: String },
}

/// Where a drain sends, as parsed and validated from its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainTarget {
    /// `syslog://host:port`: RFC 5424 over plain TCP.
    Syslog { host: String, port: u16 },
    /// `syslog+tls://host:port`: RFC 5424 over TLS with certificate verification.
    SyslogTls { host: String, port: u16 },
    /// `http://` or `https://`: `application/logplex-1` POSTs.
    Http(Url),
}

impl DrainTarget {
    /// Parses and validates a drain URL.
    pub fn parse(url: &str) -> Result<DrainTarget, DrainError> {
        let parsed = Url::parse(url.trim()).map_err(|error| DrainError::InvalidUrl {
            url: url.to_owned(),
            reason: error.to_string(),
        })?;
        let host = || -> Result<String, DrainError> {
            match parsed.host_str() {
                Some(host) if !host.is_empty() => Ok(host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned()),
                _ => Err(DrainError::MissingHost {
                    url: url.to_owned(),
                }),
            }
        };
        match parsed.scheme() {
            "syslog" | "syslog+tls" => {
                let host = host()?;
                let port = parsed.port().ok_or_else(|| DrainError::MissingPort {
                    url: url.to_owned(),
                })?;
                Ok(if parsed.scheme() == "syslog" {
                    DrainTarget::Syslog { host, port }
                } else {
                    DrainTarget::SyslogTls { host, port }
                })
            }
            "http" | "https" => {
                host()?;
                Ok(DrainTarget::Http(parsed))
            }
            other => Err(DrainError::UnsupportedScheme {
                url: url.to_owned(),
                scheme: other.to_owned(),
            }),
        }
    }
}

impl DrainTarget {
    /// The host the drain connects to.
    pub fn host(&self) -> String {
        match self {
            DrainTarget::Syslog { host, .. } | DrainTarget::SyslogTls { host, .. } => host.clone(),
            DrainTarget::Http(url) => slipway_outbound::url_host(url).unwrap_or_default(),
        }
    }
}

/// Checks a drain URL against the outbound policy, after resolving its host: refuses drains to
/// loopback, private, link-local and this host's own addresses. A name that does not resolve
/// yet passes (the policy checks again at every connection).
pub async fn check_drain_url(url: &str, policy: &OutboundPolicy) -> Result<(), DrainError> {
    let target = DrainTarget::parse(url)?;
    policy
        .check_host(&target.host())
        .await
        .map_err(|error| DrainError::Refused {
            url: redacted(url.trim()),
            reason: error.to_string(),
        })
}

/// One drain of one app: what the Platform API's `log-drain` resource shows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DrainConfig {
    /// A UUID naming the drain.
    pub id: String,
    pub url: String,
    /// `d.<uuid>`: the HOSTNAME of syslog messages and the `Logplex-Drain-Token` header.
    pub token: String,
}

impl DrainConfig {
    /// A new drain for `url`, with a fresh id and token. Fails if the URL is not a drain URL.
    pub fn new(url: &str) -> Result<DrainConfig, DrainError> {
        DrainTarget::parse(url)?;
        Ok(DrainConfig {
            id: uuid::Uuid::new_v4().to_string(),
            url: url.trim().to_owned(),
            token: format!("d.{}", uuid::Uuid::new_v4()),
        })
    }

    /// Checks the URL and the token (used for drains restored from storage).
    pub fn validate(&self) -> Result<DrainTarget, DrainError> {
        let valid_token = self
            .token
            .strip_prefix("d.")
            .and_then(|rest| uuid::Uuid::parse_str(rest).ok())
            .is_some();
        if !valid_token {
            return Err(DrainError::InvalidToken {
                token: self.token.clone(),
            });
        }
        DrainTarget::parse(&self.url)
    }

    pub(crate) fn matches(&self, query: &str) -> bool {
        self.id == query || self.token == query || self.url == query.trim()
    }
}

/// How drains behave; the defaults are Heroku's numbers.
#[derive(Debug, Clone)]
pub struct DrainOptions {
    /// Certificates trusted in addition to the built-in web PKI roots (e.g. a private CA).
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Lines each drain buffers before dropping the oldest (1024).
    pub buffer_size: usize,
    /// Target size of an HTTP drain's POST body (100 KB).
    pub http_batch_bytes: usize,
    /// Extra attempts after a temporary failure before a batch is dropped (2, as Logplex).
    pub max_retries: u32,
    /// Delay before the first retry; doubled on each further one up to `max_backoff`.
    pub retry_backoff: Duration,
    pub max_backoff: Duration,
    /// How long a drain waits for more lines before sending a batch smaller than
    /// `http_batch_bytes`: a few lines per request instead of one cuts the CPU cost per line
    /// tenfold at moderate rates, for a few milliseconds of delay (the tails are not delayed).
    pub batch_linger: Duration,
    pub connect_timeout: Duration,
    /// Limit on one HTTP request, or on one write to a syslog connection.
    pub io_timeout: Duration,
    /// Where drains may connect (strict by default: public addresses only).
    pub outbound: OutboundPolicy,
}

impl Default for DrainOptions {
    fn default() -> Self {
        DrainOptions {
            extra_roots: Vec::new(),
            buffer_size: DRAIN_BUFFER,
            http_batch_bytes: HTTP_BATCH_BYTES,
            max_retries: 2,
            retry_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
            batch_linger: Duration::from_millis(2),
            connect_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(30),
            outbound: OutboundPolicy::default(),
        }
    }
}

/// Counters of one drain since it was added.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainStats {
    /// Lines accepted by the receiver (HTTP 2xx, or written to the syslog connection).
    pub delivered: u64,
    /// Lines lost: overflow of the buffer, 4xx answers, retries exhausted.
    pub dropped: u64,
    /// Lines waiting in the buffer right now.
    pub queued: usize,
}

/// A drain and its counters, as listed by [`crate::LogHub::drains`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainInfo {
    pub config: DrainConfig,
    pub stats: DrainStats,
}

/// About how many bytes a line takes on the wire.
fn frame_estimate(line: &LogLine) -> usize {
    line.message.len() + line.process.len() + 60
}

struct QueueState {
    lines: VecDeque<Arc<LogLine>>,
    /// The [`frame_estimate`] of all `lines`.
    bytes: usize,
    /// Lines dropped since the last L10 report, and when the first of them was dropped.
    dropped: u64,
    dropped_since: Option<DateTime<Utc>>,
}

/// A drain's bounded buffer: `push` never waits, a full buffer drops its oldest line.
pub(crate) struct DrainQueue {
    state: Mutex<QueueState>,
    notify: Notify,
    capacity: usize,
    delivered: AtomicU64,
    dropped_total: AtomicU64,
}

impl DrainQueue {
    fn new(capacity: usize) -> DrainQueue {
        DrainQueue {
            state: Mutex::new(QueueState {
                lines: VecDeque::with_capacity(capacity.min(64)),
                bytes: 0,
                dropped: 0,
                dropped_since: None,
            }),
            notify: Notify::new(),
            capacity: capacity.max(1),
            delivered: AtomicU64::new(0),
            dropped_total: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    pub(crate) fn push(&self, line: Arc<LogLine>) {
        {
            let mut state = self.lock();
            if state.lines.len() >= self.capacity {
                if let Some(old) = state.lines.pop_front() {
                    state.bytes -= frame_estimate(&old);
                }
                state.dropped += 1;
                state.dropped_since.get_or_insert_with(Utc::now);
                self.dropped_total.fetch_add(1, Ordering::Relaxed);
            }
            state.bytes += frame_estimate(&line);
            state.lines.push_back(line);
        }
        self.notify.notify_one();
    }

    /// Counts lines lost after they left the buffer (4xx, retries exhausted), together with the
    /// overflow report that went down with them, so that the next L10 covers both.
    fn add_dropped(&self, lost: u64, report: Option<(u64, DateTime<Utc>)>) {
        let mut state = self.lock();
        if let Some((count, since)) = report {
            state.dropped += count;
            let earliest = state.dropped_since.map_or(since, |t| t.min(since));
            state.dropped_since = Some(earliest);
        }
        if lost > 0 {
            state.dropped += lost;
            state.dropped_since.get_or_insert_with(Utc::now);
            self.dropped_total.fetch_add(lost, Ordering::Relaxed);
        }
    }

    /// Waits until the buffer holds a line.
    async fn wait(&self) {
        loop {
            if !self.lock().lines.is_empty() {
                return;
            }
            self.notify.notified().await;
        }
    }

    /// Whether the buffer holds at least `max_bytes` worth of lines.
    fn has_full_batch(&self, max_bytes: usize) -> bool {
        self.lock().bytes >= max_bytes
    }

    /// Waits for lines, then takes up to `max_bytes` worth of them (at least one) along with the
    /// count of lines dropped since the last call (reported only along with new lines, as
    /// Logplex does, so that a dead drain does not loop on its own reports).
    async fn take(&self, max_bytes: usize) -> (Vec<Arc<LogLine>>, Option<(u64, DateTime<Utc>)>) {
        loop {
            {
                let mut state = self.lock();
                if !state.lines.is_empty() {
                    let mut bytes = 0;
                    let mut count = 0;
                    for line in &state.lines {
                        bytes += frame_estimate(line);
                        count += 1;
                        if bytes >= max_bytes {
                            break;
                        }
                    }
                    let batch: Vec<_> = state.lines.drain(..count).collect();
                    state.bytes -= bytes.min(state.bytes);
                    if state.lines.is_empty() {
                        state.bytes = 0;
                    }
                    let dropped = if state.dropped > 0 {
                        let since = state.dropped_since.take().unwrap_or_else(Utc::now);
                        Some((std::mem::take(&mut state.dropped), since))
                    } else {
                        None
                    };
                    return (batch, dropped);
                }
            }
            self.notify.notified().await;
        }
    }

    pub(crate) fn stats(&self) -> DrainStats {
        DrainStats {
            delivered: self.delivered.load(Ordering::Relaxed),
            dropped: self.dropped_total.load(Ordering::Relaxed),
            queued: self.lock().lines.len(),
        }
    }
}

/// A running drain, owned by its app's log: dropping it stops the task.
pub(crate) struct Drain {
    pub(crate) config: DrainConfig,
    pub(crate) queue: Arc<DrainQueue>,
    task: tokio::task::AbortHandle,
}

impl Drop for Drain {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl fmt::Debug for Drain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drain")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Drain {
    /// Validates the drain and starts its task. The drain reports its own troubles (L10, L14)
    /// through `report`, which returns false once nobody is listening any more (the hub is gone).
    pub(crate) fn start(
        report: ReportLine,
        app: &str,
        config: DrainConfig,
        options: &DrainOptions,
    ) -> Result<Drain, DrainError> {
        let target = config.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| DrainError::NoRuntime)?;
        let queue = Arc::new(DrainQueue::new(options.buffer_size));
        let sink = Sink::new(&target, &config, options)?;
        let worker = Worker {
            report_line: report,
            app: app.to_owned(),
            config: config.clone(),
            queue: queue.clone(),
            options: options.clone(),
            sink,
            reported_tls_failure: false,
            last_stream_report: None,
        };
        let task = runtime.spawn(worker.run()).abort_handle();
        Ok(Drain {
            config,
            queue,
            task,
        })
    }
}

/// The built-in web PKI roots plus the extra ones.
fn root_store(
    extra: &[CertificateDer<'static>],
    url: &str,
) -> Result<rustls::RootCertStore, DrainError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in extra {
        roots.add(cert.clone()).map_err(|error| DrainError::Tls {
            url: url.to_owned(),
            reason: format!("extra root certificate rejected: {error}"),
        })?;
    }
    Ok(roots)
}

enum Sink {
    Syslog {
        host: String,
        port: u16,
        tls: Option<tokio_rustls::TlsConnector>,
        connection: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    },
    Http {
        client: reqwest::Client,
        url: Url,
        auth: Option<(String, String)>,
    },
}

/// Logs (in the server's log only) a connection the outbound policy refused.
fn note_refusal(url: &str, error: &slipway_outbound::OutboundError) {
    tracing::warn!(drain = %redacted(url), %error, "log drain refused by the outbound policy");
}

impl Sink {
    fn new(
        target: &DrainTarget,
        config: &DrainConfig,
        options: &DrainOptions,
    ) -> Result<Sink, DrainError> {
        let tls_error = |reason: String| DrainError::Tls {
            url: config.url.clone(),
            reason,
        };
        Ok(match target {
            DrainTarget::Syslog { host, port } => Sink::Syslog {
                host: host.clone(),
                port: *port,
                tls: None,
                connection: None,
            },
            DrainTarget::SyslogTls { host, port } => {
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let tls = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|error| tls_error(error.to_string()))?
                    .with_root_certificates(root_store(&options.extra_roots, &config.url)?)
                    .with_no_client_auth();
                Sink::Syslog {
                    host: host.clone(),
                    port: *port,
                    tls: Some(tokio_rustls::TlsConnector::from(Arc::new(tls))),
                    connection: None,
                }
            }
            DrainTarget::Http(url) => {
                let mut builder = options
                    .outbound
                    .http_client(reqwest::Client::builder())
                    .use_rustls_tls()
                    .user_agent(concat!("Logplex/slipway-", env!("CARGO_PKG_VERSION")))
                    .connect_timeout(options.connect_timeout)
                    .timeout(options.io_timeout)
                    .pool_idle_timeout(Duration::from_secs(144))
                    .pool_max_idle_per_host(1);
                for cert in &options.extra_roots {
                    let cert = reqwest::Certificate::from_der(cert)
                        .map_err(|error| tls_error(error.to_string()))?;
                    builder = builder.add_root_certificate(cert);
                }
                let client = builder
                    .build()
                    .map_err(|error| tls_error(error.to_string()))?;
                let mut url = url.clone();
                let auth = (!url.username().is_empty()).then(|| {
                    (
                        percent_decode(url.username()),
                        percent_decode(url.password().unwrap_or("")),
                    )
                });
                let _ = url.set_username("");
                let _ = url.set_password(None);
                Sink::Http { client, url, auth }
            }
        })
    }
}

/// Decodes a URL's percent-encoded user name or password; an invalid escape stays as it is.
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// How one attempt to deliver a batch ended.
enum Attempt {
    Delivered,
    /// The receiver refused the batch for good (4xx other than 429).
    Rejected,
    /// Worth retrying (5xx, 429, network error); `certificate` is set on TLS validation failures.
    Failed {
        certificate: Option<String>,
    },
}

/// Where a drain puts the lines it says itself: the app's history and tails, not the drains.
/// Returns false once the hub is gone. A callback rather than the hub itself, so that drains do
/// not import the hub that owns them; it runs only when a drain reports, never per line.
pub(crate) type ReportLine = Box<dyn Fn(&str, LogLine) -> bool + Send + Sync>;

struct Worker {
    report_line: ReportLine,
    app: String,
    config: DrainConfig,
    queue: Arc<DrainQueue>,
    options: DrainOptions,
    sink: Sink,
    reported_tls_failure: bool,
    last_stream_report: Option<Instant>,
}

impl Worker {
    async fn run(mut self) {
        let max_bytes = self.options.http_batch_bytes;
        loop {
            if !self.options.batch_linger.is_zero() {
                self.queue.wait().await;
                if !self.queue.has_full_batch(max_bytes) {
                    tokio::time::sleep(self.options.batch_linger).await;
                }
            }
            let (mut batch, report) = self.queue.take(max_bytes).await;
            if let Some((count, since)) = report {
                let line = Arc::new(LogLine::heroku(
                    "logplex",
                    format!(
                        "Error L10 (output buffer overflow): {count} messages dropped since {}.",
                        since
                            .to_rfc3339_opts(SecondsFormat::Secs, false)
                            .replace('Z', "+00:00")
                    ),
                ));
                // A drain that keeps failing would otherwise flood the stream with reports.
                let due = self
                    .last_stream_report
                    .is_none_or(|at| at.elapsed() >= STREAM_REPORT_INTERVAL);
                if due {
                    self.last_stream_report = Some(Instant::now());
                    if !self.report((*line).clone()) {
                        return;
                    }
                }
                batch.insert(0, line);
            }
            if self.deliver(&batch).await {
                let lines = batch.len() - usize::from(report.is_some());
                self.queue
                    .delivered
                    .fetch_add(lines as u64, Ordering::Relaxed);
            } else {
                let lost = batch.len() - usize::from(report.is_some());
                self.queue.add_dropped(lost as u64, report);
            }
        }
    }

    /// Puts a line in the app's stream (history and tails, not the drains). False once the hub
    /// is gone.
    fn report(&self, line: LogLine) -> bool {
        (self.report_line)(&self.app, line)
    }

    /// Sends one batch, retrying temporary failures; false if it was lost.
    async fn deliver(&mut self, batch: &[Arc<LogLine>]) -> bool {
        let body = self.encode(batch);
        let frame_id = uuid::Uuid::new_v4().simple().to_string();
        let mut backoff = self.options.retry_backoff;
        let mut attempt = 0;
        loop {
            match self.attempt(&body, batch.len(), &frame_id).await {
                Attempt::Delivered => {
                    self.reported_tls_failure = false;
                    return true;
                }
                Attempt::Rejected => return false,
                Attempt::Failed { certificate } => {
                    if let Some(error) = certificate {
                        if !self.reported_tls_failure {
                            self.reported_tls_failure = true;
                            let uri = redacted(&self.config.url);
                            self.report(LogLine::heroku(
                                "logplex",
                                format!(
                                    "Error L14 (certificate validation): error=\"{error}\" uri=\"{uri}\""
                                ),
                            ));
                        }
                    }
                    if attempt >= self.options.max_retries {
                        return false;
                    }
                    attempt += 1;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.options.max_backoff);
                }
            }
        }
    }

    fn encode(&self, batch: &[Arc<LogLine>]) -> bytes::Bytes {
        let mut body = Vec::with_capacity(batch.len() * 128);
        let http = matches!(self.sink, Sink::Http { .. });
        for line in batch {
            let message = if http {
                logplex_message(line)
            } else {
                syslog_message(line, &self.config.token)
            };
            write_octet_counted(&mut body, &message);
        }
        bytes::Bytes::from(body)
    }

    async fn attempt(&mut self, body: &bytes::Bytes, count: usize, frame_id: &str) -> Attempt {
        let timeout = self.options.io_timeout;
        let connect_timeout = self.options.connect_timeout;
        let policy = &self.options.outbound;
        match &mut self.sink {
            Sink::Http { client, url, auth } => {
                // Names are checked by the client's resolver; IP literals are not resolved.
                if let Ok(host) = slipway_outbound::url_host(url) {
                    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
                        if let Err(error) = policy.check_ip(&host, ip) {
                            note_refusal(&self.config.url, &error);
                            return Attempt::Failed { certificate: None };
                        }
                    }
                }
                let mut request = client
                    .post(url.clone())
                    .header("Content-Type", "application/logplex-1")
                    .header("Logplex-Msg-Count", count.to_string())
                    .header("Logplex-Frame-Id", frame_id)
                    .header("Logplex-Drain-Token", &self.config.token)
                    .body(body.clone());
                if let Some((user, password)) = auth {
                    request = request.basic_auth(user, Some(password));
                }
                match request.send().await {
                    Ok(response) => {
                        let status = response.status();
                        // Read the body so that the connection can be reused.
                        let _ = response.bytes().await;
                        if status.is_success() {
                            Attempt::Delivered
                        } else if status.is_redirection()
                            || (status.is_client_error() && status.as_u16() != 429)
                        {
                            Attempt::Rejected
                        } else {
                            Attempt::Failed { certificate: None }
                        }
                    }
                    Err(error) => {
                        if let Some(refusal) = slipway_outbound::refusal_in(&error) {
                            note_refusal(&self.config.url, &refusal);
                        }
                        Attempt::Failed {
                            certificate: certificate_error(&error),
                        }
                    }
                }
            }
            Sink::Syslog {
                host,
                port,
                tls,
                connection,
            } => {
                if connection.is_none() {
                    let url = &self.config.url;
                    let connect = async {
                        let tcp = policy
                            .connect_tcp(host, *port, connect_timeout)
                            .await
                            .map_err(|error| {
                                if error.is_refused() {
                                    note_refusal(url, &error);
                                }
                                std::io::Error::other(error)
                            })?;
                        let _ = tcp.set_nodelay(true);
                        let stream: Box<dyn AsyncWrite + Send + Unpin> = match tls {
                            Some(connector) => {
                                let name = ServerName::try_from(host.clone()).map_err(|e| {
                                    std::io::Error::new(std::io::ErrorKind::InvalidInput, e)
                                })?;
                                Box::new(connector.connect(name, tcp).await?)
                            }
                            None => Box::new(tcp),
                        };
                        Ok::<_, std::io::Error>(stream)
                    };
                    match tokio::time::timeout(connect_timeout, connect).await {
                        Ok(Ok(stream)) => *connection = Some(stream),
                        Ok(Err(error)) => {
                            return Attempt::Failed {
                                certificate: certificate_error(&error),
                            }
                        }
                        Err(_) => return Attempt::Failed { certificate: None },
                    }
                }
                let Some(stream) = connection.as_mut() else {
                    return Attempt::Failed { certificate: None };
                };
                let write = async {
                    stream.write_all(body).await?;
                    stream.flush().await
                };
                match tokio::time::timeout(timeout, write).await {
                    Ok(Ok(())) => Attempt::Delivered,
                    _ => {
                        *connection = None;
                        Attempt::Failed { certificate: None }
                    }
                }
            }
        }
    }
}

/// The URL without its password, for messages.
fn redacted(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("REDACTED"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// The certificate problem behind an error, if a TLS certificate check is what failed.
fn certificate_error(error: &(dyn StdError + 'static)) -> Option<String> {
    slipway_outbound::find_in_chain(
        error,
        &|error| match error.downcast_ref::<rustls::Error>() {
            Some(rustls::Error::InvalidCertificate(problem)) => Some(format!("{problem:?}")),
            _ => None,
        },
    )
}
