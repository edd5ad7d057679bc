//! The `slipway` binary: `slipway server` runs the whole platform in one process
//! (`slipway_server::run`); every other subcommand is the CLI client (Heroku's command
//! grammar), and `git-hook` is what git's pre-receive hook execs. This file only parses
//! arguments, sets up tracing and signals, and dispatches; the server's defaults live in
//! `slipway_server::defaults`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Parser, Subcommand};
use slipway_server::{defaults, RuntimeKind, ServerConfig};

#[derive(Parser)]
#[command(
    name = "slipway",
    version,
    about = "A self-hosted Heroku: git push, and your app is live."
)]
struct Cli {
    #[command(subcommand)]
    command: TopCommand,
}

#[derive(Subcommand)]
enum TopCommand {
    /// Start the platform: API, git, router, dyno manager and logs, in one process.
    Server(Box<ServerArgs>),
    /// A standalone router: serves every app from the route table the control planes stream
    /// it (for hosts that run no `slipway server`).
    Router(RouterArgs),
    /// Run this host's dynos for a cluster's control plane (`slipway server --cluster`).
    Agent(Box<AgentArgs>),
    /// Run by git inside a repository's pre-receive hook (not for direct use).
    #[command(name = "git-hook", hide = true)]
    GitHook { hook: String },
    #[command(flatten)]
    Client(slipway_cli::Command),
}

