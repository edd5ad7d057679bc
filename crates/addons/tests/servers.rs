//! The add-on servers for real: Debian's PostgreSQL and redis-server started by [`Addons`],
//! add-ons provisioned on them, and a hostile tenant's attempts (another add-on's database,
//! the admin role) refused by the servers themselves. They need root, PostgreSQL 15 and
//! redis-server, and skip loudly otherwise.

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::Command;

use slipway_addons::{parse_plan, Addons, AddonsConfig, AddonsError, Service};

fn available(test: &str) -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED {test}: needs root");
        return false;
    }
    for path in [
        "/usr/lib/postgresql/15/bin/postgres",
        "/usr/bin/redis-server",
        "/usr/bin/psql",
        "/usr/bin/redis-cli",
    ] {
        if !Path::new(path).exists() {
            eprintln!("SKIPPED {test}: needs {path} (apt-get install postgresql redis-server)");
            return false;
        }
    }
    true
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config(dir: &Path) -> AddonsConfig {
    let base = free_port();
    AddonsConfig {
        dir: dir.join("addons"),
        listen: Ipv4Addr::LOCALHOST,
        postgres_port: free_port(),
        redis_ports: base..=base.saturating_add(20),
        postgres_admin_url: None,
        redis_admin_url: None,
        postgres_max_bytes: None,
        postgres_bin: AddonsConfig::DEFAULT_POSTGRES_BIN.into(),
        redis_server: AddonsConfig::DEFAULT_REDIS_SERVER.into(),
    }
}

