//! The platform core: composes the store, the runtime, the builder, the router's route table
//! and the log hub into Slipway's operations (apps, deploys, releases, config, formation) and
//! runs the dyno manager.
//!
//! The API crate parses HTTP requests into [`Command`]s and hands them to
//! [`Platform::execute`], the one entry for every change (reads are narrow query methods);
//! everything that happens to an app goes through here. State lives in the store ([`model`]
//! documents the key layout); the dyno manager and the route publisher react to watches on
//! it, never to direct calls.
//!
//! Architecture Invariant: nothing here serves HTTP or knows the Heroku JSON shapes; the only
//! HTTP it speaks is as a client, fetching source blobs through the outbound policy
//! (`source_fetcher.rs`).

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use slipway_logplex::LogHub;
use slipway_runtime::Runtime;
use slipway_store::json::{get_json, get_json_versioned, range_json};
use slipway_store::{Compare, Op, Store, Txn};
use uuid::Uuid;

mod app_json;
mod apps;
mod builds;
mod certs;
mod command;
mod deploy;
mod domains;
mod drains;
mod dyno_manager;
mod dyno_spec;
mod error;
mod idling;
pub mod model;
mod release_phase;
mod releases;
mod routes;
mod source_fetcher;
mod uids;
pub use domains::{normalize_hostname, Domain, DomainKind};
pub mod telemetry;

pub use builds::{
    source_blob_unreachable, OutputBuffer, SlugDeclaration, SourceBlob, SourceBody, SourceFetch,
};
pub use certs::{load_or_create_ca, spawn_cert_publisher, CaError, SniEndpoint};
pub use command::{
    AppChanges, Certificate, Command, FormationChange, NewSlug, Outcome, PushedSource, Quantity,
    RestartTarget,
};
pub use deploy::DeployOutput;
pub use drains::Drain;
pub use dyno_manager::DynoManagerConfig;
pub use error::CoreError;
pub use routes::spawn_route_publisher;
pub use slipway_build::BUILD_DISK_BYTES;
use source_fetcher::OutboundSourceFetcher;
pub use source_fetcher::SourceFetcher;
pub use uids::parse_uid_range;

use model::{keys, App, ConfigVars, Dyno, Formation, Release, ReleaseStatus, Slug, User};
use telemetry::PlatformEvent;

/// Everything the platform needs to know about where it runs.
#[derive(Debug, Clone)]
pub struct PlatformConfig {
    pub data_dir: PathBuf,
    /// Apps are served at `<app>.<domain>`.
    pub domain: String,
    /// The router's port, for the apps' web URLs.
    pub router_port: u16,
    /// The API's base URL, for git URLs (`<api_url>/<app>.git`).
    pub api_url: String,
    pub stack: String,
    /// The uids (each also a gid) apps get, one per app (`uids.rs`); their dynos, one-off
    /// dynos and builds run as it. Default 100000-165535 (`--dyno-uid-range`).
    pub app_uids: std::ops::RangeInclusive<u32>,
    /// The writable disk (ephemeral `/app` plus `/tmp`) of an eco, basic or standard-1x dyno in
    /// MiB; larger sizes get a multiple of it (`disk_limit`). Default 2048 (`--dyno-disk-mb`).
    pub dyno_disk_mb: u64,
    pub dynos: DynoManagerConfig,
    /// How long a release phase may run before it is killed and its release failed.
    pub release_phase_timeout: Duration,
    /// What a build may use, and the caps on what a tenant's push may expand to.
    pub build: BuildBudget,
    /// Where the platform may connect for tenants (source blobs; drains use the log hub's
    /// copy): public addresses only unless `--allow-private-urls`.
    pub outbound: slipway_outbound::OutboundPolicy,
    /// The largest source blob fetched for a build, compressed (500 MB).
    pub max_source_blob_bytes: u64,
    /// Where the apps' bare git repositories live; the core creates and removes each with its
    /// app (default `<data_dir>/repos`).
    pub repos_dir: PathBuf,
}

