//! Sleeping apps: a request for an `Idle` app wakes it through the wake hook, is held until the
//! route table shows a web dyno, and is then served; an app that never wakes gets H20.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use slipway_router::{RouteStatus, RouterConfig, WakeHook};

fn config_with_hook(woken: Arc<Mutex<Vec<String>>>, boot_wait: Duration) -> RouterConfig {
    RouterConfig {
        wake: Some(WakeHook::new(move |app: &str| {
            woken.lock().unwrap().push(app.to_owned());
        })),
        boot_wait,
        ..RouterConfig::default()
    }
}

#[tokio::test]
async fn a_request_for_an_idle_app_wakes_it_and_is_served_once_a_dyno_is_up() {
    let woken = Arc::new(Mutex::new(Vec::new()));
    let router = TestRouter::start(
        table(&[("demo.localhost", route("demo", RouteStatus::Idle, &[]))]),
        config_with_hook(woken.clone(), Duration::from_secs(10)),
    )
    .await;
    let mut client = router.client().await;
    let request = tokio::spawn(async move { client.get("demo.localhost", "/").await });

    // The hook is called; the request waits.
    for _ in 0..200 {
        if !woken.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(*woken.lock().unwrap(), vec!["demo".to_owned()]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !request.is_finished(),
        "the request is held while the app boots"
    );

    // Booting: still idle from the router's point of view, then a dyno is up.
    router
        .routes
        .send(Arc::new(table(&[(
            "demo.localhost",
            route("demo", RouteStatus::Idle, &[]),
        )])))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!request.is_finished());
    let web = backend("web.1").await;
    router.routes.send(Arc::new(demo(web))).unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), request)
        .await
        .expect("the held request is answered")
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "hello from web.1");
    assert_eq!(woken.lock().unwrap().len(), 1, "woken once per request");
    router.stop().await;
}

#[tokio::test]
async fn an_app_that_does_not_wake_in_time_gets_h20() {
    let woken = Arc::new(Mutex::new(Vec::new()));
    let router = TestRouter::start(
        table(&[("demo.localhost", route("demo", RouteStatus::Idle, &[]))]),
        config_with_hook(woken.clone(), Duration::from_millis(300)),
    )
    .await;
    let mut client = router.client().await;
    let reply = client.get("demo.localhost", "/").await;
    assert_eq!(reply.status, 503);
    let lines = router.logs.wait_for(1).await;
    let message = &lines[0].1.message;
    assert!(
        message.starts_with("at=error code=H20 desc=\"App boot timeout\""),
        "{message}"
    );
    assert_eq!(woken.lock().unwrap().len(), 1);
    router.stop().await;
}

#[tokio::test]
async fn a_crash_while_booting_answers_h10_at_once() {
    let woken = Arc::new(Mutex::new(Vec::new()));
    let router = TestRouter::start(
        table(&[("demo.localhost", route("demo", RouteStatus::Idle, &[]))]),
        config_with_hook(woken.clone(), Duration::from_secs(30)),
    )
    .await;
    let mut client = router.client().await;
    let request = tokio::spawn(async move { client.get("demo.localhost", "/").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    router
        .routes
        .send(Arc::new(table(&[(
            "demo.localhost",
            route("demo", RouteStatus::Crashed, &[]),
        )])))
        .unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), request)
        .await
        .expect("answered without waiting for the boot timeout")
        .unwrap();
    assert_eq!(reply.status, 503);
    let lines = router.logs.wait_for(1).await;
    assert!(lines[0].1.message.contains("code=H10"), "{:?}", lines[0].1);
    router.stop().await;
}
