//! Capability URLs and the rate limit against the real server: a log session's or a build
//! output's URL, made by a collaborator, stops working once the collaborator is removed (the
//! owner's keep working, and a wrong secret finds nothing); and every key of one account
//! takes from that account's one rate-limit bucket, which `/account/rate-limits` reports.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::Server;

/// Adds an account as the admin and returns its API key.
fn add_user(server: &Server, email: &str) -> String {
    let added = server.cli_ok(&["users:add", email]);
    added
        .split("API key (shown once): ")
        .nth(1)
        .unwrap_or_else(|| panic!("no key in {added}"))
        .trim()
        .to_owned()
}

/// A Platform API request as the holder of `key`.
fn api_as(server: &Server, key: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, format!("{}{path}", server.api_url))
        .header("accept", "application/vnd.heroku+json; version=3")
        .bearer_auth(key)
}

/// A GET on a capability URL, with no credentials but the URL's: its status and body.
async fn open(url: &str) -> (StatusCode, String) {
    let response = reqwest::get(url).await.expect("GET the capability URL");
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_collaborators_log_and_build_output_urls_stop_working() {
    // Builds fetch their source from loopback here, which the outbound policy refuses by
    // default.
    let server = Server::start_with(&["--allow-private-urls"]);
    server.cli_ok(&["apps:create", "shared"]);
    let friend = add_user(&server, "friend@example.com");
    let added = server
        .api(Method::POST, "/apps/shared/collaborators")
        .json(&json!({"user": "friend@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);

    // The collaborator opens a log session and starts a build (its source is missing, so it
    // fails at once, and its output is kept).
    let session: Value = api_as(&server, &friend, Method::POST, "/apps/shared/log-sessions")
        .json(&json!({"lines": 10}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let log_url = session["logplex_url"].as_str().unwrap().to_owned();
    let source = support::serve_http(|_| {
        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec()
    });
    let build: Value = api_as(&server, &friend, Method::POST, "/apps/shared/builds")
        .json(&json!({"source_blob": {"url": format!("{source}/missing.tgz")}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let output_url = build["output_stream_url"]
        .as_str()
        .unwrap_or_else(|| panic!("no output URL in {build}"))
        .to_owned();
    let owners: Value = server
        .api_send(
            Method::POST,
            "/apps/shared/log-sessions",
            json!({"lines": 10}),
        )
        .await;
    let owners_url = owners["logplex_url"].as_str().unwrap().to_owned();

    // While they collaborate, their URLs work.
    assert_eq!(open(&log_url).await.0, StatusCode::OK);
    let (status, output) = open(&output_url).await;
    assert_eq!(status, StatusCode::OK, "{output}");
    // A wrong secret finds nothing, whatever it shares with the right one.
    let (prefix, secret) = log_url.rsplit_once("token=").unwrap();
    let mut wrong = secret.to_owned();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'a' { 'b' } else { 'a' });
    assert_eq!(
        open(&format!("{prefix}token={wrong}")).await.0,
        StatusCode::NOT_FOUND
    );
    let (base, _) = output_url.rsplit_once('/').unwrap();
    assert_eq!(
        open(&format!("{base}/{wrong}")).await.0,
        StatusCode::NOT_FOUND
    );

    // The owner removes the collaborator: their URLs are refused from then on, the owner's
    // still work.
    let removed = server
        .api(
            Method::DELETE,
            "/apps/shared/collaborators/friend@example.com",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), StatusCode::OK);
    let (status, body) = open(&log_url).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("no longer have access"), "{body}");
    let (status, body) = open(&output_url).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("no longer have access"), "{body}");
    assert_eq!(open(&owners_url).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_of_an_account_takes_from_its_one_rate_limit_bucket() {
    let server = Server::start_with(&["--api-rate-limit-per-hour", "100"]);
    let first = add_user(&server, "busy@example.com");
    let other = add_user(&server, "other@example.com");
    let created: Value = api_as(&server, &first, Method::POST, "/oauth/authorizations")
        .json(&json!({"description": "second key", "scope": ["global"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let second = created["access_token"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(first, second);
    let remaining = |key: String| {
        let request = api_as(&server, &key, Method::GET, "/account/rate-limits");
        async move {
            let body: Value = request.send().await.unwrap().json().await.unwrap();
            body["remaining"].as_u64().unwrap()
        }
    };

    let before = remaining(first.clone()).await;
    for _ in 0..10 {
        let response = api_as(&server, &second, Method::GET, "/account")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    // Ten requests with the second key show in the first key's report (a request or two of
    // refill may come back meanwhile at 100 an hour: not ten).
    let after = remaining(first.clone()).await;
    assert!(
        before - after >= 9 && before - after <= 10,
        "{before} -> {after}"
    );
    assert_eq!(remaining(second.clone()).await, after);
    // Another account's bucket is untouched.
    assert_eq!(remaining(other.clone()).await, 100);

    // Emptying it through either key refuses the other with 429.
    let mut last = StatusCode::OK;
    for _ in 0..100 {
        last = api_as(&server, &first, Method::GET, "/account")
            .send()
            .await
            .unwrap()
            .status();
        if last == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    let refused = api_as(&server, &second, Method::GET, "/account")
        .send()
        .await
        .unwrap();
    support::expect_api_error(refused, 429, "rate_limit").await;
    let fine = api_as(&server, &other, Method::GET, "/account")
        .send()
        .await
        .unwrap();
    assert_eq!(fine.status(), StatusCode::OK);
}