/// The build budget and the caps on tenant input (issue 10). Every build container gets these
/// cgroup limits; its CPU shares are below the smallest dyno's (1024), so running apps keep
/// their latency while a build runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildBudget {
    /// The whole build (every step), as Heroku's 15 minutes; past it the running step is
    /// killed and the push fails with "Build timed out".
    pub timeout: Duration,
    /// Hard memory limit of each build container (default 2 GiB).
    pub memory_bytes: u64,
    /// Most processes (threads included) in a build container at once (default 1024).
    pub pids: i64,
    /// cgroup v1 `cpu.shares` of build containers (default 256; a 512 MB dyno has 1024).
    pub cpu_shares: u64,
    /// The largest compressed slug a build may produce or an upload may bring (Heroku:
    /// 500 MB).
    pub max_slug_bytes: u64,
    /// The most an app's source (a pushed tree or a source blob) may expand to on disk
    /// (default 1 GiB).
    pub max_source_bytes: u64,
    /// The most a gzip'd git request body may inflate to (default 1 GiB).
    pub max_push_bytes: u64,
}

impl Default for BuildBudget {
    fn default() -> Self {
        const MIB: u64 = 1024 * 1024;
        BuildBudget {
            timeout: Duration::from_secs(15 * 60),
            memory_bytes: 2048 * MIB,
            pids: 1024,
            cpu_shares: 256,
            max_slug_bytes: 500 * MIB,
            max_source_bytes: 1024 * MIB,
            max_push_bytes: 1024 * MIB,
        }
    }
}

impl PlatformConfig {
    pub fn new(data_dir: PathBuf) -> PlatformConfig {
        PlatformConfig {
            data_dir: data_dir.clone(),
            domain: "localhost".into(),
            router_port: 8080,
            api_url: "http://127.0.0.1:5000".into(),
            stack: "heroku-24".into(),
            app_uids: 100_000..=165_535,
            dyno_disk_mb: 2048,
            dynos: DynoManagerConfig::default(),
            release_phase_timeout: Duration::from_secs(60 * 60),
            build: BuildBudget::default(),
            outbound: slipway_outbound::OutboundPolicy::default(),
            max_source_blob_bytes: 500 * 1024 * 1024,
            repos_dir: data_dir.join("repos"),
        }
    }

    pub fn web_url(&self, app: &str) -> String {
        if self.router_port == 80 {
            format!("http://{app}.{}/", self.domain)
        } else {
            format!("http://{app}.{}:{}/", self.domain, self.router_port)
        }
    }

    pub fn git_url(&self, app: &str) -> String {
        format!("{}/{app}.git", self.api_url.trim_end_matches('/'))
    }

    pub(crate) fn slugs_dir(&self) -> PathBuf {
        self.data_dir.join("slugs")
    }
    pub(crate) fn buildpacks_dir(&self) -> PathBuf {
        self.data_dir.join("buildpacks")
    }
    pub(crate) fn cache_dir(&self, app: Uuid) -> PathBuf {
        self.data_dir.join("cache").join(app.to_string())
    }
    pub(crate) fn builds_dir(&self) -> PathBuf {
        self.data_dir.join("builds")
    }
    pub(crate) fn unpacked_slugs_dir(&self) -> PathBuf {
        self.data_dir.join("unpacked")
    }
    /// Where the slug `digest` is unpacked for the app whose uid is `uid` (files owned by it).
    pub(crate) fn unpacked_slug_dir(&self, digest: &str, uid: u32) -> PathBuf {
        self.unpacked_slugs_dir().join(format!("{digest}-{uid}"))
    }
}

/// Whether a restart replaces dynos with preboot or stops them first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RestartMode {
    /// Replace every matching dyno; web dynos with preboot (no dropped requests).
    Restart,
    /// `ps:stop`: stop the dynos and let the formation start them again.
    Stop,
}

/// How many times a formation change is retried when another change to the same entries
/// wins the compare-and-set. Every lost race means another writer made progress, so this is
/// only reached under pathological contention.
const SCALE_ATTEMPTS: usize = 1000;

/// The running platform.
pub struct Platform {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) runtime: Arc<dyn Runtime>,
    pub(crate) logs: LogHub,
    pub(crate) config: PlatformConfig,
    /// Apps with a build in progress: a second push waits for none, it is refused.
    pub(crate) building: Mutex<HashSet<Uuid>>,
    /// Output of API builds and slugs waiting for their upload (see `builds.rs`).
    pub(crate) builds: builds::BuildState,
    /// Web traffic per app and wake-ups, for sleeping eco apps (see `idling.rs`).
    pub(crate) activity: idling::Activity,
    /// Fetches source blobs for builds (`builds.rs`).
    source_fetcher: Arc<dyn SourceFetcher>,
    /// The apps' bare git repositories, created and removed with their apps.
    repos: slipway_git::GitRepos,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Dyno sizes Heroku offers, with memory in MB and the process limit.