/// `slipway server`'s flags: one per `ServerConfig` field, defaults from `slipway_server`.
#[derive(clap::Args)]
struct ServerArgs {
    /// Where the database, slugs, repositories and containers live.
    #[arg(long, env = "SLIPWAY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The API and git address.
    #[arg(long, default_value_t = defaults::API_ADDR)]
    api_addr: SocketAddr,
    /// The router's (apps') address.
    #[arg(long, default_value_t = defaults::ROUTER_ADDR)]
    router_addr: SocketAddr,
    /// The router's HTTPS address (HTTP/2 and HTTP/1.1; certificates by SNI, from
    /// `certs:add` or issued by the platform CA in <data-dir>/tls/router-ca.pem).
    #[arg(long, default_value_t = defaults::ROUTER_TLS_ADDR)]
    router_tls_addr: SocketAddr,
    /// The HTTPS address of the API and git (the real heroku CLI's git remotes are always
    /// https://); its certificate comes from the platform CA unless --api-tls-cert is given.
    #[arg(long, default_value_t = defaults::API_TLS_ADDR)]
    api_tls_addr: SocketAddr,
    /// The rendezvous address: one-off dynos' terminals (`run`), over TLS.
    #[arg(long, default_value_t = defaults::RENDEZVOUS_ADDR)]
    rendezvous_addr: SocketAddr,
    /// A host name or IP address clients use to reach the HTTPS API and the rendezvous
    /// listener (repeat it, or separate with commas); the platform CA may vouch for these
    /// besides the apps' domain. The listeners' specific bind addresses are added.
    #[arg(long, value_delimiter = ',', default_values_t = defaults::API_TLS_HOSTS.map(String::from))]
    api_tls_host: Vec<String>,
    /// A certificate chain (PEM, leaf first) for the HTTPS API and the rendezvous listener,
    /// instead of one issued by the platform CA. Needs --api-tls-key.
    #[arg(long, requires = "api_tls_key")]
    api_tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --api-tls-cert.
    #[arg(long, requires = "api_tls_cert")]
    api_tls_key: Option<PathBuf>,
    /// Apps are served at <app>.<domain>.
    #[arg(long, default_value = defaults::DOMAIN)]
    domain: String,
    /// The region every app is in, as `heroku regions` lists it and `apps:create --region`
    /// accepts it.
    #[arg(long, default_value = defaults::REGION)]
    region: String,
    /// How dynos run: `runc` (isolated containers; needs root) or `process` (plain host
    /// processes without isolation, for development without root). Default: runc for root.
    #[arg(
        long,
        value_parser = PossibleValuesParser::new(["runc", "process"])
            .try_map(|name| name.parse::<RuntimeKind>())
    )]
    runtime: Option<RuntimeKind>,
    /// Seconds a web dyno has to bind $PORT (Heroku's boot timeout).
    #[arg(long, default_value_t = defaults::BOOT_TIMEOUT_SECS)]
    boot_timeout: u64,
    /// Seconds between SIGTERM and SIGKILL when stopping a dyno (Heroku's).
    #[arg(long, default_value_t = defaults::STOP_GRACE_SECS)]
    stop_grace: u64,
    /// Seconds to wait before restarting a dyno after its 1st, 2nd, ... consecutive crash;
    /// the last one repeats (Heroku's crash restart policy).
    #[arg(long, value_delimiter = ',', default_values_t = defaults::CRASH_BACKOFF_SECS)]
    crash_backoff: Vec<u64>,
    /// Seconds after which each dyno is restarted (`Cycling`), plus a random 0-15%
    /// (Heroku: 24 h plus 0-216 min).
    #[arg(long, default_value_t = defaults::CYCLE_AFTER_SECS)]
    cycle_after: u64,
    /// Start new web dynos and switch traffic to them before stopping the old ones on
    /// deploys, config changes and restarts (Heroku's preboot). `--preboot false` turns it off.
    #[arg(long, default_value_t = defaults::PREBOOT, action = clap::ArgAction::Set)]
    preboot: bool,
    /// Most dynos per app (Heroku's limit).
    #[arg(long, default_value_t = defaults::MAX_DYNOS_PER_APP)]
    max_dynos_per_app: u32,
    /// Most one-off dynos (`run`, `run:detached`) running at once per app.
    #[arg(long, default_value_t = defaults::MAX_ONE_OFFS_PER_APP)]
    max_one_offs_per_app: u32,
    /// Seconds an attached one-off dyno may go without input or output before it is ended
    /// (Heroku: an hour).
    #[arg(long, default_value_t = defaults::ONE_OFF_IDLE_TIMEOUT_SECS)]
    one_off_idle_timeout: u64,
    /// Seconds a release phase (the Procfile's `release:` command) may run before it is
    /// killed and its release marked failed (Heroku's).
    #[arg(long, default_value_t = defaults::RELEASE_PHASE_TIMEOUT_SECS)]
    release_phase_timeout: u64,
    /// Seconds a whole build may run before its container is killed and the push fails with
    /// "Build timed out" (Heroku's).
    #[arg(long, default_value_t = defaults::BUILD_TIMEOUT_SECS)]
    build_timeout: u64,
    /// Hard memory limit of build containers, in MiB.
    #[arg(long, default_value_t = defaults::BUILD_MEMORY_MB)]
    build_memory_mb: u64,
    /// Most processes (and threads) in a build container.
    #[arg(long, default_value_t = defaults::BUILD_PIDS)]
    build_pids: i64,
    /// cgroup CPU shares of build containers (a 512 MB dyno has 1024).
    #[arg(long, default_value_t = defaults::BUILD_CPU_SHARES)]
    build_cpu_shares: u64,
    /// Largest compressed slug a build may produce or an upload bring, in MiB (Heroku's).
    #[arg(long, default_value_t = defaults::MAX_SLUG_SIZE_MB)]
    max_slug_size_mb: u64,
    /// Also keep every slug in this S3-compatible store, by its SHA-256, for agents
    /// configured with the same store: s3://BUCKET[/PREFIX]?endpoint=URL&region=REGION,
    /// credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
    #[arg(long, value_parser = slipway_agent::open_slug_store)]
    slug_store: Option<slipway_agent::SlugStore>,
    /// API requests per hour an account may make (a token bucket; 429 when it is empty).
    #[arg(long, default_value_t = defaults::API_RATE_LIMIT_PER_HOUR)]
    api_rate_limit_per_hour: u32,
    /// The largest page of a list a `Range` may ask for; larger `max`es are cut to it.
    #[arg(long, default_value_t = defaults::API_MAX_PAGE_SIZE)]
    api_max_page_size: usize,
    /// Most an app's source may expand to when unpacked, in MiB.
    #[arg(long, default_value_t = defaults::MAX_SOURCE_SIZE_MB)]
    max_source_size_mb: u64,
    /// Most a gzip'd git request body may inflate to, in MiB.
    #[arg(long, default_value_t = defaults::MAX_PUSH_SIZE_MB)]
    max_push_size_mb: u64,
    /// Seconds without web traffic after which an app whose web dynos are eco sleeps
    /// (Heroku's).
    #[arg(long, default_value_t = defaults::IDLE_AFTER_SECS)]
    idle_after: u64,
    /// Seconds between checks of dynos' memory use against their quota (R14, R15).
    #[arg(long, default_value_t = defaults::MEMORY_CHECK_INTERVAL_SECS)]
    memory_check_interval: u64,
    /// Threads serving the router's HTTP and HTTPS listeners, each with its own event loop
    /// (default: one per core).
    #[arg(long)]
    router_threads: Option<usize>,
    /// The private IPv4 subnet of the dyno network (runc runtime): every dyno and build gets
    /// an address of it in a network namespace of its own, behind a bridge named after the
    /// data directory. It must not overlap the host's routes.
    #[arg(long, default_value = defaults::DYNO_SUBNET)]
    dyno_subnet: slipway_server::Ipv4Subnet,
    /// The uids apps get, one per app (each also its gid), as FIRST-LAST. An app keeps its uid
    /// while it exists; its dynos, one-off dynos and builds run as it.
    #[arg(long, default_value = defaults::DYNO_UID_RANGE, value_parser = slipway_server::parse_uid_range)]
    dyno_uid_range: std::ops::RangeInclusive<u32>,
    /// The disk (ephemeral /app plus /tmp) of an eco, basic or standard-1x dyno, in MiB;
    /// standard-2x gets twice it, performance-m 4x, performance-l 8x. Writes beyond it fail
    /// with "No space left on device" inside the dyno only.
    #[arg(
        long,
        default_value_t = defaults::DYNO_DISK_MB,
        value_parser = clap::value_parser!(u64).range(defaults::MIN_DYNO_DISK_MB..)
    )]
    dyno_disk_mb: u64,
    /// Let source blob URLs and log drains reach loopback, private, link-local and this host's
    /// own addresses. Only for development and tests: tenants could then reach the platform's
    /// internal services (server-side request forgery).
    #[arg(long)]
    allow_private_urls: bool,
    /// Where a language's buildpack fetches the runtime versions apps ask for, as
    /// LANGUAGE=URL (repeatable), e.g. `nodejs=https://registry.npmjs.org`, or a directory
    /// on the build stack, e.g. `java=file:///usr/share/maven-repo`. Languages not named use
    /// their buildpack's default source.
    #[arg(long = "runtime-source", value_name = "LANGUAGE=URL", value_parser = parse_runtime_source)]
    runtime_sources: Vec<(String, String)>,
    /// The largest source blob a build fetches, in MB (compressed).
    #[arg(long, default_value_t = defaults::MAX_SOURCE_BLOB_MB)]
    max_source_blob_mb: u64,
    /// Provision PostgreSQL add-ons on this existing server (an admin URL,
    /// postgres://USER:PASSWORD@HOST:PORT/DB) instead of the embedded one. Dynos must be able
    /// to reach HOST:PORT.
    #[arg(long, env = "SLIPWAY_ADDON_POSTGRES_ADMIN_URL", hide_env_values = true)]
    addon_postgres_admin_url: Option<String>,
    /// Provision Redis add-ons on this existing server (an admin URL,
    /// redis://USER:PASSWORD@HOST:PORT, allowed ACL SETUSER/DELUSER and ACL SAVE or CONFIG
    /// REWRITE) instead of a server per add-on: each add-on is an ACL user confined to the
    /// keys and channels prefixed `<user>:`. Dynos must be able to reach HOST:PORT.
    #[arg(long, env = "SLIPWAY_ADDON_REDIS_ADMIN_URL", hide_env_values = true)]
    addon_redis_admin_url: Option<String>,
    /// Cap every PostgreSQL add-on's storage at this many MiB, below its plan's own (past it,
    /// its writes are revoked until it is under again).
    #[arg(long)]
    addon_postgres_max_mb: Option<u64>,
    /// Check PostgreSQL add-ons' sizes against their limits this often (seconds).
    #[arg(long, default_value_t = defaults::ADDON_SIZE_CHECK_SECS)]
    addon_size_check_secs: u64,
    /// A directory of stack manifests (`NAME/packages.txt`) for `slipway stacks:build`, beside
    /// (and overriding) the compiled-in ones such as heroku-24.
    #[arg(long)]
    stack_manifests: Option<PathBuf>,
    /// Where stack builds keep the Debian packages they download (default
    /// `<data-dir>/stacks/.packages`), so a rebuild downloads only what changed.
    #[arg(long)]
    stack_package_cache: Option<PathBuf>,
    /// Keep the platform's state in an etcd v3 cluster instead of the embedded database:
    /// etcd://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...][/NAMESPACE], or etcds://... for TLS.
    /// Several servers may share one cluster.
    #[arg(long = "store", env = "SLIPWAY_STORE", hide_env_values = true)]
    store_url: Option<String>,
    /// The CA (PEM) that signed the etcd members' certificates, for an etcds:// store.
    #[arg(long, env = "SLIPWAY_STORE_CA_FILE")]
    store_ca_file: Option<PathBuf>,
    /// Cluster mode: run formation dynos on host agents (`slipway agent`), which authenticate
    /// with <data-dir>/cluster-token (made at the first start); builds, release-phase and
    /// one-off dynos stay on this server.
    #[arg(long)]
    cluster: bool,
}

