//! Third-party add-ons end to end: the real binary, a provider of our own speaking Heroku's
//! Add-on Partner API on loopback (recording every request), the real `slipway` CLI, and a
//! pushed app whose runc dyno sees the provider's config vars. Registering by manifest,
//! synchronous and asynchronous provisioning (with the provider's callbacks), plan change,
//! deprovisioning, and the faults: a provider's 422, a provider down, a slow one, a config
//! var without the manifest's prefix. Needs root and runc, and skips loudly otherwise.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{post, put};
use axum::Json;
use reqwest::Method;
use serde_json::{json, Value};
use support::{runc_available, Server};

/// One request the provider received.
#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    authorization: String,
    body: Value,
}

#[derive(Clone, Default)]
struct Provider {
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Provider {
    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("not poisoned").clone()
    }

    fn record(&self, method: &str, path: String, headers: &HeaderMap, body: &Bytes) {
        let authorization = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        self.requests.lock().expect("not poisoned").push(Recorded {
            method: method.to_owned(),
            path,
            authorization,
            body: serde_json::from_slice(body).unwrap_or(Value::Null),
        });
    }
}

/// `fast-db:password`, as Basic auth.
const PROVIDER_AUTH: &str = "Basic ZmFzdC1kYjpmYXN0LWRiLXBhc3N3b3Jk";
const PASSWORD: &str = "fast-db-password";

