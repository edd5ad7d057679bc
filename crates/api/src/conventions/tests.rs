//! The conventions, each as a pure function and through a small router of stand-in handlers
//! wrapped exactly as the API's routes are.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Request, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tower::ServiceExt;

use super::*;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

#[test]
fn version_3_json_and_anything_are_accepted_other_versions_are_not() {
    for (accept, accepted) in [
        (Some("application/vnd.heroku+json; version=3"), true),
        (Some("application/vnd.heroku+json; version=3.sdk"), true),
        (
            Some("application/vnd.heroku+json; version=3.run-inside"),
            true,
        ),
        (
            Some("application/json, application/vnd.heroku+json; version=3"),
            true,
        ),
        (Some("application/json"), true),
        (Some("*/*"), true),
        (None, true),
        (Some("application/vnd.heroku+json; version=2"), false),
        (Some("application/vnd.heroku+json; version=30"), false),
        (Some("application/vnd.heroku+json"), false),
        (Some("text/html"), false),
    ] {
        let map = match accept {
            Some(accept) => headers(&[("accept", accept)]),
            None => HeaderMap::new(),
        };
        assert_eq!(accept::acceptable(&map), accepted, "{accept:?}");
    }
}

#[test]
fn request_ids_are_echoed_when_sane_and_made_otherwise() {
    let cli = "1b2c3d4e-0000-4000-8000-000000000001,9f9f9f9f-0000-4000-8000-000000000002";
    assert_eq!(
        request_id::request_id_for(&headers(&[("request-id", cli)])),
        "1b2c3d4e-0000-4000-8000-000000000001"
    );
    for hostile in ["", "a b", "<script>", &"x".repeat(201)] {
        let made = request_id::request_id_for(&headers(&[("request-id", hostile)]));
        assert!(made.parse::<uuid::Uuid>().is_ok(), "{hostile:?} -> {made}");
    }
    let made = request_id::request_id_for(&HeaderMap::new());
    assert!(made.parse::<uuid::Uuid>().is_ok());
}

fn items(count: usize, key: &str) -> Vec<Value> {
    (1..=count)
        .map(|n| json!({"id": format!("id-{n:04}"), key: n}))
        .collect()
}

fn keys_of(page: &lists::Page, key: &str) -> Vec<i64> {
    page.items
        .iter()
        .map(|item| item[key].as_i64().unwrap())
        .collect()
}

#[test]
fn the_clis_ranges_page_as_it_expects() {
    let keys = lists::sort_keys("/apps/demo/releases");
    assert_eq!(keys, ["version", "id"]);
    let releases = items(20, "version");
    let page = lists::paginate(
        releases.clone(),
        Some("version ..; order=desc,max=1"),
        keys,
        1000,
    )
    .unwrap();
    assert_eq!(keys_of(&page, "version"), [20]);
    assert_eq!(
        page.next.as_ref().map(ToString::to_string).as_deref(),
        Some("version ]20..; max=1, order=desc")
    );
    let page = lists::paginate(
        releases.clone(),
        Some("version ..; max=15, order=desc"),
        keys,
        1000,
    )
    .unwrap();
    assert_eq!(
        keys_of(&page, "version"),
        (6..=20).rev().collect::<Vec<_>>()
    );
    let page = lists::paginate(
        releases.clone(),
        Some("version ]6..; max=15, order=desc"),
        keys,
        1000,
    )
    .unwrap();
    assert_eq!(keys_of(&page, "version"), (1..=5).rev().collect::<Vec<_>>());
    assert!(page.next.is_none(), "the last page has no Next-Range");
    let page = lists::paginate(releases.clone(), Some(""), keys, 1000).unwrap();
    assert_eq!(keys_of(&page, "version"), (1..=20).collect::<Vec<_>>());
    assert!(page.next.is_none() && !page.changed);
    let page = lists::paginate(releases.clone(), Some("version 3..7"), keys, 1000).unwrap();
    assert_eq!(keys_of(&page, "version"), [3, 4, 5, 6, 7]);
    // Versions compare as numbers, not as text (10 after 9).
    let page = lists::paginate(releases, Some("version ]8..10"), keys, 1000).unwrap();
    assert_eq!(keys_of(&page, "version"), [9, 10]);

    // The server's page limit cuts what the CLI asks for, and the next page says so.
    let page = lists::paginate(items(3, "n"), Some("id ..; max=1000;"), &["id"], 2).unwrap();
    assert_eq!(page.items.len(), 2);
    assert_eq!(
        page.next.as_ref().map(ToString::to_string).as_deref(),
        Some("id ]id-0002..; max=2")
    );

    let domains = lists::sort_keys("/apps/demo/domains");
    assert_eq!(domains, ["id", "hostname"]);
    let page = lists::paginate(items(3, "n"), Some("id ..; max=1000;"), domains, 1000).unwrap();
    assert_eq!(page.items.len(), 3);
    assert!(page.next.is_none());
}