/// `slipway agent`'s flags: one per `AgentConfig` field, defaults from `slipway_agent`.
#[derive(clap::Args)]
struct AgentArgs {
    /// The control plane's API URL (http://HOST:PORT or https://HOST:PORT); several control
    /// planes separated by commas: the agent syncs with one and fails over to the next, and
    /// sends dyno output to each.
    #[arg(long)]
    server: String,
    /// This host's name in the cluster (lowercase letters, digits and `-`; unique).
    #[arg(long)]
    name: slipway_agent::HostName,
    /// Where the agent keeps its containers, slugs and unpacked slugs.
    #[arg(long, default_value = slipway_agent::defaults::DATA_DIR)]
    data: PathBuf,
    /// This host's dyno subnet: unique in the cluster, routed to --address by the other hosts.
    #[arg(long, default_value = slipway_agent::defaults::DYNO_SUBNET)]
    dyno_subnet: slipway_agent::Ipv4Subnet,
    /// Memory offered to dynos in MiB (default: the host's total memory).
    #[arg(long)]
    memory_mb: Option<u64>,
    /// The cluster token: a copy of the control plane's <data-dir>/cluster-token (default
    /// <data>/cluster-token).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// The address other hosts reach this one's dynos through (default: this host's address
    /// towards the control plane).
    #[arg(long)]
    address: Option<std::net::IpAddr>,
    /// A network (CIDR) whose hosts may connect to this host's dynos: the routers and control
    /// planes. Repeatable; default the control plane's address alone.
    #[arg(long)]
    routed_from: Vec<slipway_agent::Ipv4Subnet>,
    /// The CA of the control plane's HTTPS certificate (its <data-dir>/tls/router-ca.pem).
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// The largest slug the agent downloads, in MB.
    #[arg(long, default_value_t = slipway_agent::defaults::MAX_SLUG_SIZE_MB)]
    max_slug_size_mb: u64,
    /// Fetch slugs from this S3-compatible store (the control planes' --slug-store) instead
    /// of the control plane: s3://BUCKET[/PREFIX]?endpoint=URL&region=REGION, credentials in
    /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. Every slug is still checked against its
    /// SHA-256.
    #[arg(long, value_parser = slipway_agent::open_slug_store)]
    slug_store: Option<slipway_agent::SlugStore>,
}

