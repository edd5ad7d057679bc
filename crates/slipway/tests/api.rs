//! End to end: the Platform API's contract — v3 Accept header, authentication on every route,
//! Heroku-style error bodies, resource shapes, and log sessions whose URL carries its own secret.

mod support;

use reqwest::Method;
use support::{expect_api_error, repo, Server, ECHO_APP};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_needs_a_key_and_errors_look_like_herokus() {
    require_runc!();
    let server = Server::start();
    let client = reqwest::Client::new();
    let v3 = "application/vnd.heroku+json; version=3";

    for (method, path) in [
        (Method::GET, "/apps"),
        (Method::POST, "/apps"),
        (Method::GET, "/account"),
        (Method::GET, "/apps/demo"),
        (Method::DELETE, "/apps/demo"),
        (Method::GET, "/apps/demo/releases"),
        (Method::GET, "/apps/demo/formation"),
        (Method::GET, "/apps/demo/dynos"),
        (Method::GET, "/apps/demo/config-vars"),
        (Method::POST, "/apps/demo/log-sessions"),
    ] {
        let response = client
            .request(method.clone(), format!("{}{path}", server.api_url))
            .header("accept", v3)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{method} {path} without a key");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["id"], "unauthorized", "{method} {path}");
        let wrong = client
            .request(method.clone(), format!("{}{path}", server.api_url))
            .header("accept", v3)
            .bearer_auth("wrong-key")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{method} {path} with a wrong key");
    }

    // Any other version of the API is refused (plain JSON and `*/*` get version 3).
    let no_version = client
        .get(format!("{}/apps", server.api_url))
        .header("accept", "application/vnd.heroku+json; version=2")
        .bearer_auth(&server.key)
        .send()
        .await
        .unwrap();
    expect_api_error(no_version, 406, "not_acceptable").await;

    let missing = server
        .api(Method::GET, "/apps/nosuchapp")
        .send()
        .await
        .unwrap();
    let message = expect_api_error(missing, 404, "not_found").await;
    assert!(message.contains("app"));
    // Every app-scoped read, with one path segment after the app or two, answers the same 404
    // for an app that does not exist.
    for path in [
        "/apps/nosuchapp/domains",
        "/apps/nosuchapp/domains/www.example.com",
        "/apps/nosuchapp/log-drains/d.1",
        "/apps/nosuchapp/sni-endpoints",
        "/apps/nosuchapp/builds/1",
        "/apps/nosuchapp/releases/1/config-vars",
        "/apps/nosuchapp/formation/web",
    ] {
        let missing = server.api(Method::GET, path).send().await.unwrap();
        let message = expect_api_error(missing, 404, "not_found").await;
        assert!(message.contains("app"), "{path}: {message}");
    }

    let garbage = server
        .api(Method::POST, "/apps")
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_api_error(garbage, 400, "bad_request").await;
    assert!(account_answers_with_a_request_id(&server).await);
}

