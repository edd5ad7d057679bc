//! PostgreSQL for add-ons: the embedded server's cluster (initialized and run as an
//! unprivileged user under `<data>/addons/postgres`), or an existing server given by an admin
//! URL; and provisioning on either through `psql`, which reads every statement on stdin so no
//! password ever appears on a command line.
//!
//! Each add-on is a role and a database of the same name, owned by the role, with `CONNECT`
//! revoked from `PUBLIC`: another add-on's role authenticates but cannot open it ("permission
//! denied for database"). The role's `CONNECTION LIMIT` is the plan's. The admin role
//! (`slipway_admin`) may log in only over the cluster's Unix socket, whose directory is the
//! server user's alone; its password lives in `<data>/addons/postgres-admin-password` (0600)
//! and never reaches a dyno.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::io::AsyncWriteExt;

use crate::error::{io, AddonsError};
use crate::plans::Plan;
use crate::process::ProcessSpec;
use crate::secret;

/// The embedded cluster's superuser.
pub(crate) const ADMIN_ROLE: &str = "slipway_admin";
/// How long a (re)started server may take to accept the admin's connection.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How the platform reaches a PostgreSQL server as its administrator, and where dynos reach it.
#[derive(Clone)]
pub(crate) struct PgAdmin {
    /// A libpq connection URI without the password.
    conninfo: String,
    password: String,
    /// What dynos connect to.
    pub(crate) public_host: String,
    pub(crate) public_port: u16,
    psql: PathBuf,
}

impl std::fmt::Debug for PgAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgAdmin")
            .field("conninfo", &self.conninfo)
            .finish_non_exhaustive()
    }
}

