//! Slipway's HTTP router: every request to every app goes through it (Heroku reference §6).
//!
//! The router finds the app by the `Host` header in an immutable [`RouteTable`] snapshot read
//! from a `tokio::sync::watch` channel per request, so route updates take effect for the next
//! request without disturbing in-flight requests or keep-alive client connections. For a
//! serving app it picks a web dyno at random, forwards the request over a keep-alive connection
//! pool with Heroku's headers added, streams bodies both ways, and logs exactly one
//! `heroku[router]` line per request through a [`RouterLogSink`]. Apps that cannot serve get
//! Heroku's H-code error pages.
//!
//! Architecture Invariant: this crate knows nothing of the database or the API; it only reads
//! route table snapshots and writes log lines.
//!
//! HTTP/1.x clients are served by the router's own engine (`h1`): request heads are parsed
//! with Heroku's limits (8 KB lines, 1000 headers, a plain 400 beyond), bodies stream through
//! reused buffers, and each client connection keeps its dyno connection for the next request.
//! `slipway server` runs it thread per core ([`Router::serve_per_core`], module `threads`).
//!
//! Differences from Heroku worth knowing:
//! - `bytes=` in the log counts body bytes relayed from the dyno; router error pages count 0.
//! - The backlog behind H11 counts in-flight requests per app (the router has no queue).
//! - HTTP/2 clients (over TLS only, see `tls`) go through the hyper-based path (`proxy`, `body`);
//!   the backlog behind H11 counts their requests until the response head.
//!
//! Both engines take every decision from `policy` (admission and its H codes, the headers the
//! dyno gets, the request id, which dyno to try and when to give up) and get dyno connections
//! from the one pool in `upstream`, so they cannot drift apart. Modules form a DAG: `lib.rs`
//! only declares modules and re-exports; `shared` (the state of one router) is below both
//! engines; `route`, `config`, `logline` and `wire` are leaves.

mod body;
mod config;
mod h1;
mod logline;
mod pages;
mod policy;
mod proxy;
mod route;
mod server;
mod shared;
mod threads;
mod tls;
mod upstream;
mod wake;
mod wire;

pub use config::{RouterConfig, RouterLogSink, WakeHook};
pub use logline::ErrorCode;
pub use route::{AppRoute, Backend, RouteStatus, RouteTable};
pub use server::Router;
pub use threads::{Protocol, RouterThreads};
pub use tls::{verifies, CertError, CertIssuer, CertTable, ListenerNames, ServerCert, TlsSettings};