impl AgentArgs {
    fn into_config(self) -> slipway_agent::AgentConfig {
        slipway_agent::AgentConfig {
            server: self.server,
            name: self.name,
            data_dir: self.data,
            dyno_subnet: self.dyno_subnet,
            memory_mb: self.memory_mb,
            token_file: self.token_file,
            address: self.address,
            routed_from: self.routed_from,
            ca_file: self.ca_file,
            max_slug_size_mb: self.max_slug_size_mb,
            slug_store: self.slug_store,
        }
    }
}

/// `slipway router`'s flags.
#[derive(clap::Args)]
struct RouterArgs {
    /// A control plane's API URL (http://HOST:PORT or https://HOST:PORT); repeat it, or
    /// separate with commas, for each control plane: the router follows one, and the next
    /// when it goes away.
    #[arg(long = "server", required = true, value_delimiter = ',')]
    servers: Vec<String>,
    /// The cluster token: a copy of a control plane's <data-dir>/cluster-token.
    #[arg(long, env = "SLIPWAY_CLUSTER_TOKEN_FILE")]
    token_file: PathBuf,
    /// Where apps are served over HTTP.
    #[arg(long = "http", default_value_t = defaults::ROUTER_ADDR)]
    http_addr: SocketAddr,
    /// Where apps are also served over HTTPS (HTTP/2 and HTTP/1.1; certificates by SNI,
    /// streamed by the control planes: uploaded ones, or issued by their platform CA).
    #[arg(long = "https")]
    https_addr: Option<SocketAddr>,
    /// Threads serving the listener, each with its own event loop (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// The CA to trust for https:// control planes (a control plane's
    /// <data-dir>/tls/router-ca.pem), besides the system's.
    #[arg(long)]
    server_ca_file: Option<PathBuf>,
}

