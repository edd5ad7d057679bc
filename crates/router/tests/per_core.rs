//! The router as `slipway server` runs it: one thread per core, each with its own event loop and
//! `SO_REUSEPORT` listener (`Router::serve_per_core`), over real loopback TCP: many client
//! connections all answered, route changes seen by every thread, HTTPS on the same threads (with
//! session resumption), a busy port refused, and a clean stop.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rustls::pki_types::{CertificateDer, ServerName};
use slipway_router::{
    CertIssuer, CertTable, Protocol, RouteStatus, Router, RouterConfig, TlsSettings,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// The tests count this process's router threads, so they run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn router_threads_named() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim().starts_with("router-"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_core_threads_answer_every_connection_follow_route_changes_and_stop() {
    let _serial = SERIAL.lock().await;
    let (first, first_accepted) = backend_counting("first").await;
    let second = backend("second").await;
    let (routes, receiver) = watch::channel(Arc::new(table(&[(
        "app.example.com",
        route("app", RouteStatus::Serving, &[("web.1", first)]),
    )])));
    let logs = Logs::default();
    let router = Router::new(receiver, logs.sink(), RouterConfig::default());
    let (stop, stopping) = watch::channel(false);
    let before = router_threads_named();
    let threads = router
        .serve_per_core("127.0.0.1:0".parse().unwrap(), 3, Protocol::Http, stopping)
        .unwrap();
    let addr = threads.local_addr();
    assert_ne!(addr.port(), 0);
    assert_eq!(threads.threads(), 3);
    // A thread names itself once it runs.
    let named = async {
        while router_threads_named() < before + 3 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), named)
        .await
        .expect("three named router threads");

    // 60 connections (spread over the threads by the kernel), 3 requests each.
    let mut clients = Vec::new();
    for _ in 0..60 {
        clients.push(tokio::spawn(async move {
            let mut client = Client::connect(addr).await;
            let mut bodies = Vec::new();
            for _ in 0..3 {
                let reply = client.get("app.example.com", "/").await;
                assert_eq!(reply.status, 200);
                bodies.push(reply.text());
            }
            (client, bodies)
        }));
    }
    let mut open = Vec::new();
    for client in clients {
        let (client, bodies) = client.await.unwrap();
        assert!(bodies.iter().all(|body| body == "hello from first"));
        open.push(client);
    }
    assert_eq!(logs.wait_for(180).await.len(), 180);
    // Dyno connections are pooled per thread and reused: far fewer than 180 requests.
    assert!(first_accepted.load(Ordering::SeqCst) <= 60);

    // A route change reaches every thread: each open keep-alive connection sees it.
    routes.send_replace(Arc::new(table(&[(
        "app.example.com",
        route("app", RouteStatus::Serving, &[("web.2", second)]),
    )])));
    for client in &mut open {
        let reply = client.get("app.example.com", "/").await;
        assert_eq!(reply.text(), "hello from second");
    }

    drop(open);
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), threads.stopped())
        .await
        .expect("router threads did not stop")
        .unwrap();
    assert_eq!(router_threads_named(), before, "router threads ended");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "nothing listens after the stop"
    );
}

#[tokio::test]
async fn a_port_something_already_listens_on_is_refused() {
    let _serial = SERIAL.lock().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let (_routes, receiver) = watch::channel(Arc::new(table(&[])));
    let router = Router::new(receiver, Logs::default().sink(), RouterConfig::default());
    let (_stop, stopping) = watch::channel(false);
    let before = router_threads_named();
    let error = router
        .serve_per_core(addr, 2, Protocol::Http, stopping)
        .expect_err("the port is taken");
    assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse, "{error}");
    assert_eq!(router_threads_named(), before, "no thread was started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_is_served_on_per_core_threads() {
    let _serial = SERIAL.lock().await;
    let dyno = backend("tls").await;
    let (_routes, receiver) = watch::channel(Arc::new(table(&[(
        "app.example.com",
        route("app", RouteStatus::Serving, &[("web.1", dyno)]),
    )])));
    let logs = Logs::default();
    let router = Router::new(receiver, logs.sink(), RouterConfig::default());
    let issuer = CertIssuer::generate("example.com").unwrap();
    let ca = {
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(issuer.ca_pem().as_bytes()).unwrap()
    };
    let (_certs, certs) = watch::channel(Arc::new(CertTable::new()));
    let settings = TlsSettings {
        certs,
        issuer: Arc::new(issuer),
        port_for_header: 8443,
    };
    let (stop, stopping) = watch::channel(false);
    let threads = router
        .serve_per_core(
            "127.0.0.1:0".parse().unwrap(),
            2,
            Protocol::Https(settings),
            stopping,
        )
        .unwrap();
    let addr = threads.local_addr();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    for attempt in 0..10 {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut tls = connector
            .connect(ServerName::try_from("app.example.com").unwrap(), tcp)
            .await
            .unwrap();
        // A returning client resumes its session (a ticket from any thread), skipping the
        // certificate signature.
        let expected = if attempt == 0 {
            rustls::HandshakeKind::Full
        } else {
            rustls::HandshakeKind::Resumed
        };
        assert_eq!(tls.get_ref().1.handshake_kind(), Some(expected));
        tls.write_all(
            b"GET /headers HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
        let mut answer = String::new();
        tls.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("x-forwarded-proto: https"),
            "{answer}"
        );
    }
    assert_eq!(logs.wait_for(10).await.len(), 10);
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), threads.stopped())
        .await
        .expect("router threads did not stop")
        .unwrap();
}
