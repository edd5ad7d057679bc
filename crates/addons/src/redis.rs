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
//!
//! `redis:info` asks the server itself: [`info`] logs in as the add-on's own user over the
//! address its dynos use and reads `INFO` (bounded, with a deadline), so what it shows is
//! what a tenant's client would see; the limits shown are the plan's, from the instance's
//! configuration.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

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

/// The most `INFO` text read (a default `INFO` is about 5 KB).
const MAX_INFO_BYTES: usize = 256 * 1024;
/// How long `INFO` may take, connecting included: a server that is up answers in
/// milliseconds.
const INFO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// What `redis:info` shows of an add-on's server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RedisInfo {
    /// `redis_version`.
    pub version: String,
    /// `used_memory`, in bytes.
    pub used_memory: u64,
    /// The plan's `maxmemory`, in bytes.
    pub max_memory: u64,
    /// `maxmemory_policy` (`noeviction`).
    pub max_memory_policy: String,
    /// `connected_clients` (the `INFO` connection included).
    pub clients: u32,
    /// The plan's `maxclients`.
    pub max_clients: u32,
    /// Keys in every database.
    pub keys: u64,
}

/// Reads the fields [`RedisInfo`] shows from `INFO`'s text; the plan's limits are left for
/// the caller. Unknown or malformed lines are skipped.
pub(crate) fn parse_info(text: &str) -> RedisInfo {
    let mut info = RedisInfo::default();
    for line in text.lines() {
        let Some((key, value)) = line.trim_end_matches('\r').split_once(':') else {
            continue;
        };
        match key {
            "redis_version" => info.version = value.chars().take(32).collect(),
            "used_memory" => info.used_memory = value.parse().unwrap_or(0),
            "maxmemory_policy" => info.max_memory_policy = value.chars().take(32).collect(),
            "connected_clients" => info.clients = value.parse().unwrap_or(0),
            db if db.starts_with("db") && db[2..].bytes().all(|b| b.is_ascii_digit()) => {
                let keys = value
                    .split(',')
                    .find_map(|field| field.strip_prefix("keys="))
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0);
                info.keys = info.keys.saturating_add(keys);
            }
            _ => {}
        }
    }
    info
}

/// `AUTH` then `INFO`, in RESP.
fn info_request(password: &str) -> Vec<u8> {
    format!(
        "*3\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n${}\r\n{password}\r\n*1\r\n$4\r\nINFO\r\n",
        password.len()
    )
    .into_bytes()
}

/// Asks `instance` for its `INFO` as its own user.
pub(crate) async fn info(instance: &Instance) -> Result<RedisInfo, AddonsError> {
    let failed = |detail: String| AddonsError::RedisInfo {
        resource: instance.resource.clone(),
        detail,
    };
    let text = tokio::time::timeout(INFO_TIMEOUT, async {
        let stream = tokio::net::TcpStream::connect((instance.listen, instance.port))
            .await
            .map_err(|e| failed(format!("cannot connect: {e}")))?;
        let mut stream = BufReader::new(stream);
        stream
            .get_mut()
            .write_all(&info_request(&instance.password))
            .await
            .map_err(|e| failed(format!("cannot send: {e}")))?;
        let mut line = String::new();
        (&mut stream)
            .take(1024)
            .read_line(&mut line)
            .await
            .map_err(|e| failed(format!("cannot read: {e}")))?;
        if !line.starts_with("+OK") {
            // The server's error never holds the password: it says only that AUTH failed.
            return Err(failed(format!(
                "it refused the add-on's login: {}",
                line.trim()
            )));
        }
        line.clear();
        (&mut stream)
            .take(64)
            .read_line(&mut line)
            .await
            .map_err(|e| failed(format!("cannot read: {e}")))?;
        let len: usize = line
            .trim()
            .strip_prefix('$')
            .and_then(|n| n.parse().ok())
            .filter(|n| *n <= MAX_INFO_BYTES)
            .ok_or_else(|| failed(format!("unexpected answer to INFO: {}", line.trim())))?;
        let mut body = vec![0u8; len];
        stream
            .read_exact(&mut body)
            .await
            .map_err(|e| failed(format!("cannot read: {e}")))?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    })
    .await
    .map_err(|_| failed(format!("no answer within {INFO_TIMEOUT:?}")))??;
    let mut info = parse_info(&text);
    info.max_memory = instance.max_bytes;
    info.max_clients = instance.connections;
    Ok(info)
}

#[cfg(test)]
mod tests;
