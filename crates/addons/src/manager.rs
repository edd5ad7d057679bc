//! [`Addons`]: the platform's add-on servers and what it provisions on them. It knows add-ons
//! only by their resource name (a role, a database, a Redis directory); which app has which
//! add-on is the core's business.
//!
//! Servers start on first use (or at platform start if they already hold add-ons), are
//! restarted when they die (`process.rs`), and stop with the platform ([`Addons::shutdown`]).
//! They listen on [`AddonsConfig::listen`]: the dyno network's gateway under runc, where the
//! dyno firewall opens [`AddonsConfig::ports`] (and nothing else) only to the dynos of apps
//! with an add-on on that server attached (the core decides which), so they are reachable from
//! those dynos and this host and not from outside.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::Mutex;

use crate::error::{io, AddonsError};
use crate::plans::{Plan, Service};
use crate::postgres::{self, PgAdmin, PgStats, SizeCheck};
use crate::process::Supervised;
use crate::redis::Instance;
use crate::shared_redis::{self, RedisAdmin};

/// Where the add-on servers live and listen.
#[derive(Debug, Clone)]
pub struct AddonsConfig {
    /// `<data>/addons`.
    pub dir: PathBuf,
    /// The address the servers listen on and dynos connect to.
    pub listen: Ipv4Addr,
    /// The embedded PostgreSQL's port.
    pub postgres_port: u16,
    /// One port per Redis add-on.
    pub redis_ports: RangeInclusive<u16>,
    /// An existing PostgreSQL server to provision on instead of the embedded one.
    pub postgres_admin_url: Option<String>,
    /// An existing Redis server to provision on (an ACL user per add-on, confined to its key
    /// prefix) instead of a server process per add-on.
    pub redis_admin_url: Option<String>,
    /// A storage cap below every plan's, in bytes (an operator with small disks; tests with a
    /// tiny limit). `None`: each plan's own.
    pub postgres_max_bytes: Option<u64>,
    /// Debian's PostgreSQL binaries.
    pub postgres_bin: PathBuf,
    pub redis_server: PathBuf,
}

impl AddonsConfig {
    /// Debian 12's PostgreSQL.
    pub const DEFAULT_POSTGRES_BIN: &'static str = "/usr/lib/postgresql/15/bin";
    pub const DEFAULT_REDIS_SERVER: &'static str = "/usr/bin/redis-server";
    /// The embedded PostgreSQL's port on the add-on address (not 5432, which a host's own
    /// PostgreSQL may hold on every address).
    pub const DEFAULT_POSTGRES_PORT: u16 = 54320;
    /// Ports for Redis add-ons: at most 200 of them on one host.
    pub const DEFAULT_REDIS_PORTS: RangeInclusive<u16> = 54400..=54599;

    /// The ports dynos must reach: PostgreSQL's and the Redis range.
    pub fn ports(&self) -> Vec<RangeInclusive<u16>> {
        let mut ports = Vec::new();
        if self.redis_admin_url.is_none() {
            ports.push(self.redis_ports.clone());
        }
        if self.postgres_admin_url.is_none() {
            ports.insert(0, self.postgres_port..=self.postgres_port);
        }
        ports
    }
}

/// A provisioned add-on's resource and the URL its apps get.
#[derive(Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub resource: String,
    pub url: String,
}

impl std::fmt::Debug for Provisioned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL carries the password.
        f.debug_struct("Provisioned")
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

/// The add-on servers.
#[derive(Debug)]
pub struct Addons {
    config: AddonsConfig,
    postgres: Mutex<Option<Supervised>>,
    redis: Mutex<HashMap<String, Supervised>>,
}

