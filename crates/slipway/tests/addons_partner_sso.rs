//! Third-party add-ons with the real heroku CLI: `addons:create SERVICE -- --key value`
//! reaches the provider as the provision's `options`, the provider is told to call back at the
//! platform's HTTPS API, and `heroku addons:open` (with `HEROKU_SUDO`, the path that asks the
//! API for the SSO form) writes the page that posts Heroku's SSO fields to the provider's
//! `sso_url`, whose `sha1(id:salt:timestamp)` token the provider accepts. A provider of the
//! test's own on loopback records every request. Needs nothing but the binary and the heroku
//! CLI (no dynos are started).

mod support;

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Json;
use serde_json::{json, Value};
use support::Server;

const SALT: &str = "fast-db-sso-salt";
const PASSWORD: &str = "fast-db-password";

#[derive(Clone, Default)]
struct Provider {
    provisions: Arc<Mutex<Vec<Value>>>,
}

async fn provision(State(provider): State<Provider>, body: Bytes) -> impl IntoResponse {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let uuid = request["uuid"].as_str().unwrap_or("").to_owned();
    provider.provisions.lock().unwrap().push(request);
    (
        StatusCode::CREATED,
        Json(json!({
            "id": format!("fast-{uuid}"),
            "config": {"FAST_DB_URL": format!("https://fast-db.example/{uuid}")},
        })),
    )
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
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_owned()
}

/// The provider's SSO endpoint, as Heroku's partner docs ask: the token must be
/// `sha1(id:salt:timestamp)` and the timestamp at most 5 minutes old, else 403.
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
        .unwrap()
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
        .route("/sso", post(sso))
        .with_state(provider.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
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

fn text(output: &std::process::Output) -> String {
    support::text(output)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_callback_url_and_sso_with_the_heroku_cli() {
    // CI installs the CLI: a missing one fails here rather than skipping.
    let heroku = support::heroku_cli();
    let (provider, base) = start_provider();
    let server = Server::start_with(&["--allow-private-urls"]);
    let temp = tempfile::tempdir().unwrap();
    let manifest = json!({
        "id": "fast-db",
        "name": "Fast DB",
        "api": {
            "config_vars": ["FAST_DB_URL"],
            "password": PASSWORD,
            "sso_salt": SALT,
            "production": {"base_url": format!("{base}/resources"), "sso_url": format!("{base}/sso")},
            "version": "3"
        },
        "plans": [{"id": "test"}]
    });
    let path = temp.path().join("manifest.json");
    std::fs::write(&path, manifest.to_string()).unwrap();
    server.cli_ok(&["addons:services:add", path.to_str().unwrap()]);
    server.cli_ok(&["apps:create", "ssodemo"]);

    // The real CLI's options after `--` reach the provider as `options`; the provider is to
    // call back at the HTTPS API.
    let home = tempfile::tempdir().unwrap();
    let out = server.heroku(
        home.path(),
        temp.path(),
        &[
            "addons:create",
            "fast-db:test",
            "-a",
            "ssodemo",
            "--",
            "--region",
            "eu",
            "--fork",
        ],
    );
    assert!(out.status.success(), "{}\n{}", text(&out), server.log());
    let provisions = provider.provisions.lock().unwrap().clone();
    assert_eq!(provisions.len(), 1, "{provisions:?}");
    assert_eq!(
        provisions[0]["options"],
        json!({"region": "eu", "fork": true})
    );
    let uuid = provisions[0]["uuid"].as_str().unwrap().to_owned();
    let callback = provisions[0]["callback_url"].as_str().unwrap();
    assert_eq!(
        callback,
        format!("https://127.0.0.1:{}/addons/{uuid}", server.api_tls_port)
    );

    // Slipway's own CLI sends them the same way.
    server.cli_ok(&[
        "addons:create",
        "fast-db:test",
        "-a",
        "ssodemo",
        "--as",
        "SECOND_DB",
        "--",
        "--size=3",
    ]);
    assert_eq!(
        provider.provisions.lock().unwrap()[1]["options"],
        json!({"size": "3"})
    );

    // A built-in service takes none, and bad options never reach anyone.
    let refused = server.cli(&[
        "addons:create",
        "heroku-redis",
        "-a",
        "ssodemo",
        "--",
        "--fork",
    ]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("heroku-redis takes no options on Slipway (got --fork)"),
        "{}",
        text(&refused)
    );
    let response = server
        .api(reqwest::Method::POST, "/apps/ssodemo/addons")
        .json(&json!({"plan": "fast-db:test", "config": {"k": {"nested": 1}}}))
        .send()
        .await
        .unwrap();
    let message = support::expect_api_error(response, 422, "invalid_params").await;
    assert!(message.contains("Invalid add-on options"), "{message}");
    assert_eq!(provider.provisions.lock().unwrap().len(), 2);

    // SSO: `heroku addons:open` with HEROKU_SUDO fetches the form and writes the page that
    // posts it; a browser would submit it, as this test does.
    let addons = server.api_json("/apps/ssodemo/addons").await;
    let name = addons
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["config_vars"] == json!(["FAST_DB_URL"]))
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut open = server.heroku_command(heroku.as_os_str(), home.path(), temp.path());
    open.args(["addons:open", &name, "-a", "ssodemo"])
        .env("HEROKU_SUDO", "1")
        .env("TMPDIR", tmp.path())
        // No browser here: the page is what counts.
        .env("BROWSER", "true")
        .env_remove("DISPLAY");
    let out = open.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("heroku-sso.html"), "{}", text(&out));
    let page = std::fs::read_to_string(tmp.path().join("heroku-sso.html")).unwrap();
    let action = page
        .split("action=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    assert_eq!(action, format!("{base}/sso"));
    let params: Value = page
        .split("var params = ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .map(|json| serde_json::from_str(json).unwrap())
        .unwrap();
    assert_eq!(params["id"], format!("fast-{uuid}"));
    assert_eq!(params["resource_id"], uuid.as_str());
    assert_eq!(params["app"], "ssodemo");
    assert!(params["nav-data"].is_string(), "{params}");
    let form: Vec<(String, String)> = params
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    let signed_in = reqwest::Client::new()
        .post(action)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 200);
    let email = params["email"].as_str().unwrap().to_owned();
    assert!(!email.is_empty());
    assert_eq!(
        signed_in.text().await.unwrap(),
        format!("signed in {email} to fast-{uuid}")
    );
    // A forged token is refused by the provider: the check above is a real one.
    let mut forged = form.clone();
    for (k, v) in &mut forged {
        if k == "token" {
            *v = sha1_hex("fast-x:wrong-salt:0");
        }
    }
    let refused = reqwest::Client::new()
        .post(action)
        .form(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);

    // A built-in add-on has no dashboard; the API says so.
    let response = server
        .api(reqwest::Method::GET, "/apps/ssodemo/addons/nonexistent/sso")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}