async fn account_answers_with_a_request_id(server: &Server) -> bool {
    let response = server.api(Method::GET, "/account").send().await.unwrap();
    let has_id = response.headers().contains_key("request-id");
    let body: serde_json::Value = response.json().await.unwrap();
    has_id && body["email"] == "admin@slipway.local"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_have_herokus_shapes_and_log_sessions_stream() {
    require_runc!();
    let server = Server::start();
    let created = server
        .api(Method::POST, "/apps")
        .json(&serde_json::json!({"name": "shapes"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let app: serde_json::Value = created.json().await.unwrap();
    assert_eq!(app["name"], "shapes");
    assert_eq!(app["git_url"], server.git_url("shapes"));
    assert_eq!(
        app["web_url"],
        format!("http://shapes.localhost:{}/", server.router_port)
    );
    assert_eq!(app["owner"]["email"], "admin@slipway.local");
    assert!(app["stack"]["name"].is_string() && app["region"]["name"].is_string());

    // Before any deploy the router answers H81, and there is no formation.
    let blank = server.get("shapes", "/").await;
    assert_eq!(blank.status(), 503);
    let formation: Vec<serde_json::Value> = server.api_get("/apps/shapes/formation").await;
    assert!(formation.is_empty());

    let dir = repo(&[
        ("Procfile", "web: python3 server.py\nworker: sleep 1000\n"),
        ("server.py", ECHO_APP),
    ]);
    assert!(server.push("shapes", dir.path()).status.success());
    server.wait_for_200("shapes", "/").await;

    let formation: Vec<serde_json::Value> = server.api_get("/apps/shapes/formation").await;
    let web = formation
        .iter()
        .find(|f| f["type"] == "web")
        .expect("web formation");
    let worker = formation
        .iter()
        .find(|f| f["type"] == "worker")
        .expect("worker formation");
    assert_eq!(
        (web["quantity"].as_i64(), worker["quantity"].as_i64()),
        (Some(1), Some(0))
    );
    assert_eq!(web["command"], "python3 server.py");
    assert_eq!(web["size"], "Standard-1X");

    let dynos: Vec<serde_json::Value> = server.api_get("/apps/shapes/dynos").await;
    assert_eq!(dynos.len(), 1);
    assert_eq!(dynos[0]["name"], "web.1");
    assert_eq!(dynos[0]["state"], "up");
    assert_eq!(dynos[0]["release"]["version"], 1);

    let release: serde_json::Value = server.api_get("/apps/shapes/releases/1").await;
    assert_eq!(release["version"], 1);
    assert_eq!(release["current"], true);
    assert_eq!(release["status"], "succeeded");
    assert!(release["description"]
        .as_str()
        .unwrap()
        .starts_with("Deploy "));

    // Scaling web to 0 makes the router answer H14.
    let scaled = server
        .api(Method::PATCH, "/apps/shapes/formation/web")
        .json(&serde_json::json!({"quantity": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(scaled.status(), 200);
    server.wait_for_containers("shapes.web", 0).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let response = server.get("shapes", "/").await;
        if response.status() == 503 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "web=0 never gave 503");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let log = server
        .wait_for_log("shapes", |log| log.contains("code=H14"))
        .await;
    assert!(
        log.contains("heroku[router]: at=error code=H14 desc=\"No web dynos running\""),
        "{log}"
    );
    assert!(
        log.contains("app[api]: Scaled to web@0:Standard-1X by admin@slipway.local"),
        "{log}"
    );

    // A log session: its URL works without credentials, as SSE or plain text, and only with
    // its own secret.
    let session = server
        .api_send(
            Method::POST,
            "/apps/shapes/log-sessions",
            serde_json::json!({"lines": 5, "source": "heroku", "dyno": "router"}),
        )
        .await;
    let url = session["logplex_url"].as_str().unwrap().to_owned();
    let sse = reqwest::Client::new()
        .get(&url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    assert!(sse.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let body = sse.text().await.unwrap();
    let data: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert!(!data.is_empty() && data.len() <= 5, "{body}");
    assert!(
        data.iter().all(|l| l.contains(" heroku[router]: ")),
        "filtered by source and dyno: {body}"
    );
    assert!(body.lines().any(|l| l.starts_with("id: ")), "{body}");
    let plain = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert!(
        plain.lines().all(|l| l.contains(" heroku[router]: ")) && !plain.is_empty(),
        "{plain}"
    );
    let forged = url.split("token=").next().unwrap().to_owned() + "token=forged";
    assert_eq!(reqwest::get(&forged).await.unwrap().status(), 404);

    // Destroying the app stops its dynos and forgets it.
    let deleted = server
        .api(Method::DELETE, "/apps/shapes")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(
        server
            .api(Method::GET, "/apps/shapes")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    server.wait_for_containers("shapes", 0).await;
    assert_eq!(
        server.get("shapes", "/").await.status(),
        404,
        "the router forgets the app"
    );
}