pub const DYNO_SIZES: &[(&str, u64, i64)] = &[
    ("eco", 512, 256),
    ("basic", 512, 256),
    ("standard-1x", 512, 256),
    ("standard-2x", 1024, 512),
    ("performance-m", 2560, 16384),
    ("performance-l", 14336, 32768),
];

/// A dyno size as Heroku writes it: `standard-1x` → `Standard-1X`, `eco` → `Eco`.
pub fn display_size(size: &str) -> String {
    fn capitalize(word: &str) -> String {
        let mut chars = word.chars();
        match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect(),
            None => String::new(),
        }
    }
    match size.split_once('-') {
        Some((head, tail)) => format!("{}-{}", capitalize(head), tail.to_uppercase()),
        None => capitalize(size),
    }
}

/// How many times the base disk (`PlatformConfig::dyno_disk_mb`) each dyno size gets: the
/// small sizes 2 GiB by default, standard-2x 4 GiB, performance-m 8 GiB, performance-l 16 GiB.
const DISK_FACTORS: &[(&str, u64)] = &[
    ("eco", 1),
    ("basic", 1),
    ("standard-1x", 1),
    ("standard-2x", 2),
    ("performance-m", 4),
    ("performance-l", 8),
];

/// The disk quota of a dyno of `size` in bytes (ephemeral `/app` and `/tmp` together).
pub(crate) fn disk_limit(config: &PlatformConfig, size: &str) -> u64 {
    let size = size.to_ascii_lowercase();
    let factor = DISK_FACTORS
        .iter()
        .find(|(name, _)| *name == size)
        .map_or(1, |(_, factor)| *factor);
    config
        .dyno_disk_mb
        .saturating_mul(factor)
        .saturating_mul(1024 * 1024)
}

pub(crate) fn size_limits(size: &str) -> (u64, i64) {
    let size = size.to_ascii_lowercase();
    DYNO_SIZES
        .iter()
        .find(|(name, _, _)| *name == size)
        .map(|(_, memory, pids)| (memory * 1024 * 1024, *pids))
        .unwrap_or((512 * 1024 * 1024, 256))
}

impl Platform {
    /// Prepares the data directory and built-in buildpacks. Does not start background tasks.
    /// Source blobs are fetched through the configured outbound policy.
    pub async fn open(
        config: PlatformConfig,
        store: Arc<dyn Store>,
        runtime: Arc<dyn Runtime>,
        logs: LogHub,
    ) -> Result<Arc<Platform>, CoreError> {
        let fetcher = Arc::new(OutboundSourceFetcher::new(config.outbound.clone()));
        Platform::open_with_source_fetcher(config, store, runtime, logs, fetcher).await
    }

    /// [`Platform::open`] with the given source fetcher (logic tests give a fake one).
    pub async fn open_with_source_fetcher(
        config: PlatformConfig,
        store: Arc<dyn Store>,
        runtime: Arc<dyn Runtime>,
        logs: LogHub,
        source_fetcher: Arc<dyn SourceFetcher>,
    ) -> Result<Arc<Platform>, CoreError> {
        for dir in [
            config.slugs_dir(),
            config.buildpacks_dir(),
            config.builds_dir(),
            config.unpacked_slugs_dir(),
        ] {
            std::fs::create_dir_all(&dir).map_err(|source| CoreError::Io {
                app: Uuid::nil(),
                action: "create the data directory",
                source,
            })?;
        }
        slipway_build::install_builtin_buildpacks(&config.buildpacks_dir())?;
        Ok(Arc::new(Platform {
            repos: slipway_git::GitRepos::new(&config.repos_dir),
            source_fetcher,
            store,
            runtime,
            logs,
            config,
            building: Mutex::new(HashSet::new()),
            builds: builds::BuildState::default(),
            activity: idling::Activity::default(),
        }))
    }

    pub fn config(&self) -> &PlatformConfig {
        &self.config
    }