impl ServerArgs {
    /// The server's configuration: the flags, in the server's units.
    fn into_config(self) -> ServerConfig {
        let secs = Duration::from_secs;
        ServerConfig {
            data_dir: self.data_dir.unwrap_or_else(slipway_cli::default_data_dir),
            api_addr: self.api_addr,
            router_addr: self.router_addr,
            router_tls_addr: self.router_tls_addr,
            api_tls_addr: self.api_tls_addr,
            rendezvous_addr: self.rendezvous_addr,
            api_tls_hosts: self.api_tls_host,
            api_tls_cert: self.api_tls_cert,
            api_tls_key: self.api_tls_key,
            domain: self.domain,
            region: self.region,
            runtime: self.runtime,
            boot_timeout: secs(self.boot_timeout),
            stop_grace: secs(self.stop_grace),
            crash_backoff: self.crash_backoff.into_iter().map(secs).collect(),
            cycle_after: secs(self.cycle_after),
            preboot: self.preboot,
            max_dynos_per_app: self.max_dynos_per_app,
            max_one_offs_per_app: self.max_one_offs_per_app,
            one_off_idle_timeout: Duration::from_secs(self.one_off_idle_timeout),
            release_phase_timeout: secs(self.release_phase_timeout),
            build_timeout: secs(self.build_timeout),
            build_memory_mb: self.build_memory_mb,
            build_pids: self.build_pids,
            build_cpu_shares: self.build_cpu_shares,
            max_slug_size_mb: self.max_slug_size_mb,
            slug_store: self.slug_store,
            max_source_size_mb: self.max_source_size_mb,
            max_push_size_mb: self.max_push_size_mb,
            idle_after: secs(self.idle_after),
            memory_check_interval: secs(self.memory_check_interval),
            router_threads: self.router_threads,
            dyno_subnet: self.dyno_subnet,
            dyno_uid_range: self.dyno_uid_range,
            dyno_disk_mb: self.dyno_disk_mb,
            allow_private_urls: self.allow_private_urls,
            runtime_sources: self.runtime_sources.into_iter().collect(),
            max_source_blob_mb: self.max_source_blob_mb,
            hook_binary: None,
            addon_postgres_admin_url: self.addon_postgres_admin_url,
            addon_redis_admin_url: self.addon_redis_admin_url,
            addon_postgres_max_mb: self.addon_postgres_max_mb,
            addon_size_check_secs: self.addon_size_check_secs,
            stack_manifests: self.stack_manifests,
            stack_package_cache: self.stack_package_cache,
            api_rate_limit_per_hour: self.api_rate_limit_per_hour,
            api_max_page_size: self.api_max_page_size,
            store_url: self.store_url,
            store_ca_file: self.store_ca_file,
            cluster: self.cluster,
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // A mistyped command: the closest one first, then clap's own message.
            if error.kind() == clap::error::ErrorKind::InvalidSubcommand {
                if let Some(given) = std::env::args().nth(1) {
                    let command = <Cli as clap::CommandFactory>::command();
                    let names = command
                        .get_subcommands()
                        .flat_map(|c| std::iter::once(c.get_name()).chain(c.get_all_aliases()));
                    if let Some(best) = slipway_cli::closest_command(&given, names) {
                        eprintln!(" ▸    {given} is not a slipway command. Did you mean `{best}`?");
                    }
                }
            }
            error.exit()
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!(" ▸    Could not start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        TopCommand::Server(args) => {
            init_tracing();
            match runtime.block_on(server(args.into_config())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!(" ▸    {:#}", anyhow::Error::from(error));
                    ExitCode::FAILURE
                }
            }
        }
        TopCommand::Router(args) => {
            init_tracing();
            match runtime.block_on(router(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!(" ▸    {:#}", error);
                    ExitCode::FAILURE
                }
            }
        }
        TopCommand::Agent(args) => {
            init_tracing();
            match runtime.block_on(slipway_agent::run(args.into_config(), shutdown_signal())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!(" ▸    {:#}", anyhow::Error::from(error));
                    ExitCode::FAILURE
                }
            }
        }
        TopCommand::GitHook { hook } if hook == "pre-receive" => {
            ExitCode::from(runtime.block_on(slipway_git::hook::run_pre_receive()) as u8)
        }
        TopCommand::GitHook { hook } => {
            eprintln!(" ▸    Unknown git hook {hook}.");
            ExitCode::FAILURE
        }
        TopCommand::Client(command) => runtime.block_on(slipway_cli::main_entry(command)),
    }
}