#[test]
fn bad_ranges_and_unknown_keys_are_416() {
    let keys = lists::sort_keys("/apps");
    assert_eq!(keys, ["id", "name"]);
    for header in [
        "id ..; max=0",
        "id ..; order=sideways",
        "id 3-7",
        "version ..; max=10",
        "created_at ..",
    ] {
        let error = lists::paginate(items(3, "n"), Some(header), keys, 1000).expect_err(header);
        assert_eq!(error.status, StatusCode::RANGE_NOT_SATISFIABLE, "{header}");
        assert_eq!(error.id, "requested_range_not_satisfiable", "{header}");
    }
}

#[test]
fn etags_are_strong_digests_and_if_none_match_matches_them() {
    let tag = lists::etag(b"[1,2]");
    assert!(tag.starts_with('"') && tag.ends_with('"') && !tag.starts_with("W/"));
    assert_ne!(tag, lists::etag(b"[1,2,3]"));
    assert!(lists::none_match(
        &headers(&[("if-none-match", &tag)]),
        &tag
    ));
    let weak = format!("W/{tag}");
    let listed = format!("\"other\", {weak}");
    assert!(lists::none_match(
        &headers(&[("if-none-match", &listed)]),
        &tag
    ));
    assert!(lists::none_match(&headers(&[("if-none-match", "*")]), &tag));
    assert!(!lists::none_match(
        &headers(&[("if-none-match", "\"other\"")]),
        &tag
    ));
    assert!(!lists::none_match(&HeaderMap::new(), &tag));
}

#[test]
fn buckets_empty_and_refill() {
    let limiter = RateLimiter::new(3600);
    let start = Instant::now();
    assert_eq!(limiter.take("a", start), Ok(3599));
    assert_eq!(limiter.remaining("a", start), 3599);
    assert_eq!(limiter.remaining("b", start), 3600, "buckets are per key");
    let small = RateLimiter::new(2);
    assert_eq!(small.take("a", start), Ok(1));
    assert_eq!(small.take("a", start), Ok(0));
    let wait = small.take("a", start).expect_err("the bucket is empty");
    assert!(wait > Duration::from_secs(1000), "{wait:?}");
    // Two per hour: one is back after half an hour.
    assert_eq!(small.take("a", start + Duration::from_secs(1801)), Ok(0));
}

#[test]
fn bucket_keys_hold_no_credential() {
    let bearer = headers(&[("authorization", "Bearer secret-key")]);
    let key = rate_limit::bucket_key(&bearer, None, "/apps");
    assert!(key.starts_with("key:") && !key.contains("secret"), "{key}");
    let basic = headers(&[("authorization", "Basic OnNlY3JldC1rZXk=")]);
    assert_eq!(
        rate_limit::bucket_key(&basic, None, "/x"),
        key,
        "one key, one bucket"
    );
    let peer = "127.0.0.1:4000".parse().ok();
    assert_eq!(
        rate_limit::bucket_key(&HeaderMap::new(), peer, "/x"),
        "peer:127.0.0.1"
    );
    let path = rate_limit::bucket_key(&HeaderMap::new(), None, "/log-sessions/s3cret");
    assert!(
        path.starts_with("path:") && !path.contains("s3cret"),
        "{path}"
    );
}

