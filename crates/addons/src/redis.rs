//! Redis for add-ons: one `redis-server` process per add-on.
//!
//! Why a process each rather than one server with an ACL user per add-on confined to
//! `~<prefix>:*`: an app written for Heroku uses `REDIS_URL` as a whole server (plain `SET
//! foo`, `FLUSHDB`, `SELECT 1`, Sidekiq's and Rails' own key names), which a key-prefix ACL
//! would refuse with NOPERM; and a shared server shares its memory, its `maxmemory` eviction
//! and its latency, so one tenant's `KEYS *` or big `SORT` stalls every other. A process per
//! add-on gives each its own keyspace, its plan's `maxmemory` and `maxclients`, and costs
//! about 3 MB of memory. Each listens on the platform's add-on address at a port of its own
//! (from `AddonsConfig::redis_ports`, the range the dyno firewall opens), runs as the `redis`
//! user, keeps an append-only file (`appendonly yes`, fsync every second) in its own
//! directory, and its `default` user (what `REDIS_URL`'s password opens) may run everything
//! but the commands that would reach beyond its data or change its limits (`CONFIG`, `ACL`,
//! `DEBUG`, `MODULE`, `SHUTDOWN`, replication).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;

use crate::error::{io, AddonsError};
use crate::plans::Plan;
use crate::process::ProcessSpec;

/// Commands a tenant's Redis user may not run.
const DENIED: &[&str] = &[
    "config",
    "acl",
    "debug",
    "module",
    "shutdown",
    "replicaof",
    "slaveof",
    "sync",
    "psync",
    "failover",
    "monitor",
];

/// One add-on's server: its directory and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Instance {
    pub(crate) resource: String,
    pub(crate) dir: PathBuf,
    pub(crate) listen: Ipv4Addr,
    pub(crate) port: u16,
    pub(crate) password: String,
    pub(crate) max_bytes: u64,
    pub(crate) connections: u32,
}

impl Instance {
    pub(crate) fn new(
        redis_dir: &Path,
        resource: &str,
        listen: Ipv4Addr,
        port: u16,
        password: String,
        plan: &Plan,
    ) -> Instance {
        Instance {
            resource: resource.to_owned(),
            dir: redis_dir.join(resource),
            listen,
            port,
            password,
            max_bytes: plan.max_bytes,
            connections: plan.connections,
        }
    }

    pub(crate) fn conf_path(&self) -> PathBuf {
        self.dir.join("redis.conf")
    }

    /// The configuration file (the password is in it: the directory is the server user's
    /// alone and the file 0600).
    pub(crate) fn conf(&self) -> String {
        let denied: Vec<String> = DENIED.iter().map(|c| format!("-{c}")).collect();
        format!(
            "# Written by Slipway for add-on {resource}.\n\
             bind {listen}\n\
             port {port}\n\
             protected-mode yes\n\
             daemonize no\n\
             dir {dir}\n\
             appendonly yes\n\
             appendfsync everysec\n\
             maxmemory {max_bytes}\n\
             maxmemory-policy noeviction\n\
             maxclients {connections}\n\
             user default on >{password} ~* &* +@all {denied}\n",
            resource = self.resource,
            listen = self.listen,
            port = self.port,
            dir = self.dir.display(),
            max_bytes = self.max_bytes,
            connections = self.connections,
            password = self.password,
            denied = denied.join(" "),
        )
    }

    /// Reads an instance back from its configuration file.
    pub(crate) fn read(dir: &Path) -> Option<Instance> {
        let conf = std::fs::read_to_string(dir.join("redis.conf")).ok()?;
        let value = |key: &str| {
            conf.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix(' '))
                .map(str::to_owned)
        };
        let password = value("user default on")?
            .split_whitespace()
            .next()?
            .strip_prefix('>')?
            .to_owned();
        Some(Instance {
            resource: dir.file_name()?.to_str()?.to_owned(),
            dir: dir.to_path_buf(),
            listen: value("bind")?.parse().ok()?,
            port: value("port")?.parse().ok()?,
            password,
            max_bytes: value("maxmemory")?.parse().ok()?,
            connections: value("maxclients")?.parse().ok()?,
        })
    }

    pub(crate) fn url(&self) -> String {
        format!(
            "redis://default:{}@{}:{}",
            self.password, self.listen, self.port
        )
    }

    /// Writes the directory and configuration, owned by `user`.
    pub(crate) fn write(&self, user: Option<(u32, u32)>) -> Result<(), AddonsError> {
        std::fs::create_dir_all(&self.dir).map_err(io("create", &self.dir))?;
        let conf = self.conf_path();
        crate::secret::write_private(&conf, &self.conf())?;
        if let Some((uid, gid)) = user {
            for path in [&self.dir, &conf] {
                nix::unistd::chown(
                    path.as_path(),
                    Some(nix::unistd::Uid::from_raw(uid)),
                    Some(nix::unistd::Gid::from_raw(gid)),
                )
                .map_err(|e| AddonsError::Io {
                    action: "chown",
                    path: path.clone(),
                    source: e.into(),
                })?;
            }
        }
        Ok(())
    }

    pub(crate) fn spec(&self, program: &Path, user: Option<(u32, u32)>) -> ProcessSpec {
        ProcessSpec {
            what: format!("redis {}", self.resource),
            program: program.to_path_buf(),
            args: vec![self.conf_path().display().to_string()],
            user,
            log: self.dir.join("server.log"),
            stop_signal: Signal::SIGTERM,
        }
    }
}

#[cfg(test)]
mod tests;
