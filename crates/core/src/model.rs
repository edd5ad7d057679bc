//! The platform's records as they are kept in the store, and where each one lives.
//!
//! These are domain types, not wire formats: the Heroku-shaped JSON of the API lives in
//! `slipway-api-types`, and the API crate converts between the two.
//!
//! Key layout (every value is JSON):
//! - `apps/<name>` → [`App`]
//! - `users/<email>` → [`User`]; `api-keys/<sha256 of key>` → the user's email
//! - `config/<app id>` → the app's current config vars
//! - `releases/<app id>/<version, 10 digits>` → [`Release`] (append-only: the store refuses changes)
//! - `slugs/<app id>/<slug id>` → [`Slug`] (append-only)
//! - `formation/<app id>/<process type>` → [`Formation`]
//! - `dynos/<app id>/<dyno name>` → [`Dyno`], written only by the dyno manager
//! - `restarts/<app id>/<target>` → [`Restart`]: the last restart or stop asked for all dynos
//!   (target `*`), a process type (`web`) or one dyno (`web.2`)
//! - `builds/<app id>/<build id>` → [`Build`]: a build started through the API, rewritten when
//!   it ends
//! - `domains/<hostname>` → [`Domain`] (`domains.rs`): the hostnames the router serves
//! - `certs/<app id>/<endpoint id>` → [`SniEndpoint`] (`certs.rs`): an uploaded certificate chain
//!   and its private key (a secret: never returned by the API)
//! - `uids/<uid, 10 digits>` → the id of the app that holds that uid (`uids.rs`); written with
//!   the app (or the app's first use), compare-and-set on its absence, deleted with the app;
//!   `uid-cursor` → the next uid to hand out (so uids are reused only after a wrap-around)

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use slipway_logplex::DrainConfig;
use uuid::Uuid;