#[tokio::test]
async fn two_keys_of_one_account_share_its_bucket() {
    use futures::FutureExt;
    // `alice-1` and `alice-2` are Alice's keys; `bob` is Bob's; anything else is no key.
    let account_of: rate_limit::AccountOf = std::sync::Arc::new(|key: String| {
        async move {
            match key.as_str() {
                "alice-1" | "alice-2" => Some("alice".to_owned()),
                "bob" => Some("bob".to_owned()),
                _ => None,
            }
        }
        .boxed()
    });
    let limiter = RateLimiter::new(10).with_account_of(account_of);
    let bucket = |key: &str| {
        let limiter = limiter.clone();
        let headers = headers(&[("authorization", format!("Bearer {key}").as_str())]);
        async move { limiter.bucket_for(&headers, None, "/apps").await }
    };
    let (one, two, bob) = (
        bucket("alice-1").await,
        bucket("alice-2").await,
        bucket("bob").await,
    );
    assert_eq!(one, two, "one account, one bucket");
    assert_ne!(one, bob);
    assert!(!one.contains("alice-1"), "{one}");
    // A credential of no account keeps a bucket of its own, holding no secret.
    let stranger = bucket("not-a-key").await;
    assert!(stranger.starts_with("key:"), "{stranger}");
    assert!(!stranger.contains("not-a-key"), "{stranger}");
    // Requests through either key empty the one bucket; Bob's is untouched.
    let now = Instant::now();
    for _ in 0..5 {
        limiter.take(&bucket("alice-1").await, now).unwrap();
        limiter.take(&bucket("alice-2").await, now).unwrap();
    }
    assert!(limiter.take(&bucket("alice-2").await, now).is_err());
    assert_eq!(limiter.remaining(&bucket("alice-1").await, now), 0);
    assert_eq!(limiter.remaining(&bob, now), 10);
    // Without a resolver (before this change), each key had its own bucket.
    let per_key = RateLimiter::new(10);
    let a = per_key
        .bucket_for(&headers(&[("authorization", "Bearer alice-1")]), None, "/x")
        .await;
    let b = per_key
        .bucket_for(&headers(&[("authorization", "Bearer alice-2")]), None, "/x")
        .await;
    assert_ne!(a, b);
}

/// A router of stand-ins wrapped as the API's routes are: 250 apps, 250 releases, one app,
/// and a POST taking JSON through axum's own extractor.
fn stand_ins(per_hour: u32) -> Router {
    let apps: Vec<Value> = (1..=250)
        .map(|n| json!({"id": format!("00000000-0000-4000-8000-{n:012}"), "name": format!("app-{n:03}")}))
        .collect();
    let releases: Vec<Value> = (1..=250)
        .map(|n| json!({"id": format!("r-{n}"), "version": n}))
        .collect();
    let platform_api = Router::new()
        .route("/apps", get(move || async move { Json(apps.clone()) }))
        .route(
            "/apps/demo/releases",
            get(move || async move { Json(releases.clone()) }),
        )
        .route(
            "/apps/demo",
            get(|| async { Json(json!({"name": "demo"})) })
                .post(|Json(body): Json<Value>| async move { Json(body) }),
        );
    layer_all(
        layer_platform_api(platform_api, 1000),
        RateLimiter::new(per_hour),
    )
}

async fn send(router: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, headers, body)
}

fn get_with(path: &str, pairs: &[(&str, &str)]) -> Request<Body> {
    let mut request = Request::get(path);
    for (name, value) in pairs {
        request = request.header(*name, *value);
    }
    request.body(Body::empty()).unwrap()
}

/// Follows `Next-Range` from `first` to the end, returning the pages' sizes and every item.
async fn follow(router: &Router, path: &str, first: Option<&str>) -> (Vec<usize>, Vec<Value>) {
    let mut range = first.map(str::to_owned);
    let (mut sizes, mut all) = (Vec::new(), Vec::new());
    loop {
        let pairs: Vec<(&str, &str)> = range.iter().map(|r| ("range", r.as_str())).collect();
        let (status, headers, body) = send(router, get_with(path, &pairs)).await;
        let page = body.as_array().unwrap().clone();
        sizes.push(page.len());
        all.extend(page);
        match headers.get("next-range") {
            Some(next) => {
                assert_eq!(status, StatusCode::PARTIAL_CONTENT);
                range = Some(next.to_str().unwrap().to_owned());
            }
            None => {
                assert_eq!(status, StatusCode::OK, "the last page is 200");
                return (sizes, all);
            }
        }
        assert!(sizes.len() < 100, "pagination does not end");
    }
}

