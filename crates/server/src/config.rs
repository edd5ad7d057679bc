//! What `slipway server` can be told, and its defaults: [`ServerConfig`] and the [`defaults`]
//! it starts from. The numbers are Heroku's where Heroku has one (each constant says where it
//! comes from), so an app behaves here as it does there. The CLI only maps its flags onto this.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use slipway_runtime::Ipv4Subnet;

/// The defaults of every [`ServerConfig`] field, in the units of `slipway server`'s flags, so
/// the binary's `--help` shows the very values [`ServerConfig::new`] uses.
pub mod defaults {
    use super::*;

    /// How often PostgreSQL add-ons' sizes are checked against their storage limits.
    pub use slipway_core::ADDON_SIZE_CHECK_SECS;

    /// The API and git address: loopback, the port Heroku's local tools use (`heroku local`).
    pub const API_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 5000));
    /// The router's (apps') address.
    pub const ROUTER_ADDR: SocketAddr =
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));
    /// The router's HTTPS address.
    pub const ROUTER_TLS_ADDR: SocketAddr =
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8443));
    /// The HTTPS address of the API and git: the real heroku CLI's git remotes are always
    /// `https://`, and 5443 is the port its documentation's examples use for them.
    pub const API_TLS_ADDR: SocketAddr =
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 5443));
    /// The rendezvous listener (`heroku run`'s `attach_url`): Heroku's own rendezvous port.
    pub const RENDEZVOUS_ADDR: SocketAddr =
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 5002));
    /// The names and addresses clients use for the API over HTTPS and the rendezvous
    /// listener, carried by their certificate: loopback by name and by address. The real
    /// heroku CLI sends its API key only to `localhost` and `127.0.0.1`.
    pub const API_TLS_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
    /// Apps are served at `<app>.localhost`, which resolves to loopback without any DNS set-up.
    pub const DOMAIN: &str = "localhost";
    /// The region every app is in (`heroku regions`): one host is one place.
    pub const REGION: &str = "local";
    /// Seconds a web dyno has to bind `$PORT` before R10 (Heroku: 60, "Dynos: Web Dyno
    /// Startup Time" / R10 Boot timeout).
    pub const BOOT_TIMEOUT_SECS: u64 = 60;
    /// Seconds between SIGTERM and SIGKILL when a dyno stops (Heroku: 30, "Dyno Shutdown
    /// Behavior").
    pub const STOP_GRACE_SECS: u64 = 30;
    /// Seconds before restarting a dyno after its 1st, 2nd, ... consecutive crash; the last
    /// one repeats (Heroku: at once, then 20 minutes, growing to 320 minutes: "Dyno Crash
    /// Restart Policy").
    pub const CRASH_BACKOFF_SECS: [u64; 6] = [0, 1200, 2400, 3600, 10800, 19200];
    /// Most one-off dynos running at once per app.
    pub const MAX_ONE_OFFS_PER_APP: u32 = 50;
    /// Seconds an attached one-off dyno may be idle (Heroku: one hour).
    pub const ONE_OFF_IDLE_TIMEOUT_SECS: u64 = 3600;
    /// Seconds after which each dyno is restarted, plus a random 0–15% (Heroku: every 24 hours
    /// plus up to 216 minutes, "Automatic dyno restarts").
    pub const CYCLE_AFTER_SECS: u64 = 86_400;
    /// Heroku's cycling jitter: 216 minutes per 24 hours, as a fraction (numerator over
    /// minutes per day).
    pub const CYCLE_JITTER_PER_DAY_MINUTES: u64 = 216;
    /// Preboot on (Heroku: off unless `features:enable preboot`; on here because a single host
    /// has the room and deploys should not drop requests).
    pub const PREBOOT: bool = true;
    /// Most dynos per app (Heroku: 100 by default, "Limits").
    pub const MAX_DYNOS_PER_APP: u32 = 100;
    /// Seconds a release phase may run before it is killed and its release failed (Heroku: 1
    /// hour, "Release Phase").
    pub const RELEASE_PHASE_TIMEOUT_SECS: u64 = 3600;
    /// Seconds a whole build may run before "Build timed out" (Heroku: 15 minutes, "Limits:
    /// Build").
    pub const BUILD_TIMEOUT_SECS: u64 = 900;
    /// Hard memory limit of build containers, in MiB.
    pub const BUILD_MEMORY_MB: u64 = 2048;
    /// Most processes (threads included) in a build container.
    pub const BUILD_PIDS: i64 = 1024;
    /// cgroup CPU shares of build containers: below a 512 MB dyno's 1024, so running apps keep
    /// their latency while a build runs.
    pub const BUILD_CPU_SHARES: u64 = 256;
    /// Largest compressed slug, in MiB (Heroku: 500, "Slug Compiler: Slug size").
    pub const MAX_SLUG_SIZE_MB: u64 = 500;
    /// API requests per hour an account may make (Heroku's 4500, as a token bucket).
    pub const API_RATE_LIMIT_PER_HOUR: u32 = 4500;
    /// The largest page of a list a `Range` may ask for (Heroku's 1000).
    pub const API_MAX_PAGE_SIZE: usize = 1000;
    /// Most an app's source may expand to when unpacked, in MiB.
    pub const MAX_SOURCE_SIZE_MB: u64 = 1024;
    /// Most a gzip'd git request body may inflate to, in MiB.
    pub const MAX_PUSH_SIZE_MB: u64 = 1024;
    /// Seconds without web traffic after which an eco app sleeps (Heroku: 30 minutes, "Eco
    /// Dyno Hours").
    pub const IDLE_AFTER_SECS: u64 = 1800;
    /// Seconds between checks of dynos' memory against their quota (R14, R15): Heroku reports
    /// memory use about every 20 seconds ("log-runtime-metrics").
    pub const MEMORY_CHECK_INTERVAL_SECS: u64 = 20;
    /// The dyno network's subnet (runc runtime).
    pub const DYNO_SUBNET: &str = slipway_runtime::NetworkConfig::DEFAULT_SUBNET;
    /// The uids apps get, as `--dyno-uid-range` spells them: 64k ids above the 100000 most
    /// distributions keep for system and human users.
    pub const DYNO_UID_RANGE: &str = "100000-165535";
    /// The disk of an eco, basic or standard-1x dyno, in MiB (Heroku's ephemeral filesystem
    /// is not capped per dyno; 2 GiB keeps one tenant from filling the host's disk).
    pub const DYNO_DISK_MB: u64 = 2048;
    /// The smallest `--dyno-disk-mb` accepted: an ext4 image smaller than this cannot hold a
    /// journal and an overlay's work directory.
    pub const MIN_DYNO_DISK_MB: u64 = 16;
    /// The largest source blob a build fetches, in MB (compressed; Heroku's slug limit).
    pub const MAX_SOURCE_BLOB_MB: u64 = 500;
}