/// Tracing to stderr, `info` unless `RUST_LOG` says otherwise.
fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Runs a standalone router until SIGINT or SIGTERM, saying where it listens.
async fn router(args: RouterArgs) -> anyhow::Result<()> {
    let token = slipway_server::read_cluster_token(&args.token_file)?;
    let router = slipway_server::run_router(slipway_server::RemoteRouterConfig {
        servers: args.servers,
        token,
        http_addr: args.http_addr,
        https_addr: args.https_addr,
        threads: args.threads,
        server_ca_file: args.server_ca_file,
    })
    .await?;
    println!(
        "Slipway router is running: apps on http://{} (routes from the control planes).",
        router.http_addr()
    );
    if let Some(addr) = router.https_addr() {
        println!("HTTPS on https://{addr} (certificates from the control planes).");
    }
    router.run_until(shutdown_signal()).await;
    Ok(())
}

/// Runs the server until SIGINT or SIGTERM, saying where it listens.
async fn server(config: ServerConfig) -> Result<(), slipway_server::ServerError> {
    let domain = config.domain.clone();
    let server = slipway_server::run(config).await?;
    if server.admin_key_created() {
        println!(
            "Created the admin account {}; its API key is in {} (mode 0600).",
            slipway_server::ADMIN_EMAIL,
            server.admin_key_path().display()
        );
    }
    println!(
        "Slipway is running: API and git on http://{}, apps on http://<app>.{domain}:{} (data in {}).",
        server.api_addr(),
        server.router_addr().port(),
        server.data_dir().display()
    );
    println!(
        "HTTPS on https://<app>.{domain}:{} (trust {}).",
        server.router_tls_addr().port(),
        server.router_ca_path().display()
    );
    print!(
        "{}",
        heroku_cli_hint(
            server.api_tls_addr(),
            &server.admin_key_path(),
            &server.router_ca_path()
        )
    );
    server.run_until(shutdown_signal()).await
}

/// The lines that point the real heroku CLI and git at this server over HTTPS (the README
/// shows the same). `NODE_EXTRA_CA_CERTS` takes one file, so the platform CA is appended to
/// the system's bundle.
fn heroku_cli_hint(
    api_tls_addr: SocketAddr,
    key_path: &std::path::Path,
    ca_path: &std::path::Path,
) -> String {
    let host = match api_tls_addr.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
    };
    let port = api_tls_addr.port();
    let ca = ca_path.display();
    format!(
        "API and git over HTTPS on https://{host}:{port}. To use the heroku CLI and git:\n\
         \x20 cat /etc/ssl/certs/ca-certificates.crt {ca} > ~/.slipway-ca-bundle.pem\n\
         \x20 export HEROKU_HOST=https://{host}:{port} HEROKU_PARTICLEBOARD_URL=https://{host}:{port} HEROKU_BUILDPACK_REGISTRY_URL=https://{host}:{port}\n\
         \x20 export HEROKU_API_KEY=$(cat {key})\n\
         \x20 export NODE_EXTRA_CA_CERTS=~/.slipway-ca-bundle.pem GIT_SSL_CAINFO={ca}\n\
         \x20 export DISABLE_TELEMETRY=true HEROKU_SKIP_NEW_VERSION_CHECK=true HEROKU_DISABLE_AUTOUPDATE=true HEROKU_NOTIFICATIONS=0\n",
        key = key_path.display(),
    )
}

/// SIGINT (Ctrl-C) or SIGTERM; never, if the handlers cannot be installed.
async fn shutdown_signal() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => return std::future::pending().await,
        };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

/// `nodejs=https://registry.npmjs.org` → (`nodejs`, the URL). The language is a lowercase
/// word (it becomes part of a variable name); the URL must be http(s).
fn parse_runtime_source(value: &str) -> Result<(String, String), String> {
    let (language, url) = value.split_once('=').ok_or_else(|| {
        format!("{value:?} is not LANGUAGE=URL, e.g. nodejs=https://registry.npmjs.org")
    })?;
    if language.is_empty()
        || !language
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err(format!(
            "language {language:?} must be a lowercase word such as nodejs or python"
        ));
    }
    // A file:/// URL names a directory on the build stack (Java's Maven repository, a Rust
    // toolchain), read inside the build container, never on the host.
    if !(url.starts_with("https://") || url.starts_with("http://") || url.starts_with("file:///")) {
        return Err(format!(
            "runtime source {url:?} must be an http://, https:// or file:/// URL"
        ));
    }
    Ok((language.to_string(), url.to_string()))
}