    pub fn logs(&self) -> &LogHub {
        &self.logs
    }

    /// The apps' git repositories, for git's smart-HTTP plumbing. The core creates and
    /// removes them with their apps.
    pub fn git_repos(&self) -> &slipway_git::GitRepos {
        &self.repos
    }

    /// The path of `app`'s repository, with its pre-receive hook installed afresh (a new
    /// binary's hook replaces an old one). An app created before the core made repositories
    /// gets its repository here.
    pub async fn git_repository(&self, app: &App) -> Result<PathBuf, CoreError> {
        self.repos
            .ensure(&app.name)
            .await
            .map_err(|source| CoreError::Git {
                app: app.name.clone(),
                action: "prepare the git repository",
                source,
            })
    }

    /// Called once at start-up, before the dyno manager and the API: removes what builds
    /// and deploys of a previous server process left behind (see `deploy::sweep_orphans`:
    /// build containers, build directories, slug files no slug record references, partial
    /// files). Dynos a previous server process left running are re-adopted by the dyno
    /// manager when it starts (see `dyno_manager`), not stopped.
    pub async fn clean_up_previous_run(&self) -> Result<(), CoreError> {
        self.sweep_orphans().await
    }

    /// Restarts (or, in [`RestartMode::Stop`], stops and lets the formation start again) all
    /// of an app's dynos, one process type's or one dyno. The dyno manager replaces every
    /// matching dyno started before now; web dynos restart with preboot (no dropped requests)
    /// unless stopped.
    pub(crate) async fn restart_dynos(
        &self,
        app: &App,
        target: &RestartTarget,
        mode: RestartMode,
    ) -> Result<(), CoreError> {
        let key_target = match target {
            RestartTarget::App => "*".to_owned(),
            RestartTarget::Dyno(name) => {
                let name = name.to_string();
                if !self.dynos(app).await?.iter().any(|d| d.name == name) {
                    return Err(CoreError::not_found("dyno", name));
                }
                name
            }
            RestartTarget::ProcessType(process_type) => {
                if !self
                    .formation(app)
                    .await?
                    .iter()
                    .any(|f| f.process_type == process_type.as_str())
                {
                    return Err(CoreError::not_found("process type", process_type.as_str()));
                }
                process_type.to_string()
            }
        };
        let restart = model::Restart {
            at: Utc::now(),
            stop: mode == RestartMode::Stop,
        };
        self.store
            .txn(Txn::new().then(Op::put_json(
                model::keys::restart(app.id, &key_target),
                &restart,
            )?))
            .await?;
        Ok(())
    }

    /// Starts the dyno manager. It runs until the returned handle is aborted.
    pub fn start_dyno_manager(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        dyno_manager::spawn(dyno_manager::Parts {
            store: self.store.clone(),
            runtime: self.runtime.clone(),
            logs: self.logs.clone(),
            config: self.config.clone(),
            activity: self.activity.clone(),
            uids: self.clone(),
            clock: Arc::new(dyno_manager::clock::SystemClock),
        })
    }

    pub(crate) fn event(&self, app: &str, event: PlatformEvent<'_>) {
        self.logs.publish(app, event.to_line());
    }

    // ----- users and keys -------------------------------------------------------------

    /// Creates the admin account if there is none yet; returns its new API key.
    pub async fn bootstrap_admin(&self, email: &str) -> Result<Option<String>, CoreError> {
        let (users, _) = self.store.range("users/").await?;
        if !users.is_empty() {
            return Ok(None);
        }
        let key = new_api_key();
        self.create_user(email, &key).await?;
        Ok(Some(key))
    }

    /// Creates a user with the given API key.
    pub async fn create_user(&self, email: &str, api_key: &str) -> Result<User, CoreError> {
        let user = User {
            id: Uuid::new_v4(),
            email: email.to_owned(),
            created_at: Utc::now(),
        };
        let response = self
            .store
            .txn(
                Txn::new()
                    .when(Compare::absent(keys::user(email)))
                    .then(Op::put_json(keys::user(email), &user)?)
                    .then(Op::put(
                        keys::api_key(&key_digest(api_key)),
                        email.as_bytes().to_vec(),
                    )),
            )
            .await?;
        if !response.succeeded {
            return Err(CoreError::Conflict {
                message: format!("A user with the email {email} already exists."),
            });
        }
        Ok(user)
    }