/// The provider's answer to a provision, by plan: `test` synchronous, `async` 202, `refuse`
/// 422, `slow` past the timeout, `rogue` a config var outside the prefix.
async fn provision(
    State(provider): State<Provider>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    provider.record("POST", "/resources".into(), &headers, &body);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(PROVIDER_AUTH) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let uuid = request["uuid"].as_str().unwrap_or("").to_owned();
    match request["plan"].as_str().unwrap_or("") {
        "test" => (
            StatusCode::CREATED,
            Json(json!({
                "id": format!("fast-{uuid}"),
                "config": {"FAST_DB_URL": format!("https://fast-db.example/{uuid}"), "FAST_DB_TOKEN": "tok-1"},
                "message": "Welcome to Fast DB"
            })),
        )
            .into_response(),
        "async" => (
            StatusCode::ACCEPTED,
            Json(json!({"id": format!("fast-{uuid}"), "message": "Fast DB is warming up"})),
        )
            .into_response(),
        "refuse" => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"message": "Plan refuse is sold out\n\u{1b}[31min your region"})),
        )
            .into_response(),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            (StatusCode::CREATED, Json(json!({"config": {}}))).into_response()
        }
        "rogue" => (
            StatusCode::CREATED,
            Json(json!({"config": {"DATABASE_URL": "postgres://evil"}})),
        )
            .into_response(),
        _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn change_plan(
    State(provider): State<Provider>,
    Path(uuid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Json<Value> {
    provider.record("PUT", format!("/resources/{uuid}"), &headers, &body);
    Json(
        json!({"config": {"FAST_DB_URL": format!("https://fast-db.example/{uuid}/pro")}, "message": "Upgraded"}),
    )
}

async fn deprovision(
    State(provider): State<Provider>,
    Path(uuid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    provider.record("DELETE", format!("/resources/{uuid}"), &headers, &body);
    StatusCode::NO_CONTENT
}

/// Starts the provider on its own thread and runtime (the test's CLI calls block); returns
/// it and its base URL.
fn start_provider() -> (Provider, String) {
    let provider = Provider::default();
    let app = axum::Router::new()
        .route("/resources", post(provision))
        .route("/resources/{uuid}", put(change_plan).delete(deprovision))
        .with_state(provider.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let base = format!("http://{}/resources", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            axum::serve(listener, app).await.expect("serve");
        });
    });
    (provider, base)
}

fn manifest(id: &str, base_url: &str, plans: &[&str]) -> Value {
    let prefix = id.to_uppercase().replace('-', "_");
    json!({
        "id": id,
        "name": "Fast DB",
        "api": {
            "config_vars": [format!("{prefix}_URL"), format!("{prefix}_TOKEN")],
            "password": PASSWORD,
            "sso_salt": "salt",
            "production": {"base_url": base_url, "sso_url": format!("{base_url}/sso")},
            "requires": [],
            "version": "3"
        },
        "plans": plans.iter().map(|p| json!({"id": p})).collect::<Vec<_>>()
    })
}

fn write_manifest(dir: &std::path::Path, value: &Value) -> String {
    let path = dir.join("addon-manifest.json");
    std::fs::write(&path, value.to_string()).expect("write manifest");
    path.display().to_string()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn app_env(server: &Server, app: &str) -> Value {
    let body = server.wait_for_200(app, "/env").await;
    serde_json::from_str::<Value>(&body).expect("env JSON")["env"].clone()
}

/// Polls the app's environment until `done` holds.
async fn wait_for_env(server: &Server, app: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let env = app_env(server, app).await;
        if done(&env) {
            return env;
        }
        assert!(
            Instant::now() < deadline,
            "the dyno's env never matched: {env}\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn release_descriptions(server: &Server, app: &str) -> String {
    server.cli_ok(&["releases", "-a", app])
}

async fn config(server: &Server, app: &str) -> Value {
    server
        .api(Method::GET, &format!("/apps/{app}/config-vars"))
        .send()
        .await
        .expect("config")
        .json()
        .await
        .expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn third_party_add_ons_over_the_partner_api() {
    if !runc_available() {
        eprintln!("SKIPPED third_party_add_ons_over_the_partner_api: needs root and runc");
        return;
    }
    let (provider, base_url) = start_provider();
    let server = Server::start_with(&["--allow-private-urls"]);
    let temp = tempfile::tempdir().expect("temp");

    // Registering: the manifest from a file, plans from --plan, a short timeout for the slow
    // plan. The password never comes back.
    let path = write_manifest(temp.path(), &manifest("fast-db", &base_url, &["unused"]));
    let out = server.cli_ok(&[
        "addons:services:add",
        &path,
        "--plan",
        "test",
        "--plan",
        "pro",
        "--plan",
        "async",
        "--plan",
        "refuse",
        "--plan",
        "slow",
        "--plan",
        "rogue",
        "--timeout",
        "1.5",
    ]);
    assert!(out.contains("Registering fast-db... done"), "{out}");
    assert!(
        out.contains("Plans: test, pro, async, refuse, slow, rogue"),
        "{out}"
    );
    assert!(!out.contains(PASSWORD), "{out}");
    let listed: Value = server
        .api(Method::GET, "/slipway/addon-services")
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("JSON");
    assert_eq!(listed[0]["password"], "[REDACTED]", "{listed}");
    assert!(!listed.to_string().contains(PASSWORD));
    let again = server.cli(&["addons:services:add", &path, "--plan", "test"]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already registered"),
        "{}",
        stderr(&again)
    );
    let services = server.cli_ok(&["addons:services"]);
    assert!(
        services.contains("heroku-postgresql") && services.contains(" fast-db "),
        "{services}"
    );
    // The real heroku CLI sees the registered service in the catalog too.
    let home = tempfile::tempdir().expect("home");
    let heroku = server.heroku(home.path(), temp.path(), &["addons:services"]);
    let heroku_out = String::from_utf8_lossy(&heroku.stdout).into_owned();
    assert!(heroku.status.success(), "{heroku_out}\n{}", stderr(&heroku));
    assert!(
        heroku_out.contains("fast-db") && heroku_out.contains("Fast DB"),
        "{heroku_out}"
    );
    let plans: Value = server
        .api(Method::GET, "/addon-services/fast-db/plans")
        .send()
        .await
        .expect("plans")
        .json()
        .await
        .expect("JSON");
    let names: Vec<&str> = plans
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names[..2], ["fast-db:test", "fast-db:pro"]);
    assert_eq!(plans[0]["default"], true);

    // A provider on a closed port ("down"), registered the same way.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_url = format!("http://{}/resources", closed.local_addr().expect("addr"));
    drop(closed);
    let down_path = temp.path().join("down.json");
    std::fs::write(
        &down_path,
        manifest("down-db", &closed_url, &["test"]).to_string(),
    )
    .expect("write");
    server.cli_ok(&["addons:services:add", &down_path.display().to_string()]);

    let app = "partner-demo";
    server.deploy_echo_app(app).await;
    let releases_before = release_descriptions(&server, app);

    // Synchronous provision: Basic auth with id:password, the uuid is the add-on id, the
    // config vars reach the dyno, the release says Attach FAST_DB.
    let out = server.cli_ok(&["addons:create", "fast-db:test", "-a", app]);
    assert!(
        out.contains("Creating fast-db:test on ⬢ partner-demo... $0.00/month"),
        "{out}"
    );
    assert!(out.contains("Welcome to Fast DB"), "{out}");
    assert!(out.contains("FAST_DB_URL"), "{out}");
    let addons: Value = server
        .api(Method::GET, &format!("/apps/{app}/addons"))
        .send()
        .await
        .expect("addons")
        .json()
        .await
        .expect("JSON");
    let addon = addons
        .as_array()
        .expect("list")
        .iter()
        .find(|a| a["addon_service"]["name"] == "fast-db")
        .expect("the fast-db add-on")
        .clone();
    let uuid = addon["id"].as_str().expect("id").to_owned();
    let name = addon["name"].as_str().expect("name").to_owned();
    assert_eq!(addon["state"], "provisioned");
    assert_eq!(addon["provider_id"], format!("fast-{uuid}"));
    let provision = provider
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.body["uuid"] == uuid.as_str())
        .expect("the provision request");
    assert_eq!(provision.authorization, PROVIDER_AUTH);
    assert_eq!(provision.body["plan"], "test");
    assert_eq!(provision.body["name"], name.as_str());
    assert!(provision.body["callback_url"]
        .as_str()
        .is_some_and(|u| u.ends_with(&format!("/addons/{uuid}"))));
    assert_eq!(provision.body["oauth_grant"]["type"], "authorization_code");
    let env = wait_for_env(&server, app, |env| env.get("FAST_DB_URL").is_some()).await;
    assert_eq!(
        env["FAST_DB_URL"],
        format!("https://fast-db.example/{uuid}")
    );
    assert_eq!(env["FAST_DB_TOKEN"], "tok-1");
    let releases = release_descriptions(&server, app);
    assert!(
        releases.contains(&format!("Attach FAST_DB (@ref:{name})")),
        "{releases}"
    );

    // Plan change: PUT {base}/{uuid} {plan}; the returned config var is released.
    let out = server.cli_ok(&["addons:upgrade", &name, "pro", "-a", app]);
    assert!(out.contains("pro"), "{out}");
    let put = provider
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT")
        .expect("a plan change request");
    assert_eq!(put.path, format!("/resources/{uuid}"));
    assert_eq!(put.body, json!({"plan": "pro"}));
    assert_eq!(put.authorization, PROVIDER_AUTH);
    wait_for_env(&server, app, |env| {
        env["FAST_DB_URL"] == format!("https://fast-db.example/{uuid}/pro")
    })
    .await;

    // A provider's 422 reaches the user verbatim (control characters stripped), with 422;
    // nothing is left behind.
    let count_requests = || provider.requests().len();
    let response = server
        .api(Method::POST, &format!("/apps/{app}/addons"))
        .json(&json!({"plan": "fast-db:refuse"}))
        .send()
        .await
        .expect("create");
    let message = support::expect_api_error(response, 422, "invalid_params").await;
    assert_eq!(message, "Plan refuse is sold out  [31min your region");
    let refused = server.cli(&["addons:create", "fast-db:refuse", "-a", app]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("Plan refuse is sold out"),
        "{}",
        stderr(&refused)
    );

    // A config var outside the manifest's list is refused, and the provider is told to
    // deprovision what it made.
    let before = count_requests();
    let rogue = server.cli(&["addons:create", "fast-db:rogue", "-a", app]);
    assert!(!rogue.status.success());
    assert!(
        stderr(&rogue)
            .contains("returned the config var DATABASE_URL, which its manifest does not allow"),
        "{}",
        stderr(&rogue)
    );
    assert!(!stderr(&rogue).contains("postgres://evil"));
    let after: Vec<Recorded> = provider.requests()[before..].to_vec();
    let rogue_uuid = after
        .iter()
        .find(|r| r.method == "POST")
        .and_then(|r| r.body["uuid"].as_str())
        .expect("the rogue provision")
        .to_owned();
    assert!(
        after
            .iter()
            .any(|r| r.method == "DELETE" && r.path == format!("/resources/{rogue_uuid}")),
        "{after:?}"
    );

    // A provider that is down, and one that is slow: clear errors.
    let down = server.cli(&["addons:create", "down-db", "-a", app]);
    assert!(!down.status.success());
    assert!(
        stderr(&down).contains("The add-on provider down-db could not be reached"),
        "{}",
        stderr(&down)
    );
    let slow = server.cli(&["addons:create", "fast-db:slow", "-a", app]);
    assert!(!slow.status.success());
    assert!(
        stderr(&slow).contains("The add-on provider fast-db did not answer within 1.5 seconds"),
        "{}",
        stderr(&slow)
    );

    // None of the failures left an add-on, a config var or a release.
    let addons: Value = server
        .api(Method::GET, "/addons")
        .send()
        .await
        .expect("addons")
        .json()
        .await
        .expect("JSON");
    assert_eq!(addons.as_array().map(Vec::len), Some(1), "{addons}");
    let vars = config(&server, app).await;
    assert!(vars.get("DATABASE_URL").is_none(), "{vars}");
    assert!(vars.get("DOWN_DB_URL").is_none(), "{vars}");
    let releases_now = release_descriptions(&server, app);
    assert_eq!(
        releases_now.lines().count(),
        releases_before.lines().count() + 2,
        "one attach and one update release only:\n{releases_now}"
    );

    // Asynchronous provision: 202, `provisioning`, no attachment or release until the
    // provider calls back with the token it was given.
    let out = server.cli_ok(&["addons:create", "fast-db:async", "--as", "CACHE", "-a", app]);
    assert!(out.contains("is being created in the background"), "{out}");
    assert!(out.contains("Fast DB is warming up"), "{out}");
    let pending = provider
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "POST" && r.body["plan"] == "async")
        .expect("the async provision");
    let async_uuid = pending.body["uuid"].as_str().expect("uuid").to_owned();
    let token = pending.body["oauth_grant"]["code"]
        .as_str()
        .expect("a callback token")
        .to_owned();
    let listed = server.cli_ok(&["addons", "-a", app]);
    assert!(listed.contains("provisioning"), "{listed}");
    assert!(config(&server, app).await.get("CACHE_URL").is_none());
    let releases_pending = release_descriptions(&server, app);
    assert_eq!(
        releases_pending.lines().count(),
        releases_now.lines().count(),
        "no release while provisioning:\n{releases_pending}"
    );

    let callback = |method: Method, path: &str| {
        reqwest::Client::new()
            .request(method, format!("{}{path}", server.api_url))
            .header("accept", "application/vnd.heroku+json; version=3")
    };
    // The wrong token, or an admin's key, is not the provider's.
    let wrong = callback(Method::PATCH, &format!("/addons/{async_uuid}/config"))
        .bearer_auth("not-the-token")
        .json(&json!({"config": [{"name": "FAST_DB_URL", "value": "x"}]}))
        .send()
        .await
        .expect("patch");
    assert_eq!(wrong.status(), 401);
    let outside = callback(Method::PATCH, &format!("/addons/{async_uuid}/config"))
        .bearer_auth(&token)
        .json(&json!({"config": [{"name": "PATH", "value": "/evil"}]}))
        .send()
        .await
        .expect("patch");
    assert_eq!(outside.status(), 422);
    let set = callback(Method::PATCH, &format!("/addons/{async_uuid}/config"))
        .bearer_auth(&token)
        .json(&json!({"config": [{"name": "FAST_DB_URL", "value": "https://async.example/db"}]}))
        .send()
        .await
        .expect("patch");
    assert_eq!(set.status(), 200);
    assert!(config(&server, app).await.get("CACHE_URL").is_none());
    let done = callback(
        Method::POST,
        &format!("/addons/{async_uuid}/actions/provision"),
    )
    .bearer_auth(&token)
    .send()
    .await
    .expect("provision action");
    assert_eq!(done.status(), 200);
    let done: Value = done.json().await.expect("JSON");
    assert_eq!(done["state"], "provisioned");
    let env = wait_for_env(&server, app, |env| env.get("CACHE_URL").is_some()).await;
    assert_eq!(env["CACHE_URL"], "https://async.example/db");
    let releases = release_descriptions(&server, app);
    assert!(releases.contains("Attach CACHE (@ref:"), "{releases}");

    // Removing a service with add-ons is refused.
    let remove = server.cli(&["addons:services:remove", "fast-db"]);
    assert!(!remove.status.success());
    assert!(
        stderr(&remove).contains("add-ons of it exist"),
        "{}",
        stderr(&remove)
    );

    // Destroy: the release that detaches, then DELETE {base}/{uuid}; the vars are gone.
    server.cli_ok(&["addons:destroy", &name, "-a", app, "--confirm", app]);
    assert!(provider.requests().iter().any(|r| r.method == "DELETE"
        && r.path == format!("/resources/{uuid}")
        && r.authorization == PROVIDER_AUTH));
    let env = wait_for_env(&server, app, |env| env.get("FAST_DB_URL").is_none()).await;
    assert!(env.get("FAST_DB_TOKEN").is_none(), "{env}");
    assert!(env.get("CACHE_URL").is_some(), "{env}");
    let cache = done["name"].as_str().expect("name").to_owned();
    server.cli_ok(&["addons:destroy", &cache, "-a", app, "--confirm", app]);
    server.cli_ok(&["addons:services:remove", "fast-db"]);
    let services = server.cli_ok(&["addons:services"]);
    assert!(!services.contains(" fast-db "), "{services}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_are_checked_before_anything_is_stored() {
    let server = Server::start_with(&["--allow-private-urls"]);
    let send = |body: Value| {
        server
            .api(Method::POST, "/slipway/addon-services")
            .json(&body)
            .send()
    };
    let mut bad = manifest("fast-db", "http://127.0.0.1:9/resources", &["test"]);
    bad["api"]["config_vars"] = json!(["OTHER_URL"]);
    let message = support::expect_api_error(
        send(json!({"manifest": bad})).await.expect("post"),
        422,
        "invalid_params",
    )
    .await;
    assert!(
        message.contains("must be an uppercase name starting with FAST_DB_"),
        "{message}"
    );
    let huge = json!({"manifest": {"id": "fast-db", "pad": "x".repeat(70 * 1024)}});
    let message =
        support::expect_api_error(send(huge).await.expect("post"), 422, "invalid_params").await;
    assert!(message.contains("65536"), "{message}");
    let listed: Value = server
        .api(Method::GET, "/slipway/addon-services")
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("JSON");
    assert_eq!(listed, json!([]));
    // Without a key nothing is registered.
    let anonymous = reqwest::Client::new()
        .post(format!("{}/slipway/addon-services", server.api_url))
        .header("accept", "application/vnd.heroku+json; version=3")
        .json(&json!({"manifest": manifest("fast-db", "http://127.0.0.1:9/r", &["test"])}))
        .send()
        .await
        .expect("post");
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_providers_are_refused_without_private_urls() {
    let server = Server::start();
    let response = server
        .api(Method::POST, "/slipway/addon-services")
        .json(&json!({"manifest": manifest("fast-db", "https://127.0.0.1:9/resources", &["test"])}))
        .send()
        .await
        .expect("post");
    let message = support::expect_api_error(response, 422, "invalid_params").await;
    assert!(message.contains("refused"), "{message}");
}
