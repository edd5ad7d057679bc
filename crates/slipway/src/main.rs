//! The `slipway` binary: `slipway server` runs the whole platform in one process; every other
//! subcommand is the CLI client (Heroku's command grammar), and `git-hook` is what git's
//! pre-receive hook execs. This file only parses arguments and wires crates together.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use slipway_logplex::LogHub;
use slipway_runtime::Runtime;

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
    /// Run by git inside a repository's pre-receive hook (not for direct use).
    #[command(name = "git-hook", hide = true)]
    GitHook { hook: String },
    #[command(flatten)]
    Client(slipway_cli::Command),
}

#[derive(clap::Args)]
struct ServerArgs {
    /// Where the database, slugs, repositories and containers live.
    #[arg(long, env = "SLIPWAY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The API and git address.
    #[arg(long, default_value = "127.0.0.1:5000")]
    api_addr: SocketAddr,
    /// The router's (apps') address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    router_addr: SocketAddr,
    /// The router's HTTPS address (HTTP/2 and HTTP/1.1; certificates by SNI, from
    /// `certs:add` or issued by the platform CA in <data-dir>/tls/router-ca.pem).
    #[arg(long, default_value = "127.0.0.1:8443")]
    router_tls_addr: SocketAddr,
    /// Apps are served at <app>.<domain>.
    #[arg(long, default_value = "localhost")]
    domain: String,
    /// How dynos run: `runc` (isolated containers; needs root) or `process` (plain host
    /// processes without isolation, for development without root).
    #[arg(long, value_parser = ["runc", "process"])]
    runtime: Option<String>,
    /// Seconds a web dyno has to bind $PORT (Heroku: 60).
    #[arg(long, default_value_t = 60)]
    boot_timeout: u64,
    /// Seconds between SIGTERM and SIGKILL when stopping a dyno (Heroku: 30).
    #[arg(long, default_value_t = 30)]
    stop_grace: u64,
    /// Seconds to wait before restarting a dyno after its 1st, 2nd, ... consecutive crash;
    /// the last one repeats (Heroku: 0,1200,2400,3600,10800,19200).
    #[arg(long, value_delimiter = ',', default_values_t = [0u64, 1200, 2400, 3600, 10800, 19200])]
    crash_backoff: Vec<u64>,
    /// Seconds after which each dyno is restarted (`Cycling`), plus a random 0-13%
    /// (Heroku: 24 h plus 0-216 min).
    #[arg(long, default_value_t = 86_400)]
    cycle_after: u64,
    /// Start new web dynos and switch traffic to them before stopping the old ones on
    /// deploys, config changes and restarts (Heroku's preboot). `--preboot false` turns it off.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    preboot: bool,
    /// Most dynos per app (Heroku: 100).
    #[arg(long, default_value_t = 100)]
    max_dynos_per_app: u32,
    /// Seconds a release phase (the Procfile's `release:` command) may run before it is
    /// killed and its release marked failed (Heroku: 3600).
    #[arg(long, default_value_t = 3600)]
    release_phase_timeout: u64,
    /// Seconds a whole build may run before its container is killed and the push fails with
    /// "Build timed out" (Heroku: 15 minutes).
    #[arg(long, default_value_t = 900)]
    build_timeout: u64,
    /// Hard memory limit of build containers, in MiB.
    #[arg(long, default_value_t = 2048)]
    build_memory_mb: u64,
    /// Most processes (and threads) in a build container.
    #[arg(long, default_value_t = 1024)]
    build_pids: i64,
    /// cgroup CPU shares of build containers (a 512 MB dyno has 1024).
    #[arg(long, default_value_t = 256)]
    build_cpu_shares: u64,
    /// Largest compressed slug a build may produce or an upload bring, in MiB (Heroku: 500).
    #[arg(long, default_value_t = 500)]
    max_slug_size_mb: u64,
    /// Most an app's source may expand to when unpacked, in MiB.
    #[arg(long, default_value_t = 1024)]
    max_source_size_mb: u64,
    /// Most a gzip'd git request body may inflate to, in MiB.
    #[arg(long, default_value_t = 1024)]
    max_push_size_mb: u64,
    /// Seconds without web traffic after which an app whose web dynos are eco sleeps
    /// (Heroku: 1800).
    #[arg(long, default_value_t = 1800)]
    idle_after: u64,
    /// Seconds between checks of dynos' memory use against their quota (R14, R15).
    #[arg(long, default_value_t = 20)]
    memory_check_interval: u64,
    /// Threads serving the router's HTTP and HTTPS listeners, each with its own event loop
    /// (default: one per core).
    #[arg(long)]
    router_threads: Option<usize>,
    /// The private IPv4 subnet of the dyno network (runc runtime): every dyno and build gets
    /// an address of it in a network namespace of its own, behind a bridge named after the
    /// data directory. It must not overlap the host's routes.
    #[arg(long, default_value = slipway_runtime::NetworkConfig::DEFAULT_SUBNET)]
    dyno_subnet: slipway_runtime::Ipv4Subnet,
    /// The uids apps get, one per app (each also its gid), as FIRST-LAST. An app keeps its uid
    /// while it exists; its dynos, one-off dynos and builds run as it.
    #[arg(long, default_value = "100000-165535", value_parser = slipway_core::parse_uid_range)]
    dyno_uid_range: std::ops::RangeInclusive<u32>,
    /// The disk (ephemeral /app plus /tmp) of an eco, basic or standard-1x dyno, in MiB;
    /// standard-2x gets twice it, performance-m 4x, performance-l 8x. Writes beyond it fail
    /// with "No space left on device" inside the dyno only.
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u64).range(16..))]
    dyno_disk_mb: u64,
    /// Let source blob URLs and log drains reach loopback, private, link-local and this host's
    /// own addresses. Only for development and tests: tenants could then reach the platform's
    /// internal services (server-side request forgery).
    #[arg(long)]
    allow_private_urls: bool,
    /// The largest source blob a build fetches, in MB (compressed).
    #[arg(long, default_value_t = 500)]
    max_source_blob_mb: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!(" ▸    Could not start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        TopCommand::Server(args) => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info".into()),
                )
                .with_writer(std::io::stderr)
                .init();
            match runtime.block_on(server(*args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!(" ▸    {error:#}");
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

async fn server(args: ServerArgs) -> anyhow::Result<()> {
    // Everything the server creates is its own alone (the database holds every config var):
    // files 0600, directories 0700. What a container's user must read is given its mode
    // explicitly where it is made (the runtime's rootfs skeleton, buildpacks) or owned by that
    // user (slugs unpacked for dynos, build directories).
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let data_dir = args.data_dir.unwrap_or_else(slipway_cli::default_data_dir);
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let data_dir = data_dir
        .canonicalize()
        .with_context(|| format!("resolving {}", data_dir.display()))?;
    let fixed = tighten_permissions(&data_dir)
        .with_context(|| format!("restricting the permissions of {}", data_dir.display()))?;
    if fixed > 0 {
        tracing::info!(fixed, "made the data directory readable by its owner alone (files left readable by others by an older version)");
    }

    let store = slipway_store::SqliteStore::open(
        &data_dir.join("slipway.db"),
        slipway_store::StoreOptions::default()
            .immutable_prefix("releases/")
            .immutable_prefix("slugs/"),
    )
    .context("opening the platform's database")?;

    let is_root = nix::unistd::geteuid().is_root();
    let runtime_kind = args.runtime.unwrap_or_else(|| {
        if is_root {
            "runc".into()
        } else {
            "process".into()
        }
    });
    let runtime: Arc<dyn Runtime> = if runtime_kind == "runc" {
        let mut runc = slipway_runtime::RuncConfig::new(data_dir.join("runtime"));
        let mut network = slipway_runtime::NetworkConfig::for_key(args.dyno_subnet, &data_dir);
        // Listeners on a public address are reachable from dynos as from anywhere else.
        network.public_ports = [args.api_addr, args.router_addr, args.router_tls_addr]
            .iter()
            .filter(|addr| !addr.ip().is_loopback())
            .map(|addr| addr.port())
            .collect();
        tracing::info!(
            "dyno network: bridge {} subnet {}",
            network.bridge,
            network.subnet
        );
        runc.network = Some(network);
        // Ready-made disks for the most common dyno size and for builds. A build runs five
        // containers one after the other (three detects, compile, release), each on a disk of
        // its own: keep a whole build's worth ready, so that making disks stays off its path.
        runc.disk_pool = 6;
        runc.disk_pool_sizes = vec![
            args.dyno_disk_mb.saturating_mul(1024 * 1024),
            slipway_core::BUILD_DISK_BYTES,
        ];
        Arc::new(slipway_runtime::RuncRuntime::new(runc).context(
            "starting the runc runtime (are `runc`, `iproute2` and `nftables` installed, and are \
             you root?)",
        )?)
    } else {
        tracing::warn!("dynos run as plain host processes WITHOUT isolation (--runtime process)");
        Arc::new(slipway_runtime::ProcessRuntime::new())
    };

    let mut config = slipway_core::PlatformConfig::new(data_dir.clone());
    config.domain = args.domain.clone();
    config.router_port = args.router_addr.port();
    config.app_uids = args.dyno_uid_range.clone();
    config.dyno_disk_mb = args.dyno_disk_mb;
    config.api_url = format!("http://{}", args.api_addr);
    config.dynos.boot_timeout = std::time::Duration::from_secs(args.boot_timeout);
    config.dynos.stop_grace = std::time::Duration::from_secs(args.stop_grace);
    config.dynos.crash_backoff = args
        .crash_backoff
        .iter()
        .map(|s| std::time::Duration::from_secs(*s))
        .collect();
    config.dynos.cycle_after = std::time::Duration::from_secs(args.cycle_after);
    config.dynos.cycle_jitter = std::time::Duration::from_secs(args.cycle_after * 216 / 1440);
    config.dynos.preboot = args.preboot;
    config.dynos.max_dynos_per_app = args.max_dynos_per_app;
    config.release_phase_timeout = std::time::Duration::from_secs(args.release_phase_timeout);
    const MIB: u64 = 1024 * 1024;
    config.build = slipway_core::BuildBudget {
        timeout: std::time::Duration::from_secs(args.build_timeout.max(1)),
        memory_bytes: args.build_memory_mb.max(64) * MIB,
        pids: args.build_pids.max(16),
        cpu_shares: args.build_cpu_shares.max(2),
        max_slug_bytes: args.max_slug_size_mb.max(1) * MIB,
        max_source_bytes: args.max_source_size_mb.max(1) * MIB,
        max_push_bytes: args.max_push_size_mb.max(1) * MIB,
    };
    config.dynos.idle_after = std::time::Duration::from_secs(args.idle_after);
    config.dynos.memory_check_interval =
        std::time::Duration::from_secs(args.memory_check_interval.max(1));
    let outbound = slipway_outbound::OutboundPolicy::new(args.allow_private_urls);
    if args.allow_private_urls {
        tracing::warn!("--allow-private-urls: source blobs and log drains may reach private and loopback addresses");
    }
    config.outbound = outbound.clone();
    config.max_source_blob_bytes = args.max_source_blob_mb.saturating_mul(1024 * 1024);
    let logs = LogHub::with_drain_options(
        slipway_logplex::DEFAULT_HISTORY,
        slipway_logplex::DrainOptions {
            outbound,
            ..Default::default()
        },
    );
    let platform = slipway_core::Platform::open(config, store.clone(), runtime, logs.clone())
        .await
        .context("preparing the platform")?;

    let drains = platform
        .restore_drains()
        .await
        .context("restarting log drains")?;
    if drains > 0 {
        tracing::info!(drains, "log drains restarted");
    }

    let key_path = data_dir.join("admin.key");
    if let Some(key) = platform.bootstrap_admin("admin@slipway.local").await? {
        write_secret(&key_path, &key)?;
        println!(
            "Created the admin account admin@slipway.local; its API key is in {} (mode 0600).",
            key_path.display()
        );
    }

    // Before the API listens: a client that sees the API up can trust the CA file.
    let router_ca = slipway_core::load_or_create_ca(&data_dir, &args.domain)?;
    let api_listener = tokio::net::TcpListener::bind(args.api_addr)
        .await
        .with_context(|| format!("listening for the API on {}", args.api_addr))?;

    // The router listens before the platform touches any dyno, so a busy port stops here.
    let routes = slipway_core::spawn_route_publisher(store.clone(), args.domain.clone());
    let router_logs = logs.clone();
    let (traffic, waker) = (platform.clone(), platform.clone());
    let router = slipway_router::Router::new(
        routes,
        Arc::new(move |app: &str, line| {
            traffic.note_web_request(app);
            router_logs.publish(app, line)
        }),
        slipway_router::RouterConfig {
            listen_port_for_header: args.router_addr.port(),
            wake: Some(slipway_router::WakeHook::new(move |app: &str| {
                waker.wake_app(app)
            })),
            ..Default::default()
        },
    );
    let router_tls = slipway_router::TlsSettings {
        certs: slipway_core::spawn_cert_publisher(store.clone()),
        issuer: Arc::new(router_ca),
        port_for_header: args.router_tls_addr.port(),
    };
    let router_threads = args
        .router_threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let (stop_router, router_stopping) = tokio::sync::watch::channel(false);
    let http_threads = router
        .clone()
        .serve_per_core(
            args.router_addr,
            router_threads,
            slipway_router::Protocol::Http,
            router_stopping.clone(),
        )
        .with_context(|| format!("listening for the router on {}", args.router_addr))?;
    let https_threads = router
        .serve_per_core(
            args.router_tls_addr,
            router_threads,
            slipway_router::Protocol::Https(router_tls),
            router_stopping,
        )
        .with_context(|| format!("listening for the HTTPS router on {}", args.router_tls_addr))?;
    platform.clean_up_previous_run().await?;
    let dyno_manager = platform.start_dyno_manager();
    let hook_binary =
        std::env::current_exe().context("finding the slipway binary for git hooks")?;
    let api = slipway_api::router(platform.clone(), slipway_api::ApiConfig { hook_binary });

    println!(
        "Slipway is running: API and git on http://{}, apps on http://<app>.{}:{} (data in {}).",
        args.api_addr,
        args.domain,
        args.router_addr.port(),
        data_dir.display()
    );
    println!(
        "HTTPS on https://<app>.{}:{} (trust {}).",
        args.domain,
        args.router_tls_addr.port(),
        data_dir.join("tls/router-ca.pem").display()
    );
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_router.send(true);
    });
    axum::serve(api_listener, api)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving the API")?;
    let _ = http_threads.stopped().await;
    let _ = https_threads.stopped().await;
    dyno_manager.abort();
    Ok(())
}

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

