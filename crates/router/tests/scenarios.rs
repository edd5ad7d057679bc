//! The same scenarios over both engines: each test runs once with an HTTP/1.1 client on the
//! plain listener (the router's own engine) and once with an HTTP/2 client on the HTTPS
//! listener (the hyper-based path), expecting the same answers, the same headers at the dyno
//! and the same log lines (but `protocol=`). Both engines take these decisions from one policy
//! module; these tests keep them from drifting apart again.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::*;
use hyper::Request;
use slipway_router::{RouteStatus, RouterConfig};
use tokio::io::AsyncWriteExt;

/// The values of header `name` in a `/headers` answer.
fn seen(text: &str, name: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix(&format!("{name}: ")))
        .map(str::to_owned)
        .collect()
}

fn millis_now() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

#[tokio::test]
async fn added_headers_reach_the_dyno() {
    for proto in Proto::ALL {
        let router =
            TestRouter::start_with(proto, demo(backend("web.1").await), quick_config()).await;
        let mut client = router.connect().await;
        let before = millis_now();
        let reply = client
            .send(
                Request::get("/headers")
                    .header("host", "Demo.Localhost:8080")
                    .header("connection", "keep-alive, x-secret")
                    .header("x-secret", "hop")
                    .header("x-forwarded-proto", "gopher")
                    .header("x-forwarded-port", "1")
                    .header("x-kept", "end-to-end")
                    .body(full(Bytes::new()))
                    .unwrap(),
            )
            .await;
        let after = millis_now();
        assert_eq!(reply.status, 200, "{proto:?}");
        let text = reply.text();
        assert_eq!(seen(&text, "host"), ["Demo.Localhost:8080"], "{proto:?}");
        assert_eq!(seen(&text, "x-forwarded-for"), ["127.0.0.1"], "{proto:?}");
        assert_eq!(seen(&text, "x-forwarded-proto"), [proto.scheme()]);
        assert_eq!(seen(&text, "x-forwarded-port"), ["8080"], "{proto:?}");
        assert_eq!(seen(&text, "via"), ["1.1 slipway"], "{proto:?}");
        assert_eq!(seen(&text, "x-kept"), ["end-to-end"], "{proto:?}");
        if proto == Proto::Http1 {
            // HTTP/2 has no Connection header, so nothing names hop-by-hop headers there.
            assert!(seen(&text, "x-secret").is_empty(), "{text}");
        }
        let connection = seen(&text, "connection");
        assert!(
            connection.is_empty() || connection == ["keep-alive"],
            "{proto:?}: {text}"
        );
        let start: u128 = seen(&text, "x-request-start")[0].parse().unwrap();
        assert!(
            (before..=after).contains(&start),
            "{proto:?}: {start} not in {before}..={after}"
        );
        let id = &seen(&text, "x-request-id")[0];
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{proto:?}: {id}");

        let lines = router.logs.wait_for(1).await;
        let message = &messages(&lines, "demo")[0];
        assert!(message.contains(&format!("request_id={id} ")), "{message}");
        assert!(message.contains("host=demo.localhost "), "{message}");
        router.stop().await;
    }
}

#[tokio::test]
async fn client_request_ids_are_kept_only_when_acceptable() {
    let cases = [
        ("abcdefghij0123456789", true),
        ("short-id", false),
        ("abc+/=-ABCDEFGHIJKLMNOPQRSTUVWXYZ", true),
        ("has spaces in it but is long enough", false),
        ("semicolons;are;not;allowed;here", false),
    ];
    for proto in Proto::ALL {
        let router =
            TestRouter::start_with(proto, demo(backend("web.1").await), quick_config()).await;
        let mut client = router.connect().await;
        for (n, (id, kept)) in cases.iter().enumerate() {
            let reply = client
                .send(
                    Request::get("/headers")
                        .header("host", "demo.localhost")
                        .header("x-request-id", *id)
                        .body(full(Bytes::new()))
                        .unwrap(),
                )
                .await;
            let seen = seen(&reply.text(), "x-request-id").remove(0);
            if *kept {
                assert_eq!(&seen, id, "{proto:?}");
            } else {
                assert!(
                    uuid::Uuid::parse_str(&seen).is_ok(),
                    "{proto:?}: {id} -> {seen}"
                );
            }
            let lines = router.logs.wait_for(n + 1).await;
            assert!(
                lines[n].1.message.contains(&format!("request_id={seen} ")),
                "{proto:?} {seen}: {lines:?}"
            );
        }
        router.stop().await;
    }
}