pub type ConfigVars = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    pub id: Uuid,
    pub name: String,
    pub owner_email: String,
    pub stack: String,
    pub maintenance: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The app's own unprivileged uid, also its gid, from `PlatformConfig::app_uids`: its
    /// dynos, one-off dynos and builds run as it. Claimed in the store (`uids/<uid>`) so no
    /// two apps share one. `None` for apps created before uids per app; they get one on
    /// first use (`Platform::app_uid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub created_at: DateTime<Utc>,
    /// An administrator sees and may act on every app and manages accounts. The first
    /// account, created at first start, is one.
    #[serde(default)]
    pub admin: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReleaseStatus {
    Pending,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub id: Uuid,
    pub app_id: Uuid,
    pub version: u32,
    pub description: String,
    pub slug_id: Option<Uuid>,
    pub config_vars: ConfigVars,
    pub user_email: String,
    pub status: ReleaseStatus,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slug {
    pub id: Uuid,
    pub app_id: Uuid,
    /// `SHA256:<hex>` of the compressed tarball, which is also its name in the slug store.
    pub checksum: String,
    pub size: u64,
    pub process_types: BTreeMap<String, String>,
    pub commit: Option<String>,
    pub buildpack_description: String,
    pub stack: String,
    /// The build of `stack` the slug was built on (`stacks.rs`), whose run image its dynos
    /// run on; `None` for the host stack and for slugs recorded before stacks were built.
    #[serde(default)]
    pub stack_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl Slug {
    /// The hex digest, the slug's file name in the content-addressed store.
    pub fn digest(&self) -> &str {
        self.checksum.trim_start_matches("SHA256:")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Formation {
    pub id: Uuid,
    pub app_id: Uuid,
    pub process_type: String,
    pub quantity: u32,
    pub size: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A dyno's state, as Heroku names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DynoState {
    Starting,
    Up,
    Crashed,
    Down,
    Idle,
    /// A one-off dyno whose process has exited (its record goes right after).
    Complete,
}

impl DynoState {
    pub fn as_str(self) -> &'static str {
        match self {
            DynoState::Starting => "starting",
            DynoState::Up => "up",
            DynoState::Crashed => "crashed",
            DynoState::Down => "down",
            DynoState::Idle => "idle",
            DynoState::Complete => "complete",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dyno {
    pub id: Uuid,
    pub app_id: Uuid,
    pub app_name: String,
    pub name: String,
    pub process_type: String,
    pub command: String,
    pub size: String,
    pub state: DynoState,
    pub release_id: Uuid,
    pub release_version: u32,
    /// Where the router reaches a web dyno: `$PORT` at [`Dyno::address`].
    pub port: Option<u16>,
    /// The dyno's own address on the dyno network (its network namespace); `None` on the
    /// host network (the process runtime, or a record older than dyno networks), where the
    /// router uses the host's loopback.
    #[serde(default)]
    pub address: Option<std::net::IpAddr>,
    pub container_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A restart (or stop) asked for: dynos started before `at` are replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restart {
    pub at: DateTime<Utc>,
    /// `ps:stop`: stop first, then start (no preboot); otherwise a restart.
    #[serde(default)]
    pub stop: bool,
}

/// Where a build stands: the model's, which the API shows in the same spelling.
pub use slipway_model::BuildStatus;

/// A build started through the Platform API from a source tarball's URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    pub id: Uuid,
    pub app_id: Uuid,
    pub user_email: String,
    pub status: BuildStatus,
    pub source_url: String,
    pub source_checksum: Option<String>,
    pub source_version: Option<String>,
    /// As asked for (`heroku/python`, ...); empty: app.json's, or auto-detection.
    pub buildpacks: Vec<String>,
    pub slug_id: Option<Uuid>,
    pub release_id: Option<Uuid>,
    pub stack: String,
    /// The unguessable part of the build's output stream URL.
    pub output_secret: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub(crate) mod keys {
    use uuid::Uuid;

    pub(crate) const APPS: &str = "apps/";
    pub(crate) const RELEASES: &str = "releases/";
    pub(crate) const FORMATION: &str = "formation/";
    pub(crate) const DYNOS: &str = "dynos/";
    /// Custom and default hostnames, by hostname (`domains.rs`).
    pub(crate) const DOMAINS: &str = "domains/";
    /// Every app's slug records (`slugs/<app>/<slug>`).
    pub(crate) const SLUGS: &str = "slugs/";

    pub(crate) fn app(name: &str) -> String {
        format!("apps/{name}")
    }
    pub(crate) const UIDS: &str = "uids/";
    pub(crate) const UID_CURSOR: &str = "uid-cursor";
    pub(crate) fn uid(uid: u32) -> String {
        format!("uids/{uid:010}")
    }
    pub(crate) fn user(email: &str) -> String {
        format!("users/{email}")
    }
    pub(crate) fn api_key(digest: &str) -> String {
        format!("api-keys/{digest}")
    }
    pub(crate) fn config(app: Uuid) -> String {
        format!("config/{app}")
    }
    pub(crate) fn releases(app: Uuid) -> String {
        format!("releases/{app}/")
    }
    pub(crate) fn release(app: Uuid, version: u32) -> String {
        format!("releases/{app}/{version:010}")
    }
    pub(crate) fn slug(app: Uuid, slug: Uuid) -> String {
        format!("slugs/{app}/{slug}")
    }
    pub(crate) fn formations(app: Uuid) -> String {
        format!("formation/{app}/")
    }
    pub(crate) fn formation(app: Uuid, process_type: &str) -> String {
        format!("formation/{app}/{process_type}")
    }
    pub(crate) fn dynos(app: Uuid) -> String {
        format!("dynos/{app}/")
    }
    pub(crate) fn dyno(app: Uuid, name: &str) -> String {
        format!("dynos/{app}/{name}")
    }
    pub(crate) const RESTARTS: &str = "restarts/";
    pub(crate) fn restarts(app: Uuid) -> String {
        format!("restarts/{app}/")
    }
    pub(crate) fn restart(app: Uuid, target: &str) -> String {
        format!("restarts/{app}/{target}")
    }
    pub(crate) fn builds(app: Uuid) -> String {
        format!("builds/{app}/")
    }
    pub(crate) fn build(app: Uuid, build: Uuid) -> String {
        format!("builds/{app}/{build}")
    }
    /// The app id in a key of the form `<prefix><app id>/...`.
    pub(crate) fn app_id_in(key: &str, prefix: &str) -> Option<Uuid> {
        key.strip_prefix(prefix)?.split('/').next()?.parse().ok()
    }
}

/// `heroku` for the default hostname, `custom` for one the user added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DomainKind {
    Heroku,
    Custom,
}

/// A hostname the router serves for an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    pub id: Uuid,
    pub app_id: Uuid,
    pub hostname: String,
    pub kind: DomainKind,
    pub created_at: DateTime<Utc>,
}

/// A log drain as it is stored (`drains.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drain {
    pub app_id: Uuid,
    pub app_name: String,
    pub config: DrainConfig,
    pub created_at: DateTime<Utc>,
}

/// A certificate uploaded for an app (Heroku's SNI endpoint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SniEndpoint {
    pub id: Uuid,
    pub app_id: Uuid,
    /// `sni-<8 hex digits>`, unique per app.
    pub name: String,
    /// PEM, leaf first.
    pub certificate_chain: String,
    /// PEM. Never returned by the API.
    pub private_key: String,
    /// The DNS names of the leaf certificate, lowercase (`*.example.com` for wildcards).
    pub cert_domains: Vec<String>,
    /// The leaf names itself as its issuer.
    #[serde(default)]
    pub self_signed: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl SniEndpoint {
    /// Whether the certificate covers `hostname`.
    pub fn covers(&self, hostname: &str) -> bool {
        // The router's rule for its certificates, slipway-model's: a wildcard covers exactly
        // one label, a name that is not a hostname covers nothing.
        self.cert_domains.iter().any(|name| {
            name.parse::<slipway_model::Hostname>()
                .is_ok_and(|name| name.covers(hostname))
        })
    }
}