impl PgAdmin {
    /// An existing server's admin URL (`postgres://admin:secret@db.internal:5432/postgres`).
    pub(crate) fn external(url: &str, psql: PathBuf) -> Result<PgAdmin, AddonsError> {
        let mut parsed = url::Url::parse(url)
            .map_err(|e| AddonsError::BadAdminUrl(format!("not a URL ({e})")))?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(AddonsError::BadAdminUrl(
                "the scheme must be postgres:// or postgresql://".into(),
            ));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| AddonsError::BadAdminUrl("it has no host".into()))?
            .to_owned();
        let port = parsed.port().unwrap_or(5432);
        let password = url_decode(parsed.password().unwrap_or_default());
        let _ = parsed.set_password(None);
        Ok(PgAdmin {
            conninfo: parsed.to_string(),
            password,
            public_host: host,
            public_port: port,
            psql,
        })
    }

    /// Runs `sql` (statements separated by `;`, each its own transaction) and returns what it
    /// printed (unaligned, tuples only). `secret` is redacted from any error.
    pub(crate) async fn sql(
        &self,
        sql: &str,
        resource: &str,
        action: &'static str,
        secret: &str,
    ) -> Result<String, AddonsError> {
        let mut child = tokio::process::Command::new(&self.psql)
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-f",
                "-",
                "-d",
            ])
            .arg(&self.conninfo)
            .env("PGPASSWORD", &self.password)
            .env("PGCONNECT_TIMEOUT", "5")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| AddonsError::Spawn {
                program: self.psql.clone(),
                source,
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(sql.as_bytes())
                .await
                .map_err(io("write to", &self.psql))?;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(io("wait for", &self.psql))?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let detail = secret::redact(
            secret::redact(stderr.trim(), secret).as_str(),
            &self.password,
        );
        if detail.contains("could not connect")
            || detail.contains("Connection refused")
            || detail.contains("No such file or directory")
            || detail.contains("the database system is")
            || detail.contains("timeout expired")
        {
            return Err(AddonsError::PostgresUnavailable { detail });
        }
        Err(AddonsError::Sql {
            resource: resource.to_owned(),
            action,
            detail,
        })
    }

    /// The URL a dyno gets for `resource`.
    pub(crate) fn url(&self, resource: &str, password: &str) -> String {
        format!(
            "postgres://{resource}:{password}@{}:{}/{resource}",
            self.public_host, self.public_port
        )
    }

    /// Waits until the server answers the admin.
    pub(crate) async fn wait_ready(&self) -> Result<(), AddonsError> {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            match self.sql("SELECT 1;", "", "connect", "").await {
                Ok(_) => return Ok(()),
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

/// Decodes a URL's percent-encoded password.
pub(crate) fn url_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Provisions `resource`: role, database, revoked `CONNECT`. Returns the role's password.
/// A failure half-way drops what was created.
pub(crate) async fn provision(
    admin: &PgAdmin,
    resource: &str,
    plan: &Plan,
) -> Result<String, AddonsError> {
    let password = secret::password();
    let sql = format!(
        "CREATE ROLE {resource} LOGIN PASSWORD '{password}' CONNECTION LIMIT {limit};\n\
         CREATE DATABASE {resource} OWNER {resource};\n\
         REVOKE ALL ON DATABASE {resource} FROM PUBLIC;\n\
         GRANT ALL ON DATABASE {resource} TO {resource};\n",
        limit = plan.connections,
    );
    if let Err(error) = admin
        .sql(&sql, resource, "create its role and database", &password)
        .await
    {
        let _ = deprovision(admin, resource).await;
        return Err(error);
    }
    Ok(password)
}

/// Drops `resource`'s database (closing its connections) and its role. Idempotent.
pub(crate) async fn deprovision(admin: &PgAdmin, resource: &str) -> Result<(), AddonsError> {
    let sql = format!(
        "DROP DATABASE IF EXISTS {resource} WITH (FORCE);\nDROP ROLE IF EXISTS {resource};\n"
    );
    admin
        .sql(&sql, resource, "drop its database and role", "")
        .await
        .map(|_| ())
}

/// Gives `resource`'s role a new password and ends the sessions that used the old one.
pub(crate) async fn rotate(admin: &PgAdmin, resource: &str) -> Result<String, AddonsError> {
    let password = secret::password();
    let sql = format!(
        "ALTER ROLE {resource} PASSWORD '{password}';\n\
         SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = '{resource}';\n"
    );
    admin
        .sql(&sql, resource, "rotate its credentials", &password)
        .await?;
    Ok(password)
}

/// Applies `plan`'s connection limit to `resource`.
pub(crate) async fn change_plan(
    admin: &PgAdmin,
    resource: &str,
    plan: &Plan,
) -> Result<(), AddonsError> {
    let sql = format!(
        "ALTER ROLE {resource} CONNECTION LIMIT {};\n",
        plan.connections
    );
    admin
        .sql(&sql, resource, "change its plan", "")
        .await
        .map(|_| ())
}

/// What `pg:info` shows beyond the record: size on disk and open connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgStats {
    pub size_bytes: u64,
    pub connections: u32,
    /// The storage limit enforced on it (its plan's, or the operator's lower cap).
    pub size_limit_bytes: u64,
    /// Whether its writes are revoked for being over that limit.
    pub read_only: bool,
}

/// What a storage check found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeCheck {
    pub size_bytes: u64,
    pub size_limit_bytes: u64,
    /// Over the limit: writes are revoked.
    pub read_only: bool,
    /// This check revoked or restored them.
    pub changed: bool,
}

/// The role setting that marks a database over its limit: a placeholder parameter that no
/// session reads, so the mark lives in the server with the revocations it stands for.
const OVER_LIMIT_SETTING: &str = "slipway.over_storage_limit=on";

/// `pg_database_size`, open connections, and whether the role is marked read-only.
async fn measure(admin: &PgAdmin, resource: &str) -> Result<(u64, u32, bool), AddonsError> {
    let sql = format!(
        "SELECT pg_database_size('{resource}') || ' ' || \
         (SELECT count(*) FROM pg_stat_activity WHERE datname = '{resource}') || ' ' || \
         (SELECT count(*) FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole \
          WHERE r.rolname = '{resource}' AND s.setdatabase = 0 \
          AND '{OVER_LIMIT_SETTING}' = ANY(s.setconfig));\n"
    );
    let out = admin.sql(&sql, resource, "read its size", "").await?;
    let mut parts = out.split_whitespace();
    let size_bytes = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let connections = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let read_only = parts.next().is_some_and(|n| n != "0");
    Ok((size_bytes, connections, read_only))
}

