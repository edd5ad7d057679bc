//! The standalone router's network side against a stand-in control plane on loopback: route
//! snapshots become the table (and stay after the stream ends), refusals say why, events
//! arrive as NDJSON, and a full queue counts what it drops.

use std::sync::Mutex;

use axum::routing::{get, post};
use slipway_api_types::cluster::{HostRoute, RouteSnapshot, RouteStatus};

use super::*;

fn token() -> SecretToken {
    "0123456789abcdef0123456789abcdef".parse().unwrap()
}

/// Serves `app` on a loopback port; returns its base URL.
async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn snapshot_line() -> String {
    let message = RouteStreamMessage::Snapshot(RouteSnapshot {
        routes: vec![HostRoute {
            hostname: "web.slipway.local".into(),
            app: "web".into(),
            status: RouteStatus::Serving,
            backends: vec![],
        }],
    });
    format!(
        "{}\n{}\n",
        serde_json::to_string(&message).unwrap(),
        serde_json::to_string(&RouteStreamMessage::Heartbeat).unwrap()
    )
}

#[test]
fn backoff_doubles_to_five_seconds_and_resets() {
    let mut backoff = Backoff::new();
    let delays: Vec<u64> = (0..9)
        .map(|_| backoff.next_delay().as_millis() as u64)
        .collect();
    assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    backoff.reset();
    assert_eq!(backoff.next_delay(), Duration::from_millis(100));
}

#[test]
fn a_full_queue_drops_and_counts_without_waiting() {
    let (queue, mut receiver) = EventQueue::new(2);
    for n in 0..5 {
        queue.push(RouterEvent::Wake {
            app: format!("app{n}"),
        });
    }
    assert_eq!(
        queue.take_dropped(),
        Some(RouterEvent::Dropped { count: 3 })
    );
    assert_eq!(queue.take_dropped(), None, "counted once");
    assert!(receiver.try_recv().is_ok());
    assert!(receiver.try_recv().is_ok());
    assert!(receiver.try_recv().is_err());
}

#[tokio::test]
async fn a_snapshot_becomes_the_table_and_outlives_its_stream() {
    let expected = format!("Bearer {}", token().expose());
    let url = serve(axum::Router::new().route(
        ROUTES_PATH,
        get(move |headers: axum::http::HeaderMap| async move {
            assert_eq!(headers["authorization"], expected.as_str());
            snapshot_line()
        }),
    ))
    .await;
    let (table, routes) = watch::channel(Arc::new(RouteTable::new()));
    let (connected, following) = watch::channel(None);
    let mut backoff = Backoff::new();
    backoff.next_delay();
    let client = reqwest::Client::new();
    let ended = stream_routes(&client, &url, &token(), &table, &connected, &mut backoff).await;
    assert!(matches!(ended, Err(StreamError::Ended)), "{ended:?}");
    let table = routes.borrow().clone();
    assert_eq!(
        table.get("web.slipway.local").map(|r| r.app.as_str()),
        Some("web")
    );
    assert_eq!(following.borrow().as_deref(), Some(url.as_str()));
    assert_eq!(backoff, Backoff::new(), "a snapshot resets the backoff");
}

#[tokio::test]
async fn a_refused_token_says_why() {
    let url = serve(axum::Router::new().route(
        ROUTES_PATH,
        get(|| async {
            (
                axum::http::StatusCode::UNAUTHORIZED,
                r#"{"id":"unauthorized","message":"Invalid cluster token."}"#,
            )
        }),
    ))
    .await;
    let (table, _routes) = watch::channel(Arc::new(RouteTable::new()));
    let (connected, _) = watch::channel(None);
    let ended = stream_routes(
        &reqwest::Client::new(),
        &url,
        &token(),
        &table,
        &connected,
        &mut Backoff::new(),
    )
    .await;
    match ended {
        Err(StreamError::Refused { status, message }) => {
            assert_eq!(status, 401);
            assert_eq!(message, "Invalid cluster token.");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn events_stream_to_the_control_plane_as_ndjson_lines() {
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = received.clone();
    let url = serve(axum::Router::new().route(
        ROUTER_EVENTS_PATH,
        post(move |body: axum::body::Body| async move {
            let mut stream = body.into_data_stream();
            let mut text = String::new();
            while let Some(Ok(chunk)) = stream.next().await {
                text.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = text.find('\n') {
                    sink.lock().unwrap().push(text[..end].to_owned());
                    text.drain(..=end);
                }
            }
            "{}"
        }),
    ))
    .await;
    let (queue, events) = EventQueue::new(16);
    // Dropped before the stream starts: reported with the first event that goes out.
    queue.dropped.fetch_add(2, Ordering::Relaxed);
    queue.push(RouterEvent::Wake { app: "web".into() });
    let task = tokio::spawn(forward_events(
        reqwest::Client::new(),
        vec![url],
        Arc::new(token()),
        queue.clone(),
        events,
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let lines = received.lock().unwrap().clone();
        if lines.len() == 2 {
            assert_eq!(
                lines,
                [
                    r#"{"type":"dropped","count":2}"#,
                    r#"{"type":"wake","app":"web"}"#
                ]
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{lines:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
}
