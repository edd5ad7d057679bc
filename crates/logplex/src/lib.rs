//! Logplex: one collated log stream per app.
//!
//! Every source (dyno output, the router, the dyno manager, the API, builds) publishes
//! [`LogLine`]s into the [`LogHub`]; the hub keeps the last lines of each app and fans new lines
//! out to tail sessions. Publishing never blocks: a tail that falls behind loses lines and is told
//! how many (Heroku's L11), it never slows the publisher.
//!
//! Every line gets a per-app sequence number, increasing by one per line, so that a
//! reconnecting SSE client (`Last-Event-ID`) resumes exactly where it stopped
//! ([`LogHub::since`]). Sequence numbers start at the microseconds since the epoch when the hub
//! first hears of the app, so they keep increasing across restarts of the platform.
//!
//! Each app may also have up to five drains ([`LogHub::add_drain`], see [`drain`]), which forward
//! its lines to syslog or HTTP receivers without ever slowing [`LogHub::publish`].
//!
//! Architecture Invariant: log lines never pass through the store, and this crate knows nothing
//! of apps beyond their names.
//!
//! Architecture Invariant: the modules form a DAG — `line` (the log line and filter) imports
//! nothing, `syslog` formats lines, `drain` forwards them and reports its own troubles through a
//! callback it is given, and `hub` owns the history, tails and drains. The crate root only
//! declares modules and re-exports.

pub mod drain;
mod hub;
mod line;
pub mod syslog;

pub use drain::{
    check_drain_url, DrainConfig, DrainError, DrainInfo, DrainOptions, DrainStats, DrainTarget,
    DRAIN_BUFFER, MAX_DRAINS_PER_APP,
};
pub use hub::{LogHub, SeqLine, SeqTailEvent, Tail, TailEvent, DEFAULT_HISTORY};
pub use line::{split_long_line, LogFilter, LogLine, Source, MAX_LINE_BYTES};
/// DER certificates, as taken by [`DrainOptions::extra_roots`].
pub use rustls::pki_types::CertificateDer;

#[cfg(test)]
mod tests;
