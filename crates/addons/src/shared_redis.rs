//! Redis add-ons on an existing server (`--addon-redis-admin-url`): each add-on is an ACL
//! user of that server, named after the add-on's resource, confined to the keys and pub/sub
//! channels that start with its prefix, `<resource>:`.
//!
//! The URL an app gets is `redis://<resource>:<password>@host:port`: the prefix is the URL's
//! user name followed by a colon, so an app finds it in `REDIS_URL` itself (no second config
//! var: attachments under other names would need one each, and the URL already says it). Unlike the embedded default (a server
//! per add-on, see `redis.rs`), an app must name every key and channel under that prefix
//! (`redis_shaped_1234:session:42`); any other key is refused with `NOPERM`. Plan limits are
//! not enforced per add-on on a shared server (Redis has no per-user `maxmemory` or
//! `maxclients`): the operator's server's own limits apply to all of them, and `redis:info`
//! says so by reporting no memory limit.
//!
//! What the user may run is `+@all` minus everything that reaches past its own keys, reads
//! other tenants' key or client names, or changes the server ([`acl_rules`]):
//! - `@dangerous` (Redis' own category): `FLUSHALL`, `FLUSHDB`, `KEYS`, `CONFIG`, `DEBUG`,
//!   `MODULE`, `SHUTDOWN`, `MIGRATE`, `RESTORE`, `ACL`, `CLIENT KILL`/`LIST`, `INFO`,
//!   `MONITOR`, replication, `SAVE`/`BGSAVE`, `SORT` (its `BY`/`GET` patterns read any key),
//!   `SWAPDB`, `LATENCY`, `ROLE`.
//! - `@scripting` (`EVAL`, `EVALSHA`, `SCRIPT`, `FUNCTION`, `FCALL`): `SCRIPT FLUSH` and
//!   `FUNCTION FLUSH` are server-wide, and a script's keys are checked only as well as each
//!   Redis version checks keys built at run time.
//! - `SELECT`, `MOVE`, `COPY` (its `DB` option): the user stays in database 0, so deleting its
//!   prefix there at `addons:destroy` deletes all it wrote.
//! - `SCAN`, `RANDOMKEY`, `DBSIZE`, `PUBSUB`, `MEMORY` but `MEMORY USAGE`: they take no key,
//!   so no key pattern guards them, and they would show other tenants' key and channel names
//!   or sizes.
//! - `RESET`: it logs the connection in as the server's `default` user.
//! - `CLIENT` but `SETNAME`, `GETNAME`, `ID` (which client libraries send on connect).
//!
//! The users must survive the server's restart: after each change the admin runs `ACL SAVE`
//! (a server with an `aclfile`) or else `CONFIG REWRITE` (users in `redis.conf`); when
//! neither works, provisioning fails and removes the user rather than hand out credentials
//! that the next restart forgets. Destroying an add-on deletes the user (Redis disconnects
//! its clients) and then its prefix's keys (`SCAN MATCH <prefix>*` then `UNLINK`).

use crate::error::AddonsError;
use crate::postgres::url_decode;
use crate::redis::RedisInfo;
use crate::resp::{Conn, Reply};

/// Most `SCAN` pages read when deleting or counting an add-on's keys (1000 keys a page asked
/// for): ten million keys.
const MAX_SCAN_PAGES: usize = 10_000;

/// The server and how the platform logs in to it.
#[derive(Clone)]
pub(crate) struct RedisAdmin {
    host: String,
    port: u16,
    user: Option<String>,
    password: Option<String>,
}

impl std::fmt::Debug for RedisAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password stays out of logs.
        f.debug_struct("RedisAdmin")
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// The prefix of every key and channel of add-on `resource`.
pub(crate) fn prefix(resource: &str) -> String {
    format!("{resource}:")
}

/// The `ACL SETUSER` rules of add-on `resource` (without its password); see the module doc
/// for why each denial. `resource` passed `check_resource`, so the prefix holds no glob
/// character.
pub(crate) fn acl_rules(resource: &str) -> Vec<String> {
    let prefix = prefix(resource);
    let mut rules: Vec<String> = vec![
        "reset".into(),
        "on".into(),
        format!("~{prefix}*"),
        format!("&{prefix}*"),
        "+@all".into(),
    ];
    rules.extend(
        [
            "-@dangerous",
            "-@scripting",
            "-select",
            "-move",
            "-copy",
            "-scan",
            "-randomkey",
            "-dbsize",
            "-pubsub",
            "-memory",
            "+memory|usage",
            "-reset",
            "-client",
            "+client|setname",
            "+client|getname",
            "+client|id",
        ]
        .map(String::from),
    );
    rules
}