/// How dynos and builds run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    /// Isolated runc containers (needs root).
    Runc,
    /// Plain host processes without isolation, for development without root.
    Process,
}

impl RuntimeKind {
    /// runc for root, plain processes otherwise: the only runtime each can run.
    pub fn for_current_user() -> RuntimeKind {
        if nix::unistd::geteuid().is_root() {
            RuntimeKind::Runc
        } else {
            RuntimeKind::Process
        }
    }

    /// The name `--runtime` takes.
    pub fn name(self) -> &'static str {
        match self {
            RuntimeKind::Runc => "runc",
            RuntimeKind::Process => "process",
        }
    }
}

/// The error of parsing a [`RuntimeKind`] from anything but `runc` or `process`.
#[derive(Debug, thiserror::Error)]
#[error("unknown runtime {0:?}: use `runc` or `process`")]
pub struct UnknownRuntime(String);

impl FromStr for RuntimeKind {
    type Err = UnknownRuntime;

    fn from_str(text: &str) -> Result<RuntimeKind, UnknownRuntime> {
        match text {
            "runc" => Ok(RuntimeKind::Runc),
            "process" => Ok(RuntimeKind::Process),
            other => Err(UnknownRuntime(other.to_owned())),
        }
    }
}

/// Everything `slipway server` can be told. Start from [`ServerConfig::new`] (the
/// [`defaults`]) and change what differs. Addresses with port 0 get a free port when
/// [`crate::run`] starts; [`crate::ServerHandle`] says which.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where the database, slugs, repositories and containers live. It has no default here:
    /// the CLI client reads the admin key from the same directory, so the binary picks it.
    pub data_dir: PathBuf,
    /// The API and git address.
    pub api_addr: SocketAddr,
    /// The router's (apps') address.
    pub router_addr: SocketAddr,
    /// The router's HTTPS address.
    pub router_tls_addr: SocketAddr,
    /// The HTTPS address of the API and git.
    pub api_tls_addr: SocketAddr,
    /// The rendezvous listener's address (one-off dynos' terminals; TLS).
    pub rendezvous_addr: SocketAddr,
    /// Host names and IP addresses clients use to reach the TLS listeners: the platform CA
    /// may vouch for these (besides the apps' domain) and their certificate carries them,
    /// with the listeners' own addresses when those are specific.
    pub api_tls_hosts: Vec<String>,
    /// A certificate chain (PEM, leaf first) for the TLS listeners, instead of one issued by
    /// the platform CA; with [`ServerConfig::api_tls_key`].
    pub api_tls_cert: Option<PathBuf>,
    /// The private key (PEM) of [`ServerConfig::api_tls_cert`].
    pub api_tls_key: Option<PathBuf>,
    /// Apps are served at `<app>.<domain>`.
    pub domain: String,
    /// The region every app is in (`heroku regions`, `apps:create --region`).
    pub region: String,
    /// How dynos run; `None` picks [`RuntimeKind::for_current_user`].
    pub runtime: Option<RuntimeKind>,
    /// How long a web dyno has to bind `$PORT`.
    pub boot_timeout: Duration,
    /// Between SIGTERM and SIGKILL when stopping a dyno.
    pub stop_grace: Duration,
    /// The wait before restarting a dyno after its 1st, 2nd, ... consecutive crash.
    pub crash_backoff: Vec<Duration>,
    /// After this (plus a random 0–15%) each dyno is restarted (`Cycling`).
    pub cycle_after: Duration,
    /// Start new web dynos and switch traffic to them before stopping the old ones.
    pub preboot: bool,
    /// Most dynos per app.
    pub max_dynos_per_app: u32,
    /// Most one-off dynos running at once per app.
    pub max_one_offs_per_app: u32,
    /// How long an attached one-off dyno may go without input or output.
    pub one_off_idle_timeout: Duration,
    /// How long a release phase may run.
    pub release_phase_timeout: Duration,
    /// How long a whole build may run (at least a second).
    pub build_timeout: Duration,
    /// Hard memory limit of build containers, in MiB (at least 64).
    pub build_memory_mb: u64,
    /// Most processes in a build container (at least 16).
    pub build_pids: i64,
    /// cgroup CPU shares of build containers (at least 2, the kernel's minimum).
    pub build_cpu_shares: u64,
    /// Largest compressed slug, in MiB (at least 1).
    pub max_slug_size_mb: u64,
    /// The S3-compatible store slugs also go to, for agents (`--slug-store`).
    pub slug_store: Option<slipway_core::SlugStore>,
    /// Most an app's source may expand to, in MiB (at least 1).
    pub max_source_size_mb: u64,
    /// Most a gzip'd git request body may inflate to, in MiB (at least 1).
    pub max_push_size_mb: u64,
    /// Without web traffic this long an eco app sleeps.
    pub idle_after: Duration,
    /// Between checks of dynos' memory (at least a second).
    pub memory_check_interval: Duration,
    /// Threads serving each router listener; `None` is one per core.
    pub router_threads: Option<usize>,
    /// The dyno network's subnet (runc runtime).
    pub dyno_subnet: Ipv4Subnet,
    /// The uids apps get, one per app.
    pub dyno_uid_range: RangeInclusive<u32>,
    /// The disk of an eco, basic or standard-1x dyno, in MiB.
    pub dyno_disk_mb: u64,
    /// Let source blobs and log drains reach private and loopback addresses (development and
    /// tests only: server-side request forgery otherwise).
    pub allow_private_urls: bool,
    /// Language → URL its buildpack fetches runtime versions from (`--runtime-source
    /// nodejs=URL`); languages not named use their buildpack's default source.
    pub runtime_sources: std::collections::BTreeMap<String, String>,
    /// The largest source blob a build fetches, in MB.
    pub max_source_blob_mb: u64,
    /// The binary git's pre-receive hook execs (`<binary> git-hook pre-receive`); `None` is the
    /// running executable, which is `slipway` itself outside tests.
    pub hook_binary: Option<PathBuf>,
    /// A directory of stack manifests beside the compiled-in ones (`--stack-manifests`).
    pub stack_manifests: Option<PathBuf>,
    /// Where stack builds keep downloaded packages (`--stack-package-cache`).
    pub stack_package_cache: Option<PathBuf>,
    /// An existing PostgreSQL server's admin URL to provision add-ons on, instead of the
    /// embedded server (`--addon-postgres-admin-url`).
    pub addon_postgres_admin_url: Option<String>,
    /// An existing Redis server's admin URL to provision add-ons on (an ACL user per add-on
    /// confined to its key prefix), instead of a server per add-on (`--addon-redis-admin-url`).
    pub addon_redis_admin_url: Option<String>,
    /// A storage cap in MiB below every PostgreSQL plan's own (`--addon-postgres-max-mb`).
    pub addon_postgres_max_mb: Option<u64>,
    /// How often PostgreSQL add-ons' sizes are checked against their limits
    /// (`--addon-size-check-secs`).
    pub addon_size_check_secs: u64,
    /// API requests per hour an account may make (its bucket's size and refill).
    pub api_rate_limit_per_hour: u32,
    /// The largest page of a list a `Range` may ask for.
    pub api_max_page_size: usize,
    /// Where the platform's state lives: `None` is the embedded SQLite database in the data
    /// directory; `etcd://[USER:PASSWORD@]HOST:PORT[,HOST:PORT…][/NAMESPACE]` (or `etcds://`
    /// for TLS) an etcd v3 cluster shared by several servers.
    pub store_url: Option<String>,
    /// The CA (PEM) that signed the etcd members' certificates, for an `etcds://` store.
    pub store_ca_file: Option<PathBuf>,
    /// Cluster mode (`--cluster`): formation dynos run on host agents (`slipway agent`) that
    /// register with this server using `<data>/cluster-token`; builds, release-phase and
    /// one-off dynos stay on this server's own runtime.
    pub cluster: bool,
}