pub(crate) async fn stats(
    admin: &PgAdmin,
    resource: &str,
    size_limit_bytes: u64,
) -> Result<PgStats, AddonsError> {
    let (size_bytes, connections, read_only) = measure(admin, resource).await?;
    Ok(PgStats {
        size_bytes,
        connections,
        size_limit_bytes,
        read_only,
    })
}

/// The statements that revoke (`revoke`) or give back `resource`'s writes, as Heroku does
/// for Essential databases over their storage: `INSERT`, `UPDATE` and `CREATE` go (on the
/// database, every schema but the system ones, every table in them), `SELECT`, `DELETE` and
/// `TRUNCATE` stay so the tenant can get back under. Privileges are checked at each
/// statement, so open sessions are held to it at once. `CREATE` on a schema is revoked from
/// `pg_database_owner` too: PostgreSQL 15's `public` schema grants it to the database's owner
/// through that role, not to the owner by name.
///
/// The role owns its objects, so a determined tenant could grant itself back what it lost;
/// the periodic check only revokes again when the state changes, so this is Heroku's own
/// model (a revocation, not a quota in the storage layer), documented as such.
pub(crate) fn size_limit_sql(resource: &str, revoke: bool) -> String {
    let (verb, prep, role_setting) = if revoke {
        ("REVOKE", "FROM", "SET slipway.over_storage_limit = on")
    } else {
        ("GRANT", "TO", "RESET slipway.over_storage_limit")
    };
    format!(
        "\\connect {resource}\n\
         {verb} CREATE ON DATABASE {resource} {prep} {resource};\n\
         DO $slipway$ DECLARE s text; BEGIN \
         FOR s IN SELECT nspname FROM pg_namespace \
         WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' LOOP \
         EXECUTE format('{verb} CREATE ON SCHEMA %I {prep} {resource}, pg_database_owner', s); \
         EXECUTE format('{verb} INSERT, UPDATE ON ALL TABLES IN SCHEMA %I {prep} {resource}', s); \
         END LOOP; END $slipway$;\n\
         ALTER ROLE {resource} {role_setting};\n"
    )
}

/// Measures `resource` and revokes its writes past `limit` bytes, or gives them back once it
/// is under again.
pub(crate) async fn enforce_size(
    admin: &PgAdmin,
    resource: &str,
    limit: u64,
) -> Result<SizeCheck, AddonsError> {
    let (size_bytes, _, was_read_only) = measure(admin, resource).await?;
    let read_only = size_bytes > limit;
    if read_only != was_read_only {
        let action = if read_only {
            "revoke its writes past its storage limit"
        } else {
            "restore its writes under its storage limit"
        };
        admin
            .sql(&size_limit_sql(resource, read_only), resource, action, "")
            .await?;
    }
    Ok(SizeCheck {
        size_bytes,
        size_limit_bytes: limit,
        read_only,
        changed: read_only != was_read_only,
    })
}

/// The embedded cluster under `<data>/addons/postgres`.
#[derive(Debug, Clone)]
pub(crate) struct Embedded {
    pub(crate) addons_dir: PathBuf,
    pub(crate) listen: Ipv4Addr,
    pub(crate) port: u16,
    pub(crate) bin: PathBuf,
    pub(crate) user: Option<(u32, u32)>,
}

impl Embedded {
    fn dir(&self) -> PathBuf {
        self.addons_dir.join("postgres")
    }

    fn data(&self) -> PathBuf {
        self.dir().join("data")
    }

    fn socket_dir(&self) -> PathBuf {
        self.dir().join("run")
    }

    fn password_file(&self) -> PathBuf {
        self.addons_dir.join("postgres-admin-password")
    }

    pub(crate) fn psql(bin: &Path) -> PathBuf {
        let local = bin.join("psql");
        if local.exists() {
            local
        } else {
            PathBuf::from("psql")
        }
    }