    /// The user an API key belongs to.
    pub async fn authenticate(&self, api_key: &str) -> Result<User, CoreError> {
        if api_key.is_empty() {
            return Err(CoreError::Unauthorized);
        }
        let Some(email) = self.store.get(&keys::api_key(&key_digest(api_key))).await? else {
            return Err(CoreError::Unauthorized);
        };
        let email = String::from_utf8_lossy(&email.value).into_owned();
        get_json::<User, _>(self.store.as_ref(), &keys::user(&email))
            .await?
            .ok_or(CoreError::Unauthorized)
    }

    // ----- reads --------------------------------------------------------------------

    /// Finds an app by name or id and checks that `user` may use it.
    pub async fn app(&self, user: &User, name_or_id: &str) -> Result<App, CoreError> {
        let app = self.find_app(name_or_id).await?;
        if app.owner_email != user.email {
            return Err(CoreError::Forbidden { app: app.name });
        }
        Ok(app)
    }

    pub(crate) async fn find_app(&self, name_or_id: &str) -> Result<App, CoreError> {
        if let Some(app) = get_json::<App, _>(self.store.as_ref(), &keys::app(name_or_id)).await? {
            return Ok(app);
        }
        if let Ok(id) = name_or_id.parse::<Uuid>() {
            let (apps, _) = range_json::<App, _>(self.store.as_ref(), keys::APPS).await?;
            if let Some((_, app)) = apps.into_iter().find(|(_, app)| app.id == id) {
                return Ok(app);
            }
        }
        Err(CoreError::not_found("app", name_or_id))
    }

    pub async fn apps(&self, user: &User) -> Result<Vec<App>, CoreError> {
        let (apps, _) = range_json::<App, _>(self.store.as_ref(), keys::APPS).await?;
        Ok(apps
            .into_iter()
            .map(|(_, app)| app)
            .filter(|app| app.owner_email == user.email)
            .collect())
    }

    /// All releases, oldest first.
    pub async fn releases(&self, app: &App) -> Result<Vec<Release>, CoreError> {
        self.ledger(app).await
    }

    /// A release by id or version (`3` or `v3`).
    pub async fn release(&self, app: &App, id_or_version: &str) -> Result<Release, CoreError> {
        let version = id_or_version.trim_start_matches('v').parse::<u32>().ok();
        if let Some(version) = version {
            if let Some(release) = self.ledger_entry(app, version).await? {
                return Ok(release);
            }
        }
        self.releases(app)
            .await?
            .into_iter()
            .find(|release| release.id.to_string() == id_or_version)
            .ok_or_else(|| CoreError::not_found("release", id_or_version))
    }

    /// The release that runs: the newest one that succeeded.
    pub async fn current_release(&self, app: &App) -> Result<Option<Release>, CoreError> {
        Ok(self
            .releases(app)
            .await?
            .into_iter()
            .rev()
            .find(|release| release.status == ReleaseStatus::Succeeded))
    }

    pub async fn slug(&self, app: &App, slug_id: Uuid) -> Result<Slug, CoreError> {
        get_json::<Slug, _>(self.store.as_ref(), &keys::slug(app.id, slug_id))
            .await?
            .ok_or_else(|| CoreError::not_found("slug", slug_id.to_string()))
    }

    pub async fn config_vars(&self, app: &App) -> Result<ConfigVars, CoreError> {
        Ok(
            get_json::<ConfigVars, _>(self.store.as_ref(), &keys::config(app.id))
                .await?
                .unwrap_or_default(),
        )
    }

    pub async fn formation(&self, app: &App) -> Result<Vec<Formation>, CoreError> {
        let (formation, _) =
            range_json::<Formation, _>(self.store.as_ref(), &keys::formations(app.id)).await?;
        Ok(formation.into_iter().map(|(_, entry)| entry).collect())
    }

    pub async fn dynos(&self, app: &App) -> Result<Vec<Dyno>, CoreError> {
        let (dynos, _) = range_json::<Dyno, _>(self.store.as_ref(), &keys::dynos(app.id)).await?;
        Ok(dynos.into_iter().map(|(_, dyno)| dyno).collect())
    }