impl RedisAdmin {
    /// Parses `redis://[user]:password@host[:port][/0]`.
    pub(crate) fn parse(url: &str) -> Result<RedisAdmin, AddonsError> {
        let parsed = url::Url::parse(url)
            .map_err(|e| AddonsError::BadAdminUrl(format!("not a URL ({e})")))?;
        if parsed.scheme() != "redis" {
            return Err(AddonsError::BadAdminUrl(
                "the scheme must be redis:// (TLS to the Redis server is not supported)".into(),
            ));
        }
        if !matches!(parsed.path(), "" | "/" | "/0") {
            return Err(AddonsError::BadAdminUrl(
                "add-ons live in database 0: leave the path out".into(),
            ));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| AddonsError::BadAdminUrl("it has no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let user = Some(url_decode(parsed.username())).filter(|u| !u.is_empty());
        let password = parsed.password().map(url_decode);
        Ok(RedisAdmin {
            host,
            port: parsed.port().unwrap_or(6379),
            user,
            password,
        })
    }

    /// The URL add-on `resource` gets.
    pub(crate) fn url(&self, resource: &str, password: &str) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("redis://{resource}:{password}@{host}:{}", self.port)
    }

    /// A connection logged in as the admin.
    async fn connect(&self, resource: &str) -> Result<Conn, AddonsError> {
        let unavailable = |detail: String| AddonsError::SharedRedis {
            resource: resource.to_owned(),
            action: "reach the server",
            detail,
        };
        let mut conn = Conn::connect(&self.host, self.port)
            .await
            .map_err(unavailable)?;
        if let Some(password) = &self.password {
            let mut args = vec!["AUTH"];
            if let Some(user) = &self.user {
                args.push(user);
            }
            args.push(password);
            conn.ok("the server refused the admin's login", &args)
                .await
                .map_err(unavailable)?;
        }
        Ok(conn)
    }
}

/// Runs `args` on `conn`; an error names `action` and never holds `secret`.
async fn run(
    conn: &mut Conn,
    resource: &str,
    action: &'static str,
    args: &[&str],
    secret: &str,
) -> Result<Reply, AddonsError> {
    conn.ok(action, args)
        .await
        .map_err(|detail| AddonsError::SharedRedis {
            resource: resource.to_owned(),
            action,
            detail: if secret.is_empty() {
                detail
            } else {
                detail.replace(secret, "[REDACTED]")
            },
        })
}

/// Makes the server keep its users across a restart.
async fn persist(conn: &mut Conn, resource: &str) -> Result<(), AddonsError> {
    if let Ok(Reply::Status(_)) = conn.call(&["ACL", "SAVE"]).await {
        return Ok(());
    }
    run(
        conn,
        resource,
        "save its users (give the server an aclfile or a config file it may rewrite)",
        &["CONFIG", "REWRITE"],
        "",
    )
    .await
    .map(drop)
}

/// Creates add-on `resource`'s user; returns its password. A failure leaves no user behind.
pub(crate) async fn provision(admin: &RedisAdmin, resource: &str) -> Result<String, AddonsError> {
    let mut conn = admin.connect(resource).await?;
    if run(
        &mut conn,
        resource,
        "look for an existing user",
        &["ACL", "GETUSER", resource],
        "",
    )
    .await?
    .is_some_array()
    {
        return Err(AddonsError::SharedRedis {
            resource: resource.to_owned(),
            action: "create its user",
            detail: "a user of that name already exists on the server".into(),
        });
    }
    let password = crate::secret::password();
    let pass_rule = format!(">{password}");
    let rules = acl_rules(resource);
    let mut args: Vec<&str> = vec!["ACL", "SETUSER", resource];
    args.extend(rules.iter().map(String::as_str));
    args.push(&pass_rule);
    let created = async {
        run(&mut conn, resource, "create its user", &args, &password).await?;
        persist(&mut conn, resource).await
    }
    .await;
    if let Err(error) = created {
        let _ = conn.call(&["ACL", "DELUSER", resource]).await;
        return Err(error);
    }
    Ok(password)
}

/// Deletes add-on `resource`'s user and keys. Idempotent.
pub(crate) async fn deprovision(admin: &RedisAdmin, resource: &str) -> Result<(), AddonsError> {
    let mut conn = admin.connect(resource).await?;
    run(
        &mut conn,
        resource,
        "delete its user",
        &["ACL", "DELUSER", resource],
        "",
    )
    .await?;
    persist(&mut conn, resource).await?;
    let mut cursor = "0".to_owned();
    for _ in 0..MAX_SCAN_PAGES {
        let (next, keys) = scan_page(&mut conn, resource, &cursor).await?;
        if !keys.is_empty() {
            let mut args = vec!["UNLINK"];
            args.extend(keys.iter().map(String::as_str));
            run(&mut conn, resource, "delete its keys", &args, "").await?;
        }
        match next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    Ok(())
}

/// One `SCAN` page of add-on `resource`'s keys from `cursor`: the next cursor (`None` at the
/// end) and the keys.
async fn scan_page(
    conn: &mut Conn,
    resource: &str,
    cursor: &str,
) -> Result<(Option<String>, Vec<String>), AddonsError> {
    let pattern = format!("{}*", prefix(resource));
    let page = run(
        conn,
        resource,
        "list its keys",
        &["SCAN", cursor, "MATCH", &pattern, "COUNT", "1000"],
        "",
    )
    .await?;
    let Reply::Array(Some(parts)) = page else {
        return Ok((None, Vec::new()));
    };
    let (Some(next), Some(Reply::Array(Some(keys)))) =
        (parts.first().and_then(Reply::text), parts.get(1))
    else {
        return Ok((None, Vec::new()));
    };
    let keys = keys.iter().filter_map(Reply::text).collect();
    Ok(((next != "0").then_some(next), keys))
}

/// A new password for add-on `resource`; its connections are dropped.
pub(crate) async fn rotate(admin: &RedisAdmin, resource: &str) -> Result<String, AddonsError> {
    let mut conn = admin.connect(resource).await?;
    let password = crate::secret::password();
    let pass_rule = format!(">{password}");
    run(
        &mut conn,
        resource,
        "change its password",
        &["ACL", "SETUSER", resource, "resetpass", &pass_rule],
        &password,
    )
    .await?;
    persist(&mut conn, resource).await?;
    run(
        &mut conn,
        resource,
        "disconnect its clients",
        &["CLIENT", "KILL", "USER", resource],
        "",
    )
    .await
    .or_else(|error| match error {
        // No client was connected.
        AddonsError::SharedRedis { ref detail, .. } if detail.contains("No such user") => {
            Ok(Reply::Int(0))
        }
        error => Err(error),
    })?;
    Ok(password)
}

/// `redis:info` of add-on `resource`: the server's version, the add-on's own clients and
/// keys; no memory figures (a shared server's memory is everyone's).
pub(crate) async fn info(admin: &RedisAdmin, resource: &str) -> Result<RedisInfo, AddonsError> {
    let mut conn = admin.connect(resource).await?;
    let server = run(&mut conn, resource, "read INFO", &["INFO", "server"], "")
        .await?
        .text()
        .unwrap_or_default();
    let mut info = crate::redis::parse_info(&server);
    let clients = run(&mut conn, resource, "list clients", &["CLIENT", "LIST"], "")
        .await?
        .text()
        .unwrap_or_default();
    let user_field = format!(" user={resource} ");
    info.clients = clients
        .lines()
        .filter(|line| format!("{line} ").contains(&user_field))
        .count()
        .try_into()
        .unwrap_or(u32::MAX);
    let mut cursor = "0".to_owned();
    for _ in 0..MAX_SCAN_PAGES {
        let (next, keys) = scan_page(&mut conn, resource, &cursor).await?;
        info.keys += keys.len() as u64;
        match next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    info.max_memory_policy = "shared server".into();
    Ok(info)
}

#[cfg(test)]
mod tests;
