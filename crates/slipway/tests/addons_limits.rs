//! Add-ons on an operator's own Redis server and PostgreSQL storage limits, end to end: the
//! real binary started with `--addon-redis-admin-url` (a second `redis-server` the test
//! starts, users in an ACL file) and `--addon-postgres-max-mb`, add-ons created with the CLI,
//! and the tenant's own credentials (the config vars an app gets) tried against the servers
//! with the real `redis-cli` and `psql`. They need root, runc, PostgreSQL 15 and
//! redis-server, and skip loudly otherwise.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{runc_available, Server};

fn available(test: &str) -> bool {
    if !runc_available() {
        eprintln!("SKIPPED {test}: needs root and runc");
        return false;
    }
    for path in [
        "/usr/lib/postgresql/15/bin/postgres",
        "/usr/bin/redis-server",
        "/usr/bin/redis-cli",
    ] {
        if !Path::new(path).exists() {
            eprintln!("SKIPPED {test}: needs {path} (apt-get install postgresql redis-server)");
            return false;
        }
    }
    true
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

/// `psql URL -c SQL`: stdout on success, stderr on failure.
fn psql(url: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("/usr/lib/postgresql/15/bin/psql")
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql, url])
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// The operator's Redis server; killed when dropped.
struct OperatorRedis {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl OperatorRedis {
    const ADMIN_PASSWORD: &'static str = "operator-s3cret";

    fn start() -> OperatorRedis {
        let dir = tempfile::tempdir().unwrap();
        let acl = dir.path().join("users.acl");
        std::fs::write(
            &acl,
            format!("user default on >{} ~* &* +@all\n", Self::ADMIN_PASSWORD),
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("/usr/bin/redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir.path())
            .arg("--aclfile")
            .arg(&acl)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(25));
        }
        OperatorRedis {
            child,
            port,
            _dir: dir,
        }
    }

