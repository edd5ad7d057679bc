//! Drives `run_with_client` against a fake Platform API on 127.0.0.1 and checks what goes
//! over the wire (paths, headers, bodies) and what the user sees, including the log stream
//! that must be fetched without credentials.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use slipway_cli::{format_error, run_with_client, AppArg, Client, Command, DynoTargetArgs};

#[derive(Debug, Clone)]
struct Recorded {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Option<Value>,
}

#[derive(Clone)]
struct Fake {
    base: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

const TIME: &str = "2026-11-26T12:00:00Z";
const ID: &str = "01234567-89ab-cdef-0123-456789abcdef";

fn app_json(name: &str) -> Value {
    let named = |n: &str| json!({"id": ID, "name": n});
    json!({
        "acm": false, "archived_at": null, "build_stack": named("heroku-24"),
        "buildpack_provided_description": null, "created_at": TIME,
        "generation": named("cedar"), "git_url": format!("http://127.0.0.1:5000/{name}.git"),
        "id": ID, "internal_routing": null, "maintenance": false, "name": name,
        "organization": null, "owner": {"id": ID, "email": "admin@example.com"},
        "region": named("us"), "released_at": null, "repo_size": null, "slug_size": null,
        "space": null, "stack": named("heroku-24"), "team": null, "updated_at": TIME,
        "web_url": format!("http://{name}.localhost:8080/"),
    })
}

fn release_json(version: i64, current: bool) -> Value {
    json!({
        "addon_plan_names": [], "artifacts": [], "app": {"id": ID, "name": "demo"},
        "created_at": TIME, "description": format!("Release {version}"),
        "id": format!("00000000-0000-0000-0000-00000000000{version}"), "updated_at": TIME,
        "slug": null, "status": "succeeded", "user": {"id": ID, "email": "admin@example.com"},
        "version": version, "current": current, "output_stream_url": null,
        "eligible_for_rollback": true,
    })
}

fn formation_json(process_type: &str, quantity: i64) -> Value {
    json!({
        "app": {"id": ID, "name": "demo"}, "command": "python3 app.py", "created_at": TIME,
        "dyno_size": {"id": ID, "name": "Standard-1X"}, "id": ID, "quantity": quantity,
        "size": "Standard-1X", "type": process_type, "updated_at": TIME,
    })
}

async fn respond(
    fake: Fake,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body_json: Option<Value> = serde_json::from_slice(&body).ok();
    fake.requests.lock().unwrap().push(Recorded {
        method: method.clone(),
        path: uri.path().to_owned(),
        headers,
        body: body_json.clone(),
    });
    let ok = |status: StatusCode, value: Value| (status, axum::Json(value)).into_response();
    match (method.as_str(), uri.path()) {
        ("POST", "/apps") => {
            let name = body_json
                .as_ref()
                .and_then(|b| b.get("name")?.as_str().map(str::to_owned))
                .unwrap_or_else(|| "generated-app-42".to_owned());
            ok(StatusCode::CREATED, app_json(&name))
        }
        ("GET", "/apps/demo/releases") => {
            ok(StatusCode::OK, json!([release_json(2, true), release_json(1, false)]))
        }
        ("POST", "/apps/demo/releases") => ok(StatusCode::CREATED, release_json(3, true)),
        ("PATCH", "/apps/demo/config-vars") => {
            ok(StatusCode::OK, json!({"FOO": "bar", "OTHER": "x"}))
        }
        ("PATCH", "/apps/demo/formation") => ok(
            StatusCode::OK,
            json!([formation_json("web", 2), formation_json("worker", 1)]),
        ),
        ("DELETE", "/apps/demo/formations/web") => ok(StatusCode::ACCEPTED, json!({})),
        ("POST", "/apps/demo/log-sessions") => ok(
            StatusCode::CREATED,
            json!({"id": ID, "created_at": TIME, "updated_at": TIME,
                   "logplex_url": format!("{}/log-stream/secret-token", fake.base)}),
        ),
        ("GET", "/log-stream/secret-token") => (
            [("content-type", "text/event-stream")],
            "id: 1\ndata: 2026-11-26T12:00:00.000000+00:00 app[web.1]: hello\n\n: ping\n\nid: 2\ndata: 2026-11-26T12:00:01.000000+00:00 heroku[router]: at=info\n\n",
        )
            .into_response(),
        _ => ok(
            StatusCode::NOT_FOUND,
            json!({"id": "not_found", "message": "Couldn't find that app."}),
        ),
    }
}

async fn start() -> (Fake, Client) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let fake = Fake {
        base: base.clone(),
        requests: Arc::default(),
    };
    let state = fake.clone();
    let router = Router::new().fallback(move |method, uri, headers, body| {
        respond(state.clone(), method, uri, headers, body)
    });
    tokio::spawn(async move { axum::serve(listener, router).await });
    let client = Client::new(base.parse().unwrap(), "test-key");
    (fake, client)
}

