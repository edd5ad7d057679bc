//! app.json add-ons of a registered third-party service, end to end: a provider of the test's
//! own speaking Heroku's Add-on Partner API on loopback (recording every request, and calling
//! back over the platform's HTTPS API for an asynchronous provision), real `git push`es of an
//! app whose runc dynos print their environment, and the real heroku CLI's `addons:open`
//! following an add-on's `web_url` through Slipway's login page to the provider's SSO.
//!
//! What it proves: an app.json entry naming a registered service is provisioned on the first
//! deploy before the release phase, synchronously or through the 202 flow (the deploy waits,
//! says so, and attaches in its own release); a service nobody registered rejects the push; a
//! provider's refusal part-way, or one that never completes, rejects the push and leaves no
//! add-on, config var or release and tells the provider to deprovision what it made; an
//! add-on attached to another app is not destroyed. Needs root and runc, and skips loudly
//! otherwise.

mod support;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{delete, post};
use axum::Json;
use serde_json::{json, Value};
use support::{runc_available, Server};

const PASSWORD: &str = "acme-db-password";
const SALT: &str = "acme-sso-salt";
/// The page login's user, a collaborator on the app.
const DEV_EMAIL: &str = "dev@example.com";
const DEV_PASSWORD: &str = "a long enough password 1";

/// One request the provider received.
#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    body: Value,
}

#[derive(Clone, Default)]
struct Provider {
    requests: Arc<Mutex<Vec<Recorded>>>,
    /// The platform CA, to call back over HTTPS (set once the server runs).
    ca: Arc<Mutex<Option<PathBuf>>>,
    /// The answers of the provider's own callbacks, `(method path, status)`.
    callbacks: Arc<Mutex<Vec<(String, u16)>>>,
}

impl Provider {
    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("not poisoned").clone()
    }

    fn record(&self, method: &str, path: String, body: &Bytes) {
        self.requests.lock().expect("not poisoned").push(Recorded {
            method: method.to_owned(),
            path,
            body: serde_json::from_slice(body).unwrap_or(Value::Null),
        });
    }

    fn provisions(&self, plan: &str) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == "/resources" && r.body["plan"] == plan)
            .map(|r| r.body)
            .collect()
    }

    fn deleted(&self, uuid: &str) -> bool {
        self.requests()
            .iter()
            .any(|r| r.method == "DELETE" && r.path == format!("/resources/{uuid}"))
    }

    fn client(&self) -> reqwest::Client {
        let ca = self
            .ca
            .lock()
            .expect("not poisoned")
            .clone()
            .expect("the CA");
        let pem = std::fs::read(ca).expect("read the CA");
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("a PEM"))
            .build()
            .expect("client")
    }
}

/// The provider's answer to a provision, by plan: `basic` synchronous, `async` 202 then the
/// callbacks a second later, `never` 202 and nothing more, `refuse` 422.
async fn provision(
    State(provider): State<Provider>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    provider.record("POST", "/resources".into(), &body);
    let expected = format!("Basic {}", base64_basic("acme-db", PASSWORD));
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let uuid = request["uuid"].as_str().unwrap_or("").to_owned();
    match request["plan"].as_str().unwrap_or("") {
        "basic" => (
            StatusCode::CREATED,
            Json(json!({
                "id": format!("acme-{uuid}"),
                "config": {"ACME_DB_URL": format!("https://acme.example/{uuid}"), "ACME_DB_TOKEN": "tok-1"},
                "message": "Welcome to Acme"
            })),
        )
            .into_response(),
        "async" => {
            let callback = request["callback_url"].as_str().unwrap_or("").to_owned();
            let code = request["oauth_grant"]["code"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            let provider = provider.clone();
            let resource = uuid.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let client = provider.client();
                let patched = client
                    .patch(format!("{callback}/config"))
                    .bearer_auth(&code)
                    .header("accept", "application/vnd.heroku+json; version=3")
                    .json(&json!({"config": [{"name": "ACME_DB_URL", "value": format!("https://acme.example/async/{resource}")}]}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                let done = client
                    .post(format!("{callback}/actions/provision"))
                    .bearer_auth(&code)
                    .header("accept", "application/vnd.heroku+json; version=3")
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                let mut callbacks = provider.callbacks.lock().expect("not poisoned");
                callbacks.push(("PATCH config".into(), patched));
                callbacks.push(("POST actions/provision".into(), done));
            });
            (
                StatusCode::ACCEPTED,
                Json(json!({"id": format!("acme-{uuid}"), "message": "Acme is warming up"})),
            )
                .into_response()
        }
        "never" => (
            StatusCode::ACCEPTED,
            Json(json!({"message": "Acme will get to it"})),
        )
            .into_response(),
        "refuse" => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"message": "Acme is sold out"})),
        )
            .into_response(),
        _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn deprovision(
    State(provider): State<Provider>,
    Path(uuid): Path<String>,
    body: Bytes,
) -> StatusCode {
    provider.record("DELETE", format!("/resources/{uuid}"), &body);
    StatusCode::NO_CONTENT
}

