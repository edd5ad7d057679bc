//! Add-ons end to end: the real binary, its embedded PostgreSQL and Redis servers, a pushed
//! app whose runc web dyno queries its `DATABASE_URL` and `REDIS_URL` with the real `psql` and
//! `redis-cli`, and what a hostile tenant or a failure must not leave behind (another app's
//! database opened, a half-attached add-on, a role or database left in the server's catalog).
//! They need root, runc, PostgreSQL 15 and redis-server, and skip loudly otherwise.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use support::{repo, runc_available, Server};

/// A web dyno that runs `psql` and `redis-cli` against its config vars and shows the output.
const ADDON_APP: &str = r#"
import http.server, os, subprocess, urllib.parse
PSQL = "/usr/lib/postgresql/15/bin/psql"
def run(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        return (p.stdout + p.stderr).strip()
    except Exception as e:
        return "error: %s" % e
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        if u.path == "/pg":
            url = os.environ.get("DATABASE_URL", "")
            if "db" in q:
                url = url.rsplit("/", 1)[0] + "/" + q["db"][0]
            out = run([PSQL, "-X", "-A", "-t", "-c", "SELECT 1", url]) if url else "no DATABASE_URL"
        elif u.path == "/seen":
            url = os.environ.get("DATABASE_URL", "")
            out = run([PSQL, "-X", "-A", "-t", "-c", "SELECT count(*) || ' ' || sum(n) FROM seen", url]) if url else "no DATABASE_URL"
        elif u.path == "/redis":
            url = os.environ.get("REDIS_URL", "")
            out = " ".join(run(["redis-cli", "--no-auth-warning", "-u", url] + c.split()) for c in ["PING", "SET k v", "GET k"]) if url else "no REDIS_URL"
        else:
            out = "ok"
        b = out.encode()
        self.send_response(200)
        self.send_header("content-length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("", int(os.environ["PORT"])), H).serve_forever()
"#;

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

async fn deploy(server: &Server, app: &str) {
    server.cli_ok(&["apps:create", app]);
    let dir = repo(&[
        ("Procfile", "web: python3 server.py\n"),
        ("server.py", ADDON_APP),
    ]);
    server.push_ok(app, dir.path());
    server.wait_for_200(app, "/").await;
}

/// Polls the app's `path` until its body satisfies `done`; returns it.
async fn wait_for_body(
    server: &Server,
    app: &str,
    path: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(response) = server.get(app, path).await.error_for_status() {
            last = response.text().await.unwrap_or_default();
            if done(&last) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{app}{path} never matched; last: {last}\nserver log:\n{}",
        server.log()
    );
}

/// `SQL` as the embedded server's admin, over its Unix socket.
fn catalog(server: &Server, sql: &str) -> String {
    let addons = server.data_dir.join("addons");
    let password = std::fs::read_to_string(addons.join("postgres-admin-password")).unwrap();
    let out = Command::new("/usr/lib/postgresql/15/bin/psql")
        .args(["-X", "-A", "-t", "-c", sql, "-d"])
        .arg(format!(
            "host={} port=54320 user=slipway_admin dbname=postgres",
            addons.join("postgres/run").display()
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

async fn create_addon(
    server: &Server,
    app: &str,
    plan: serde_json::Value,
) -> (u16, serde_json::Value) {
    let response = server
        .api(Method::POST, &format!("/apps/{app}/addons"))
        .json(&json!({ "plan": plan }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn add_ons_reach_their_dynos_and_nothing_else() {
    if !available("add_ons_reach_their_dynos_and_nothing_else") {
        return;
    }
    let server = Server::start();
    deploy(&server, "pga").await;
    deploy(&server, "pgb").await;

    // Create → the dyno's first successful query.
    let started = Instant::now();
    let (status, addon) = create_addon(&server, "pga", json!({"name": "heroku-postgresql"})).await;
    assert_eq!(status, 201, "{addon}");
    let body = wait_for_body(&server, "pga", "/pg", |b| b == "1").await;
    eprintln!(
        "MEASURED addons:create heroku-postgresql to a dyno's first query: {:?}",
        started.elapsed()
    );
    assert_eq!(body, "1");
    let name = addon["name"].as_str().unwrap().to_owned();
    assert!(name.starts_with("postgresql-"), "{addon}");
    assert_eq!(addon["config_vars"], json!(["DATABASE_URL"]));
    assert_eq!(addon["plan"]["name"], "heroku-postgresql:essential-0");
    assert_eq!(addon["billed_price"]["cents"], 500);
    let releases = server.api_json("/apps/pga/releases").await;
    let last = releases.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        last["description"],
        format!("Attach DATABASE (@ref:{name})")
    );

    // Redis, on its own server.
    let (status, redis) = create_addon(&server, "pga", json!("heroku-redis")).await;
    assert_eq!(status, 201, "{redis}");
    assert_eq!(redis["config_vars"], json!(["REDIS_URL"]));
    let body = wait_for_body(&server, "pga", "/redis", |b| b.starts_with("PONG")).await;
    assert_eq!(body, "PONG OK v");

    // The other app's credentials authenticate but cannot open this app's database.
    let (status, b_addon) =
        create_addon(&server, "pgb", json!("heroku-postgresql:essential-1")).await;
    assert_eq!(status, 201, "{b_addon}");
    wait_for_body(&server, "pgb", "/pg", |b| b == "1").await;
    let resource = name.replace('-', "_");
    let body = wait_for_body(&server, "pgb", &format!("/pg?db={resource}"), |b| b != "1").await;
    assert!(body.contains("permission denied for database"), "{body}");

    // Listings in the schema's shapes.
    let listed = server.api_json("/apps/pga/addons").await;
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    let attachments = server.api_json("/addon-attachments").await;
    assert_eq!(attachments.as_array().unwrap().len(), 3, "{attachments}");
    assert!(
        attachments[0]["addon"]["app"]["name"].is_string(),
        "{attachments}"
    );
    let resolved = server
        .api_send(
            Method::POST,
            "/actions/addons/resolve",
            json!({"addon": "DATABASE", "app": "pga"}),
        )
        .await;
    assert_eq!(resolved[0]["name"], name);

    // Destroy: the config var goes in a release, then the database and role.
    // (through the CLI, which wants the owning app's name as confirmation).
    let listing = server.cli_ok(&["addons", "-a", "pga"]);
    assert!(
        listing.contains(&format!(
            "heroku-postgresql ({name})  essential-0  $5.00/month  provisioned"
        )),
        "{listing}"
    );
    assert!(listing.contains(" └─ as DATABASE on pga"), "{listing}");
    let refused = server.cli(&["addons:destroy", &name, "-a", "pga"]);
    assert!(!refused.status.success());
    assert!(
        support::text(&refused).contains("--confirm pga"),
        "{}",
        support::text(&refused)
    );
    assert_eq!(
        server
            .api_json("/apps/pga/addons")
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );
    server.cli_ok(&["addons:destroy", &name, "-a", "pga", "--confirm", "pga"]);
    let config = server.api_json("/apps/pga/config-vars").await;
    assert!(config.get("DATABASE_URL").is_none(), "{config}");
    assert!(config.get("REDIS_URL").is_some(), "{config}");
    let left = catalog(
        &server,
        &format!("SELECT (SELECT count(*) FROM pg_database WHERE datname = '{resource}') + (SELECT count(*) FROM pg_roles WHERE rolname = '{resource}')"),
    );
    assert_eq!(left, "0");
    // The old dyno may answer (with the dropped database's error) until its replacement,
    // started on the release without the var, takes over.
    let body = wait_for_body(&server, "pga", "/pg", |b| b == "no DATABASE_URL").await;
    assert_eq!(body, "no DATABASE_URL");

    // Unknown service or plan: a clear message, nothing created.
    for plan in ["mysql", "heroku-postgresql:gigantic"] {
        let (status, error) = create_addon(&server, "pgb", json!(plan)).await;
        assert_eq!(status, 422, "{error}");
        assert!(
            error["message"].as_str().unwrap().contains("Couldn't find"),
            "{error}"
        );
    }
    assert_eq!(
        server
            .api_json("/apps/pgb/addons")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Destroying an app destroys its add-ons: no record, no database, no role left.
    let b_resource = b_addon["name"].as_str().unwrap().replace('-', "_");
    let counted = format!("SELECT (SELECT count(*) FROM pg_database WHERE datname = '{b_resource}') + (SELECT count(*) FROM pg_roles WHERE rolname = '{b_resource}')");
    assert_eq!(catalog(&server, &counted), "2");
    server.cli_ok(&["apps:destroy", "-a", "pgb", "--confirm", "pgb"]);
    assert_eq!(catalog(&server, &counted), "0");
    let addons = server.api_json("/addons").await;
    assert!(
        !addons
            .to_string()
            .contains(b_addon["name"].as_str().unwrap()),
        "{addons}"
    );
}

/// A release phase that writes through `DATABASE_URL`: it must be set when the phase runs.
const RELEASE_WRITES: &str = "release: /usr/lib/postgresql/15/bin/psql -X -v ON_ERROR_STOP=1 \"$DATABASE_URL\" -c 'CREATE TABLE IF NOT EXISTS seen (n int)' -c 'INSERT INTO seen VALUES (21)'\n";

fn manifest_app(app_json: &str) -> tempfile::TempDir {
    repo(&[
        (
            "Procfile",
            &format!("web: python3 server.py\n{RELEASE_WRITES}"),
        ),
        ("server.py", ADDON_APP),
        ("app.json", app_json),
    ])
}

fn count_addon_databases(server: &Server) -> String {
    catalog(
        server,
        "SELECT count(*) FROM pg_database WHERE datname LIKE 'postgresql\\_%'",
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn app_json_add_ons_are_provisioned_on_the_first_deploy_before_the_release_phase() {
    if !available("app_json_add_ons_are_provisioned_on_the_first_deploy_before_the_release_phase") {
        return;
    }
    let server = Server::start();

    // A bad entry rejects the push before anything is built or provisioned.
    server.cli_ok(&["apps:create", "ajbad"]);
    let before = server.api_json("/apps/ajbad/releases").await;
    let dir = manifest_app(r#"{"addons": ["heroku-postgresql:gigantic"]}"#);
    let push = server.push("ajbad", dir.path());
    assert!(!push.status.success());
    let out = support::text(&push);
    assert!(
        out.contains("app.json is not valid: addons[0]: Couldn't find the plan \"gigantic\""),
        "{out}"
    );
    assert!(!out.contains("Provisioning add-ons"), "{out}");
    assert_eq!(server.api_json("/apps/ajbad/releases").await, before);

    // A failure part-way (the second entry's name is taken by the first) drops what the first
    // provisioned: no record, config var, release, database or role.
    let dir = manifest_app(
        r#"{"addons": ["heroku-postgresql", {"plan": "heroku-postgresql:essential-1", "as": "DATABASE"}]}"#,
    );
    let push = server.push("ajbad", dir.path());
    assert!(!push.status.success());
    let out = support::text(&push);
    assert!(
        out.contains("-----> Provisioning add-ons: heroku-postgresql:essential-0 as DATABASE"),
        "{out}"
    );
    assert!(
        out.contains("would attach as DATABASE, but DATABASE_URL is already set"),
        "{out}"
    );
    assert_eq!(server.api_json("/apps/ajbad/releases").await, before);
    assert_eq!(server.api_json("/apps/ajbad/addons").await, json!([]));
    let config = server.api_json("/apps/ajbad/config-vars").await;
    assert!(config.get("DATABASE_URL").is_none(), "{config}");
    assert_eq!(count_addon_databases(&server), "0");
    assert_eq!(
        catalog(
            &server,
            "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'postgresql\\_%'"
        ),
        "0"
    );

    // The first deploy provisions, and its release phase and web dyno both use the database.
    server.cli_ok(&["apps:create", "ajs"]);
    let dir = manifest_app(r#"{"name": "demo", "addons": ["heroku-postgresql"]}"#);
    let push = server.push("ajs", dir.path());
    let out = support::text(&push);
    assert!(push.status.success(), "{out}\n{}", server.log());
    assert!(
        out.contains("-----> Provisioning add-ons: heroku-postgresql:essential-0 as DATABASE"),
        "{out}"
    );
    let provisioning = out.find("Provisioning add-ons").unwrap();
    let release_phase = out
        .find("-----> Running release command")
        .unwrap_or_else(|| panic!("{out}"));
    assert!(provisioning < release_phase, "{out}");
    server.wait_for_200("ajs", "/").await;
    let body = wait_for_body(&server, "ajs", "/seen", |b| b == "1 21").await;
    assert_eq!(body, "1 21");
    let addons = server.api_json("/apps/ajs/addons").await;
    assert_eq!(addons.as_array().unwrap().len(), 1, "{addons}");
    assert_eq!(addons[0]["plan"]["name"], "heroku-postgresql:essential-0");
    assert_eq!(addons[0]["config_vars"], json!(["DATABASE_URL"]));
    // The deploy's own release attached it: no separate attach release.
    let releases = server.api_json("/apps/ajs/releases").await;
    let descriptions: Vec<&str> = releases
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["description"].as_str().unwrap())
        .collect();
    assert!(
        !descriptions.iter().any(|d| d.starts_with("Attach")),
        "{descriptions:?}"
    );
    assert_eq!(count_addon_databases(&server), "1");

    // A second deploy does not provision again; its release phase writes to the same database.
    std::fs::write(dir.path().join("VERSION"), "2").unwrap();
    support::commit_all(dir.path(), "second");
    let push = server.push("ajs", dir.path());
    let out = support::text(&push);
    assert!(push.status.success(), "{out}\n{}", server.log());
    assert!(!out.contains("Provisioning add-ons"), "{out}");
    let body = wait_for_body(&server, "ajs", "/seen", |b| b == "2 42").await;
    assert_eq!(body, "2 42");
    assert_eq!(
        server
            .api_json("/apps/ajs/addons")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(count_addon_databases(&server), "1");
}

#[tokio::test(flavor = "multi_thread")]
async fn provisioning_on_a_server_that_is_down_leaves_nothing() {
    if !available("provisioning_on_a_server_that_is_down_leaves_nothing") {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let admin_url = format!("postgres://admin:hunter2secret@127.0.0.1:{port}/postgres");
    let server = Server::start_with(&["--addon-postgres-admin-url", &admin_url]);
    server.cli_ok(&["apps:create", "down"]);
    let before = server.api_json("/apps/down/releases").await;
    let (status, error) = create_addon(&server, "down", json!("heroku-postgresql")).await;
    assert_eq!(status, 422, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("not available"), "{message}");
    assert!(!message.contains("hunter2secret"), "{message}");
    assert_eq!(server.api_json("/apps/down/addons").await, json!([]));
    assert_eq!(server.api_json("/apps/down/releases").await, before);
    let config = server.api_json("/apps/down/config-vars").await;
    assert!(config.get("DATABASE_URL").is_none(), "{config}");

    // The same through app.json: the first deploy fails and writes no release.
    let dir = manifest_app(r#"{"addons": ["heroku-postgresql"]}"#);
    let push = server.push("down", dir.path());
    let out = support::text(&push);
    assert!(!push.status.success(), "{out}");
    assert!(
        out.contains("provisioning app.json's add-on heroku-postgresql:essential-0 failed"),
        "{out}"
    );
    assert!(!out.contains("hunter2secret"), "{out}");
    assert!(!out.contains("Running release command"), "{out}");
    assert_eq!(server.api_json("/apps/down/addons").await, json!([]));
    assert_eq!(server.api_json("/apps/down/releases").await, before);
    let config = server.api_json("/apps/down/config-vars").await;
    assert!(config.get("DATABASE_URL").is_none(), "{config}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_add_on_route_needs_a_key() {
    if !available("every_add_on_route_needs_a_key") {
        return;
    }
    let server = Server::start();
    let client = reqwest::Client::new();
    for (method, path) in [
        (Method::GET, "/apps/demo/addons"),
        (Method::POST, "/apps/demo/addons"),
        (Method::GET, "/apps/demo/addons/x"),
        (Method::DELETE, "/apps/demo/addons/x"),
        (Method::GET, "/apps/demo/addon-attachments"),
        (Method::GET, "/addons"),
        (Method::GET, "/addons/x"),
        (Method::PATCH, "/addons/x"),
        (Method::DELETE, "/addons/x"),
        (Method::GET, "/addons/x/addon-attachments"),
        (Method::POST, "/addons/x/actions/rotate-credentials"),
        (Method::GET, "/addons/x/stats"),
        (Method::GET, "/addon-attachments"),
        (Method::POST, "/addon-attachments"),
        (Method::DELETE, "/addon-attachments/x"),
        (Method::GET, "/addon-services"),
        (Method::GET, "/addon-services/heroku-postgresql/plans"),
        (Method::POST, "/actions/addons/resolve"),
        (Method::POST, "/actions/addon-attachments/resolve"),
    ] {
        let response = client
            .request(method.clone(), format!("{}{path}", server.api_url))
            .header("accept", "application/vnd.heroku+json; version=3")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{method} {path} without a key");
    }
    // With a key, the catalog lists both services and their plans.
    let services = server.api_json("/addon-services").await;
    assert_eq!(services.as_array().unwrap().len(), 2, "{services}");
    let plans = server
        .api_json("/addon-services/heroku-postgresql/plans")
        .await;
    assert_eq!(plans[0]["name"], "heroku-postgresql:essential-0");
    assert_eq!(plans[0]["default"], true);
}

/// `sql` through an add-on's own URL, from the host.
fn psql_as_addon(url: &str, sql: &str) -> String {
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

#[tokio::test(flavor = "multi_thread")]
async fn backups_capture_restore_download_and_fail_cleanly() {
    if !available("backups_capture_restore_download_and_fail_cleanly") {
        return;
    }
    let server = Server::start();
    let mut urls = Vec::new();
    let mut names = Vec::new();
    for app in ["bka", "bkb"] {
        server.cli_ok(&["apps:create", app]);
        let (status, addon) = create_addon(&server, app, json!("heroku-postgresql")).await;
        assert_eq!(status, 201, "{addon}");
        names.push(addon["name"].as_str().unwrap().to_owned());
        let config = server.api_json(&format!("/apps/{app}/config-vars")).await;
        urls.push(config["DATABASE_URL"].as_str().unwrap().to_owned());
    }
    psql_as_addon(
        &urls[0],
        "CREATE TABLE t (n int); INSERT INTO t VALUES (1), (2), (3)",
    );

    // Capture, drop the table, restore, read the rows back.
    let (status, backup) = send(
        &server,
        Method::POST,
        "/apps/bka/addons/DATABASE/backups",
        json!({}),
    )
    .await;
    assert_eq!(status, 201, "{backup}");
    assert_eq!(backup["name"], "b001");
    assert_eq!(backup["status"], "completed");
    let size = backup["size"].as_u64().unwrap();
    assert!(size > 0, "{backup}");
    psql_as_addon(&urls[0], "DROP TABLE t");
    let (status, restored) = send(
        &server,
        Method::POST,
        "/apps/bka/addons/DATABASE/actions/restore",
        json!({"backup": "b001", "confirm": "bka"}),
    )
    .await;
    assert_eq!(status, 200, "{restored}");
    assert_eq!(psql_as_addon(&urls[0], "SELECT sum(n) FROM t"), "6");

    // Into another app's database, with that database's own role owning what it restored.
    let (status, restored) = send(
        &server,
        Method::POST,
        "/apps/bkb/addons/DATABASE/actions/restore",
        json!({"backup": "b001", "from": names[0], "confirm": "bkb"}),
    )
    .await;
    assert_eq!(status, 200, "{restored}");
    assert_eq!(psql_as_addon(&urls[1], "SELECT sum(n) FROM t"), "6");
    assert_eq!(
        psql_as_addon(
            &urls[1],
            "SELECT tableowner FROM pg_tables WHERE tablename = 't'"
        ),
        names[1].replace('-', "_")
    );

    // The dump downloads whole, in pg_dump's custom format.
    let response = server
        .api(Method::GET, "/apps/bka/addons/DATABASE/backups/b001/dump")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let bytes = response.bytes().await.unwrap();
    assert_eq!(bytes.len() as u64, size);
    assert!(bytes.starts_with(b"PGDMP"));

    // A capture that cannot connect: a 422, a `failed` record, no dump file.
    let resource = names[0].replace('-', "_");
    catalog(&server, &format!("ALTER ROLE {resource} NOLOGIN"));
    let (status, error) = send(
        &server,
        Method::POST,
        "/apps/bka/addons/DATABASE/backups",
        json!({}),
    )
    .await;
    assert_eq!(status, 422, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("Backup b002 of") && message.contains("failed"),
        "{message}"
    );
    assert!(
        !message.contains(
            urls[0]
                .rsplit_once('@')
                .unwrap()
                .0
                .rsplit_once(':')
                .unwrap()
                .1
        ),
        "{message}"
    );
    let listed = server.api_json("/apps/bka/addons/DATABASE/backups").await;
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(listed[1]["status"], "failed");
    let addon_id = listed[1]["addon"]["id"].as_str().unwrap().to_owned();
    let dir = server.data_dir.join("blobs/backups").join(&addon_id);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, vec!["b001.dump".to_owned()]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.join("b001.dump"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let (status, error) = send(
        &server,
        Method::POST,
        "/apps/bka/addons/DATABASE/actions/restore",
        json!({"backup": "b002", "confirm": "bka"}),
    )
    .await;
    assert_eq!(status, 422, "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("is failed"),
        "{error}"
    );
    catalog(&server, &format!("ALTER ROLE {resource} LOGIN"));

    // The CLI: capture, list, restore from another app by `app::backup`, download, delete.
    let captured = server.cli_ok(&["pg:backups:capture", "-a", "bka"]);
    assert!(
        captured.contains("Backing up DATABASE to b003... done"),
        "{captured}"
    );
    let listing = server.cli_ok(&["pg:backups", "-a", "bka"]);
    assert!(
        listing.contains("b002") && listing.contains("Failed"),
        "{listing}"
    );
    assert!(
        listing.contains("b003") && listing.contains("Completed"),
        "{listing}"
    );
    psql_as_addon(&urls[1], "DROP TABLE t");
    let refused = server.cli(&["pg:backups:restore", "bka::b003", "DATABASE", "-a", "bkb"]);
    assert!(!refused.status.success());
    assert!(
        support::text(&refused).contains("--confirm bkb"),
        "{}",
        support::text(&refused)
    );
    server.cli_ok(&[
        "pg:backups:restore",
        "bka::b003",
        "DATABASE",
        "-a",
        "bkb",
        "--confirm",
        "bkb",
    ]);
    assert_eq!(psql_as_addon(&urls[1], "SELECT sum(n) FROM t"), "6");
    let download = tempfile::tempdir().unwrap();
    let target = download.path().join("latest.dump");
    server.cli_ok(&[
        "pg:backups:download",
        "-a",
        "bka",
        "-o",
        target.to_str().unwrap(),
    ]);
    assert!(std::fs::read(&target).unwrap().starts_with(b"PGDMP"));

    // Delete: the record and the file.
    let (status, _) = send(
        &server,
        Method::DELETE,
        "/apps/bka/addons/DATABASE/backups/b001",
        json!({"confirm": "bka"}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(!dir.join("b001.dump").exists());
    server.cli_ok(&["pg:backups:delete", "b003", "-a", "bka", "--confirm", "bka"]);
    assert!(!dir.join("b003.dump").exists());
    let listed = server.api_json("/apps/bka/addons/DATABASE/backups").await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
}
