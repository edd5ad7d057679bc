//! Where the platform runs and what it may use: [`PlatformConfig`], the build budget and the
//! dyno manager's tunables. Plain data with no behaviour beyond paths, so every module may
//! depend on it.

use std::path::PathBuf;
use std::time::Duration;

use slipway_model::DynoSize;
use uuid::Uuid;

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
    /// The stack new apps get (`stacks.rs`); default `host`, the server's own system
    /// directories, which needs no building.
    pub stack: String,
    /// The S3-compatible store every slug is also put in, by its SHA-256, before a release
    /// uses it (`slug_store.rs`, `slipway server --slug-store`); `None`: slugs stay on the
    /// control plane, which serves them to agents.
    pub slug_store: Option<slipway_slugstore::SlugStore>,
    /// Where stack manifests and their downloaded packages come from (`stacks.rs`).
    pub stacks: StacksConfig,
    /// The region every app is in (`heroku regions`, `apps:create --region`): one, as the
    /// platform is one place. Default `local` (`slipway server --region`).
    pub region: String,
    /// The uids (each also a gid) apps get, one per app (`uids.rs`); their dynos, one-off
    /// dynos and builds run as it. Default 100000-165535 (`--dyno-uid-range`).
    pub app_uids: std::ops::RangeInclusive<u32>,
    /// The writable disk (ephemeral `/app` plus `/tmp`) of an eco, basic or standard-1x dyno in
    /// MiB; larger sizes get a multiple of it (`PlatformConfig::dyno_disk_bytes`). Default 2048 (`--dyno-disk-mb`).
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
    /// Where one-off dynos are attached (`rendezvous://HOST:PORT`), the prefix of every
    /// `attach_url`; HOST must be a name the rendezvous listener's certificate carries.
    pub rendezvous_url: String,
    /// The add-on servers (`slipway-addons`); `None`: add-ons are refused.
    pub addons: Option<std::sync::Arc<slipway_addons::Addons>>,
    /// The API's public HTTPS base URL (`https://HOST:PORT`), where third-party add-on
    /// providers call back (`callback_url`); `None`: [`PlatformConfig::api_url`].
    pub api_https_url: Option<String>,
    /// Language → the URL its buildpack fetches runtime versions from (`--runtime-source
    /// nodejs=URL`), passed to every build as `SLIPWAY_RUNTIME_SOURCE_<LANGUAGE>`. A language
    /// without one uses its buildpack's default source.
    pub runtime_sources: std::collections::BTreeMap<String, String>,
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
            stack: HOST_STACK.into(),
            slug_store: None,
            stacks: StacksConfig::default(),
            region: "local".into(),
            app_uids: 100_000..=165_535,
            dyno_disk_mb: 2048,
            dynos: DynoManagerConfig::default(),
            release_phase_timeout: Duration::from_secs(60 * 60),
            build: BuildBudget::default(),
            outbound: slipway_outbound::OutboundPolicy::default(),
            max_source_blob_bytes: 500 * 1024 * 1024,
            repos_dir: data_dir.join("repos"),
            rendezvous_url: "rendezvous://127.0.0.1:5002".into(),
            addons: None,
            api_https_url: None,
            runtime_sources: Default::default(),
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

    /// The runtime sources as build-step variables: `nodejs` → `SLIPWAY_RUNTIME_SOURCE_NODEJS`.
    pub(crate) fn runtime_source_env(&self) -> std::collections::BTreeMap<String, String> {
        self.runtime_sources
            .iter()
            .map(|(language, url)| {
                (
                    format!("SLIPWAY_RUNTIME_SOURCE_{}", language.to_ascii_uppercase()),
                    url.clone(),
                )
            })
            .collect()
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

    /// The disk quota of a dyno of `size` in bytes (ephemeral `/app` and `/tmp` together):
    /// [`PlatformConfig::dyno_disk_mb`] times the size's [`DynoSize::disk_factor`].
    pub(crate) fn dyno_disk_bytes(&self, size: DynoSize) -> u64 {
        self.dyno_disk_mb
            .saturating_mul(size.disk_factor())
            .saturating_mul(1024 * 1024)
    }
}

