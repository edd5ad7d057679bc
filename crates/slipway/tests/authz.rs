//! Authorization end to end, route by route. The matrix comes from Heroku's schema: every link
//! whose href names an app (`authz/schema_app_links.txt`, extracted from
//! `heroku-platform-api-schema.json`; checked against it when the schema is at hand), plus
//! Slipway's own app routes (git, log streams, slug uploads, build outputs, backups). A second
//! user who does not collaborate on the app gets 403 `forbidden` on every route Slipway
//! implements and 404/405 on the others, never data, and no request has an effect. A
//! collaborator deploys and operates but cannot delete, rename or manage collaborators; an
//! admin reads every app; `access:update` and `access:remove` take effect at once. With runc,
//! a collaborator pushes with real git and scales, driven by the real heroku CLI's `access*`.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{text, Server};

/// Heroku's app-scoped links, `METHOD PATH` with `{app}` and `{<resource>}` placeholders.
const SCHEMA_APP_LINKS: &str = include_str!("authz/schema_app_links.txt");

/// Where the shared copy of Heroku's schema lives on a development machine.
const SCHEMA_PATH: &str = "/work/shared/heroku-platform-api-schema.json";

/// The schema's app-scoped links that Slipway serves (the rest must answer 404 or 405).
const IMPLEMENTED: &[&str] = &[
    "GET /apps/{app}",
    "PATCH /apps/{app}",
    "DELETE /apps/{app}",
    "GET /apps/{app}/addon-attachments",
    "GET /apps/{app}/addons",
    "POST /apps/{app}/addons",
    "GET /apps/{app}/addons/{add-on}",
    "PATCH /apps/{app}/addons/{add-on}",
    "DELETE /apps/{app}/addons/{add-on}",
    "GET /apps/{app}/builds",
    "POST /apps/{app}/builds",
    "GET /apps/{app}/builds/{build}",
    "DELETE /apps/{app}/build-cache",
    "GET /apps/{app}/collaborators",
    "POST /apps/{app}/collaborators",
    "GET /apps/{app}/collaborators/{collaborator}",
    "DELETE /apps/{app}/collaborators/{collaborator}",
    "GET /apps/{app}/config-vars",
    "PATCH /apps/{app}/config-vars",
    "GET /apps/{app}/domains",
    "POST /apps/{app}/domains",
    "GET /apps/{app}/domains/{domain}",
    "DELETE /apps/{app}/domains/{domain}",
    "GET /apps/{app}/dynos",
    "POST /apps/{app}/dynos",
    "DELETE /apps/{app}/dynos",
    "GET /apps/{app}/dynos/{dyno}",
    "DELETE /apps/{app}/dynos/{dyno}",
    "POST /apps/{app}/dynos/{dyno}/actions/stop",
    "GET /apps/{app}/formation",
    "PATCH /apps/{app}/formation",
    "GET /apps/{app}/formation/{formation}",
    "PATCH /apps/{app}/formation/{formation}",
    "DELETE /apps/{app}/formations/{dyno}",
    "POST /apps/{app}/formations/{dyno}/actions/stop",
    "GET /apps/{app}/log-drains",
    "POST /apps/{app}/log-drains",
    "GET /apps/{app}/log-drains/{log-drain}",
    "DELETE /apps/{app}/log-drains/{log-drain}",
    "POST /apps/{app}/log-sessions",
    "GET /apps/{app}/releases",
    "POST /apps/{app}/releases",
    "GET /apps/{app}/releases/{release}",
    "GET /apps/{app}/releases/{release}/config-vars",
    "POST /apps/{app}/slugs",
    "GET /apps/{app}/slugs/{slug}",
    "GET /apps/{app}/sni-endpoints",
    "POST /apps/{app}/sni-endpoints",
    "GET /apps/{app}/sni-endpoints/{sni-endpoint}",
    "PATCH /apps/{app}/sni-endpoints/{sni-endpoint}",
    "DELETE /apps/{app}/sni-endpoints/{sni-endpoint}",
    "GET /apps/{app}/available-stacks",
    "GET /apps/{app}/buildpack-installations",
    "PUT /apps/{app}/buildpack-installations",
    "PATCH /apps/{app}/domains/{domain}",
    "GET /apps/{app}/features",
    "GET /apps/{app}/features/{app-feature}",
    "PATCH /apps/{app}/features/{app-feature}",
    // Served: checks access, then answers 404 (Slipway has no pipelines).
    "GET /apps/{app}/pipeline-couplings",
    // Served: checks access, then answers an empty list (Slipway has no webhooks).
    "GET /apps/{app}/webhooks",
];