    fn admin_url(&self) -> String {
        format!(
            "redis://default:{}@127.0.0.1:{}",
            Self::ADMIN_PASSWORD,
            self.port
        )
    }
}

impl Drop for OperatorRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn config_var(server: &Server, app: &str, name: &str) -> String {
    let config = server.api_json(&format!("/apps/{app}/config-vars")).await;
    config[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} missing from {config}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_add_ons_on_an_operator_server_cannot_reach_each_other() {
    if !available("redis_add_ons_on_an_operator_server_cannot_reach_each_other") {
        return;
    }
    let redis = OperatorRedis::start();
    let admin = redis.admin_url();
    let server = Server::start_with(&["--addon-redis-admin-url", &admin]);
    for app in ["rda", "rdb"] {
        server.cli_ok(&["apps:create", app]);
        server.cli_ok(&["addons:create", "heroku-redis", "-a", app]);
    }
    let a = config_var(&server, "rda", "REDIS_URL").await;
    let b = config_var(&server, "rdb", "REDIS_URL").await;
    assert!(
        !a.contains(OperatorRedis::ADMIN_PASSWORD) && !b.contains(OperatorRedis::ADMIN_PASSWORD)
    );
    // The prefix is the URL's user name and a colon.
    let prefix = |url: &str| {
        let user = url
            .strip_prefix("redis://")
            .unwrap()
            .split(':')
            .next()
            .unwrap();
        format!("{user}:")
    };
    let (pa, pb) = (prefix(&a), prefix(&b));
    assert_ne!(pa, pb);
    assert_eq!(redis_cli(&a, &["SET", &format!("{pa}k"), "from-a"]), "OK");
    assert_eq!(redis_cli(&b, &["SET", &format!("{pb}k"), "from-b"]), "OK");
    // App B's credentials cannot read or write app A's keys, nor flush or list the server.
    for args in [
        vec!["GET".to_owned(), format!("{pa}k")],
        vec!["SET".to_owned(), format!("{pa}k"), "x".to_owned()],
        vec!["FLUSHALL".to_owned()],
        vec!["FLUSHDB".to_owned()],
        vec!["KEYS".to_owned(), "*".to_owned()],
        vec!["SCAN".to_owned(), "0".to_owned()],
        vec!["SELECT".to_owned(), "1".to_owned()],
        vec![
            "CONFIG".to_owned(),
            "SET".to_owned(),
            "maxmemory".to_owned(),
            "1".to_owned(),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = redis_cli(&b, &args);
        assert!(out.contains("NOPERM"), "{args:?}: {out}");
    }
    assert_eq!(redis_cli(&admin, &["GET", &format!("{pa}k")]), "from-a");
    let info = server.cli_ok(&["redis:info", "-a", "rdb"]);
    let keys = info
        .lines()
        .find_map(|line| line.strip_prefix("Keys:"))
        .map(str::trim);
    assert_eq!(keys, Some("1"), "B's own keys only: {info}");

    // Destroying A's add-on removes its user and its keys, and leaves B's.
    let name = server.api_json("/apps/rda/addons").await[0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    server.cli_ok(&["addons:destroy", &name, "-a", "rda", "--confirm", "rda"]);
    assert!(redis_cli(&a, &["PING"]).contains("WRONGPASS"));
    assert_eq!(redis_cli(&admin, &["EXISTS", &format!("{pa}k")]), "0");
    assert_eq!(redis_cli(&b, &["GET", &format!("{pb}k")]), "from-b");
}

/// Polls `pg:info` figures until `read_only` is `want`.
async fn wait_read_only(server: &Server, addon: &str, want: bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stats = server.api_json(&format!("/addons/{addon}/stats")).await;
        if stats["read_only"] == serde_json::Value::Bool(want) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "read_only never became {want}: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_over_its_storage_limit_is_read_only_until_it_is_under_again() {
    if !available("postgres_over_its_storage_limit_is_read_only_until_it_is_under_again") {
        return;
    }
    let server = Server::start_with(&[
        "--addon-postgres-max-mb",
        "16",
        "--addon-size-check-secs",
        "1",
    ]);
    server.cli_ok(&["apps:create", "full"]);
    server.cli_ok(&["addons:create", "heroku-postgresql", "-a", "full"]);
    let url = config_var(&server, "full", "DATABASE_URL").await;
    let addon = server.api_json("/apps/full/addons").await[0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    psql(
        &url,
        "CREATE TABLE t (v text); INSERT INTO t VALUES ('kept')",
    )
    .unwrap();
    let stats = wait_read_only(&server, &addon, false).await;
    assert_eq!(stats["size_limit_bytes"], 16 * 1024 * 1024, "{stats}");
    let info = server.cli_ok(&["pg:info", "-a", "full"]);
    assert!(info.contains("Status:      Available"), "{info}");

    // About 14 MB more than an empty database's 7.5 MB.
    psql(
        &url,
        "CREATE TABLE big AS SELECT md5(random()::text) || md5(random()::text) AS v \
         FROM generate_series(1, 150000)",
    )
    .unwrap();
    wait_read_only(&server, &addon, true).await;
    let err = psql(&url, "INSERT INTO t VALUES ('more')").unwrap_err();
    assert!(err.contains("permission denied"), "{err}");
    let err = psql(&url, "CREATE TABLE u (x int)").unwrap_err();
    assert!(err.contains("permission denied"), "{err}");
    assert_eq!(psql(&url, "SELECT v FROM t").unwrap(), "kept");
    let info = server.cli_ok(&["pg:info", "-a", "full"]);
    assert!(info.contains("Read-only: over its storage limit"), "{info}");
    server
        .wait_for_log("full", |log| {
            log.contains("app[heroku-postgres]") && log.contains("is over its storage limit")
        })
        .await;

    psql(&url, "DROP TABLE big").unwrap();
    wait_read_only(&server, &addon, false).await;
    psql(
        &url,
        "INSERT INTO t VALUES ('more'); CREATE TABLE u (x int)",
    )
    .unwrap();
    server
        .wait_for_log("full", |log| {
            log.contains("is under its storage limit again")
        })
        .await;

    // `pg:backups` reads like Heroku's: the sections the heroku CLI's own test looks for.
    let backups = server.cli_ok(&["pg:backups", "-a", "full"]);
    for header in ["=== Backups", "=== Restores", "=== Copies"] {
        assert!(backups.contains(header), "{header} missing: {backups}");
    }
}