fn app(name: &str) -> AppArg {
    AppArg {
        app: Some(name.to_owned()),
        remote: None,
    }
}

async fn run(client: &Client, command: Command) -> (String, Option<String>) {
    let mut out = Vec::new();
    let result = run_with_client(client, command, &mut out).await;
    (
        String::from_utf8(out).unwrap(),
        result.err().map(|e| format_error(&e)),
    )
}

fn api_requests(fake: &Fake) -> Vec<Recorded> {
    fake.requests.lock().unwrap().clone()
}

#[tokio::test]
async fn every_api_request_carries_v3_accept_and_bearer_key() {
    let (fake, client) = start().await;
    let (out, err) = run(
        &client,
        Command::AppsCreate {
            name: Some("demo".into()),
            region: None,
            stack: None,
            buildpack: None,
            // The test runs inside Slipway's own repository: no remote is added to it.
            no_remote: true,
        },
    )
    .await;
    assert_eq!(err, None);
    assert_eq!(
        out,
        "Creating ⬢ demo... done\nhttp://demo.localhost:8080/ | http://127.0.0.1:5000/demo.git\n"
    );
    let requests = api_requests(&fake);
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/apps")
    );
    assert_eq!(
        request.headers["accept"],
        "application/vnd.heroku+json; version=3"
    );
    assert_eq!(request.headers["authorization"], "Bearer test-key");
    assert_eq!(request.body, Some(json!({"name": "demo"})));
}

#[tokio::test]
async fn create_without_name_sends_empty_object() {
    let (fake, client) = start().await;
    let (out, err) = run(
        &client,
        Command::AppsCreate {
            name: None,
            region: None,
            stack: None,
            buildpack: None,
            // The test runs inside Slipway's own repository: no remote is added to it.
            no_remote: true,
        },
    )
    .await;
    assert_eq!(err, None);
    assert!(
        out.starts_with("Creating app... done, ⬢ generated-app-42\n"),
        "{out}"
    );
    assert_eq!(api_requests(&fake)[0].body, Some(json!({})));
}

#[tokio::test]
async fn api_errors_become_heroku_style_messages() {
    let (_fake, client) = start().await;
    let (out, err) = run(
        &client,
        Command::Config {
            app: app("missing"),
            json: false,
            shell: false,
        },
    )
    .await;
    assert_eq!(out, "");
    assert_eq!(err.as_deref(), Some(" ▸    Couldn't find that app.\n"));
}

#[tokio::test]
async fn config_set_patches_and_reports_new_release() {
    let (fake, client) = start().await;
    let (out, err) = run(
        &client,
        Command::ConfigSet {
            pairs: vec!["FOO=bar".into()],
            app: app("demo"),
        },
    )
    .await;
    assert_eq!(err, None);
    assert_eq!(
        out,
        "Setting FOO and restarting ⬢ demo... done, v2\nFOO: bar\n"
    );
    let requests = api_requests(&fake);
    assert_eq!(requests[0].body, Some(json!({"FOO": "bar"})));
    assert_eq!(requests[1].path, "/apps/demo/releases");
    assert_eq!(
        requests[1].headers["range"],
        "version ..; max=1, order=desc"
    );
}

#[tokio::test]
async fn config_unset_sends_nulls() {
    let (fake, client) = start().await;
    let (out, err) = run(
        &client,
        Command::ConfigUnset {
            keys: vec!["FOO".into(), "BAR".into()],
            app: app("demo"),
        },
    )
    .await;
    assert_eq!(err, None);
    assert_eq!(
        out,
        "Unsetting FOO and BAR and restarting ⬢ demo... done, v2\n"
    );
    assert_eq!(
        api_requests(&fake)[0].body,
        Some(json!({"FOO": null, "BAR": null}))
    );
}

