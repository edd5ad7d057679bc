//! The whole platform in one process. [`run`] does what `slipway server` does: it opens the
//! store, the container runtime, the log hub and the platform, starts the router (HTTP and
//! HTTPS) and the API, and the background tasks (dyno manager, route and certificate
//! publishers, log drains). It returns once every listener is bound and the admin key and the
//! router's CA are on disk, with a [`ServerHandle`] that says where it listens and shuts it
//! down gracefully. Signals are the binary's business; tests call [`run`] in-process.
//!
//! The server's defaults are here too ([`defaults`], [`ServerConfig::new`]): the binary only
//! maps its flags onto a [`ServerConfig`].

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use slipway_logplex::LogHub;
use slipway_runtime::Runtime;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

mod cluster;
mod config;
mod permissions;
mod remote_router;
mod tls;

pub use cluster::{cluster_token, read_cluster_token, ClusterTokenError, CLUSTER_TOKEN_FILE};
pub use remote_router::{
    run_router, RemoteRouterConfig, RemoteRouterError, RemoteRouterHandle, EVENT_QUEUE,
};

pub use config::{defaults, RuntimeKind, ServerConfig, UnknownRuntime};
pub use permissions::PathError;
/// `--dyno-uid-range`'s parser, so that the binary parses it as the core does.
pub use slipway_core::parse_uid_range;
/// `--dyno-subnet`'s type, so that the binary parses it without depending on the runtime.
pub use slipway_runtime::Ipv4Subnet;
pub use tls::TlsSetupError;

/// The account [`run`] creates on a fresh data directory; its API key goes to
/// [`ServerHandle::admin_key_path`].
pub const ADMIN_EMAIL: &str = "admin@slipway.local";