#[tokio::test]
async fn lists_of_250_page_by_200_by_default_and_follow_next_range_to_the_end() {
    let router = stand_ins(4500);
    let (status, headers, body) = send(&router, get_with("/apps", &[])).await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body.as_array().unwrap().len(), 200);
    assert_eq!(headers["accept-ranges"], "id, name");
    assert!(headers.contains_key("next-range"));

    let (sizes, all) = follow(&router, "/apps", None).await;
    assert_eq!(sizes, [200, 50]);
    let mut names: Vec<&str> = all.iter().map(|a| a["name"].as_str().unwrap()).collect();
    names.dedup();
    assert_eq!(names.len(), 250, "every app once");

    let (sizes, all) = follow(&router, "/apps", Some("name ..; max=100, order=desc")).await;
    assert_eq!(sizes, [100, 100, 50]);
    assert_eq!(all[0]["name"], "app-250");
    assert_eq!(all[249]["name"], "app-001");

    let (sizes, all) = follow(
        &router,
        "/apps/demo/releases",
        Some("version ..; max=15, order=desc"),
    )
    .await;
    assert_eq!(sizes.iter().sum::<usize>(), 250);
    assert_eq!(sizes[0], 15);
    let versions: Vec<i64> = all.iter().map(|r| r["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, (1..=250).rev().collect::<Vec<_>>());

    let (status, headers, body) = send(
        &router,
        get_with(
            "/apps/demo/releases",
            &[("range", "version ..; order=desc,max=1")],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(body, json!([{"id": "r-250", "version": 250}]));
    assert_eq!(headers["accept-ranges"], "version, id");

    let (status, _, body) = send(
        &router,
        get_with("/apps/demo/releases", &[("range", "id ..; max=1000;")]),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a page holding the whole list is 200"
    );
    assert_eq!(body.as_array().unwrap().len(), 250);

    let (status, _, body) = send(&router, get_with("/apps", &[("range", "color ..")])).await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(body["id"], "requested_range_not_satisfiable");
    assert!(body["message"].as_str().unwrap().contains("`name`"));
}

#[tokio::test]
async fn etag_then_if_none_match_is_304_without_a_body() {
    let router = stand_ins(4500);
    let (status, headers, body) = send(&router, get_with("/apps/demo", &[])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["name"], "demo");
    let tag = headers[header::ETAG].to_str().unwrap().to_owned();
    let response = router
        .clone()
        .oneshot(get_with("/apps/demo", &[("if-none-match", &tag)]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(response.headers()[header::ETAG], tag.as_str());
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    assert!(bytes.is_empty());
    let (status, _, _) = send(
        &router,
        get_with("/apps/demo", &[("if-none-match", "\"stale\"")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn other_versions_get_406_and_every_answer_a_request_id() {
    let router = stand_ins(4500);
    let (status, headers, body) = send(
        &router,
        get_with(
            "/apps/demo",
            &[
                ("accept", "application/vnd.heroku+json; version=2"),
                ("request-id", "abc-123,def"),
            ],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(body["id"], "not_acceptable");
    assert_eq!(headers["request-id"], "abc-123");
    let (status, headers, _) = send(&router, get_with("/nowhere", &[])).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(headers["request-id"]
        .to_str()
        .unwrap()
        .parse::<uuid::Uuid>()
        .is_ok());
}

#[tokio::test]
async fn an_empty_bucket_is_429_with_remaining_0() {
    let router = stand_ins(3);
    let key = [("authorization", "Bearer k1")];
    for left in ["2", "1", "0"] {
        let (status, headers, _) = send(&router, get_with("/apps/demo", &key)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["ratelimit-remaining"], left);
    }
    let (status, headers, body) = send(&router, get_with("/apps/demo", &key)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["id"], "rate_limit");
    assert!(body["message"].as_str().unwrap().contains("rate limit"));
    assert_eq!(headers["ratelimit-remaining"], "0");
    assert!(headers.contains_key(header::RETRY_AFTER));
    // Another credential has its own bucket.
    let (status, headers, _) = send(
        &router,
        get_with("/apps/demo", &[("authorization", "Bearer k2")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["ratelimit-remaining"], "2");
}

#[tokio::test]
async fn axums_own_rejections_become_heroku_errors() {
    let router = stand_ins(4500);
    for (content_type, body, status) in [
        ("application/json", "{not json", StatusCode::BAD_REQUEST),
        ("text/plain", "{}", StatusCode::UNSUPPORTED_MEDIA_TYPE),
    ] {
        let request = Request::post("/apps/demo")
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap();
        let (got, headers, json) = send(&router, request).await;
        assert_eq!(got, status, "{content_type} {body}");
        assert!(headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .contains("json"));
        assert!(
            json["id"].is_string() && json["message"].is_string(),
            "{json}"
        );
        assert!(headers.contains_key("request-id"));
    }
    let (status, _, json) = send(
        &router,
        Request::delete("/apps/demo").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(json["id"], "method_not_allowed");
}
