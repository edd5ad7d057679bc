//! The running platform: [`Platform`], what it holds, how it is opened, and its narrow
//! accessors. The operations are `impl Platform` blocks, one module per concern, that depend
//! on this one; this module depends on none of them (only on the lower modules whose state
//! the platform holds: config, builds' output, activity, the source fetcher, the dyno
//! manager it starts).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use slipway_logplex::LogHub;
use slipway_runtime::Runtime;
use slipway_store::Store;
use uuid::Uuid;

use crate::build_output::BuildState;
use crate::config::PlatformConfig;
use crate::dyno_manager;
use crate::error::CoreError;
use crate::idling::Activity;
use crate::model::App;
use crate::oneoff_registry::OneOffs;
use crate::source_fetcher::{OutboundSourceFetcher, SourceFetcher};
use crate::telemetry::PlatformEvent;

/// The running platform.
pub struct Platform {
    store: Arc<dyn Store>,
    runtime: Arc<dyn Runtime>,
    logs: LogHub,
    config: PlatformConfig,
    /// Apps with a build in progress: a second push waits for none, it is refused.
    building: Mutex<HashSet<Uuid>>,
    /// Output of API builds and slugs waiting for their upload (see `builds.rs`).
    builds: BuildState,
    /// Web traffic per app and wake-ups, for sleeping eco apps (see `idling.rs`).
    activity: Activity,
    /// Fetches source blobs for builds (`builds.rs`).
    source_fetcher: Arc<dyn SourceFetcher>,
    /// The apps' bare git repositories, created and removed with their apps.
    repos: slipway_git::GitRepos,
    /// One-off dynos (`run.N`): not the dyno manager's (`oneoff.rs`).
    one_offs: Arc<OneOffs>,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
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
            builds: BuildState::default(),
            activity: Activity::default(),
            one_offs: Arc::new(OneOffs::default()),
        }))
    }

    /// The store every operation reads and writes through compare-and-set transactions.
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The container runtime, for builds, release phases and sweeping what a previous run
    /// left behind (dynos are the dyno manager's).
    pub(crate) fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.runtime
    }

    /// Apps with a build in progress (`deploy.rs`): a second push is refused, not queued.
    pub(crate) fn building(&self) -> &Mutex<HashSet<Uuid>> {
        &self.building
    }

    /// Output of API builds and slugs waiting for their upload (`builds.rs`).
    pub(crate) fn build_state(&self) -> &BuildState {
        &self.builds
    }

    /// Fetches source blobs for builds (`builds.rs`).
    pub(crate) fn source_fetcher(&self) -> &dyn SourceFetcher {
        self.source_fetcher.as_ref()
    }

    /// The one-off dynos (`oneoff.rs`, `attach.rs`).
    pub(crate) fn one_offs(&self) -> &Arc<OneOffs> {
        &self.one_offs
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

    /// Starts the dyno manager. It runs until the returned handle is aborted.
    pub fn start_dyno_manager(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        self.start_dyno_manager_on(self.store.clone())
    }

    /// Starts the dyno manager on `store`: the platform's store as the elected leader sees
    /// it (`leader::FencedStore`), when several servers share one.
    pub fn start_dyno_manager_on(
        self: &Arc<Self>,
        store: Arc<dyn slipway_store::Store>,
    ) -> tokio::task::JoinHandle<()> {
        dyno_manager::spawn(dyno_manager::Parts {
            store,
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

    /// The router saw a request for `app` (any answer counts as traffic). Cheap: called for
    /// every request. See `idling.rs`.
    pub fn note_web_request(&self, app: &str) {
        self.activity.touch(app);
    }

    /// A request is waiting for `app`, which has no web dyno up: wake it if it sleeps. Returns
    /// at once; the dyno manager starts the dynos. See `idling.rs`.
    pub fn wake_app(&self, app: &str) {
        self.activity.wake(app);
    }
}