/// `sha1sum` of `text`, in hex.
fn sha1_hex(text: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sha1sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha1sum");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("sha1sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_owned()
}

fn base64_basic(user: &str, password: &str) -> String {
    let out = std::process::Command::new("base64")
        .arg("-w0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(format!("{user}:{password}").as_bytes())?;
            child.wait_with_output()
        })
        .expect("base64");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The provider's SSO endpoint, as Heroku's partner docs ask: `sha1(id:salt:timestamp)` and a
/// timestamp at most 5 minutes old, else 403.
async fn sso(body: Bytes) -> impl IntoResponse {
    let form: Vec<(String, String)> =
        reqwest::Url::parse(&format!("http://form/?{}", String::from_utf8_lossy(&body)))
            .map(|u| u.query_pairs().into_owned().collect())
            .unwrap_or_default();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let timestamp: u64 = field("timestamp").parse().unwrap_or(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let expected = sha1_hex(&format!("{}:{SALT}:{timestamp}", field("id")));
    if field("token") != expected || now.saturating_sub(timestamp) > 300 {
        return (StatusCode::FORBIDDEN, "bad token".to_owned());
    }
    (
        StatusCode::OK,
        format!("signed in {} to {}", field("email"), field("id")),
    )
}

fn start_provider() -> (Provider, String) {
    let provider = Provider::default();
    let app = axum::Router::new()
        .route("/resources", post(provision))
        .route("/resources/{uuid}", delete(deprovision))
        .route("/sso", post(sso))
        .with_state(provider.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
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

/// An app whose release phase prints the add-ons' config vars, and whose web dyno prints its
/// environment (`/env`).
fn manifest_app(app_json: &Value) -> tempfile::TempDir {
    support::repo(&[
        (
            "Procfile",
            "web: python3 server.py\nrelease: echo \"release phase sees ACME_DB_URL=$ACME_DB_URL CACHE_URL=$CACHE_URL\"\n",
        ),
        ("server.py", support::ECHO_APP),
        ("app.json", &app_json.to_string()),
    ])
}

fn releases(server: &Server, app: &str) -> String {
    server.cli_ok(&["releases", "-a", app])
}

/// The add-on records of `app` (owned or attached).
async fn app_addons(server: &Server, app: &str) -> Vec<Value> {
    server
        .api_json(&format!("/apps/{app}/addons"))
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Decodes the few entities the platform's pages write.
fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of `attribute="..."` after `from` in `html`.
fn attribute(html: &str, from: usize, attribute: &str) -> Option<(String, usize)> {
    let needle = format!("{attribute}=\"");
    let start = html[from..].find(&needle)? + from + needle.len();
    let end = html[start..].find('"')? + start;
    Some((unescape(&html[start..end]), end))
}

/// The SSO page's form: its action and its hidden fields.
fn sso_form(html: &str) -> (String, Vec<(String, String)>) {
    let form = html.find("<form").expect("a form");
    let (action, _) = attribute(html, form, "action").expect("an action");
    let mut fields = Vec::new();
    let mut at = form;
    while let Some(offset) = html[at..].find("<input type=\"hidden\"") {
        let input = at + offset;
        let (name, after) = attribute(html, input, "name").expect("a name");
        let (value, after) = attribute(html, after, "value").expect("a value");
        fields.push((name, value));
        at = after;
    }
    (action, fields)
}

/// Adds [`DEV_EMAIL`] with [`DEV_PASSWORD`], to sign in at an add-on's page.
fn add_dev_user(server: &Server) {
    use std::io::Write;
    let mut add = std::process::Command::new(env!("CARGO_BIN_EXE_slipway"))
        .args(["users:add", DEV_EMAIL, "--password-stdin"])
        .env("SLIPWAY_API_URL", &server.api_url)
        .env("SLIPWAY_API_KEY", &server.key)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("users:add");
    add.stdin
        .take()
        .expect("stdin")
        .write_all(format!("{DEV_PASSWORD}\n").as_bytes())
        .expect("password");
    let out = add.wait_with_output().expect("users:add");
    assert!(out.status.success(), "{}", support::text(&out));
}

/// A client that trusts the platform CA alone, as a browser of the platform's users would.
fn browser(server: &Server) -> reqwest::Client {
    let pem = std::fs::read(server.ca_path()).expect("read the CA");
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("a PEM"))
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_json_partner_add_ons_provision_on_the_first_deploy_and_open_through_web_url() {
    if !runc_available() {
        eprintln!("SKIPPED app_json_partner_add_ons_provision_on_the_first_deploy_and_open_through_web_url: needs root and runc");
        return;
    }
    let (provider, base) = start_provider();
    let server = Server::start_with(&["--allow-private-urls"]);
    *provider.ca.lock().expect("not poisoned") = Some(server.ca_path());
    let temp = tempfile::tempdir().expect("temp");
    let manifest = json!({
        "id": "acme-db",
        "name": "Acme DB",
        "api": {
            "config_vars": ["ACME_DB_URL", "ACME_DB_TOKEN"],
            "password": PASSWORD,
            "sso_salt": SALT,
            "production": {"base_url": format!("{base}/resources"), "sso_url": format!("{base}/sso")},
            "version": "3"
        },
        "plans": [{"id": "basic"}, {"id": "async"}, {"id": "never"}, {"id": "refuse"}],
        "provision_wait_seconds": 3
    });
    let path = temp.path().join("manifest.json");
    std::fs::write(&path, manifest.to_string()).expect("write");
    server.cli_ok(&["addons:services:add", path.to_str().expect("path")]);

    // A service nobody registered rejects the push before the build, naming what exists.
    server.cli_ok(&["apps:create", "ajp-bad"]);
    let before = server.api_json("/apps/ajp-bad/releases").await;
    let dir = manifest_app(&json!({"addons": ["nosuch-db:basic"]}));
    let push = server.push("ajp-bad", dir.path());
    let out = support::text(&push);
    assert!(!push.status.success(), "{out}");
    assert!(
        out.contains("app.json is not valid: addons[0]: Couldn't find either the add-on service or the add-on plan of \"nosuch-db:basic\". Available services: heroku-postgresql, heroku-redis, acme-db"),
        "{out}"
    );
    assert!(!out.contains("Provisioning add-ons"), "{out}");
    // A registered service's unknown plan, likewise.
    let dir = manifest_app(&json!({"addons": ["acme-db:gold"]}));
    let out = support::text(&server.push("ajp-bad", dir.path()));
    assert!(
        out.contains("addons[0]: Couldn't find either the add-on service or the add-on plan \"acme-db:gold\". acme-db has the plans: basic, async, never, refuse"),
        "{out}"
    );
    assert!(provider.requests().is_empty(), "{:?}", provider.requests());

    // A provider's refusal part-way: the first entry was provisioned, so the provider is
    // told to deprovision it; the push is rejected with the provider's own message.
    let dir = manifest_app(&json!({"addons": ["acme-db:basic", "acme-db:refuse"]}));
    let push = server.push("ajp-bad", dir.path());
    let out = support::text(&push);
    assert!(!push.status.success(), "{out}");
    assert!(
        out.contains("Push rejected: provisioning app.json's add-on acme-db:refuse failed: Acme is sold out. Nothing was released"),
        "{out}"
    );
    let first = provider.provisions("basic");
    assert_eq!(first.len(), 1, "{first:?}");
    let first_uuid = first[0]["uuid"].as_str().expect("uuid").to_owned();
    assert!(provider.deleted(&first_uuid), "{:?}", provider.requests());

    // A provider that answers 202 and never completes: the deploy waits as long as the
    // manifest allows, says so, then gives up and tells the provider to deprovision.
    let dir = manifest_app(&json!({"addons": ["acme-db:never"]}));
    let started = Instant::now();
    let push = server.push("ajp-bad", dir.path());
    let out = support::text(&push);
    assert!(!push.status.success(), "{out}");
    assert!(
        out.contains(
            "is being provisioned by acme-db (Acme will get to it); waiting up to 3 s for it"
        ),
        "{out}"
    );
    assert!(
        out.contains("failed: its provider acme-db did not finish provisioning"),
        "{out}"
    );
    assert!(out.contains("within 3 s"), "{out}");
    assert!(started.elapsed() >= Duration::from_secs(3));
    let never = provider.provisions("never");
    assert_eq!(never.len(), 1);
    let never_uuid = never[0]["uuid"].as_str().expect("uuid").to_owned();
    assert!(provider.deleted(&never_uuid), "{:?}", provider.requests());
    // Its late callback finds nothing: the token died with the record.
    let late = provider
        .client()
        .post(format!(
            "{}/actions/provision",
            never[0]["callback_url"].as_str().expect("callback")
        ))
        .bearer_auth(never[0]["oauth_grant"]["code"].as_str().expect("code"))
        .header("accept", "application/vnd.heroku+json; version=3")
        .send()
        .await
        .expect("late callback");
    assert_eq!(late.status(), 401);

    // None of the failures left an add-on, a config var or a release.
    assert_eq!(app_addons(&server, "ajp-bad").await, Vec::<Value>::new());
    assert_eq!(server.api_json("/addons").await, json!([]));
    let vars = server.api_json("/apps/ajp-bad/config-vars").await;
    assert!(vars.get("ACME_DB_URL").is_none(), "{vars}");
    assert_eq!(server.api_json("/apps/ajp-bad/releases").await, before);

    // The first deploy of a good app: a synchronous and an asynchronous add-on, both
    // attached by the deploy's own release, both seen by its release phase.
    server.cli_ok(&["apps:create", "ajp-ok"]);
    let dir = manifest_app(&json!({"addons": [
        "acme-db:basic",
        {"plan": "acme-db:async", "as": "CACHE", "options": {"size": "large", "fast": true}}
    ]}));
    let push = server.push("ajp-ok", dir.path());
    let out = support::text(&push);
    assert!(push.status.success(), "{out}\n{}", server.log());
    assert!(
        out.contains("-----> Provisioning add-ons: acme-db:basic"),
        "{out}"
    );
    assert!(
        out.contains("provisioned as ACME_DB: Welcome to Acme"),
        "{out}"
    );
    assert!(
        out.contains(
            "is being provisioned by acme-db (Acme is warming up); waiting up to 3 s for it"
        ),
        "{out}"
    );
    assert!(out.contains("provisioned as CACHE"), "{out}");
    let asynchronous = provider.provisions("async");
    assert_eq!(asynchronous.len(), 1);
    let async_uuid = asynchronous[0]["uuid"].as_str().expect("uuid").to_owned();
    assert_eq!(
        asynchronous[0]["options"],
        json!({"size": "large", "fast": true})
    );
    assert_eq!(
        *provider.callbacks.lock().expect("not poisoned"),
        vec![
            ("PATCH config".to_owned(), 200),
            ("POST actions/provision".to_owned(), 200)
        ]
    );
    let basic = provider.provisions("basic");
    let basic_uuid = basic[1]["uuid"].as_str().expect("uuid").to_owned();
    assert!(
        out.contains(&format!(
            "release phase sees ACME_DB_URL=https://acme.example/{basic_uuid} CACHE_URL=https://acme.example/async/{async_uuid}"
        )),
        "{out}"
    );
    let env = server
        .wait_for_env("ajp-ok", |env| env.get("CACHE_URL").is_some())
        .await;
    assert_eq!(
        env["ACME_DB_URL"],
        format!("https://acme.example/{basic_uuid}")
    );
    assert_eq!(env["ACME_DB_TOKEN"], "tok-1");
    assert_eq!(
        env["CACHE_URL"],
        format!("https://acme.example/async/{async_uuid}")
    );
    // One release did it all: no separate attach releases.
    let listed = releases(&server, "ajp-ok");
    assert!(!listed.contains("Attach"), "{listed}");
    let addons = app_addons(&server, "ajp-ok").await;
    assert_eq!(addons.len(), 2, "{addons:?}");
    assert!(
        addons.iter().all(|a| a["state"] == "provisioned"),
        "{addons:?}"
    );
    let basic_addon = addons
        .iter()
        .find(|a| a["id"] == basic_uuid.as_str())
        .expect("the basic add-on")
        .clone();
    let name = basic_addon["name"].as_str().expect("name").to_owned();

    // web_url: the add-on's page on the platform's HTTPS API, the same from the add-on and
    // its attachment.
    let app_id = server.api_json("/apps/ajp-ok").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let web_url = format!(
        "{}/addons-sso/apps/{app_id}/addons/{basic_uuid}",
        server.api_tls_url()
    );
    assert_eq!(basic_addon["web_url"], web_url.as_str());
    let attachments = server.api_json("/apps/ajp-ok/addon-attachments").await;
    let attachment = attachments
        .as_array()
        .expect("a list")
        .iter()
        .find(|a| a["name"] == "ACME_DB")
        .expect("the ACME_DB attachment")
        .clone();
    assert_eq!(attachment["web_url"], web_url.as_str());

    // Plain `heroku addons:open` (no HEROKU_SUDO) opens it: `--show-url` prints it, and
    // without, the browser (a script recording what it is given) gets it.
    let home = tempfile::tempdir().expect("home");
    let shown = server.heroku(
        home.path(),
        temp.path(),
        &["addons:open", &name, "-a", "ajp-ok", "--show-url"],
    );
    assert!(shown.status.success(), "{}", support::text(&shown));
    assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), web_url);
    let opened = temp.path().join("opened-url");
    let script = temp.path().join("browser.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$1\" > {}\n", opened.display()),
    )
    .expect("write");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let out = server
        .heroku_command(support::heroku_cli().as_os_str(), home.path(), temp.path())
        .env("BROWSER", &script)
        .args(["addons:open", "ACME_DB", "-a", "ajp-ok"])
        .output()
        .expect("heroku addons:open");
    assert!(out.status.success(), "{}", support::text(&out));
    assert!(
        support::text(&out).contains(&format!("Opening {web_url}")),
        "{}",
        support::text(&out)
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let url = loop {
        if let Ok(url) = std::fs::read_to_string(&opened) {
            if !url.trim().is_empty() {
                break url.trim().to_owned();
            }
        }
        assert!(Instant::now() < deadline, "the browser was never opened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(url, web_url);

    // The browser's visit: a login page that says nothing of the add-on; a collaborator's
    // email and password; then the form that signs them in at the provider, which accepts it.
    add_dev_user(&server);
    let page_client = browser(&server);
    let page = page_client.get(&web_url).send().await.expect("GET");
    assert_eq!(page.status(), 200);
    let page = page.text().await.expect("page");
    assert!(page.contains("id=\"password\""), "{page}");
    assert!(!page.contains(&name), "{page}");
    let login = |password: &'static str| {
        page_client
            .post(&web_url)
            .form(&[("email", DEV_EMAIL), ("password", password)])
            .send()
    };
    // Not yet a collaborator: the add-on is not theirs to open.
    let refused = login(DEV_PASSWORD).await.expect("POST");
    assert_eq!(refused.status(), 404);
    server.cli_ok(&["access:add", DEV_EMAIL, "-a", "ajp-ok"]);
    let wrong = login("not the password").await.expect("POST");
    assert_eq!(wrong.status(), 401);
    let signed = login(DEV_PASSWORD).await.expect("POST");
    assert_eq!(signed.status(), 200);
    let html = signed.text().await.expect("page");
    let (action, fields) = sso_form(&html);
    assert_eq!(action, format!("{base}/sso"));
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(field("email"), DEV_EMAIL);
    assert_eq!(field("resource_id"), basic_uuid);
    let landed = reqwest::Client::new()
        .post(&action)
        .form(&fields)
        .send()
        .await
        .expect("SSO");
    assert_eq!(landed.status(), 200);
    assert_eq!(
        landed.text().await.expect("text"),
        format!("signed in {DEV_EMAIL} to acme-{basic_uuid}")
    );

    // An add-on attached to another app is not destroyed: refused, the provider is not
    // called, and the other app keeps its config vars; detached there, it goes.
    server.cli_ok(&["apps:create", "ajp-other"]);
    server.cli_ok(&["addons:attach", &name, "-a", "ajp-other"]);
    let destroy = server.cli(&[
        "addons:destroy",
        &name,
        "-a",
        "ajp-ok",
        "--confirm",
        "ajp-ok",
    ]);
    assert!(!destroy.status.success());
    assert!(
        support::text(&destroy).contains(&format!(
            "Cannot destroy {name}: it is still attached to ajp-other. Detach it there first with addons:detach."
        )),
        "{}",
        support::text(&destroy)
    );
    assert!(!provider.deleted(&basic_uuid));
    let other = server.api_json("/apps/ajp-other/config-vars").await;
    assert_eq!(
        other["ACME_DB_URL"],
        format!("https://acme.example/{basic_uuid}")
    );
    assert_eq!(app_addons(&server, "ajp-ok").await.len(), 2);
    server.cli_ok(&["addons:detach", "ACME_DB", "-a", "ajp-other"]);
    server.cli_ok(&[
        "addons:destroy",
        &name,
        "-a",
        "ajp-ok",
        "--confirm",
        "ajp-ok",
    ]);
    assert!(provider.deleted(&basic_uuid));
    let env = server
        .wait_for_env("ajp-ok", |env| env.get("ACME_DB_URL").is_none())
        .await;
    assert!(env.get("CACHE_URL").is_some(), "{env}");
}

/// Reads the embedded PostgreSQL server's catalog as its admin (`tests/addons.rs` does the
/// same).
fn catalog(server: &Server, sql: &str) -> String {
    let addons = server.data_dir.join("addons");
    let password = std::fs::read_to_string(addons.join("postgres-admin-password"))
        .expect("the admin password");
    let out = std::process::Command::new("/usr/lib/postgresql/15/bin/psql")
        .args(["-X", "-A", "-t", "-c", sql, "-d"])
        .arg(format!(
            "host={} port=54320 user=slipway_admin dbname=postgres",
            addons.join("postgres/run").display()
        ))
        .env("PGPASSWORD", password.trim())
        .output()
        .expect("psql");
    assert!(out.status.success(), "{}", support::text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_built_in_database_attached_elsewhere_survives_destroy_and_its_web_url_says_what_it_is() {
    for path in [
        "/usr/lib/postgresql/15/bin/postgres",
        "/usr/lib/postgresql/15/bin/psql",
    ] {
        if !std::path::Path::new(path).exists() {
            eprintln!("SKIPPED a_built_in_database_attached_elsewhere_survives_destroy_and_its_web_url_says_what_it_is: needs {path} (apt-get install postgresql)");
            return;
        }
    }
    let server = Server::start();
    server.cli_ok(&["apps:create", "pgowner"]);
    server.cli_ok(&["apps:create", "pgreader"]);
    server.cli_ok(&["addons:create", "heroku-postgresql", "-a", "pgowner"]);
    let addon = server.api_json("/apps/pgowner/addons").await[0].clone();
    let name = addon["name"].as_str().expect("name").to_owned();
    let resource = name.replace('-', "_");
    let exists = format!(
        "SELECT (SELECT count(*) FROM pg_database WHERE datname = '{resource}') + (SELECT count(*) FROM pg_roles WHERE rolname = '{resource}')"
    );
    assert_eq!(catalog(&server, &exists), "2");
    server.cli_ok(&[
        "addons:attach",
        &name,
        "-a",
        "pgreader",
        "--as",
        "SHARED_DB",
    ]);
    let releases_before = server.api_json("/apps/pgowner/releases").await;

    // Destroying it from its own app while another app has it attached is refused, over the
    // API as a Heroku error, and nothing changes: records, config vars, releases, catalog.
    let response = server
        .api(reqwest::Method::DELETE, &format!("/addons/{name}"))
        .send()
        .await
        .expect("DELETE");
    let message = support::expect_api_error(response, 422, "invalid_params").await;
    assert_eq!(
        message,
        format!("Cannot destroy {name}: it is still attached to pgreader. Detach it there first with addons:detach.")
    );
    let destroy = server.cli(&[
        "addons:destroy",
        &name,
        "-a",
        "pgowner",
        "--confirm",
        "pgowner",
    ]);
    assert!(!destroy.status.success());
    assert_eq!(catalog(&server, &exists), "2");
    assert_eq!(
        server.api_json("/apps/pgowner/releases").await,
        releases_before
    );
    let owner = server.api_json("/apps/pgowner/config-vars").await;
    let reader = server.api_json("/apps/pgreader/config-vars").await;
    assert!(owner["DATABASE_URL"].is_string(), "{owner}");
    assert_eq!(reader["SHARED_DB_URL"], owner["DATABASE_URL"]);

    // Its web_url: after signing in, Slipway's own page of what it is, never its URL.
    let web_url = addon["web_url"].as_str().expect("a web_url").to_owned();
    add_dev_user(&server);
    server.cli_ok(&["access:add", DEV_EMAIL, "-a", "pgowner"]);
    let page = browser(&server)
        .post(&web_url)
        .form(&[("email", DEV_EMAIL), ("password", DEV_PASSWORD)])
        .send()
        .await
        .expect("POST");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("page");
    assert!(
        html.contains(&format!("{name} is a heroku-postgresql:essential-0 add-on on a server Slipway runs; it has no web dashboard")),
        "{html}"
    );
    assert!(html.contains("<li>DATABASE_URL on pgowner</li>"), "{html}");
    assert!(
        html.contains("<li>SHARED_DB_URL on pgreader</li>"),
        "{html}"
    );
    let url = owner["DATABASE_URL"].as_str().expect("url");
    assert!(!html.contains(url), "{html}");

    // Detached there, it goes: records, vars and the database and role.
    server.cli_ok(&["addons:detach", "SHARED_DB", "-a", "pgreader"]);
    server.cli_ok(&[
        "addons:destroy",
        &name,
        "-a",
        "pgowner",
        "--confirm",
        "pgowner",
    ]);
    assert_eq!(catalog(&server, &exists), "0");
    assert_eq!(server.api_json("/addons").await, json!([]));
}