    pub(crate) fn is_initialized(&self) -> bool {
        self.data().join("PG_VERSION").exists() && self.password_file().exists()
    }

    /// The admin's way in: the Unix socket, with the password from the 0600 file.
    pub(crate) fn admin(&self) -> Result<PgAdmin, AddonsError> {
        let file = self.password_file();
        let password = std::fs::read_to_string(&file)
            .map_err(io("read", &file))?
            .trim()
            .to_owned();
        Ok(PgAdmin {
            conninfo: format!(
                "host={} port={} user={ADMIN_ROLE} dbname=postgres",
                self.socket_dir().display(),
                self.port
            ),
            password,
            public_host: self.listen.to_string(),
            public_port: self.port,
            psql: Embedded::psql(&self.bin),
        })
    }

    /// Creates the cluster (once): directories owned by the server's user, `initdb` with the
    /// admin's password, and the access rules. A failure removes the half-made cluster.
    pub(crate) async fn initialize(&self) -> Result<(), AddonsError> {
        if self.is_initialized() {
            return Ok(());
        }
        let dir = self.dir();
        let _ = std::fs::remove_dir_all(&dir);
        for d in [dir.clone(), self.data(), self.socket_dir()] {
            std::fs::create_dir_all(&d).map_err(io("create", &d))?;
            self.own(&d)?;
        }
        let password = secret::password();
        let pwfile = dir.join("pwfile");
        secret::write_private(&pwfile, &password)?;
        self.own(&pwfile)?;
        let result = self.initdb(&pwfile).await;
        let _ = std::fs::remove_file(&pwfile);
        if let Err(error) = result {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(error);
        }
        let hba = self.data().join("pg_hba.conf");
        std::fs::write(
            &hba,
            format!(
                "# Written by Slipway: the admin only over the server's own Unix socket,\n\
                 # every add-on role by password from anywhere the firewall lets through.\n\
                 local all {ADMIN_ROLE} scram-sha-256\n\
                 host all {ADMIN_ROLE} all reject\n\
                 host all all 0.0.0.0/0 scram-sha-256\n"
            ),
        )
        .map_err(io("write", &hba))?;
        self.own(&hba)?;
        secret::write_private(&self.password_file(), &password)
    }

    async fn initdb(&self, pwfile: &Path) -> Result<(), AddonsError> {
        let program = self.bin.join("initdb");
        let mut cmd = tokio::process::Command::new(&program);
        cmd.arg("-D")
            .arg(self.data())
            .args([
                "--username",
                ADMIN_ROLE,
                "--auth",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-instructions",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid);
        }
        let out = cmd.output().await.map_err(|source| AddonsError::Spawn {
            program: program.clone(),
            source,
        })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(AddonsError::PostgresUnavailable {
                detail: format!(
                    "initdb failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            })
        }
    }

    fn own(&self, path: &Path) -> Result<(), AddonsError> {
        if let Some((uid, gid)) = self.user {
            nix::unistd::chown(
                path,
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            )
            .map_err(|e| AddonsError::Io {
                action: "chown",
                path: path.to_path_buf(),
                source: e.into(),
            })?;
        }
        Ok(())
    }

    /// The server process: listening on the dynos' gateway and its own socket only.
    pub(crate) fn spec(&self) -> ProcessSpec {
        ProcessSpec {
            what: "postgres".into(),
            program: self.bin.join("postgres"),
            args: vec![
                "-D".into(),
                self.data().display().to_string(),
                "-c".into(),
                format!("listen_addresses={}", self.listen),
                "-c".into(),
                format!("port={}", self.port),
                "-c".into(),
                format!("unix_socket_directories={}", self.socket_dir().display()),
                "-c".into(),
                "unix_socket_permissions=0700".into(),
                "-c".into(),
                "max_connections=300".into(),
                "-c".into(),
                "password_encryption=scram-sha-256".into(),
            ],
            user: self.user,
            log: self.dir().join("server.log"),
            stop_signal: Signal::SIGINT,
        }
    }
}

#[cfg(test)]
mod tests;