/// Slipway's own app routes (not in Heroku's schema), all implemented.
const SLIPWAY_APP_ROUTES: &[&str] = &[
    "PATCH /apps/{app}/collaborators/{collaborator}",
    "GET /apps/{app}/addons/{add-on}/backups",
    "POST /apps/{app}/addons/{add-on}/backups",
    "GET /apps/{app}/addons/{add-on}/backups/{backup}",
    "DELETE /apps/{app}/addons/{add-on}/backups/{backup}",
    "GET /apps/{app}/addons/{add-on}/backups/{backup}/dump",
    "POST /apps/{app}/addons/{add-on}/actions/restore",
    "PUT /apps/{app}/addons/{add-on}/backup-schedule",
    "DELETE /apps/{app}/addons/{add-on}/backup-schedule",
    "GET /apps/{app}/backup-schedules",
    "GET /apps/{app}/addons/{add-on}/redis-info",
    // Heroku Data's transfers (`heroku pg:backups` with HEROKU_DATA_HOST pointed here).
    "GET /client/v11/apps/{app}/transfers",
];

/// The secret config value the owner sets: no answer to anyone else may contain it.
const SECRET: &str = "owner-secret-value-7f3a";

/// Creates a (non-admin) user through `Platform::create_user` on the server's own store and
/// returns their API key. The server keeps no cache of users, so it sees them at once.
async fn create_user(server: &Server, email: &str) -> String {
    let key = format!("test-key-{}", uuid::Uuid::new_v4().simple());
    let store = slipway_store::SqliteStore::open(
        &server.data_dir.join("slipway.db"),
        slipway_store::StoreOptions::default()
            .immutable_prefix("releases/")
            .immutable_prefix("slugs/"),
    )
    .expect("open the server's store");
    let scratch = tempfile::tempdir().unwrap();
    let platform = slipway_core::Platform::open(
        slipway_core::PlatformConfig::new(scratch.path().to_owned()),
        store,
        Arc::new(slipway_runtime::ProcessRuntime::new()),
        slipway_logplex::LogHub::default(),
    )
    .await
    .expect("a platform on the server's store");
    platform.create_user(email, &key).await.expect("a new user");
    key
}

/// A Platform API request with the v3 Accept header and `key`.
fn api_as(server: &Server, key: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, format!("{}{path}", server.api_url))
        .header("accept", "application/vnd.heroku+json; version=3")
        .bearer_auth(key)
}

async fn send(
    server: &Server,
    key: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, String) {
    let mut request = api_as(server, key, method, path);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("API request");
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

/// `METHOD PATH` lines of a list, comments and blank lines skipped.
fn links(list: &str) -> Vec<(Method, String)> {
    list.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (method, path) = line.split_once(' ').expect("METHOD PATH");
            (method.parse().expect("a method"), path.to_owned())
        })
        .collect()
}

/// The schema's app-scoped links, as the fixture lists them.
fn schema_links_from(schema: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for definition in schema["definitions"].as_object().unwrap().values() {
        for link in definition["links"].as_array().into_iter().flatten() {
            let href = link["href"].as_str().unwrap_or_default();
            let href = href
                .replace("%23", "#")
                .replace("%2F", "/")
                .replace("%2f", "/");
            if !href.contains("{(#/definitions/app/definitions/identity)}") {
                continue;
            }
            let path = fill_placeholders(
                &href.replace("{(#/definitions/app/definitions/identity)}", "{app}"),
            );
            out.insert(format!("{} {path}", link["method"].as_str().unwrap()));
        }
    }
    out
}

