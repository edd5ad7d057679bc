//! What every handler shares: the platform, git's push tokens and the open log sessions.
//!
//! A leaf: it imports no other module of the crate, so every handler can use it and the router
//! above them can build it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use slipway_core::model::{App, User};
use slipway_core::Platform;
use slipway_git::GitRepos;
use slipway_logplex::LogFilter;

/// What the API needs besides the platform.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The binary git's pre-receive hook execs (`slipway git-hook pre-receive`).
    pub hook_binary: PathBuf,
    /// API requests per hour an account may make.
    pub rate_limit_per_hour: u32,
    /// The largest page of a list a `Range` may ask for.
    pub max_page_size: usize,
    /// What the cluster routes (`cluster_routes.rs`) serve standalone routers; without it
    /// they answer 404.
    pub cluster: Option<ClusterApi>,
    /// Cluster mode's host agents (`agents.rs`); `None`: a single-host server, whose agent
    /// routes answer 404.
    pub agents: Option<std::sync::Arc<slipway_core::cluster::Cluster>>,
}

/// The control plane's side of standalone routers: the cluster token they present and the
/// route table snapshots they are streamed.
#[derive(Debug, Clone)]
pub struct ClusterApi {
    /// `<data>/cluster-token`, compared in constant time (`SecretToken`'s equality).
    pub token: slipway_model::SecretToken,
    /// The route table as it changes, in its wire shape.
    pub routes:
        tokio::sync::watch::Receiver<std::sync::Arc<slipway_api_types::cluster::RouteSnapshot>>,
    /// The certificates standalone routers serve over HTTPS, private keys included.
    pub certs:
        tokio::sync::watch::Receiver<std::sync::Arc<slipway_api_types::cluster::CertSnapshot>>,
}

#[derive(Clone)]
pub(crate) struct ApiState {
    pub(crate) platform: Arc<Platform>,
    pub(crate) git: Arc<GitState>,
    pub(crate) log_sessions: Arc<LogSessions>,
    /// Failed password logins per email (`POST /oauth/authorizations`).
    pub(crate) login_throttle: Arc<slipway_core::LoginThrottle>,
    /// Standalone routers' token and route stream (`ApiConfig::cluster`).
    pub(crate) cluster: Option<Arc<ClusterApi>>,
}

/// Git's share of the state: the repositories and the pushes in flight.
pub(crate) struct GitState {
    /// The platform's repositories: the core creates and removes them with their apps.
    pub(crate) repos: GitRepos,
    pub(crate) hook_binary: PathBuf,
    /// The pushes in flight, by their one-time token.
    pub(crate) pushes: Mutex<HashMap<String, Push>>,
}

/// A push in flight: who pushed to which app, until when its token is valid.
pub(crate) struct Push {
    pub(crate) user: User,
    pub(crate) app: App,
    pub(crate) expires: Instant,
}

impl GitState {
    pub(crate) fn new(config: &ApiConfig, repos: GitRepos) -> GitState {
        GitState {
            repos,
            hook_binary: config.hook_binary.clone(),
            pushes: Mutex::new(HashMap::new()),
        }
    }
}

/// The log sessions created and not yet expired, by id.
#[derive(Debug, Default)]
pub(crate) struct LogSessions {
    pub(crate) sessions: Mutex<HashMap<uuid::Uuid, Session>>,
}

/// One log session: what its URL's secret lets the holder read.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) secret: String,
    pub(crate) app: String,
    /// Who created it: the stream checks they may still see the app.
    pub(crate) user_email: String,
    pub(crate) filter: LogFilter,
    pub(crate) lines: usize,
    pub(crate) tail: bool,
    pub(crate) expires: Instant,
}