/// Tunables of the dyno manager; the defaults are Heroku's.
#[derive(Debug, Clone)]
pub struct DynoManagerConfig {
    /// A web dyno must bind `$PORT` within this long (R10).
    pub boot_timeout: Duration,
    /// SIGTERM, then SIGKILL after this long (R12).
    pub stop_grace: Duration,
    /// Waits before restarting a dyno after its 1st, 2nd, ... consecutive crash; the last
    /// entry repeats.
    pub crash_backoff: Vec<Duration>,
    pub max_dynos_per_app: u32,
    /// Start new web dynos and move traffic to them before stopping the old ones.
    pub preboot: bool,
    /// Each dyno is restarted (`Cycling`) after this long plus a random part of
    /// `cycle_jitter`.
    pub cycle_after: Duration,
    pub cycle_jitter: Duration,
    /// How often dynos' memory use is checked against their quota (R14, R15).
    pub memory_check_interval: Duration,
    /// An app whose web dynos are `eco` sleeps after this long without web traffic.
    pub idle_after: Duration,
    /// The most one-off dynos an app may run at once (`oneoff.rs`); more are refused.
    pub max_one_offs_per_app: u32,
    /// How long an attached one-off dyno waits for its client to present the secret of its
    /// `attach_url`; unclaimed after this, it is removed.
    pub one_off_attach_window: Duration,
    /// An attached session without input or output for this long is ended (Heroku: 1 h).
    pub one_off_idle_timeout: Duration,
    /// The longest `time_to_live` a one-off dyno may ask for, and what it gets without one.
    pub one_off_max_time_to_live: Duration,
    /// How long a one-off dyno may keep running after its client hung up (SIGHUP) before it
    /// is stopped with R16.
    pub one_off_hangup_grace: Duration,
}

/// Heroku's limit (and default) for a one-off dyno's `time_to_live`: 24 hours.
pub const ONE_OFF_MAX_TIME_TO_LIVE: Duration = Duration::from_secs(24 * 3600);

impl Default for DynoManagerConfig {
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        DynoManagerConfig {
            boot_timeout: Duration::from_secs(60),
            stop_grace: Duration::from_secs(30),
            crash_backoff: vec![
                Duration::ZERO,
                minutes(20),
                minutes(40),
                minutes(60),
                minutes(180),
                minutes(320),
            ],
            max_dynos_per_app: 100,
            preboot: true,
            cycle_after: Duration::from_secs(24 * 3600),
            cycle_jitter: minutes(216),
            memory_check_interval: Duration::from_secs(20),
            idle_after: Duration::from_secs(30 * 60),
            // Heroku's default cap on concurrent one-off dynos per app.
            max_one_offs_per_app: 50,
            // Ours: long enough for a slow client's TLS handshake, short enough that a
            // leaked attach URL is soon worthless.
            one_off_attach_window: Duration::from_secs(60),
            one_off_idle_timeout: Duration::from_secs(3600),
            one_off_max_time_to_live: ONE_OFF_MAX_TIME_TO_LIVE,
            // Heroku's: R16 when the process outlives its connection by this long.
            one_off_hangup_grace: Duration::from_secs(10),
        }
    }
}

/// The server's own system directories as a stack (`stacks.rs`).
pub const HOST_STACK: &str = "host";

/// Where stack manifests and downloaded packages come from, beyond the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StacksConfig {
    /// Extra manifests, `<dir>/<name>/packages.txt`; one here overrides a compiled-in one of
    /// the same name (`slipway server --stack-manifests`).
    pub manifests_dir: Option<PathBuf>,
    /// Where debootstrap keeps the `.deb` files it downloaded, so a rebuild downloads only
    /// what changed (`--stack-package-cache`). Default `<data>/stacks/.packages`.
    pub package_cache: Option<PathBuf>,
}

/// A stack name: lowercase letters, digits and `-`, starting with a letter, as Heroku's.
pub(crate) fn is_stack_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl PlatformConfig {
    /// `<data>/stacks`, where stack builds live (`stacks.rs`).
    pub(crate) fn stacks_dir(&self) -> PathBuf {
        self.data_dir.join("stacks")
    }

    /// One build of a stack.
    pub(crate) fn stack_build_dir(&self, name: &str, id: Uuid) -> PathBuf {
        self.stacks_dir().join(name).join(id.to_string())
    }

    /// The run image of a slug's stack build: the host for `host` or a slug without one.
    pub(crate) fn run_rootfs(
        &self,
        stack: &str,
        stack_id: Option<Uuid>,
    ) -> slipway_runtime::Rootfs {
        match stack_id {
            Some(id) if stack != HOST_STACK && is_stack_name(stack) => {
                slipway_runtime::Rootfs::Dir(self.stack_build_dir(stack, id).join("run"))
            }
            _ => slipway_runtime::Rootfs::Host,
        }
    }
}