#[tokio::test]
async fn x_forwarded_for_is_appended() {
    for proto in Proto::ALL {
        let router =
            TestRouter::start_with(proto, demo(backend("web.1").await), quick_config()).await;
        let mut client = router.connect().await;
        let reply = client
            .send(
                Request::get("/headers")
                    .header("host", "demo.localhost")
                    .header("x-forwarded-for", "203.0.113.9, 10.0.0.1")
                    .body(full(Bytes::new()))
                    .unwrap(),
            )
            .await;
        assert!(
            reply
                .text()
                .contains("x-forwarded-for: 203.0.113.9, 10.0.0.1, 127.0.0.1\n"),
            "{proto:?}: {}",
            reply.text()
        );
        let lines = router.logs.wait_for(1).await;
        assert!(
            lines[0]
                .1
                .message
                .contains(r#"fwd="203.0.113.9, 10.0.0.1, 127.0.0.1""#),
            "{proto:?}: {lines:?}"
        );
        router.stop().await;
    }
}

#[tokio::test]
async fn apps_that_cannot_serve_get_their_h_code() {
    let cases = [
        (
            RouteStatus::NoWebDynos,
            "at=error code=H14 desc=\"No web dynos running\"",
            "Application Error",
        ),
        (
            RouteStatus::Crashed,
            "at=error code=H10 desc=\"App crashed\"",
            "Application Error",
        ),
        (
            RouteStatus::Maintenance,
            "at=info code=H80 desc=\"Maintenance mode\"",
            "Maintenance",
        ),
        (
            RouteStatus::NoRelease,
            "at=info code=H81 desc=\"Blank app\"",
            "new app",
        ),
        (
            RouteStatus::Serving,
            "at=error code=H14 desc=\"No web dynos running\"",
            "Application Error",
        ),
    ];
    for proto in Proto::ALL {
        for (status, prefix, page) in cases {
            let router = TestRouter::start_with(
                proto,
                table(&[("demo.localhost", route("demo", status, &[]))]),
                quick_config(),
            )
            .await;
            let mut client = router.connect().await;
            let reply = client.get("demo.localhost", "/x?y=1").await;
            assert_eq!(reply.status, 503, "{proto:?} {status:?}");
            assert_eq!(
                reply.header("content-type"),
                Some("text/html; charset=utf-8")
            );
            assert!(
                reply.text().contains(page),
                "{proto:?} {status:?}: {}",
                reply.text()
            );
            let lines = router.logs.wait_for(1).await;
            assert_eq!(
                normalize(&messages(&lines, "demo")[0]),
                format!("{prefix} method=GET path=\"/x?y=1\" host=demo.localhost request_id=<id> fwd=\"127.0.0.1\" dyno= connect= service= status=503 bytes=0 protocol={}", proto.scheme()),
            );
            router.stop().await;
        }
    }
}

#[tokio::test]
async fn a_dyno_that_never_answers_gives_h12_for_that_request_only() {
    let config = RouterConfig {
        request_timeout: Duration::from_millis(300),
        ..quick_config()
    };
    let service_ms = regex::Regex::new(r"service=(\d+)ms").unwrap();
    for proto in Proto::ALL {
        let router =
            TestRouter::start_with(proto, demo(backend("web.1").await), config.clone()).await;
        let mut client = router.connect().await;
        let reply = client.get("demo.localhost", "/never").await;
        assert_eq!(reply.status, 503, "{proto:?}");
        assert!(reply.text().contains("Application Error"));
        // The client connection and the app are fine afterwards.
        assert_eq!(
            client.get("demo.localhost", "/").await.text(),
            "hello from web.1"
        );

        let lines = router.logs.wait_for(2).await;
        let message = &messages(&lines, "demo")[0];
        assert_eq!(
            normalize(message),
            format!("at=error code=H12 desc=\"Request timeout\" method=GET path=\"/never\" host=demo.localhost request_id=<id> fwd=\"127.0.0.1\" dyno=web.1 connect=<n>ms service=<n>ms status=503 bytes=0 protocol={}", proto.scheme())
        );
        let service: u64 = service_ms.captures(message).unwrap()[1].parse().unwrap();
        assert!(service >= 300, "{message}");
        router.stop().await;
    }
}

/// Quarantine: a dead dyno beside a live one costs no request, and a dyno that refused is
/// not tried again meanwhile.
#[tokio::test]
async fn refused_connections_retry_other_dynos_then_give_h21() {
    for proto in Proto::ALL {
        let dead = closed_port().await;
        let live = backend("live").await;
        let router = TestRouter::start_with(
            proto,
            table(&[
                (
                    "dead.localhost",
                    route("dead", RouteStatus::Serving, &[("web.1", dead)]),
                ),
                (
                    "mixed.localhost",
                    route(
                        "mixed",
                        RouteStatus::Serving,
                        &[("web.1", dead), ("web.2", live)],
                    ),
                ),
            ]),
            quick_config(),
        )
        .await;
        let mut client = router.connect().await;
        let reply = client.get("dead.localhost", "/").await;
        assert_eq!(reply.status, 503, "{proto:?}");
        // Every request succeeds, whichever dyno the random choice would have tried first.
        for _ in 0..10 {
            let reply = client.get("mixed.localhost", "/").await;
            assert_eq!(
                (reply.status, reply.text()),
                (200, "hello from live".to_owned()),
                "{proto:?}"
            );
        }
        let lines = router.logs.wait_for(11).await;
        assert_eq!(
            normalize(&messages(&lines, "dead")[0]),
            format!("at=error code=H21 desc=\"Backend connection refused\" method=GET path=\"/\" host=dead.localhost request_id=<id> fwd=\"127.0.0.1\" dyno=web.1 connect= service= status=503 bytes=0 protocol={}", proto.scheme())
        );
        for message in messages(&lines, "mixed") {
            assert!(
                message.starts_with("at=info ") && message.contains(" dyno=web.2 "),
                "{proto:?}: {message}"
            );
        }
        router.stop().await;
    }
}

#[tokio::test]
async fn a_failed_connect_quarantines_the_dyno_until_h99() {
    let config = RouterConfig {
        quarantine: Duration::from_secs(30),
        connect_budget: Duration::from_millis(300),
        ..quick_config()
    };
    for proto in Proto::ALL {
        let dead = closed_port().await;
        let router = TestRouter::start_with(
            proto,
            table(&[(
                "dead.localhost",
                route("dead", RouteStatus::Serving, &[("web.1", dead)]),
            )]),
            config.clone(),
        )
        .await;
        let mut client = router.connect().await;
        // The refused connect quarantines web.1; the next request finds no dyno to try within
        // the connect budget.
        assert_eq!(client.get("dead.localhost", "/").await.status, 503);
        assert_eq!(client.get("dead.localhost", "/").await.status, 503);
        let lines = router.logs.wait_for(2).await;
        let messages = messages(&lines, "dead");
        assert!(
            messages[0].contains("code=H21"),
            "{proto:?}: {}",
            messages[0]
        );
        assert!(
            messages[1].starts_with("at=error code=H99 desc=\"Platform error\""),
            "{proto:?}: {}",
            messages[1]
        );
        router.stop().await;
    }
}

#[tokio::test]
async fn a_dyno_closing_without_response_or_sending_garbage_gives_h13() {
    for proto in Proto::ALL {
        let closes = raw_backend(|stream| async move { drop(stream) }).await;
        let garbage = raw_backend(|mut stream| async move {
            let _ = stream.write_all(b"this is not HTTP at all\r\n\r\n").await;
            let _ = stream.shutdown().await;
        })
        .await;
        let router = TestRouter::start_with(
            proto,
            table(&[
                (
                    "closes.localhost",
                    route("closes", RouteStatus::Serving, &[("web.1", closes)]),
                ),
                (
                    "garbage.localhost",
                    route("garbage", RouteStatus::Serving, &[("web.1", garbage)]),
                ),
            ]),
            quick_config(),
        )
        .await;
        let mut client = router.connect().await;
        for app in ["closes", "garbage"] {
            let reply = client.get(&format!("{app}.localhost"), "/").await;
            assert_eq!(reply.status, 503, "{proto:?} {app}");
        }
        let lines = router.logs.wait_for(2).await;
        for app in ["closes", "garbage"] {
            let message = &messages(&lines, app)[0];
            assert!(
                message
                    .starts_with("at=error code=H13 desc=\"Connection closed without response\" "),
                "{proto:?}: {message}"
            );
            assert!(
                message.contains(" dyno=web.1 ") && message.contains(" status=503 "),
                "{proto:?}: {message}"
            );
        }
        router.stop().await;
    }
}

/// A dyno that closes in the middle of its response body: the client sees the body cut
/// short, the log says H18 with what was relayed.
#[tokio::test]
async fn a_dyno_closing_mid_body_gives_h18() {
    for proto in Proto::ALL {
        let cuts = raw_backend(|mut stream| async move {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
                .await;
            let _ = stream.shutdown().await;
        })
        .await;
        let router = TestRouter::start_with(proto, demo(cuts), quick_config()).await;
        let mut client = router.connect().await;
        let response = client.send_raw(get("demo.localhost", "/")).await;
        assert_eq!(response.status(), 200, "{proto:?}");
        let body = http_body_util::BodyExt::collect(response.into_body()).await;
        assert!(
            body.is_err(),
            "{proto:?}: the truncated body must be an error"
        );
        let lines = router.logs.wait_for(1).await;
        let message = &messages(&lines, "demo")[0];
        assert!(
            message
                .starts_with("at=error sock=backend code=H18 desc=\"Server Request Interrupted\" "),
            "{proto:?}: {message}"
        );
        assert!(
            message.contains(" status=200 bytes=5 "),
            "{proto:?}: {message}"
        );
        router.stop().await;
    }
}

/// Both engines take dyno connections from the one pool and give them back after a clean
/// response: sequential requests share one dyno connection.
#[tokio::test]
async fn dyno_connections_are_pooled() {
    for proto in Proto::ALL {
        let (web, accepted) = backend_counting("web.1").await;
        let router = TestRouter::start_with(proto, demo(web), quick_config()).await;
        let mut client = router.connect().await;
        for _ in 0..5 {
            let reply = client.get("demo.localhost", "/").await;
            assert_eq!(reply.text(), "hello from web.1", "{proto:?}");
            // The HTTP/2 path hands the connection back from its own task.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            accepted.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "{proto:?}"
        );
        router.stop().await;
    }
}

#[tokio::test]
async fn a_full_backlog_gives_h11() {
    let config = RouterConfig {
        max_backlog_per_dyno: 1,
        ..quick_config()
    };
    for proto in Proto::ALL {
        let router =
            TestRouter::start_with(proto, demo(backend("web.1").await), config.clone()).await;
        // One request the dyno never answers fills the backlog of one dyno.
        let mut stuck_client = router.connect().await;
        let stuck = tokio::spawn(async move {
            stuck_client.get("demo.localhost", "/never").await;
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut client = router.connect().await;
        let reply = client.get("demo.localhost", "/").await;
        assert_eq!(reply.status, 503, "{proto:?}");
        let lines = router.logs.wait_for(1).await;
        assert!(
            messages(&lines, "demo")[0].starts_with("at=error code=H11 desc=\"Backlog too deep\""),
            "{proto:?}: {lines:?}"
        );
        // Once the stuck client leaves (H27), requests flow again.
        stuck.abort();
        let lines = router.logs.wait_for(2).await;
        assert!(
            messages(&lines, "demo")[1].starts_with("at=warning sock=client code=H27 "),
            "{proto:?}: {lines:?}"
        );
        assert_eq!(client.get("demo.localhost", "/").await.status, 200);
        router.stop().await;
    }
}
