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