    /// The command of each process type in the current release.
    pub async fn process_types(&self, app: &App) -> Result<BTreeMap<String, String>, CoreError> {
        let Some(release) = self.current_release(app).await? else {
            return Ok(BTreeMap::new());
        };
        let Some(slug_id) = release.slug_id else {
            return Ok(BTreeMap::new());
        };
        Ok(self.slug(app, slug_id).await?.process_types)
    }

    // ----- writes -------------------------------------------------------------------

    /// Scales process types. A type the current release does not define cannot go above 0.
    ///
    /// Every change is resolved against the entries read in the same attempt, and the
    /// attempt's transaction compares their revisions: a relative change (`web+1`) that loses
    /// the race to another writer is re-resolved on the newer entry, so concurrent relative
    /// changes all count.
    pub(crate) async fn scale(
        &self,
        user: &User,
        app: &App,
        changes: &[FormationChange],
    ) -> Result<Vec<Formation>, CoreError> {
        let process_types = self.process_types(app).await?;
        for _ in 0..SCALE_ATTEMPTS {
            // The entries as this attempt read them, by process type; a type named twice in
            // one batch gets both changes, in order.
            let mut entries: BTreeMap<&str, (Formation, slipway_store::Revision)> = BTreeMap::new();
            for change in changes {
                let process_type = change.process_type.as_str();
                let key = keys::formation(app.id, process_type);
                if !entries.contains_key(process_type) {
                    let Some(found) =
                        get_json_versioned::<Formation, _>(self.store.as_ref(), &key).await?
                    else {
                        return Err(CoreError::not_found("process type", process_type)
                            .with_hint(&process_types));
                    };
                    entries.insert(process_type, found);
                }
                let Some((entry, _)) = entries.get_mut(process_type) else {
                    continue;
                };
                if let Some(quantity) = change.quantity {
                    let quantity = quantity.apply(entry.quantity);
                    if quantity > 0 && !process_types.contains_key(process_type) {
                        return Err(CoreError::invalid(format!(
                            "Couldn't find that process type ({}): the current release does not define it.",
                            change.process_type
                        )));
                    }
                    if quantity > self.config.dynos.max_dynos_per_app {
                        return Err(CoreError::invalid(format!(
                            "Cannot scale {} to {quantity}: the limit is {} dynos per app.",
                            change.process_type, self.config.dynos.max_dynos_per_app
                        )));
                    }
                    entry.quantity = quantity;
                }
                if let Some(size) = change.size {
                    entry.size = size.as_str().to_owned();
                }
                entry.updated_at = Utc::now();
            }
            let mut txn = Txn::new();
            for (process_type, (entry, revision)) in &entries {
                let key = keys::formation(app.id, process_type);
                txn = txn
                    .when(Compare::mod_revision(key.clone(), *revision))
                    .then(Op::put_json(key, entry)?);
            }
            if !self.store.txn(txn).await?.succeeded {
                // Another change to these entries won; resolve again on what it wrote.
                tokio::task::yield_now().await;
                continue;
            }
            let changed: Vec<Formation> = entries.into_values().map(|(entry, _)| entry).collect();
            let summary = changed
                .iter()
                .map(|entry| {
                    format!(
                        "{}@{}:{}",
                        entry.process_type,
                        entry.quantity,
                        display_size(&entry.size)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            self.event(
                &app.name,
                PlatformEvent::Scaled {
                    formation: summary,
                    user: &user.email,
                },
            );
            return Ok(changed);
        }
        Err(CoreError::Conflict {
            message: "The formation kept changing while scaling; try again.".into(),
        })
    }
}

impl CoreError {
    fn with_hint(self, process_types: &BTreeMap<String, String>) -> CoreError {
        match self {
            CoreError::NotFound { resource, id } if process_types.is_empty() => CoreError::Invalid {
                message: format!(
                    "Couldn't find that process type ({id}): the app has no release with process types yet. Deploy it first ({resource})."
                ),
            },
            other => other,
        }
    }
}

pub(crate) fn key_digest(api_key: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(api_key.as_bytes()))
}

fn new_api_key() -> String {
    // One generator for every secret the platform hands out: slipway-model's (OS RNG, 32 bytes).
    String::from(slipway_model::SecretToken::generate())
}

/// How long the dyno manager waits between checks when nothing happens.
pub(crate) const RECONCILE_INTERVAL: Duration = Duration::from_secs(5);