#[tokio::test]
async fn bad_arguments_fail_before_any_request() {
    let (fake, client) = start().await;
    let (_, err) = run(
        &client,
        Command::ConfigSet {
            pairs: vec!["FOO".into()],
            app: app("demo"),
        },
    )
    .await;
    assert_eq!(
        err.as_deref(),
        Some(" ▸    FOO is invalid. Must be in the format FOO=bar.\n")
    );
    let (_, err) = run(
        &client,
        Command::PsScale {
            changes: vec!["web=abc".into()],
            app: app("demo"),
        },
    )
    .await;
    assert_eq!(
        err.as_deref(),
        Some(" ▸    Invalid dyno quantity in \"web=abc\": \"abc\" is not a whole number\n")
    );
    let (_, err) = run(
        &client,
        Command::AppsDestroy {
            name: None,
            app: app("demo"),
            confirm: Some("dmeo".into()),
        },
    )
    .await;
    assert_eq!(
        err.as_deref(),
        Some(" ▸    Confirmation dmeo did not match demo. Aborted.\n")
    );
    assert!(api_requests(&fake).is_empty());
}

#[tokio::test]
async fn scale_sends_batch_update() {
    let (fake, client) = start().await;
    let (out, err) = run(
        &client,
        Command::PsScale {
            changes: vec!["web=2".into(), "worker+1".into()],
            app: app("demo"),
        },
    )
    .await;
    assert_eq!(err, None);
    assert_eq!(
        out,
        "Scaling dynos... done, now running web at 2:Standard-1X, worker at 1:Standard-1X\n"
    );
    let request = &api_requests(&fake)[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("PATCH", "/apps/demo/formation")
    );
    assert_eq!(
        request.body,
        Some(
            json!({"updates": [{"type": "web", "quantity": 2}, {"type": "worker", "quantity": "+1"}]})
        )
    );
}

#[tokio::test]
async fn releases_and_rollback() {
    let (fake, client) = start().await;
    let (out, err) = run(
        &client,
        Command::Releases {
            app: app("demo"),
            num: 5,
            json: false,
        },
    )
    .await;
    assert_eq!(err, None);
    assert!(out.starts_with("=== demo Releases - Current: v2\n\nv2  Release 2  admin@example.com  2026/11/26 12:00:00 +0000\n"), "{out}");
    assert_eq!(
        api_requests(&fake)[0].headers["range"],
        "version ..; max=5, order=desc"
    );

    let (out, err) = run(
        &client,
        Command::ReleasesRollback {
            release: None,
            app: app("demo"),
        },
    )
    .await;
    assert_eq!(err, None);
    assert_eq!(out, "Rolling back ⬢ demo to v1... done, v3\n");
    let requests = api_requests(&fake);
    let post = requests.last().unwrap();
    assert_eq!(
        post.body,
        Some(json!({"release": "00000000-0000-0000-0000-000000000001"}))
    );
}

#[tokio::test]
async fn restart_process_type_uses_formations_route() {
    let (fake, client) = start().await;
    let (out, err) = run(
        &client,
        Command::PsRestart {
            target: DynoTargetArgs {
                target: Some("web".into()),
                dyno: None,
                process_type: None,
            },
            app: app("demo"),
        },
    )
    .await;
    assert_eq!(err, None);
    assert_eq!(out, "Restarting web dynos on ⬢ demo... done\n");
    let request = &api_requests(&fake)[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("DELETE", "/apps/demo/formations/web")
    );
}

#[tokio::test]
async fn logs_open_a_session_and_stream_without_credentials() {
    let (fake, client) = start().await;
    let (out, err) = run(
        &client,
        Command::Logs {
            app: app("demo"),
            num: 50,
            tail: false,
            source: Some("app".into()),
            ps: None,
            dyno: Some("web.1".into()),
        },
    )
    .await;
    assert_eq!(err, None);
    assert_eq!(
        out,
        "2026-11-26T12:00:00.000000+00:00 app[web.1]: hello\n2026-11-26T12:00:01.000000+00:00 heroku[router]: at=info\n"
    );
    let requests = api_requests(&fake);
    assert_eq!(
        requests[0].body,
        Some(json!({"dyno_name": "web.1", "lines": 50, "source": "app", "tail": false}))
    );
    assert_eq!(requests[1].path, "/log-stream/secret-token");
    assert!(!requests[1].headers.contains_key("authorization"));
}