/// `psql URL -c SQL` as a dyno would run it; stdout on success, stderr on failure.
fn psql(url: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .args(["-X", "-A", "-t", "-c", sql, url])
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

fn admin_sql(addons_dir: &Path, port: u16, sql: &str) -> String {
    let password = std::fs::read_to_string(addons_dir.join("postgres-admin-password")).unwrap();
    let out = Command::new("psql")
        .args(["-X", "-A", "-t", "-c", sql, "-d"])
        .arg(format!(
            "host={} port={port} user=slipway_admin dbname=postgres",
            addons_dir.join("postgres/run").display()
        ))
        .env("PGPASSWORD", password.trim())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_add_ons_are_isolated_and_leave_nothing_behind() {
    if !available("postgres_add_ons_are_isolated_and_leave_nothing_behind") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let port = config.postgres_port;
    let addons_dir = config.dir.clone();
    let addons = Addons::new(config);
    let plan = parse_plan("heroku-postgresql:essential-0").unwrap();

    let a = addons.provision(plan, "postgresql_a_1").await.unwrap();
    let b = addons.provision(plan, "postgresql_b_2").await.unwrap();
    assert!(
        !format!("{a:?}").contains(&a.url),
        "Debug must not show the URL"
    );
    assert_eq!(psql(&a.url, "SELECT 1").unwrap(), "1");
    psql(&a.url, "CREATE TABLE t (x int); INSERT INTO t VALUES (42)").unwrap();

    // B's credentials cannot open A's database, nor the admin's maintenance database.
    let on_database = |url: &str, db: &str| format!("{}/{db}", url.rsplit_once('/').unwrap().0);
    let b_on_a = on_database(&b.url, "postgresql_a_1");
    let err = psql(&b_on_a, "SELECT 1").unwrap_err();
    assert!(err.contains("permission denied for database"), "{err}");
    let b_on_postgres = on_database(&b.url, "postgres");
    assert!(psql(&b_on_postgres, "SELECT 1").is_err());
    // The admin role cannot log in over TCP, even with its password.
    let admin_password =
        std::fs::read_to_string(addons_dir.join("postgres-admin-password")).unwrap();
    let admin_tcp = format!(
        "postgres://slipway_admin:{}@127.0.0.1:{port}/postgres",
        admin_password.trim()
    );
    let err = psql(&admin_tcp, "SELECT 1").unwrap_err();
    assert!(err.contains("rejects connection"), "{err}");
    // The connection limit is the plan's.
    assert_eq!(
        admin_sql(
            &addons_dir,
            port,
            "SELECT rolconnlimit FROM pg_roles WHERE rolname = 'postgresql_a_1'"
        ),
        "20"
    );

    // Rotation: the old password stops working, the new one reads the same data.
    let rotated = addons
        .rotate_credentials(Service::Postgres, "postgresql_a_1")
        .await
        .unwrap();
    assert_ne!(rotated, a.url);
    assert!(psql(&a.url, "SELECT 1").is_err());
    assert_eq!(psql(&rotated, "SELECT x FROM t").unwrap(), "42");

    // Plan change applies the new connection limit.
    let bigger = parse_plan("heroku-postgresql:essential-2").unwrap();
    addons.change_plan(bigger, "postgresql_a_1").await.unwrap();
    assert_eq!(
        admin_sql(
            &addons_dir,
            port,
            "SELECT rolconnlimit FROM pg_roles WHERE rolname = 'postgresql_a_1'"
        ),
        "40"
    );

    // Deprovisioning drops the database and the role.
    addons
        .deprovision(Service::Postgres, "postgresql_a_1")
        .await
        .unwrap();
    let catalog = admin_sql(
        &addons_dir,
        port,
        "SELECT (SELECT count(*) FROM pg_database WHERE datname = 'postgresql_a_1') + (SELECT count(*) FROM pg_roles WHERE rolname = 'postgresql_a_1')",
    );
    assert_eq!(catalog, "0");

    // The supervisor restarts a killed server, and the data survives.
    let pid = std::fs::read_to_string(addons_dir.join("postgres/data/postmaster.pid")).unwrap();
    let pid: i32 = pid.lines().next().unwrap().parse().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if psql(&b.url, "SELECT 1").as_deref() == Ok("1") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "postgres did not come back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    addons.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn provisioning_on_a_server_that_is_down_fails_cleanly() {
    if !available("provisioning_on_a_server_that_is_down_fails_cleanly") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    // Nothing listens there.
    config.postgres_admin_url = Some(format!(
        "postgres://admin:s3cret-admin@127.0.0.1:{}/postgres",
        free_port()
    ));
    let addons = Addons::new(config);
    let plan = parse_plan("heroku-postgresql").unwrap();
    let err = addons.provision(plan, "postgresql_c_3").await.unwrap_err();
    assert!(
        matches!(err, AddonsError::PostgresUnavailable { .. }),
        "{err}"
    );
    assert!(!err.to_string().contains("s3cret-admin"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_add_ons_have_their_own_servers() {
    if !available("redis_add_ons_have_their_own_servers") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let addons = Addons::new(config(dir.path()));
    let plan = parse_plan("heroku-redis").unwrap();
    let a = addons.provision(plan, "redis_a_1").await.unwrap();
    let b = addons.provision(plan, "redis_b_2").await.unwrap();
    let cli = |url: &str, args: &[&str]| {
        let out = Command::new("redis-cli")
            .args(["--no-auth-warning", "-u", url])
            .args(args)
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )
    };
    assert_eq!(cli(&a.url, &["PING"]), "PONG");
    assert_eq!(cli(&a.url, &["SET", "k", "from-a"]), "OK");
    assert_eq!(cli(&b.url, &["GET", "k"]), "", "b sees a's keys");
    assert!(cli(&a.url, &["CONFIG", "SET", "maxmemory", "0"]).contains("NOPERM"));
    // A wrong password is refused.
    let wrong = format!(
        "redis://default:{}@{}",
        "0".repeat(64),
        a.url.rsplit('@').next().unwrap()
    );
    assert!(cli(&wrong, &["PING"]).contains("WRONGPASS"));
    addons
        .deprovision(Service::Redis, "redis_a_1")
        .await
        .unwrap();
    assert!(!dir.path().join("addons/redis/redis_a_1").exists());
    addons.shutdown().await;
}

/// An operator's own Redis server, with users in an ACL file as a production one would
/// keep them; killed when dropped.
struct OperatorRedis {
    child: std::process::Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl OperatorRedis {
    const ADMIN_PASSWORD: &'static str = "operator-s3cret";

    fn start(dir: &Path) -> OperatorRedis {
        let acl = dir.join("users.acl");
        if !acl.exists() {
            std::fs::write(
                &acl,
                format!("user default on >{} ~* &* +@all\n", Self::ADMIN_PASSWORD),
            )
            .unwrap();
        }
        let port = free_port();
        let mut server = OperatorRedis {
            child: Command::new("/usr/bin/redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .arg("--dir")
                .arg(dir)
                .arg("--aclfile")
                .arg(&acl)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap(),
            port,
            dir: dir.to_path_buf(),
        };
        server.wait();
        server
    }

    fn wait(&mut self) {
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("the operator's redis-server did not start");
    }

    fn admin_url(&self) -> String {
        format!(
            "redis://default:{}@127.0.0.1:{}",
            Self::ADMIN_PASSWORD,
            self.port
        )
    }

    /// Kills and starts it again on the same port and ACL file.
    fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let acl = self.dir.join("users.acl");
        self.child = Command::new("/usr/bin/redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--aclfile")
            .arg(&acl)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        self.wait();
    }
}

impl Drop for OperatorRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn redis_cli(url: &str, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["--no-auth-warning", "-u", url])
        .args(args)
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_add_ons_on_an_operator_server_are_confined_to_their_prefix() {
    if !available("redis_add_ons_on_an_operator_server_are_confined_to_their_prefix") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server_dir = dir.path().join("operator");
    std::fs::create_dir_all(&server_dir).unwrap();
    let mut server = OperatorRedis::start(&server_dir);
    let admin = server.admin_url();
    let mut config = config(dir.path());
    config.redis_admin_url = Some(admin.clone());
    assert!(
        !config.ports().contains(&config.redis_ports),
        "no embedded Redis port is opened to dynos"
    );
    let addons = Addons::new(config);
    let plan = parse_plan("heroku-redis").unwrap();
    let a = addons.provision(plan, "redis_a_1").await.unwrap();
    let b = addons.provision(plan, "redis_b_2").await.unwrap();
    assert!(
        a.url.starts_with("redis://redis_a_1:")
            && a.url.ends_with(&format!("@127.0.0.1:{}", server.port)),
        "{a:?}"
    );
    assert!(!a.url.contains(OperatorRedis::ADMIN_PASSWORD));
    // A second add-on of the same name is refused rather than taking the user over.
    let err = addons.provision(plan, "redis_a_1").await.unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");

    assert_eq!(redis_cli(&a.url, &["PING"]), "PONG");
    assert_eq!(redis_cli(&a.url, &["SET", "redis_a_1:k", "from-a"]), "OK");
    assert_eq!(redis_cli(&a.url, &["GET", "redis_a_1:k"]), "from-a");
    assert_eq!(redis_cli(&b.url, &["SET", "redis_b_2:k", "from-b"]), "OK");
    assert_eq!(redis_cli(&a.url, &["CLIENT", "SETNAME", "worker"]), "OK");
    // B cannot read, write or delete A's keys, nor A's channels.
    for args in [
        &["GET", "redis_a_1:k"][..],
        &["SET", "redis_a_1:k", "from-b"],
        &["DEL", "redis_a_1:k"],
        &["RENAME", "redis_b_2:k", "redis_a_1:k"],
        &["PUBLISH", "redis_a_1:events", "x"],
        &["SET", "unprefixed", "x"],
    ] {
        let out = redis_cli(&b.url, args);
        assert!(out.contains("NOPERM"), "{args:?}: {out}");
    }
    // Nothing reaches past the prefix: flushes, key listings, other databases, scripts,
    // the server's configuration, other clients.
    for args in [
        &["FLUSHALL"][..],
        &["FLUSHDB"],
        &["KEYS", "*"],
        &["SCAN", "0"],
        &["RANDOMKEY"],
        &["SELECT", "1"],
        &["EVAL", "return redis.call('GET', 'redis_a_1:k')", "0"],
        &["SCRIPT", "FLUSH"],
        &["CONFIG", "GET", "*"],
        &["ACL", "LIST"],
        &["CLIENT", "LIST"],
        &["CLIENT", "KILL", "USER", "redis_a_1"],
        &["MODULE", "LIST"],
        &["SHUTDOWN"],
        &["INFO"],
        &["MIGRATE", "127.0.0.1", "1", "redis_b_2:k", "0", "1"],
    ] {
        let out = redis_cli(&b.url, args);
        assert!(out.contains("NOPERM"), "{args:?}: {out}");
    }
    assert_eq!(redis_cli(&admin, &["GET", "redis_a_1:k"]), "from-a");
    let info = addons.redis_info("redis_b_2").await.unwrap();
    assert_eq!(info.keys, 1, "{info:?}");
    assert!(info.version.starts_with('7'), "{info:?}");

    // The users survive the server's restart.
    server.restart();
    assert_eq!(redis_cli(&a.url, &["SET", "redis_a_1:k2", "v"]), "OK");
    // This server keeps no data across restarts: B writes its key again.
    assert_eq!(redis_cli(&b.url, &["SET", "redis_b_2:k", "from-b"]), "OK");

    // Rotation: the old password stops working, the new one works.
    let rotated = addons
        .rotate_credentials(Service::Redis, "redis_a_1")
        .await
        .unwrap();
    assert_ne!(rotated, a.url);
    assert!(redis_cli(&a.url, &["PING"]).contains("WRONGPASS"));
    assert_eq!(redis_cli(&rotated, &["SET", "redis_a_1:k", "again"]), "OK");

    // Destroy: the user and every key of its prefix go; B's stay.
    addons
        .deprovision(Service::Redis, "redis_a_1")
        .await
        .unwrap();
    assert!(redis_cli(&rotated, &["PING"]).contains("WRONGPASS"));
    assert_eq!(
        redis_cli(&admin, &["EXISTS", "redis_a_1:k", "redis_a_1:k2"]),
        "0"
    );
    assert_eq!(redis_cli(&admin, &["GET", "redis_b_2:k"]), "from-b");
    server.restart();
    assert!(redis_cli(&rotated, &["PING"]).contains("WRONGPASS"));
    // The server keeps no data across restarts here, but B's user stays.
    assert_eq!(redis_cli(&b.url, &["PING"]), "PONG");
    // Idempotent.
    addons
        .deprovision(Service::Redis, "redis_a_1")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_on_an_operator_server_that_cannot_keep_users_provisions_nothing() {
    if !available("redis_on_an_operator_server_that_cannot_keep_users_provisions_nothing") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // No ACL file and no config file: ACL SAVE and CONFIG REWRITE both fail.
    let port = free_port();
    let mut child = Command::new("/usr/bin/redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .arg("--dir")
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let admin = format!("redis://127.0.0.1:{port}");
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let mut config = config(dir.path());
    config.redis_admin_url = Some(admin.clone());
    let addons = Addons::new(config);
    let err = addons
        .provision(parse_plan("heroku-redis").unwrap(), "redis_c_3")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("aclfile"), "{err}");
    assert_eq!(
        redis_cli(&admin, &["ACL", "USERS"]),
        "default",
        "no user left behind"
    );
    // A server that is down is a clear error too.
    let _ = child.kill();
    let _ = child.wait();
    let err = addons
        .provision(parse_plan("heroku-redis").unwrap(), "redis_c_4")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("reach the server"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_past_its_storage_limit_loses_writes_until_it_is_under_again() {
    if !available("postgres_past_its_storage_limit_loses_writes_until_it_is_under_again") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    // An empty database is about 7.5 MB; the table below adds about 14 MB.
    config.postgres_max_bytes = Some(16 * 1024 * 1024);
    let addons = Addons::new(config);
    let plan = parse_plan("heroku-postgresql:essential-0").unwrap();
    assert_eq!(addons.postgres_size_limit(plan), 16 * 1024 * 1024);
    let a = addons.provision(plan, "postgresql_a_1").await.unwrap();
    psql(
        &a.url,
        "CREATE TABLE t (v text); INSERT INTO t VALUES ('kept')",
    )
    .unwrap();
    let check = addons
        .enforce_postgres_size("postgresql_a_1", plan)
        .await
        .unwrap();
    assert!(!check.read_only && !check.changed, "{check:?}");

    psql(
        &a.url,
        "CREATE TABLE big AS SELECT md5(random()::text) || md5(random()::text) AS v \
         FROM generate_series(1, 150000)",
    )
    .unwrap();
    let check = addons
        .enforce_postgres_size("postgresql_a_1", plan)
        .await
        .unwrap();
    assert!(check.read_only && check.changed, "{check:?}");
    let stats = addons.postgres_stats("postgresql_a_1", plan).await.unwrap();
    assert!(
        stats.read_only && stats.size_bytes > stats.size_limit_bytes,
        "{stats:?}"
    );
    // Writes are refused, on old tables and new ones; reads and deletes are not.
    for sql in [
        "INSERT INTO t VALUES ('more')",
        "UPDATE t SET v = 'changed'",
        "CREATE TABLE u (x int)",
        "CREATE SCHEMA elsewhere",
    ] {
        let err = psql(&a.url, sql).unwrap_err();
        assert!(err.contains("permission denied"), "{sql}: {err}");
    }
    assert_eq!(psql(&a.url, "SELECT v FROM t").unwrap(), "kept");
    psql(&a.url, "DELETE FROM big WHERE v < '1'").unwrap();
    // A second check while still over changes nothing.
    let check = addons
        .enforce_postgres_size("postgresql_a_1", plan)
        .await
        .unwrap();
    assert!(check.read_only && !check.changed, "{check:?}");

    // Dropping the big table gets it under: writes come back.
    psql(&a.url, "DROP TABLE big").unwrap();
    let check = addons
        .enforce_postgres_size("postgresql_a_1", plan)
        .await
        .unwrap();
    assert!(!check.read_only && check.changed, "{check:?}");
    psql(
        &a.url,
        "INSERT INTO t VALUES ('more'); CREATE TABLE u (x int)",
    )
    .unwrap();
    assert!(
        !addons
            .postgres_stats("postgresql_a_1", plan)
            .await
            .unwrap()
            .read_only
    );
    addons
        .deprovision(Service::Postgres, "postgresql_a_1")
        .await
        .unwrap();
    addons.shutdown().await;
}