impl Addons {
    pub fn new(config: AddonsConfig) -> Addons {
        Addons {
            config,
            postgres: Mutex::new(None),
            redis: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &AddonsConfig {
        &self.config
    }

    fn embedded(&self) -> postgres::Embedded {
        postgres::Embedded {
            addons_dir: self.config.dir.clone(),
            listen: self.config.listen,
            port: self.config.postgres_port,
            bin: self.config.postgres_bin.clone(),
            user: server_user("postgres"),
        }
    }

    /// The existing Redis server add-ons are provisioned on, if one is configured.
    fn shared_redis(&self) -> Result<Option<RedisAdmin>, AddonsError> {
        self.config
            .redis_admin_url
            .as_deref()
            .map(RedisAdmin::parse)
            .transpose()
    }

    fn redis_dir(&self) -> PathBuf {
        self.config.dir.join("redis")
    }

    /// Starts the servers that already hold add-ons (after a platform restart).
    pub async fn start_existing(&self) {
        if self.config.postgres_admin_url.is_none() && self.embedded().is_initialized() {
            if let Err(error) = self.postgres_admin().await {
                tracing::error!(%error, "cannot start the add-ons' PostgreSQL server");
            }
        }
        let Ok(entries) = std::fs::read_dir(self.redis_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            if let Some(instance) = Instance::read(&entry.path()) {
                if let Err(error) = self.start_redis(&instance).await {
                    tracing::error!(%error, "cannot start a Redis add-on server");
                }
            }
        }
    }

    /// The admin of the PostgreSQL server, starting the embedded one if needed.
    async fn postgres_admin(&self) -> Result<PgAdmin, AddonsError> {
        if let Some(url) = &self.config.postgres_admin_url {
            return PgAdmin::external(url, postgres::Embedded::psql(&self.config.postgres_bin));
        }
        let embedded = self.embedded();
        let mut running = self.postgres.lock().await;
        if running.as_ref().is_some_and(Supervised::is_running) {
            return embedded.admin();
        }
        self.prepare_dirs()?;
        embedded.initialize().await?;
        let admin = embedded.admin()?;
        *running = Some(Supervised::spawn(embedded.spec()));
        admin.wait_ready().await?;
        // The maintenance databases are the admin's alone: an add-on's role opens its own.
        admin
            .sql(
                "REVOKE CONNECT ON DATABASE postgres, template1 FROM PUBLIC;",
                "",
                "close the maintenance databases",
                "",
            )
            .await?;
        Ok(admin)
    }

    /// Makes `<data>` and `<data>/addons` traversable (not listable) by the servers' users,
    /// whose own directories below are theirs alone.
    fn prepare_dirs(&self) -> Result<(), AddonsError> {
        std::fs::create_dir_all(&self.config.dir).map_err(io("create", &self.config.dir))?;
        if server_user("postgres").is_none() {
            return Ok(());
        }
        let mut dirs = vec![self.config.dir.clone()];
        if let Some(parent) = self.config.dir.parent() {
            dirs.push(parent.to_path_buf());
        }
        for dir in dirs {
            let mode = std::fs::metadata(&dir)
                .map_err(io("read", &dir))?
                .permissions()
                .mode();
            if mode & 0o011 != 0o011 {
                std::fs::set_permissions(
                    &dir,
                    std::fs::Permissions::from_mode((mode & 0o7700) | 0o011),
                )
                .map_err(io("chmod", &dir))?;
            }
        }
        Ok(())
    }

    /// Provisions a new add-on named `resource` on `plan`'s service.
    pub async fn provision(&self, plan: &Plan, resource: &str) -> Result<Provisioned, AddonsError> {
        check_resource(resource)?;
        match plan.service {
            Service::Postgres => {
                let admin = self.postgres_admin().await?;
                let password = postgres::provision(&admin, resource, plan).await?;
                Ok(Provisioned {
                    resource: resource.to_owned(),
                    url: admin.url(resource, &password),
                })
            }
            Service::Redis => {
                if let Some(admin) = self.shared_redis()? {
                    let password = shared_redis::provision(&admin, resource).await?;
                    return Ok(Provisioned {
                        resource: resource.to_owned(),
                        url: admin.url(resource, &password),
                    });
                }
                self.prepare_dirs()?;
                let redis_dir = self.redis_dir();
                std::fs::create_dir_all(&redis_dir).map_err(io("create", &redis_dir))?;
                // Each server's user traverses the shared parent to its own directory.
                std::fs::set_permissions(&redis_dir, std::fs::Permissions::from_mode(0o711))
                    .map_err(io("chmod", &redis_dir))?;
                let mut servers = self.redis.lock().await;
                let port = self.free_redis_port(&redis_dir)?;
                let instance = Instance::new(
                    &redis_dir,
                    resource,
                    self.config.listen,
                    port,
                    crate::secret::password(),
                    plan,
                );
                let started = async {
                    instance.write(server_user("redis"))?;
                    let server = Supervised::spawn(
                        instance.spec(&self.config.redis_server, server_user("redis")),
                    );
                    servers.insert(resource.to_owned(), server);
                    wait_listening(&instance).await
                };
                if let Err(error) = started.await {
                    if let Some(server) = servers.remove(resource) {
                        server.stop().await;
                    }
                    let _ = std::fs::remove_dir_all(&instance.dir);
                    return Err(error);
                }
                Ok(Provisioned {
                    resource: resource.to_owned(),
                    url: instance.url(),
                })
            }
        }
    }

    /// Removes an add-on's data for good. Idempotent.
    pub async fn deprovision(&self, service: Service, resource: &str) -> Result<(), AddonsError> {
        check_resource(resource)?;
        match service {
            Service::Postgres => {
                let admin = self.postgres_admin().await?;
                postgres::deprovision(&admin, resource).await
            }
            Service::Redis => {
                if let Some(admin) = self.shared_redis()? {
                    return shared_redis::deprovision(&admin, resource).await;
                }
                if let Some(server) = self.redis.lock().await.remove(resource) {
                    server.stop().await;
                }
                let dir = self.redis_dir().join(resource);
                match std::fs::remove_dir_all(&dir) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(AddonsError::Io {
                        action: "remove",
                        path: dir,
                        source: e,
                    }),
                    _ => Ok(()),
                }
            }
        }
    }

    /// New credentials for an add-on; the old ones stop working. Returns the new URL.
    pub async fn rotate_credentials(
        &self,
        service: Service,
        resource: &str,
    ) -> Result<String, AddonsError> {
        check_resource(resource)?;
        match service {
            Service::Postgres => {
                let admin = self.postgres_admin().await?;
                let password = postgres::rotate(&admin, resource).await?;
                Ok(admin.url(resource, &password))
            }
            Service::Redis => {
                if let Some(admin) = self.shared_redis()? {
                    let password = shared_redis::rotate(&admin, resource).await?;
                    return Ok(admin.url(resource, &password));
                }
                let mut instance = self.redis_instance(resource)?;
                instance.password = crate::secret::password();
                self.restart_redis(&instance).await?;
                Ok(instance.url())
            }
        }
    }

    /// Applies a new plan's limits to an add-on of the same service.
    pub async fn change_plan(&self, plan: &Plan, resource: &str) -> Result<(), AddonsError> {
        check_resource(resource)?;
        match plan.service {
            Service::Postgres => {
                let admin = self.postgres_admin().await?;
                postgres::change_plan(&admin, resource, plan).await
            }
            // A shared server has no per-user limits to change (see `shared_redis.rs`).
            Service::Redis if self.config.redis_admin_url.is_some() => Ok(()),
            Service::Redis => {
                let mut instance = self.redis_instance(resource)?;
                instance.max_bytes = plan.max_bytes;
                instance.connections = plan.connections;
                self.restart_redis(&instance).await
            }
        }
    }

    /// Size and connections of a PostgreSQL add-on.
    /// `pg_dump -Fc` of the PostgreSQL add-on at `url`, as its own role, into `dest` (at most
    /// `max_bytes`); its size. A failure leaves nothing at `dest`.
    pub async fn pg_dump(
        &self,
        url: &str,
        dest: &std::path::Path,
        max_bytes: u64,
    ) -> Result<u64, AddonsError> {
        crate::backup::dump(&self.config.postgres_bin, url, dest, max_bytes).await
    }

    /// `pg_restore --clean --if-exists --no-owner` of `dump` into the add-on at `url`.
    pub async fn pg_restore(&self, url: &str, dump: &std::path::Path) -> Result<(), AddonsError> {
        crate::backup::restore(&self.config.postgres_bin, url, dump).await
    }

    /// `INFO` of a Redis add-on's server, with its plan's limits (`redis:info`).
    pub async fn redis_info(&self, resource: &str) -> Result<crate::RedisInfo, AddonsError> {
        check_resource(resource)?;
        if let Some(admin) = self.shared_redis()? {
            return shared_redis::info(&admin, resource).await;
        }
        crate::redis::info(&self.redis_instance(resource)?).await
    }

    pub async fn postgres_stats(
        &self,
        resource: &str,
        plan: &Plan,
    ) -> Result<PgStats, AddonsError> {
        check_resource(resource)?;
        let admin = self.postgres_admin().await?;
        postgres::stats(&admin, resource, self.postgres_size_limit(plan)).await
    }

    /// The storage limit enforced on a PostgreSQL add-on of `plan`.
    pub fn postgres_size_limit(&self, plan: &Plan) -> u64 {
        self.config
            .postgres_max_bytes
            .map_or(plan.max_bytes, |cap| cap.min(plan.max_bytes))
    }

    /// Measures a PostgreSQL add-on and revokes its writes past its storage limit, or gives
    /// them back once it is under again (see `postgres::size_limit_sql`).
    pub async fn enforce_postgres_size(
        &self,
        resource: &str,
        plan: &Plan,
    ) -> Result<SizeCheck, AddonsError> {
        check_resource(resource)?;
        let admin = self.postgres_admin().await?;
        postgres::enforce_size(&admin, resource, self.postgres_size_limit(plan)).await
    }

    /// Stops every server (gracefully: PostgreSQL's fast shutdown, Redis' save-and-exit).
    pub async fn shutdown(&self) {
        if let Some(server) = self.postgres.lock().await.take() {
            server.stop().await;
        }
        let servers: Vec<Supervised> = self.redis.lock().await.drain().map(|(_, s)| s).collect();
        for server in servers {
            server.stop().await;
        }
    }

    fn redis_instance(&self, resource: &str) -> Result<Instance, AddonsError> {
        let dir = self.redis_dir().join(resource);
        Instance::read(&dir).ok_or_else(|| AddonsError::RedisUnavailable {
            resource: resource.to_owned(),
            detail: "its configuration is missing".into(),
        })
    }

    async fn start_redis(&self, instance: &Instance) -> Result<(), AddonsError> {
        let mut servers = self.redis.lock().await;
        if servers
            .get(&instance.resource)
            .is_some_and(Supervised::is_running)
        {
            return Ok(());
        }
        let server =
            Supervised::spawn(instance.spec(&self.config.redis_server, server_user("redis")));
        servers.insert(instance.resource.clone(), server);
        drop(servers);
        wait_listening(instance).await
    }

    async fn restart_redis(&self, instance: &Instance) -> Result<(), AddonsError> {
        if let Some(server) = self.redis.lock().await.remove(&instance.resource) {
            server.stop().await;
        }
        instance.write(server_user("redis"))?;
        self.start_redis(instance).await
    }

    /// The lowest port of the range that no Redis add-on has and nothing listens on.
    fn free_redis_port(&self, redis_dir: &Path) -> Result<u16, AddonsError> {
        let taken: Vec<u16> = std::fs::read_dir(redis_dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| Instance::read(&e.path()))
                    .map(|i| i.port)
                    .collect()
            })
            .unwrap_or_default();
        self.config
            .redis_ports
            .clone()
            .find(|port| {
                !taken.contains(port)
                    && std::net::TcpListener::bind((self.config.listen, *port)).is_ok()
            })
            .ok_or(AddonsError::NoPortLeft {
                first: *self.config.redis_ports.start(),
                last: *self.config.redis_ports.end(),
            })
    }
}

/// Waits until a Redis server accepts connections.
async fn wait_listening(instance: &Instance) -> Result<(), AddonsError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::net::TcpStream::connect((instance.listen, instance.port)).await {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(AddonsError::RedisUnavailable {
                    resource: instance.resource.clone(),
                    detail: e.to_string(),
                })
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// The uid and gid a server runs as: its Debian user, else `nobody`; none when the platform
/// is not root (it cannot switch, and its servers then run as itself).
fn server_user(name: &str) -> Option<(u32, u32)> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let user = nix::unistd::User::from_name(name)
        .ok()
        .flatten()
        .or_else(|| nix::unistd::User::from_name("nobody").ok().flatten())?;
    Some((user.uid.as_raw(), user.gid.as_raw()))
}

/// A resource name is used unquoted in SQL and as a directory name: keep it to
/// `[a-z][a-z0-9_]{0,62}`.
pub fn check_resource(resource: &str) -> Result<(), AddonsError> {
    let ok = resource.len() <= 63
        && resource.starts_with(|c: char| c.is_ascii_lowercase())
        && resource
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(AddonsError::BadResource(resource.to_owned()))
    }
}