/// `{(#/definitions/<resource>/definitions/<x>)}` → `{<resource>}`.
fn fill_placeholders(href: &str) -> String {
    let mut out = String::new();
    let mut rest = href;
    while let Some(start) = rest.find("{(#/definitions/") {
        out.push_str(&rest[..start]);
        let after = &rest[start + "{(#/definitions/".len()..];
        let resource = after.split('/').next().unwrap_or_default();
        out.push_str(&format!("{{{resource}}}"));
        let end = after.find(")}").expect("a closed placeholder");
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

#[test]
fn the_fixture_is_the_schemas_list_of_app_links() {
    let fixture: BTreeSet<String> = links(SCHEMA_APP_LINKS)
        .into_iter()
        .map(|(method, path)| format!("{method} {path}"))
        .collect();
    assert!(fixture.len() >= 80, "{}", fixture.len());
    for route in IMPLEMENTED {
        assert!(
            fixture.contains(*route),
            "{route} is not in the schema's list"
        );
    }
    // On a machine with the shared copy of the schema, the fixture must be exactly its list.
    let Ok(schema) = std::fs::read_to_string(SCHEMA_PATH) else {
        eprintln!("{SCHEMA_PATH} is absent: checked the committed list only");
        return;
    };
    let schema: Value = serde_json::from_str(&schema).unwrap();
    assert_eq!(schema_links_from(&schema), fixture);
}

/// What the owner's app looks like, to compare before and after the stranger's requests.
async fn snapshot(server: &Server, app: &str) -> Value {
    let mut out = serde_json::Map::new();
    for part in [
        "",
        "/config-vars",
        "/releases",
        "/formation",
        "/domains",
        "/log-drains",
        "/collaborators",
        "/dynos",
        "/sni-endpoints",
        "/addons",
        "/builds",
    ] {
        let (status, body) = send(
            server,
            &server.key,
            Method::GET,
            &format!("/apps/{app}{part}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "GET /apps/{app}{part}: {body}");
        let mut value: Value = serde_json::from_str(&body).unwrap();
        if part.is_empty() {
            // Only what a request could change: not timestamps that move on their own.
            value = json!({"name": value["name"], "maintenance": value["maintenance"], "id": value["id"]});
        }
        out.insert(part.to_owned(), value);
    }
    Value::Object(out)
}

/// The path with its placeholders filled with things that exist on the owner's app.
fn fill(path: &str, app: &str, drain_token: &str) -> String {
    path.replace("{app}", app)
        .replace("{add-on-attachment}", "DATABASE")
        .replace("{add-on}", "DATABASE")
        .replace("{build}", "01234567-89ab-cdef-0123-456789abcdef")
        .replace("{slug}", "01234567-89ab-cdef-0123-456789abcdef")
        .replace("{collaborator}", "friend@example.com")
        .replace("{domain}", "www.authz.example.com")
        .replace("/dynos/{dyno}", "/dynos/web.1")
        .replace("/formations/{dyno}", "/formations/web")
        .replace("{formation}", "web")
        .replace("{log-drain}", drain_token)
        .replace("{release}", "1")
        .replace("{backup}", "b001")
        .replace("{app-feature}", "preboot")
        .replace(['{', '}'], "")
}

/// A body that would change something if the route let it through.
fn body_for(method: &Method, path: &str) -> Option<Value> {
    if *method == Method::GET || *method == Method::DELETE {
        return None;
    }
    let tail = path.rsplit('/').next().unwrap_or_default();
    Some(match tail {
        "config-vars" => json!({"STOLEN": "1", "SECRET": null}),
        "domains" => json!({"hostname": "evil.example.com", "sni_endpoint": null}),
        "log-drains" => json!({"url": "syslog://evil.example.com:514"}),
        "formation" => json!({"updates": [{"type": "web", "quantity": 3}]}),
        "web" => json!({"quantity": 3}),
        "dynos" => json!({"command": "env", "attach": true}),
        "collaborators" => json!({"user": "stranger@example.com"}),
        "log-sessions" => json!({"lines": 10, "tail": false}),
        "releases" => json!({"release": "1"}),
        "builds" => json!({"source_blob": {"url": "https://example.com/x.tgz"}}),
        "slugs" => json!({"process_types": {"web": "sleep 1"}}),
        "addons" => json!({"plan": "heroku-postgresql"}),
        "friend@example.com" => json!({"permissions": ["view", "deploy", "operate"]}),
        "backup-schedule" => json!({"at": "02:00 UTC"}),
        "buildpack-installations" => json!({"updates": [{"buildpack": "heroku/python"}]}),
        "preboot" => json!({"enabled": false}),
        "www.authz.example.com" => json!({"sni_endpoint": null}),
        _ if path.ends_with(&format!("/apps/{tail}")) => json!({"maintenance": true}),
        _ => json!({}),
    })
}

/// The stranger's answer: 403 `forbidden` on a route Slipway serves, 404/405 on one it does
/// not; a Heroku error body; nothing of the app's data.
fn check_refused(route: &str, implemented: bool, status: StatusCode, body: &str, leaks: &[&str]) {
    let error: Value = serde_json::from_str(body)
        .unwrap_or_else(|_| panic!("{route}: not a JSON error body ({status}): {body}"));
    assert!(
        error["id"].is_string() && error["message"].is_string(),
        "{route}: {body}"
    );
    if implemented {
        assert_eq!(status, StatusCode::FORBIDDEN, "{route}: {body}");
        assert_eq!(error["id"], "forbidden", "{route}: {body}");
    } else {
        assert!(
            matches!(
                status,
                StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
            ),
            "{route} is not served by Slipway, yet answered {status}: {body}"
        );
    }
    for leak in leaks {
        assert!(!body.contains(leak), "{route} leaked {leak}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_gets_403_or_404_and_no_effect_on_every_app_route() {
    let server = Server::start();
    let stranger = create_user(&server, "stranger@example.com").await;
    create_user(&server, "friend@example.com").await;
    let app = "authz-owned";
    server.cli_ok(&["apps:create", app]);
    let owner = server.key.clone();
    let setup: [(Method, String, Value); 4] = [
        (
            Method::PATCH,
            format!("/apps/{app}/config-vars"),
            json!({"SECRET": SECRET}),
        ),
        (
            Method::POST,
            format!("/apps/{app}/domains"),
            json!({"hostname": "www.authz.example.com"}),
        ),
        (
            Method::POST,
            format!("/apps/{app}/log-drains"),
            json!({"url": "syslog://logs.example.com:514"}),
        ),
        (
            Method::POST,
            format!("/apps/{app}/collaborators"),
            json!({"user": "friend@example.com"}),
        ),
    ];
    for (method, path, body) in &setup {
        let (status, text) = send(&server, &owner, method.clone(), path, Some(body)).await;
        assert!(status.is_success(), "{method} {path}: {status} {text}");
    }
    let drains: Value = server.api_json(&format!("/apps/{app}/log-drains")).await;
    let drain_token = drains[0]["token"].as_str().unwrap().to_owned();
    let app_json: Value = server.api_json(&format!("/apps/{app}")).await;
    let app_id = app_json["id"].as_str().unwrap().to_owned();
    let before = snapshot(&server, app).await;
    let leaks = [
        SECRET,
        drain_token.as_str(),
        "friend@example.com\"",
        "logs.example.com",
    ];

    let implemented: BTreeSet<&str> = IMPLEMENTED
        .iter()
        .chain(SLIPWAY_APP_ROUTES)
        .copied()
        .collect();
    let mut routes = links(SCHEMA_APP_LINKS);
    routes.extend(links(&SLIPWAY_APP_ROUTES.join("\n")));
    let mut checked = 0;
    for (method, template) in &routes {
        let route = format!("{method} {template}");
        let served = implemented.contains(route.as_str());
        // By name and by id: both name the app.
        for name in [app, app_id.as_str()] {
            let path = fill(template, name, &drain_token);
            let body = body_for(method, &path);
            let (status, text) =
                send(&server, &stranger, method.clone(), &path, body.as_ref()).await;
            check_refused(&format!("{route} ({path})"), served, status, &text, &leaks);
            checked += 1;
        }
        // A route Slipway does not serve answers 404/405 to the owner too.
        if !served {
            let path = fill(template, app, &drain_token);
            let body = body_for(method, &path);
            let (status, text) = send(&server, &owner, method.clone(), &path, body.as_ref()).await;
            assert!(
                matches!(
                    status,
                    StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
                ),
                "{route} for the owner: {status} {text}"
            );
        }
    }
    assert!(checked >= 170, "{checked} requests");

    // Slipway's own routes: git over smart HTTP, with the stranger's key.
    let http = reqwest::Client::new();
    for (method, path) in [
        (
            Method::GET,
            format!("/{app}.git/info/refs?service=git-upload-pack"),
        ),
        (
            Method::GET,
            format!("/{app}.git/info/refs?service=git-receive-pack"),
        ),
        (Method::POST, format!("/{app}.git/git-upload-pack")),
        (Method::POST, format!("/{app}.git/git-receive-pack")),
    ] {
        let response = http
            .request(method.clone(), format!("{}{path}", server.api_url))
            .basic_auth("heroku", Some(&stranger))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
        assert!(body.contains("You do not have access to the app"), "{body}");
    }
    // Real git: neither a clone nor a push gets through.
    let work = tempfile::tempdir().unwrap();
    let url = server
        .git_url(app)
        .replacen("http://", &format!("http://heroku:{stranger}@"), 1);
    let clone = support::git(work.path(), &["clone", &url, "stolen"]);
    assert!(!clone.status.success(), "{}", text(&clone));
    assert!(
        text(&clone).contains("403") || text(&clone).contains("access"),
        "{}",
        text(&clone)
    );
    let repo = support::repo(&[("Procfile", "web: sleep 1000\n")]);
    let push = server.push_with_key(app, repo.path(), &stranger);
    assert!(!push.status.success(), "{}", text(&push));
    // Capability URLs: without the unguessable secret they answer 404.
    for (method, path) in [
        (
            Method::PUT,
            "/slug-uploads/0123456789abcdef0123456789abcdef".to_owned(),
        ),
        (
            Method::GET,
            "/build-outputs/0123456789abcdef0123456789abcdef".to_owned(),
        ),
        (
            Method::GET,
            format!("/log-sessions/{}?token=guess", uuid::Uuid::new_v4()),
        ),
    ] {
        let status = api_as(&server, &stranger, method.clone(), &path)
            .send()
            .await
            .unwrap()
            .status();
        assert!(
            matches!(status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN),
            "{method} {path}: {status}"
        );
    }
    // The stranger's own list shows nothing of the owner's.
    let (_, list) = send(&server, &stranger, Method::GET, "/apps", None).await;
    assert_eq!(serde_json::from_str::<Value>(&list).unwrap(), json!([]));

    // Nothing changed: config, releases, formation, domains, drains, collaborators, dynos.
    assert_eq!(snapshot(&server, app).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collaborator_deploys_and_operates_but_does_not_manage() {
    let server = Server::start();
    let friend = create_user(&server, "friend@example.com").await;
    let app = "authz-shared";
    server.cli_ok(&["apps:create", app]);
    let added = server.cli_ok(&["access:add", "friend@example.com", "-a", app]);
    assert!(
        added.contains("Adding friend@example.com access to the app authz-shared"),
        "{added}"
    );
    let list = server.cli_ok(&["access", "-a", app]);
    assert!(list.contains("=== authz-shared Access List"), "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with("admin@") || l.contains(" owner ")),
        "{list}"
    );
    assert!(
        list.lines().any(|l| l.starts_with("friend@example.com")
            && l.contains("collaborator")
            && l.contains("deploy")),
        "{list}"
    );
    // Heroku's shape: the owner first with role owner, then the collaborator.
    let members = server.api_json(&format!("/apps/{app}/collaborators")).await;
    assert_eq!(members[0]["role"], "owner", "{members}");
    assert_eq!(members[1]["role"], "collaborator", "{members}");
    assert_eq!(
        members[1]["user"]["email"], "friend@example.com",
        "{members}"
    );
    assert_eq!(members[1]["app"]["name"], app, "{members}");
    assert_eq!(members[1]["user"]["federated"], false, "{members}");

    // The collaborator sees the app in their list, with its real owner, and may read and
    // configure it.
    let (_, mine) = send(&server, &friend, Method::GET, "/apps", None).await;
    assert!(mine.contains("\"authz-shared\""), "{mine}");
    let (_, shown) = send(&server, &friend, Method::GET, &format!("/apps/{app}"), None).await;
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["owner"]["email"], "admin@slipway.local", "{shown}");
    let (status, body) = send(
        &server,
        &friend,
        Method::PATCH,
        &format!("/apps/{app}/config-vars"),
        Some(&json!({"BY_FRIEND": "yes"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = send(
        &server,
        &friend,
        Method::PATCH,
        &format!("/apps/{app}"),
        Some(&json!({"maintenance": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        server.api_json(&format!("/apps/{app}")).await["maintenance"],
        true
    );

    // Managing is the owner's: delete, rename, collaborators (each refused, nothing changes).
    for (method, path, body) in [
        (Method::DELETE, format!("/apps/{app}"), None),
        (
            Method::PATCH,
            format!("/apps/{app}"),
            Some(json!({"name": "authz-renamed"})),
        ),
        (
            Method::POST,
            format!("/apps/{app}/collaborators"),
            Some(json!({"user": "admin@example.com"})),
        ),
        (
            Method::PATCH,
            format!("/apps/{app}/collaborators/friend@example.com"),
            Some(json!({"permissions": ["view"]})),
        ),
        (
            Method::DELETE,
            format!("/apps/{app}/collaborators/friend@example.com"),
            None,
        ),
    ] {
        let (status, text) = send(&server, &friend, method.clone(), &path, body.as_ref()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {text}");
        let error: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(error["id"], "forbidden");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("manage permission"),
            "{text}"
        );
    }
    assert_eq!(server.api_json(&format!("/apps/{app}")).await["name"], app);
    assert_eq!(
        server
            .api_json(&format!("/apps/{app}/collaborators"))
            .await
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Narrowed to view, config changes are refused; the owner still may.
    let updated = server.cli_ok(&[
        "access:update",
        "friend@example.com",
        "--permissions",
        "view",
        "-a",
        app,
    ]);
    assert!(updated.contains("view"), "{updated}");
    let releases = server
        .api_json(&format!("/apps/{app}/releases"))
        .await
        .as_array()
        .unwrap()
        .len();
    let (status, body) = send(
        &server,
        &friend,
        Method::PATCH,
        &format!("/apps/{app}/config-vars"),
        Some(&json!({"AGAIN": "no"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("deploy permission"), "{body}");
    assert_eq!(
        server
            .api_json(&format!("/apps/{app}/releases"))
            .await
            .as_array()
            .unwrap()
            .len(),
        releases
    );
    let (status, _) = send(
        &server,
        &friend,
        Method::GET,
        &format!("/apps/{app}/config-vars"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // Removed, they are a stranger again.
    let removed = server.cli_ok(&["access:remove", "friend@example.com", "-a", app]);
    assert!(
        removed.contains("Removing friend@example.com access"),
        "{removed}"
    );
    let (status, body) = send(
        &server,
        &friend,
        Method::GET,
        &format!("/apps/{app}/config-vars"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(!body.contains("BY_FRIEND"), "{body}");

    // Adding an unknown user says so and adds nothing.
    let unknown = server.cli(&["access:add", "nobody@example.com", "-a", app]);
    assert!(!unknown.status.success());
    assert!(
        text(&unknown).contains("Couldn't find that user"),
        "{}",
        text(&unknown)
    );
    assert_eq!(
        server
            .api_json(&format!("/apps/{app}/collaborators"))
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // An admin reads every app, also one a plain user created; deleting the app drops its
    // collaborators with it.
    let (status, body) = send(
        &server,
        &friend,
        Method::POST,
        "/apps",
        Some(&json!({"name": "friends-own"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let admin_view = server.api_json("/apps/friends-own/config-vars").await;
    assert!(admin_view.is_object(), "{admin_view}");
    let all = server.api_json("/apps").await;
    assert!(all.to_string().contains("\"friends-own\""), "{all}");
    let (status, body) = send(
        &server,
        &friend,
        Method::POST,
        "/apps/friends-own/collaborators",
        Some(&json!({"user": "stranger@nowhere.example"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

/// `heroku access`, `access:add` and `access:remove` from the real CLI, and what they do: the
/// added user's key pushes with git and scales; once removed, it gets 403 again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_heroku_cli_grants_and_revokes_access() {
    require_runc!();
    let server = Server::start();
    let friend = create_user(&server, "other@example.com").await;
    let home = tempfile::tempdir().unwrap();
    let repo = support::echo_app_repo();
    support::heroku_cli();
    let app = "authz-cli";
    server.cli_ok(&["apps:create", app]);

    // Before: the other user's key gets nowhere.
    let push = server.push_with_key(app, repo.path(), &friend);
    assert!(!push.status.success(), "{}", text(&push));
    assert!(
        text(&push).contains("You do not have access to the app authz-cli"),
        "{}",
        text(&push)
    );

    let add = server.heroku(
        home.path(),
        repo.path(),
        &["access:add", "other@example.com", "-a", app],
    );
    assert!(add.status.success(), "{}\n{}", text(&add), server.log());
    let list = server.heroku(home.path(), repo.path(), &["access", "-a", app]);
    assert!(list.status.success(), "{}", text(&list));
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(listed.contains("other@example.com"), "{listed}");
    assert!(listed.contains("collaborator"), "{listed}");
    assert!(listed.contains("owner"), "{listed}");

    // The collaborator deploys with real git and scales.
    let push = server.push_with_key(app, repo.path(), &friend);
    assert!(push.status.success(), "{}\n{}", text(&push), server.log());
    server.wait_for_200(app, "/").await;
    let (status, body) = send(
        &server,
        &friend,
        Method::PATCH,
        &format!("/apps/{app}/formation/web"),
        Some(&json!({"quantity": 2})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.wait_for_containers(app, 2).await;
    let releases = server.api_json(&format!("/apps/{app}/releases")).await;
    let last = releases.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["user"]["email"], "other@example.com", "{releases}");

    let remove = server.heroku(
        home.path(),
        repo.path(),
        &["access:remove", "other@example.com", "-a", app],
    );
    assert!(remove.status.success(), "{}", text(&remove));
    let (status, body) = send(
        &server,
        &friend,
        Method::PATCH,
        &format!("/apps/{app}/formation/web"),
        Some(&json!({"quantity": 0})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        server.api_json(&format!("/apps/{app}/formation/web")).await["quantity"],
        2
    );
    let push = server.push_with_key(app, repo.path(), &friend);
    assert!(!push.status.success(), "{}", text(&push));
}