/// Where permissions stay as they are: the built-in buildpacks (0755, read by the build user).
/// Relative to the data directory.
const KEEP_PERMISSIONS: &[&str] = &["buildpacks"];
/// Where directories keep their mode (files are tightened): the runtime's bundles, whose rootfs
/// skeletons are the root directories of running dynos, traversed by their users.
const KEEP_DIRECTORY_PERMISSIONS: &[&str] = &["runtime"];

/// Makes the data directory 0700 and, below it, takes group and other permissions off every
/// file and directory (an older version created them 0644/0755), except under
/// [`KEEP_PERMISSIONS`], directories under [`KEEP_DIRECTORY_PERMISSIONS`], and files owned by
/// someone else than the server (dyno-owned slug files keep their mode: their owner reads them
/// inside the container). Does not follow symbolic links, nor cross into other filesystems: the
/// mounts under the data directory are running dynos' (their network namespace files, their
/// disks). Returns how many modes it changed.
fn tighten_permissions(data_dir: &std::path::Path) -> anyhow::Result<usize> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let me = nix::unistd::geteuid().as_raw();
    let device = std::fs::metadata(data_dir)
        .with_context(|| format!("reading {}", data_dir.display()))?
        .dev();
    let mut changed = 0;
    let mut stack = vec![data_dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
        };
        if meta.file_type().is_symlink() || meta.uid() != me || meta.dev() != device {
            continue;
        }
        let relative = path.strip_prefix(data_dir).unwrap_or(&path);
        if KEEP_PERMISSIONS
            .iter()
            .any(|keep| relative == std::path::Path::new(keep))
        {
            continue;
        }
        let keep_dir = meta.is_dir()
            && KEEP_DIRECTORY_PERMISSIONS
                .iter()
                .any(|keep| relative.starts_with(keep) && relative != std::path::Path::new(keep));
        let mode = meta.permissions().mode() & 0o7777;
        let wanted = if path == data_dir {
            0o700
        } else {
            mode & !0o077
        };
        if ((meta.is_dir() && !keep_dir) || meta.is_file()) && wanted != mode {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(wanted))
                .with_context(|| format!("changing the mode of {}", path.display()))?;
            changed += 1;
        }
        if meta.is_dir() {
            for entry in
                std::fs::read_dir(&path).with_context(|| format!("listing {}", path.display()))?
            {
                stack.push(entry?.path());
            }
        }
    }
    Ok(changed)
}

fn write_secret(path: &std::path::Path, secret: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing the admin key to {}", path.display()))?;
    file.write_all(secret.as_bytes())?;
    Ok(())
}