/// Why the server could not start, or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("creating the data directory {}", path.display())]
    CreateDataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("resolving {}", path.display())]
    ResolveDataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("restricting the permissions of {}", path.display())]
    TightenPermissions {
        path: PathBuf,
        #[source]
        source: PathError,
    },
    #[error("opening the platform's store")]
    OpenStore(#[source] slipway_store::StoreError),
    #[error(
        "starting the runc runtime (are `runc`, `iproute2` and `nftables` installed, and are \
         you root?)"
    )]
    StartRunc(#[source] slipway_runtime::RuntimeError),
    #[error("preparing the platform")]
    OpenPlatform(#[source] slipway_core::CoreError),
    #[error("restarting log drains")]
    RestoreDrains(#[source] slipway_core::CoreError),
    #[error("creating the admin account")]
    BootstrapAdmin(#[source] slipway_core::CoreError),
    #[error("saving the admin key")]
    WriteAdminKey(#[source] PathError),
    #[error("loading or creating the router's certificate authority")]
    RouterCa(#[source] slipway_core::CaError),
    #[error("setting up the HTTPS API's and the rendezvous listener's TLS")]
    Tls(#[source] TlsSetupError),
    /// A listener could not bind: `what` says which ("the API", "the HTTPS router", ...).
    #[error("listening for {what} on {addr}")]
    Listen {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("finding a free port on {addr}")]
    PickPort {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cleaning up after the previous run")]
    CleanUp(#[source] slipway_core::CoreError),
    #[error("finding the slipway binary for git hooks")]
    HookBinary(#[source] std::io::Error),
    #[error("serving the API")]
    ServeApi(#[source] std::io::Error),
    #[error("preparing the cluster token for standalone routers")]
    ClusterToken(#[source] ClusterTokenError),
}

/// A running server: where it listens, and how to stop it. Dropping the handle stops the
/// listeners too (without waiting for them); [`ServerHandle::shutdown`] waits.
#[derive(Debug)]
pub struct ServerHandle {
    api_addr: SocketAddr,
    router_addr: SocketAddr,
    router_tls_addr: SocketAddr,
    api_tls_addr: SocketAddr,
    rendezvous_addr: SocketAddr,
    data_dir: PathBuf,
    admin_key_created: bool,
    stop: watch::Sender<bool>,
    api: JoinHandle<std::io::Result<()>>,
    api_tls: JoinHandle<std::io::Result<()>>,
    rendezvous: JoinHandle<std::io::Result<()>>,
    http_threads: slipway_router::RouterThreads,
    https_threads: slipway_router::RouterThreads,
    dyno_manager: JoinHandle<()>,
    /// Daily `pg:backups:schedule` captures (`slipway_core::BackupSchedule`).
    backup_scheduler: JoinHandle<()>,
    addon_size_checks: JoinHandle<()>,
    addons: Arc<slipway_addons::Addons>,
}

impl ServerHandle {
    /// The API's and git's address (the real port when asked for port 0).
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// The router's HTTP address.
    pub fn router_addr(&self) -> SocketAddr {
        self.router_addr
    }

    /// The router's HTTPS address.
    pub fn router_tls_addr(&self) -> SocketAddr {
        self.router_tls_addr
    }

    /// The HTTPS address of the API and git (`HEROKU_HOST=https://...`).
    pub fn api_tls_addr(&self) -> SocketAddr {
        self.api_tls_addr
    }

    /// The rendezvous listener's address (TLS).
    pub fn rendezvous_addr(&self) -> SocketAddr {
        self.rendezvous_addr
    }

    /// The data directory, resolved (absolute, symbolic links followed).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Where the admin's API key is (mode 0600).
    pub fn admin_key_path(&self) -> PathBuf {
        self.data_dir.join(ADMIN_KEY_FILE)
    }

    /// Whether this start created the admin account (a fresh data directory).
    pub fn admin_key_created(&self) -> bool {
        self.admin_key_created
    }

    /// The platform CA's certificate, which HTTPS clients trust (the router's, the API's and
    /// the rendezvous listener's certificates chain to it unless configured otherwise).
    pub fn router_ca_path(&self) -> PathBuf {
        self.data_dir.join("tls/router-ca.pem")
    }

    /// Serves until `stop` completes (a signal, in the binary) or the API fails, then shuts
    /// down as [`ServerHandle::shutdown`] does.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> Result<(), ServerError> {
        let mut api = self.api;
        let failed = tokio::select! {
            () = stop => None,
            served = &mut api => Some(served),
        };
        // The router and the API stop accepting, finish what they serve, and release their
        // ports. Dynos keep running: the next server adopts them.
        let _ = self.stop.send(true);
        let served = match failed {
            Some(served) => served,
            None => api.await,
        };
        // The TLS listeners' own errors were logged as they happened; what matters here is
        // that they are closed before this returns.
        let _ = self.api_tls.await;
        let _ = self.rendezvous.await;
        let _ = self.http_threads.stopped().await;
        let _ = self.https_threads.stopped().await;
        self.dyno_manager.abort();
        self.backup_scheduler.abort();
        self.addon_size_checks.abort();
        self.addons.shutdown().await;
        match served {
            Ok(result) => result.map_err(ServerError::ServeApi),
            Err(join) => Err(ServerError::ServeApi(std::io::Error::other(join))),
        }
    }

    /// Stops accepting connections, lets requests in flight finish, and returns once every
    /// listener is closed. Running dynos are left running, for the next server to adopt.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        self.run_until(std::future::ready(())).await
    }
}

/// The platform's store: the embedded SQLite database, or the etcd cluster of `--store`.
/// Either way the release and slug ledgers are append-only.
async fn open_store(
    config: &ServerConfig,
    data_dir: &Path,
) -> Result<Arc<dyn slipway_store::Store>, slipway_store::StoreError> {
    const LEDGERS: [&str; 2] = ["releases/", "slugs/"];
    match &config.store_url {
        None => {
            let mut options = slipway_store::StoreOptions::default();
            for ledger in LEDGERS {
                options = options.immutable_prefix(ledger);
            }
            Ok(slipway_store::SqliteStore::open(
                &data_dir.join("slipway.db"),
                options,
            )?)
        }
        Some(url) => {
            let mut etcd = slipway_store::EtcdConfig::parse_url(url)?;
            etcd.ca_file = config.store_ca_file.clone();
            for ledger in LEDGERS {
                etcd = etcd.immutable_prefix(ledger);
            }
            Ok(slipway_store::EtcdStore::connect(etcd).await?)
        }
    }
}

/// The admin key's file name in the data directory.
const ADMIN_KEY_FILE: &str = "admin.key";

/// Binds a TCP listener on `addr`; `what` names it in the error.
async fn listen(addr: SocketAddr, what: &'static str) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(listen_error(addr, what))
}

/// The error of a listener `what` that could not bind `addr`.
fn listen_error(
    addr: SocketAddr,
    what: &'static str,
) -> impl FnOnce(std::io::Error) -> ServerError {
    move |source| ServerError::Listen { what, addr, source }
}

/// Starts the platform as `config` says; returns once it serves (see the crate documentation).
pub async fn run(config: ServerConfig) -> Result<ServerHandle, ServerError> {
    // Everything the server creates is its own alone (the database holds every config var):
    // files 0600, directories 0700. What a container's user must read is given its mode
    // explicitly where it is made (the runtime's rootfs skeleton, buildpacks) or owned by that
    // user (slugs unpacked for dynos, build directories).
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let data_dir = prepare_data_dir(&config.data_dir)?;

    let store = open_store(&config, &data_dir)
        .await
        .map_err(ServerError::OpenStore)?;

    // Port 0 means "any free port"; the platform must know the real ports (apps' web URLs,
    // git URLs, the runc network's public ports) before anything listens.
    let api_addr = pick_port(config.api_addr)?;
    let router_addr = pick_port(config.router_addr)?;
    let router_tls_addr = pick_port(config.router_tls_addr)?;
    let api_tls_addr = pick_port(config.api_tls_addr)?;
    let rendezvous_addr = pick_port(config.rendezvous_addr)?;

    // The platform's TLS before anything runs: a bad name or a configured certificate that
    // does not load stops the start here, with nothing started. Before the API listens, too:
    // a client that sees the API up can trust the CA file.
    let listener_names =
        tls::listener_names(&config.api_tls_hosts, &[api_tls_addr, rendezvous_addr])
            .map_err(ServerError::Tls)?;
    let configured_cert = match (&config.api_tls_cert, &config.api_tls_key) {
        (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
        (None, None) => None,
        _ => return Err(ServerError::Tls(TlsSetupError::HalfConfigured)),
    };
    let router_ca = slipway_core::load_or_create_ca(&data_dir, &config.domain, &listener_names)
        .map_err(ServerError::RouterCa)?;
    let listener_cert =
        tls::listener_cert(configured_cert, &router_ca).map_err(ServerError::Tls)?;
    let api_tls_config =
        tls::server_config(&listener_cert, &[b"h2", b"http/1.1"]).map_err(ServerError::Tls)?;
    let rendezvous_tls_config =
        tls::server_config(&listener_cert, &[]).map_err(ServerError::Tls)?;

    let addons_config = addons_config(&config, &data_dir);
    let runtime = open_runtime(
        &config,
        &data_dir,
        [
            api_addr,
            router_addr,
            router_tls_addr,
            api_tls_addr,
            rendezvous_addr,
        ],
        addons_config.ports(),
    )?;
    let addons = Arc::new(slipway_addons::Addons::new(addons_config));
    let mut platform_config = config.platform_config(data_dir.clone(), api_addr, router_addr);
    platform_config.addons = Some(addons.clone());
    platform_config.api_https_url = Some(format!(
        "https://{}:{}",
        tls::host_for(api_tls_addr, &listener_names),
        api_tls_addr.port()
    ));
    platform_config.rendezvous_url = format!(
        "rendezvous://{}:{}",
        tls::host_for(rendezvous_addr, &listener_names),
        rendezvous_addr.port()
    );
    if config.allow_private_urls {
        tracing::warn!("--allow-private-urls: source blobs and log drains may reach private and loopback addresses");
    }
    let logs = LogHub::with_drain_options(
        slipway_logplex::DEFAULT_HISTORY,
        slipway_logplex::DrainOptions {
            outbound: platform_config.outbound.clone(),
            ..Default::default()
        },
    );
    // The token every control plane of the platform shares, on disk before the API listens
    // (an operator copies it to the standalone routers and host agents once the server is up).
    let cluster_token = match config.store_url {
        Some(_) => cluster::shared_cluster_token(store.as_ref(), &data_dir).await,
        None => cluster::cluster_token(&data_dir),
    }
    .map_err(ServerError::ClusterToken)?;
    // Cluster mode: formation dynos go to the host agents, the rest to the server's runtime.
    let (runtime, cluster_runtime) = if config.cluster {
        let token = cluster_token.expose().to_owned();
        let cluster = slipway_core::cluster::Cluster::start(
            store.clone(),
            &data_dir,
            logs.clone(),
            token,
            slipway_core::cluster::HOST_LEASE_TTL,
        );
        let runtime: Arc<dyn Runtime> = Arc::new(slipway_core::cluster::ClusterRuntime::new(
            runtime,
            cluster.clone(),
        ));
        tracing::info!("cluster mode: formation dynos run on host agents (slipway agent)");
        (runtime, Some(cluster))
    } else {
        (runtime, None)
    };
    let platform =
        slipway_core::Platform::open(platform_config, store.clone(), runtime, logs.clone())
            .await
            .map_err(ServerError::OpenPlatform)?;

    let drains = platform
        .restore_drains()
        .await
        .map_err(ServerError::RestoreDrains)?;
    if drains > 0 {
        tracing::info!(drains, "log drains restarted");
    }

    let key_path = data_dir.join(ADMIN_KEY_FILE);
    let admin_key_created = match platform
        .bootstrap_admin(ADMIN_EMAIL)
        .await
        .map_err(ServerError::BootstrapAdmin)?
    {
        Some(key) => {
            permissions::write_secret(&key_path, &key).map_err(ServerError::WriteAdminKey)?;
            true
        }
        None => false,
    };

    let api_listener = listen(api_addr, "the API").await?;
    let api_tls_listener = listen(api_tls_addr, "the HTTPS API and git").await?;
    let rendezvous_listener =
        listen(rendezvous_addr, "one-off dynos' terminals (rendezvous)").await?;

    // The router listens before the platform touches any dyno, so a busy port stops here.
    let routes = slipway_core::spawn_route_publisher(store.clone(), config.domain.clone());
    // Standalone routers (`slipway router`) are streamed the same table.
    let router_ca = Arc::new(router_ca);
    let route_snapshots = cluster::spawn_snapshots(routes.clone());
    let cluster = slipway_api::ClusterApi {
        token: cluster_token,
        certs: tls::spawn_cert_snapshots(
            slipway_core::spawn_uploaded_cert_publisher(store.clone()),
            route_snapshots.clone(),
            router_ca.clone(),
        ),
        routes: route_snapshots,
    };
    let router_logs = logs.clone();
    let (traffic, waker) = (platform.clone(), platform.clone());
    let router = slipway_router::Router::new(
        routes,
        Arc::new(move |app: &str, line| {
            traffic.note_web_request(app);
            router_logs.publish(app, line)
        }),
        slipway_router::RouterConfig {
            listen_port_for_header: router_addr.port(),
            wake: Some(slipway_router::WakeHook::new(move |app: &str| {
                waker.wake_app(app)
            })),
            ..Default::default()
        },
    );
    let router_tls = slipway_router::TlsSettings {
        certs: slipway_core::spawn_cert_publisher(store.clone()),
        issuer: router_ca,
        port_for_header: router_tls_addr.port(),
    };
    let router_threads = config
        .router_threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let (stop, stopping) = watch::channel(false);
    let http_threads = router
        .clone()
        .serve_per_core(
            router_addr,
            router_threads,
            slipway_router::Protocol::Http,
            stopping.clone(),
        )
        .map_err(listen_error(router_addr, "the router"))?;
    let https_threads = router
        .serve_per_core(
            router_tls_addr,
            router_threads,
            slipway_router::Protocol::Https(router_tls),
            stopping.clone(),
        )
        .map_err(listen_error(router_tls_addr, "the HTTPS router"))?;
    platform
        .clean_up_previous_run()
        .await
        .map_err(ServerError::CleanUp)?;
    // On a shared store (etcd) several servers may run: each serves the API, git and the
    // router, but only the elected leader runs the singletons. The embedded store is one
    // server's alone, which runs them all as before.
    let (dyno_manager, backup_scheduler) = if config.store_url.is_some() {
        let leader = platform.clone();
        let election = slipway_core::leader::Election::new(
            store.clone(),
            format!("slipway server {} at {api_addr}", std::process::id()),
            slipway_core::leader::LEADER_TTL,
        );
        let singletons = slipway_core::leader::run_while_leader(election, move |fenced| {
            vec![
                leader.start_dyno_manager_on(fenced),
                leader.start_backup_scheduler(),
            ]
        });
        (singletons, tokio::spawn(async {}))
    } else {
        (
            platform.start_dyno_manager(),
            platform.start_backup_scheduler(),
        )
    };
    let addon_size_checks = platform
        .start_addon_size_checks(std::time::Duration::from_secs(config.addon_size_check_secs));
    // Add-on servers that hold add-ons start now; the others on first use.
    let starting = addons.clone();
    tokio::spawn(async move { starting.start_existing().await });
    let hook_binary = match config.hook_binary {
        Some(binary) => binary,
        None => std::env::current_exe().map_err(ServerError::HookBinary)?,
    };
    let api = slipway_api::router(
        platform.clone(),
        slipway_api::ApiConfig {
            hook_binary,
            rate_limit_per_hour: config.api_rate_limit_per_hour,
            max_page_size: config.api_max_page_size,
            cluster: Some(cluster),
            agents: cluster_runtime,
        },
    );
    let api_tls = tokio::spawn(tls::serve_https(
        api_tls_listener,
        api_tls_config,
        api.clone(),
        stopping.clone(),
    ));
    let rendezvous = tokio::spawn(slipway_rendezvous::serve(
        rendezvous_listener,
        rendezvous_tls_config,
        platform.clone() as Arc<dyn slipway_rendezvous::Sessions>,
        stopping.clone(),
    ));
    let mut api_stopping = stopping;
    let api = tokio::spawn(async move {
        axum::serve(api_listener, api)
            .with_graceful_shutdown(async move {
                let _ = api_stopping.wait_for(|stop| *stop).await;
            })
            .await
    });

    Ok(ServerHandle {
        api_addr,
        router_addr,
        router_tls_addr,
        api_tls_addr,
        rendezvous_addr,
        data_dir,
        admin_key_created,
        stop,
        api,
        api_tls,
        rendezvous,
        http_threads,
        https_threads,
        dyno_manager,
        backup_scheduler,
        addon_size_checks,
        addons,
    })
}

/// Where the add-on servers live and listen: on runc, the dyno network's gateway (opened to
/// dynos at exactly their ports by the runtime's firewall); with plain processes, loopback.
fn addons_config(config: &ServerConfig, data_dir: &Path) -> slipway_addons::AddonsConfig {
    let listen = match config.runtime.unwrap_or_else(RuntimeKind::for_current_user) {
        RuntimeKind::Runc => config.dyno_subnet.gateway(),
        RuntimeKind::Process => std::net::Ipv4Addr::LOCALHOST,
    };
    slipway_addons::AddonsConfig {
        dir: data_dir.join("addons"),
        listen,
        postgres_port: slipway_addons::AddonsConfig::DEFAULT_POSTGRES_PORT,
        redis_ports: slipway_addons::AddonsConfig::DEFAULT_REDIS_PORTS,
        postgres_admin_url: config.addon_postgres_admin_url.clone(),
        redis_admin_url: config.addon_redis_admin_url.clone(),
        postgres_max_bytes: config
            .addon_postgres_max_mb
            .map(|mb| mb.saturating_mul(1024 * 1024)),
        postgres_bin: slipway_addons::AddonsConfig::DEFAULT_POSTGRES_BIN.into(),
        redis_server: slipway_addons::AddonsConfig::DEFAULT_REDIS_SERVER.into(),
    }
}

/// Creates the data directory, resolves it, and makes it the server's alone.
fn prepare_data_dir(data_dir: &Path) -> Result<PathBuf, ServerError> {
    std::fs::create_dir_all(data_dir).map_err(|source| ServerError::CreateDataDir {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let data_dir = data_dir
        .canonicalize()
        .map_err(|source| ServerError::ResolveDataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
    let fixed = permissions::tighten_permissions(&data_dir).map_err(|source| {
        ServerError::TightenPermissions {
            path: data_dir.clone(),
            source,
        }
    })?;
    if fixed > 0 {
        tracing::info!(fixed, "made the data directory readable by its owner alone (files left readable by others by an older version)");
    }
    Ok(data_dir)
}

/// `addr` itself, or, for port 0, `addr` with a port that was free a moment ago. The port is
/// released before the real listener binds it (the platform needs it first), so another
/// process could take it in between: port 0 is for tests, which then see a bind error.
fn pick_port(addr: SocketAddr) -> Result<SocketAddr, ServerError> {
    if addr.port() != 0 {
        return Ok(addr);
    }
    std::net::TcpListener::bind(addr)
        .and_then(|listener| listener.local_addr())
        .map_err(|source| ServerError::PickPort { addr, source })
}

/// The container runtime `config` asks for. On runc, the listeners on a public address
/// (`listeners`) are opened to dynos, which reach them as anyone else does.
fn open_runtime(
    config: &ServerConfig,
    data_dir: &Path,
    listeners: [SocketAddr; 5],
    addon_ports: Vec<std::ops::RangeInclusive<u16>>,
) -> Result<Arc<dyn Runtime>, ServerError> {
    match config.runtime.unwrap_or_else(RuntimeKind::for_current_user) {
        RuntimeKind::Runc => {
            let mut runc = slipway_runtime::RuncConfig::new(data_dir.join("runtime"));
            let mut network = slipway_runtime::NetworkConfig::for_key(config.dyno_subnet, data_dir);
            network.public_ports = listeners
                .iter()
                .filter(|addr| !addr.ip().is_loopback())
                .map(|addr| addr.port())
                .collect();
            network.addon_ports = addon_ports;
            tracing::info!(
                "dyno network: bridge {} subnet {}",
                network.bridge,
                network.subnet
            );
            runc.network = Some(network);
            // Ready-made disks for the most common dyno size and for builds. A build runs
            // five containers one after the other (three detects, compile, release), each on a
            // disk of its own: keep a whole build's worth ready, so that making disks stays
            // off its path.
            runc.disk_pool = 6;
            runc.disk_pool_sizes = vec![
                config.dyno_disk_mb.saturating_mul(1024 * 1024),
                slipway_core::BUILD_DISK_BYTES,
            ];
            let runc = slipway_runtime::RuncRuntime::new(runc).map_err(ServerError::StartRunc)?;
            Ok(Arc::new(runc))
        }
        RuntimeKind::Process => {
            tracing::warn!(
                "dynos run as plain host processes WITHOUT isolation (--runtime process)"
            );
            Ok(Arc::new(slipway_runtime::ProcessRuntime::new()))
        }
    }
}
