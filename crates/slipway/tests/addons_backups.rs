//! Add-on backups and Redis state end to end, on the real binary's embedded PostgreSQL and
//! Redis servers: daily schedules set, listed and removed with the CLI; restore and delete
//! refused by the API itself without the app's name as confirmation (Heroku-style
//! `{"id","message"}`, nothing touched); destroying an add-on, or its app, leaves no backup
//! file under `<data>/blobs/backups`; `redis:info` shows the plan's limits and the server's
//! real keys. They need root, runc, PostgreSQL 15 and redis-server, and skip loudly otherwise.

mod support;

use std::path::Path;
use std::process::Command;

use reqwest::Method;
use serde_json::json;
use support::{runc_available, Server};

fn available(test: &str) -> bool {
    if !runc_available() {
        eprintln!("SKIPPED {test}: needs root and runc");
        return false;
    }
    for path in [
        "/usr/lib/postgresql/15/bin/postgres",
        "/usr/lib/postgresql/15/bin/psql",
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

async fn send(
    server: &Server,
    method: Method,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let response = server.api(method, path).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Creates `app` with an add-on of `plan`; the add-on's JSON and its `<VAR>` URL.
async fn app_with_addon(
    server: &Server,
    app: &str,
    plan: &str,
    var: &str,
) -> (serde_json::Value, String) {
    server.cli_ok(&["apps:create", app]);
    let (status, addon) = send(
        server,
        Method::POST,
        &format!("/apps/{app}/addons"),
        json!({ "plan": plan }),
    )
    .await;
    assert_eq!(status, 201, "{addon}");
    let config = server.api_json(&format!("/apps/{app}/config-vars")).await;
    (addon, config[var].as_str().unwrap().to_owned())
}

fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("/usr/lib/postgresql/15/bin/psql")
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql, url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Every regular file below `dir` (none when it does not exist).
fn files_below(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let entry = entry.unwrap();
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            out.extend(files_below(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

/// A refusal in Heroku's shape: the status, an `id`, a message containing `needle`.
fn assert_refused(status: u16, body: &serde_json::Value, needle: &str) {
    assert_eq!(status, 422, "{body}");
    assert!(body["id"].is_string(), "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains(needle), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn schedules_confirmation_and_destroy_leave_no_backup_behind() {
    if !available("schedules_confirmation_and_destroy_leave_no_backup_behind") {
        return;
    }
    let server = Server::start();
    let backups_dir = server.data_dir.join("blobs/backups");
    let (addon, url) = app_with_addon(&server, "sch", "heroku-postgresql", "DATABASE_URL").await;
    let addon_name = addon["name"].as_str().unwrap().to_owned();
    let addon_id = addon["id"].as_str().unwrap().to_owned();

    // Schedule, list, refuse a bad hour, unschedule.
    let scheduled = server.cli_ok(&[
        "pg:backups:schedule",
        "DATABASE",
        "--at",
        "02:00 America/New_York",
        "-a",
        "sch",
    ]);
    assert_eq!(
        scheduled.trim(),
        format!(
            "Scheduling automatic daily backups of {addon_name} at 02:00 America/New_York... done"
        )
    );
    let listed = server.cli_ok(&["pg:backups:schedules", "-a", "sch"]);
    assert_eq!(
        listed,
        "=== Backup Schedules\nDATABASE_URL: daily at 2:00 (America/New_York)\n"
    );
    for bad in ["25:00", "02:30 UTC", "02:00 Mars/Olympus"] {
        let (status, body) = send(
            &server,
            Method::PUT,
            "/apps/sch/addons/DATABASE/backup-schedule",
            json!({ "at": bad }),
        )
        .await;
        assert_refused(status, &body, "");
    }
    let still = server.api_json("/apps/sch/backup-schedules").await;
    assert_eq!(still.as_array().unwrap().len(), 1, "{still}");
    assert_eq!(still[0]["hour"], 2, "{still}");
    let unscheduled = server.cli_ok(&["pg:backups:unschedule", "-a", "sch"]);
    assert_eq!(
        unscheduled.trim(),
        "Unscheduling DATABASE_URL daily backups... done"
    );
    let listed = server.cli_ok(&["pg:backups:schedules", "-a", "sch"]);
    assert!(
        listed.starts_with("No backup schedules found on sch"),
        "{listed}"
    );
    let refused = server.cli(&["pg:backups:unschedule", "-a", "sch"]);
    assert!(!refused.status.success());
    assert!(
        support::text(&refused).contains("No backup schedule for"),
        "{}",
        support::text(&refused)
    );

    // Restore and delete without the app's name: refused by the API, nothing touched.
    psql(
        &url,
        "CREATE TABLE t (n int); INSERT INTO t VALUES (1), (2)",
    );
    let captured = server.cli_ok(&["pg:backups:capture", "-a", "sch"]);
    assert!(captured.contains("b001... done"), "{captured}");
    psql(&url, "INSERT INTO t VALUES (40)");
    for body in [
        json!({"backup": "b001"}),
        json!({"backup": "b001", "confirm": "other"}),
    ] {
        let (status, error) = send(
            &server,
            Method::POST,
            "/apps/sch/addons/DATABASE/actions/restore",
            body,
        )
        .await;
        assert_refused(status, &error, "--confirm sch");
    }
    assert_eq!(psql(&url, "SELECT sum(n) FROM t"), "43");
    let dump = backups_dir.join(&addon_id).join("b001.dump");
    assert!(dump.exists());
    let (status, error) = send(
        &server,
        Method::DELETE,
        "/apps/sch/addons/DATABASE/backups/b001",
        json!({}),
    )
    .await;
    assert_refused(status, &error, "--confirm sch");
    let response = server
        .api(
            Method::DELETE,
            "/apps/sch/addons/DATABASE/backups/b001?confirm=nope",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 422);
    assert!(dump.exists());
    assert_eq!(
        server
            .api_json("/apps/sch/addons/DATABASE/backups")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // With it: restored, and the CLI's `--confirm` reaches the API.
    let (status, restored) = send(
        &server,
        Method::POST,
        "/apps/sch/addons/DATABASE/actions/restore",
        json!({"backup": "b001", "confirm": "sch"}),
    )
    .await;
    assert_eq!(status, 200, "{restored}");
    assert_eq!(psql(&url, "SELECT sum(n) FROM t"), "3");
    server.cli_ok(&["pg:backups:capture", "-a", "sch"]);
    server.cli_ok(&["pg:backups:delete", "b002", "-a", "sch", "--confirm", "sch"]);
    assert!(!backups_dir.join(&addon_id).join("b002.dump").exists());

    // Destroying the add-on takes its backups (records, dumps, schedule) with it.
    server.cli_ok(&["pg:backups:schedule", "--at", "03:00", "-a", "sch"]);
    server.cli_ok(&["pg:backups:capture", "-a", "sch"]);
    assert_eq!(
        files_below(&backups_dir).len(),
        2,
        "{:?}",
        files_below(&backups_dir)
    );
    server.cli_ok(&[
        "addons:destroy",
        &addon_name,
        "-a",
        "sch",
        "--confirm",
        "sch",
    ]);
    assert_eq!(files_below(&backups_dir), Vec::<String>::new());
    assert!(!backups_dir.join(&addon_id).exists());
    let schedules = server.api_json("/apps/sch/backup-schedules").await;
    assert_eq!(schedules, json!([]));

    // So does deleting the app that owns one.
    let (addon, _) = app_with_addon(&server, "sch2", "heroku-postgresql", "DATABASE_URL").await;
    server.cli_ok(&["pg:backups:capture", "-a", "sch2"]);
    let dir = backups_dir.join(addon["id"].as_str().unwrap());
    assert_eq!(files_below(&dir).len(), 1);
    server.cli_ok(&["apps:destroy", "-a", "sch2", "--confirm", "sch2"]);
    assert_eq!(files_below(&backups_dir), Vec::<String>::new());
    assert!(!dir.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_info_shows_the_plans_limits_and_the_servers_keys() {
    if !available("redis_info_shows_the_plans_limits_and_the_servers_keys") {
        return;
    }
    let server = Server::start();
    // Every route of this part needs a key.
    let client = reqwest::Client::new();
    for (method, path) in [
        (Method::PUT, "/apps/demo/addons/DATABASE/backup-schedule"),
        (Method::DELETE, "/apps/demo/addons/DATABASE/backup-schedule"),
        (Method::GET, "/apps/demo/backup-schedules"),
        (Method::GET, "/apps/demo/addons/REDIS/redis-info"),
        (Method::POST, "/apps/demo/addons/DATABASE/backups"),
        (Method::DELETE, "/apps/demo/addons/DATABASE/backups/b001"),
        (Method::POST, "/apps/demo/addons/DATABASE/actions/restore"),
    ] {
        let response = client
            .request(method.clone(), format!("{}{path}", server.api_url))
            .header("accept", "application/vnd.heroku+json; version=3")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{method} {path} without a key");
    }
    let (addon, url) = app_with_addon(&server, "rin", "heroku-redis:premium-0", "REDIS_URL").await;
    for command in [["SET", "a", "1"], ["SET", "b", "2"]] {
        let out = Command::new("/usr/bin/redis-cli")
            .args(["--no-auth-warning", "-u", &url])
            .args(command)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
    }
    let info = server.cli_ok(&["redis:info", "-a", "rin"]);
    let name = addon["name"].as_str().unwrap();
    assert!(
        info.starts_with(&format!("=== {name} (REDIS_URL)\n")),
        "{info}"
    );
    for line in [
        "Plan:        Premium 0",
        "Maxmemory:   50 MB (noeviction)",
        "Keys:        2",
        "Persistence: AOF",
    ] {
        assert!(info.lines().any(|l| l == line), "{line:?} missing:\n{info}");
    }
    assert!(
        info.contains("Version:     7") || info.contains("Version:     6"),
        "{info}"
    );
    let json = server.api_json("/apps/rin/addons/REDIS/redis-info").await;
    assert_eq!(json["max_memory"], 50 * 1024 * 1024, "{json}");
    assert_eq!(json["max_clients"], 40, "{json}");
    assert!(json["used_memory"].as_u64().unwrap() > 0, "{json}");
    assert!(json["clients"].as_u64().unwrap() >= 1, "{json}");
    // The password never shows.
    let password = url.rsplit_once('@').unwrap().0.rsplit_once(':').unwrap().1;
    assert!(!json.to_string().contains(password));

    // Not a Redis add-on: a clear refusal.
    let (status, _) = send(
        &server,
        Method::POST,
        "/apps/rin/addons",
        json!({"plan": "heroku-postgresql"}),
    )
    .await;
    assert_eq!(status, 201);
    let response = server
        .api(Method::GET, "/apps/rin/addons/DATABASE/redis-info")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_refused(status, &body, "is not a Redis add-on");
    // redis:cli still runs the local redis-cli on it, commands on its standard input.
    let mut child = Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(["redis:cli", "-a", "rin"])
        .env("SLIPWAY_API_URL", &server.api_url)
        .env("SLIPWAY_API_KEY", &server.key)
        .env_remove("SLIPWAY_APP")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"GET b\nDBSIZE\n").unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", support::text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "2\n2",
        "{}",
        support::text(&out)
    );
}