impl ServerConfig {
    /// The [`defaults`], with the data in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> ServerConfig {
        ServerConfig {
            data_dir: data_dir.into(),
            api_addr: defaults::API_ADDR,
            router_addr: defaults::ROUTER_ADDR,
            router_tls_addr: defaults::ROUTER_TLS_ADDR,
            api_tls_addr: defaults::API_TLS_ADDR,
            rendezvous_addr: defaults::RENDEZVOUS_ADDR,
            api_tls_hosts: defaults::API_TLS_HOSTS.map(str::to_owned).to_vec(),
            api_tls_cert: None,
            api_tls_key: None,
            domain: defaults::DOMAIN.to_owned(),
            region: defaults::REGION.to_owned(),
            runtime: None,
            boot_timeout: Duration::from_secs(defaults::BOOT_TIMEOUT_SECS),
            stop_grace: Duration::from_secs(defaults::STOP_GRACE_SECS),
            crash_backoff: defaults::CRASH_BACKOFF_SECS
                .iter()
                .copied()
                .map(Duration::from_secs)
                .collect(),
            cycle_after: Duration::from_secs(defaults::CYCLE_AFTER_SECS),
            preboot: defaults::PREBOOT,
            max_dynos_per_app: defaults::MAX_DYNOS_PER_APP,
            max_one_offs_per_app: defaults::MAX_ONE_OFFS_PER_APP,
            one_off_idle_timeout: Duration::from_secs(defaults::ONE_OFF_IDLE_TIMEOUT_SECS),
            release_phase_timeout: Duration::from_secs(defaults::RELEASE_PHASE_TIMEOUT_SECS),
            build_timeout: Duration::from_secs(defaults::BUILD_TIMEOUT_SECS),
            build_memory_mb: defaults::BUILD_MEMORY_MB,
            build_pids: defaults::BUILD_PIDS,
            build_cpu_shares: defaults::BUILD_CPU_SHARES,
            max_slug_size_mb: defaults::MAX_SLUG_SIZE_MB,
            slug_store: None,
            max_source_size_mb: defaults::MAX_SOURCE_SIZE_MB,
            max_push_size_mb: defaults::MAX_PUSH_SIZE_MB,
            idle_after: Duration::from_secs(defaults::IDLE_AFTER_SECS),
            memory_check_interval: Duration::from_secs(defaults::MEMORY_CHECK_INTERVAL_SECS),
            router_threads: None,
            dyno_subnet: default_dyno_subnet(),
            dyno_uid_range: default_dyno_uid_range(),
            dyno_disk_mb: defaults::DYNO_DISK_MB,
            allow_private_urls: false,
            runtime_sources: Default::default(),
            max_source_blob_mb: defaults::MAX_SOURCE_BLOB_MB,
            hook_binary: None,
            addon_postgres_admin_url: None,
            addon_redis_admin_url: None,
            addon_postgres_max_mb: None,
            addon_size_check_secs: defaults::ADDON_SIZE_CHECK_SECS,
            stack_manifests: None,
            stack_package_cache: None,
            api_rate_limit_per_hour: defaults::API_RATE_LIMIT_PER_HOUR,
            api_max_page_size: defaults::API_MAX_PAGE_SIZE,
            store_url: None,
            store_ca_file: None,
            cluster: false,
        }
    }

    /// The core's configuration for this server, given the data directory as resolved and
    /// the addresses as bound. Pure, so the mapping (units, floors, Heroku's jitter) is tested
    /// without starting anything.
    pub(crate) fn platform_config(
        &self,
        data_dir: PathBuf,
        api_addr: SocketAddr,
        router_addr: SocketAddr,
    ) -> slipway_core::PlatformConfig {
        const MIB: u64 = 1024 * 1024;
        let mut config = slipway_core::PlatformConfig::new(data_dir);
        config.domain = self.domain.clone();
        config.region = self.region.clone();
        config.slug_store = self.slug_store.clone();
        config.router_port = router_addr.port();
        config.app_uids = self.dyno_uid_range.clone();
        config.dyno_disk_mb = self.dyno_disk_mb;
        config.api_url = format!("http://{api_addr}");
        config.dynos.boot_timeout = self.boot_timeout;
        config.dynos.stop_grace = self.stop_grace;
        config.dynos.crash_backoff = self.crash_backoff.clone();
        config.dynos.cycle_after = self.cycle_after;
        config.dynos.cycle_jitter = Duration::from_secs(
            self.cycle_after.as_secs() * defaults::CYCLE_JITTER_PER_DAY_MINUTES / (24 * 60),
        );
        config.dynos.preboot = self.preboot;
        config.dynos.max_dynos_per_app = self.max_dynos_per_app;
        config.dynos.max_one_offs_per_app = self.max_one_offs_per_app;
        config.dynos.one_off_idle_timeout = self.one_off_idle_timeout.max(Duration::from_secs(1));
        config.release_phase_timeout = self.release_phase_timeout;
        config.build = slipway_core::BuildBudget {
            timeout: self.build_timeout.max(Duration::from_secs(1)),
            memory_bytes: self.build_memory_mb.max(64) * MIB,
            pids: self.build_pids.max(16),
            cpu_shares: self.build_cpu_shares.max(2),
            max_slug_bytes: self.max_slug_size_mb.max(1) * MIB,
            max_source_bytes: self.max_source_size_mb.max(1) * MIB,
            max_push_bytes: self.max_push_size_mb.max(1) * MIB,
        };
        config.dynos.idle_after = self.idle_after;
        config.dynos.memory_check_interval = self.memory_check_interval.max(Duration::from_secs(1));
        config.outbound = slipway_outbound::OutboundPolicy::new(self.allow_private_urls);
        config.runtime_sources = self.runtime_sources.clone();
        config.max_source_blob_bytes = self.max_source_blob_mb.saturating_mul(MIB);
        config.stacks = slipway_core::StacksConfig {
            manifests_dir: self.stack_manifests.clone(),
            package_cache: self.stack_package_cache.clone(),
        };
        config
    }
}

/// [`defaults::DYNO_SUBNET`], parsed. A constant, not input: `config/tests.rs` checks it parses.
fn default_dyno_subnet() -> Ipv4Subnet {
    defaults::DYNO_SUBNET
        .parse()
        .expect("defaults::DYNO_SUBNET is a valid subnet")
}

/// [`defaults::DYNO_UID_RANGE`], parsed the way `--dyno-uid-range` is. A constant, not input:
/// `config/tests.rs` checks it parses.
fn default_dyno_uid_range() -> RangeInclusive<u32> {
    slipway_core::parse_uid_range(defaults::DYNO_UID_RANGE)
        .expect("defaults::DYNO_UID_RANGE is a valid uid range")
}

#[cfg(test)]
mod tests;
