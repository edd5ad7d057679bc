//! End to end: changes travel as commands into the core, which resolves them inside its
//! transactions. Twenty concurrent `ps:scale web+1` (the heroku CLI's
//! `PATCH /apps/{app}/formation {"updates": [{"type": "web", "quantity": "+1"}]}`) all count.

mod support;

use reqwest::Method;
use support::{repo, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_relative_scales_all_count() {
    require_runc!();
    let server = Server::start();
    server.cli_ok(&["apps:create", "busy"]);
    // Dynos that only sleep: the test is about the formation, not about serving.
    let dir = repo(&[("Procfile", "web: sleep 1000\n")]);
    let pushed = server.push("busy", dir.path());
    assert!(pushed.status.success(), "{}", support::text(&pushed));

    let scales: Vec<_> = (0..20)
        .map(|_| {
            let request = server
                .api(Method::PATCH, "/apps/busy/formation")
                .json(&serde_json::json!({"updates": [{"quantity": "+1", "type": "web"}]}));
            tokio::spawn(async move {
                let response = request.send().await.expect("PATCH formation");
                let status = response.status();
                let body: serde_json::Value = response.json().await.expect("JSON body");
                assert_eq!(status, 200, "{body}");
                assert_eq!(body[0]["type"], "web", "{body}");
                body[0]["quantity"].as_i64().expect("a quantity")
            })
        })
        .collect();
    let mut seen: Vec<i64> = Vec::new();
    for scale in scales {
        seen.push(scale.await.expect("the scale task"));
    }
    // Each change was resolved on the one before it: every writer saw its own quantity.
    seen.sort_unstable();
    assert_eq!(seen, (2..=21).collect::<Vec<i64>>());

    let formation: Vec<serde_json::Value> = server.api_get("/apps/busy/formation").await;
    let web = formation
        .iter()
        .find(|f| f["type"] == "web")
        .expect("web formation");
    assert_eq!(web["quantity"], 21, "{formation:?}");

    // Relative changes never go below zero, and the CLI's signed strings work downwards too.
    let down = server
        .api(Method::PATCH, "/apps/busy/formation")
        .json(&serde_json::json!({"updates": [{"quantity": "-100", "type": "web"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(down.status(), 200);
    let body: serde_json::Value = down.json().await.unwrap();
    assert_eq!(body[0]["quantity"], 0, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_commands_are_refused_with_herokus_bodies() {
    require_runc!();
    let server = Server::start();
    server.cli_ok(&["apps:create", "demo"]);
    for (method, path, body, status, id, message) in [
        (
            Method::PATCH,
            "/apps/demo/formation",
            serde_json::json!({"updates": [{"type": "web", "quantity": 1, "size": "huge"}]}),
            422,
            "invalid_params",
            "Unknown dyno size huge. Use one of: eco, basic, standard-1x, standard-2x, performance-m, performance-l.",
        ),
        (
            Method::PATCH,
            "/apps/demo/config-vars",
            serde_json::json!({"1A": "x"}),
            422,
            "invalid_params",
            "Invalid config var key \"1A\": keys must match ^[A-Za-z_][A-Za-z0-9_]*$ (start with a letter or underscore, then only letters, digits and underscores).",
        ),
        (
            Method::DELETE,
            "/apps/demo/dynos/web.x",
            serde_json::json!({}),
            404,
            "not_found",
            "Couldn't find that dyno.",
        ),
        (
            Method::PATCH,
            "/apps/Not_An_App/config-vars",
            serde_json::json!({"A": "x"}),
            404,
            "not_found",
            "Couldn't find that app.",
        ),
    ] {
        let response = server
            .api(method.clone(), path)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{method} {path}");
        let error: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error["id"], id, "{method} {path}: {error}");
        assert_eq!(error["message"], message, "{method} {path}");
    }
    let created = server
        .api(Method::POST, "/apps")
        .json(&serde_json::json!({"name": "Bad_Name"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 422);
    let error: serde_json::Value = created.json().await.unwrap();
    assert_eq!(error["id"], "invalid_params");
    assert!(
        error["message"].as_str().unwrap().contains("Bad_Name"),
        "{error}"
    );
}
