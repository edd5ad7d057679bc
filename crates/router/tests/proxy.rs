//! End-to-end router behaviour over real loopback TCP: forwarding, headers, routing, H codes,
//! keep-alive, route updates, log lines and shutdown.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::BodyExt;
use hyper::Request;
use slipway_router::{RouteStatus, RouterConfig};
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn get_and_post_bodies_are_relayed_both_ways() {
    let web = backend("web.1").await;
    let router = TestRouter::start(demo(web), quick_config()).await;
    let mut client = router.client().await;

    let reply = client.get("demo.localhost", "/").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "hello from web.1");
    assert_eq!(reply.header("via"), Some("1.1 slipway"));

    // 5 MB with Content-Length.
    let payload: Bytes = (0..5 * 1024 * 1024)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    let reply = client
        .send(
            Request::post("/echo")
                .header("host", "demo.localhost")
                .body(full(payload.clone()))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.len(), payload.len());
    assert!(reply.body == payload, "echoed body differs");

    // 5 MB streamed in chunks without a length (chunked both ways).
    let (mut tx, body) = http_body_util::channel::Channel::<Bytes, hyper::Error>::new(4);
    let chunks = payload.clone();
    let feeder = tokio::spawn(async move {
        for chunk in chunks.chunks(64 * 1024) {
            tx.send_data(Bytes::copy_from_slice(chunk)).await.unwrap();
        }
    });
    let reply = client
        .send(
            Request::post("/echo")
                .header("host", "demo.localhost")
                .body(body.boxed())
                .unwrap(),
        )
        .await;
    feeder.await.unwrap();
    assert_eq!(reply.status, 200);
    assert!(reply.body == payload, "echoed streamed body differs");

    let lines = router.logs.wait_for(3).await;
    let messages = messages(&lines, "demo");
    assert!(
        messages[1].contains(&format!("status=200 bytes={} protocol=http", payload.len())),
        "{}",
        messages[1]
    );
    assert!(
        messages[2].starts_with("at=info method=POST path=\"/echo\""),
        "{}",
        messages[2]
    );
    router.stop().await;
}

#[tokio::test]
async fn hosts_route_to_their_apps() {
    let a = backend("alpha-web.1").await;
    let b = backend("beta-web.1").await;
    let router = TestRouter::start(
        table(&[
            (
                "alpha.localhost",
                route("alpha", RouteStatus::Serving, &[("web.1", a)]),
            ),
            (
                "beta.example.com",
                route("beta", RouteStatus::Serving, &[("web.1", b)]),
            ),
        ]),
        quick_config(),
    )
    .await;
    let mut client = router.client().await;
    assert_eq!(
        client.get("alpha.localhost", "/").await.text(),
        "hello from alpha-web.1"
    );
    assert_eq!(
        client.get("BETA.example.com:5000", "/").await.text(),
        "hello from beta-web.1"
    );
    assert_eq!(
        client.get("alpha.localhost.", "/").await.text(),
        "hello from alpha-web.1"
    );

    let unknown = client.get("nope.localhost", "/").await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.text().contains("No such app"));

    let lines = router.logs.wait_for(3).await;
    assert_eq!(messages(&lines, "alpha").len(), 2);
    assert_eq!(messages(&lines, "beta").len(), 1);
    assert_eq!(lines.len(), 3, "unknown hosts are not logged: {lines:?}");
    router.stop().await;
}

#[tokio::test]
async fn requests_without_a_single_host_are_rejected() {
    let web = backend("web.1").await;
    let router = TestRouter::start(demo(web), quick_config()).await;
    let cases: [(&[u8], &str); 4] = [
        // The router answers every client as HTTP/1.1 (RFC 9110 §6.2), 1.0 clients included.
        (b"GET / HTTP/1.0\r\n\r\n", "HTTP/1.1 400"),
        (
            b"GET / HTTP/1.1\r\nHost: demo.localhost\r\nHost: demo.localhost\r\n\r\n",
            "HTTP/1.1 400",
        ),
        (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "HTTP/1.1 400"),
        (
            b"GET / HTTP/1.1\r\nHost: demo.localhost\r\nConnection: close\r\n\r\n",
            "HTTP/1.1 200",
        ),
    ];
    for (request, expected) in cases {
        let answer = raw_exchange(router.addr, request, false).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with(expected),
            "{:?} -> {answer}",
            String::from_utf8_lossy(request)
        );
    }
    router.stop().await;
}

#[tokio::test]
async fn the_h12_clock_starts_after_the_request_body_was_sent() {
    let web = backend("web.1").await;
    let config = RouterConfig {
        request_timeout: Duration::from_millis(300),
        ..quick_config()
    };
    let router = TestRouter::start(demo(web), config).await;
    let mut client = router.client().await;
    // A slow upload taking longer than the request timeout must not be cut.
    let (mut tx, body) = http_body_util::channel::Channel::<Bytes, hyper::Error>::new(1);
    let feeder = tokio::spawn(async move {
        for _ in 0..6 {
            tx.send_data(Bytes::from_static(b"chunk")).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let reply = client
        .send(
            Request::post("/count")
                .header("host", "demo.localhost")
                .body(body.boxed())
                .unwrap(),
        )
        .await;
    feeder.await.unwrap();
    assert_eq!((reply.status, reply.text()), (200, "30 bytes".to_owned()));
    router.stop().await;
}

#[tokio::test]
async fn a_dyno_silent_mid_response_gives_h15() {
    let stalls = raw_backend(|mut stream| async move {
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
            .await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let config = RouterConfig {
        idle_timeout: Duration::from_millis(300),
        ..quick_config()
    };
    let router = TestRouter::start(demo(stalls), config).await;
    let client = router.client().await;
    let mut sender = client;
    let request = Request::get("/")
        .header("host", "demo.localhost")
        .body(full(Bytes::new()))
        .unwrap();
    let result = tokio::time::timeout(Duration::from_secs(5), async {
        let response = sender_send(&mut sender, request).await;
        response.into_body().collect().await
    })
    .await
    .expect("router did not cut the stalled response");
    assert!(result.is_err(), "the truncated body must be an error");
    let lines = router.logs.wait_for(1).await;
    let message = &messages(&lines, "demo")[0];
    assert!(
        message.starts_with("at=error code=H15 desc=\"Idle connection\" "),
        "{message}"
    );
    assert!(message.contains(" status=200 bytes=5 "), "{message}");
    router.stop().await;
}

async fn sender_send(
    client: &mut Client,
    request: Request<BoxBody>,
) -> hyper::Response<hyper::body::Incoming> {
    client.raw_send(request).await
}

#[tokio::test]
async fn keep_alive_on_both_sides() {
    let (web, accepted) = backend_counting("web.1").await;
    let router = TestRouter::start(demo(web), quick_config()).await;
    let mut client = router.client().await;
    for n in 0..8 {
        let reply = client.get("demo.localhost", &format!("/{n}")).await;
        assert_eq!(reply.status, 200);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!client.is_closed());
    let connections = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        connections <= 2,
        "8 sequential requests opened {connections} dyno connections"
    );
    let lines = router.logs.wait_for(8).await;
    // Only the first request needed a new connection; reused ones report connect=0ms.
    assert!(
        lines[7].1.message.contains(" connect=0ms "),
        "{}",
        lines[7].1.message
    );
    router.stop().await;
}

/// A client connection keeps its dyno connection between quick requests, but one that idles
/// gives it back to the pool (after 2 s), so idle clients hold no dyno connections: the next
/// client reuses it.
#[tokio::test]
async fn an_idle_client_gives_its_dyno_connection_back_to_the_pool() {
    let (web, accepted) = backend_counting("web.1").await;
    let router = TestRouter::start(demo(web), quick_config()).await;
    let mut first = router.client().await;
    assert_eq!(first.get("demo.localhost", "/").await.status, 200);
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!first.is_closed(), "the idle client connection stays open");
    let mut second = router.client().await;
    assert_eq!(second.get("demo.localhost", "/").await.status, 200);
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the second client reused the idle client's dyno connection"
    );
    let lines = router.logs.wait_for(2).await;
    assert!(
        lines[1].1.message.contains(" connect=0ms "),
        "{}",
        lines[1].1.message
    );
    // The first client still works (with a pooled or new dyno connection).
    assert_eq!(first.get("demo.localhost", "/").await.status, 200);
    router.stop().await;
}

#[tokio::test]
async fn route_updates_apply_to_the_next_request_on_the_same_connection() {
    let old = backend("old").await;
    let new = backend("new").await;
    let router = TestRouter::start(demo(old), quick_config()).await;
    let mut client = router.client().await;
    assert_eq!(
        client.get("demo.localhost", "/").await.text(),
        "hello from old"
    );
    // A slow in-flight request survives the switch.
    let mut other = router.client().await;
    let in_flight = tokio::spawn(async move { other.get("demo.localhost", "/sleep/300").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    router
        .routes
        .send(std::sync::Arc::new(table(&[(
            "demo.localhost",
            route("demo", RouteStatus::Serving, &[("web.2", new)]),
        )])))
        .unwrap();
    assert_eq!(
        client.get("demo.localhost", "/").await.text(),
        "hello from new"
    );
    assert_eq!(in_flight.await.unwrap().text(), "hello from old");
    let lines = router.logs.wait_for(3).await;
    assert!(lines
        .iter()
        .any(|(_, l)| l.message.contains(" dyno=web.2 ")));
    router.stop().await;
}

#[tokio::test]
async fn log_line_snapshot() {
    let web = backend("web.1").await;
    let router = TestRouter::start(demo(web), quick_config()).await;
    let mut client = router.client().await;
    client
        .send(
            Request::get("/search?q=a%20b")
                .header("host", "demo.localhost")
                .header("x-request-id", "snapshot-request-id-0001")
                .body(full(Bytes::new()))
                .unwrap(),
        )
        .await;
    let lines = router.logs.wait_for(1).await;
    let (app, line) = &lines[0];
    assert_eq!(app, "demo");
    assert_eq!(line.source, slipway_logplex::Source::Heroku);
    assert_eq!(line.process, "router");
    assert_eq!(
        regex::Regex::new(r"(connect|service)=\d+ms").unwrap().replace_all(&line.message, "$1=<n>ms"),
        "at=info method=GET path=\"/search?q=a%20b\" host=demo.localhost request_id=snapshot-request-id-0001 fwd=\"127.0.0.1\" dyno=web.1 connect=<n>ms service=<n>ms status=200 bytes=16 protocol=http"
    );
    router.stop().await;
}

#[tokio::test]
async fn oversized_header_sections_are_rejected() {
    let web = backend("web.1").await;
    let router = TestRouter::start(demo(web), quick_config()).await;
    let big_value = format!(
        "GET / HTTP/1.1\r\nHost: demo.localhost\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let mut many = String::from("GET / HTTP/1.1\r\nHost: demo.localhost\r\n");
    for n in 0..1001 {
        many.push_str(&format!("X-{n}: 1\r\n"));
    }
    many.push_str("\r\n");
    let router_config = RouterConfig::default();
    assert_eq!(router_config.max_headers, 1000);
    for request in [big_value, many] {
        let answer = raw_exchange(router.addr, request.as_bytes(), false).await;
        let answer = String::from_utf8_lossy(&answer);
        // Heroku answers a request over its limits with a plain 400.
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    }
    router.stop().await;
}

#[tokio::test]
async fn slow_header_senders_are_cut_off() {
    let web = backend("web.1").await;
    let config = RouterConfig {
        header_read_timeout: Duration::from_millis(300),
        ..quick_config()
    };
    let router = TestRouter::start(demo(web), config).await;
    let mut stream = tokio::net::TcpStream::connect(router.addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: demo")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut answer),
    )
    .await;
    assert!(read.is_ok(), "the router kept a slowloris connection open");
    router.stop().await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let web = backend("web.1").await;
    let router = TestRouter::start(demo(web), quick_config()).await;
    let addr = router.addr;
    let mut client = router.client().await;
    let in_flight = tokio::spawn(async move { client.get("demo.localhost", "/sleep/300").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    router.stop().await;
    let reply = in_flight.await.unwrap();
    assert_eq!(
        (reply.status, reply.text()),
        (200, "hello from web.1".to_owned())
    );
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "router still accepting"
    );
}

#[tokio::test]
async fn upgrades_are_relayed_both_ways() {
    let web = backend("web.1").await;
    let router = TestRouter::start(demo(web), quick_config()).await;
    let mut stream = tokio::net::TcpStream::connect(router.addr).await.unwrap();
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: demo.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        )
        .await
        .unwrap();
    let head = String::from_utf8(read_head(&mut stream).await)
        .unwrap()
        .to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket\r\n"), "{head}");
    assert!(head.contains("connection: upgrade\r\n"), "{head}");
    for message in [&b"ping"[..], b"a longer frame of bytes"] {
        stream.write_all(message).await.unwrap();
        let mut echoed = vec![0u8; message.len()];
        tokio::time::timeout(
            Duration::from_secs(5),
            tokio::io::AsyncReadExt::read_exact(&mut stream, &mut echoed),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(echoed, message);
    }
    let lines = router.logs.wait_for(1).await;
    assert!(
        lines[0].1.message.contains(" status=101 "),
        "{}",
        lines[0].1.message
    );
    drop(stream);
    router.stop().await;
}

#[tokio::test]
async fn a_client_leaving_before_the_response_is_logged_as_h27() {
    let web = backend("web.1").await;
    let router = TestRouter::start(demo(web), quick_config()).await;
    let mut stream = tokio::net::TcpStream::connect(router.addr).await.unwrap();
    stream
        .write_all(b"GET /never HTTP/1.1\r\nHost: demo.localhost\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(stream);
    let lines = router.logs.wait_for(1).await;
    assert_eq!(
        normalize(&lines[0].1.message),
        "at=warning sock=client code=H27 desc=\"Client Request Interrupted\" method=GET path=\"/never\" host=demo.localhost request_id=<id> fwd=\"127.0.0.1\" dyno=web.1 connect=<n>ms service=<n>ms status=499 bytes=0 protocol=http"
    );
    router.stop().await;
}

/// A listener whose accept queue is full, so further connects hang (the kernel drops SYNs).
async fn unresponsive_listener() -> (
    std::net::SocketAddr,
    tokio::net::TcpListener,
    Vec<tokio::net::TcpStream>,
) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    let listener = socket.listen(1).unwrap();
    let mut held = Vec::new();
    for _ in 0..16 {
        match tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            Ok(Ok(stream)) => held.push(stream),
            // The queue is full; the caller keeps the listener open and never accepts.
            _ => return (addr, listener, held),
        }
    }
    panic!("could not fill the accept queue of a backlog-1 listener");
}

#[tokio::test]
async fn connect_timeouts_give_h19() {
    let (hung, _listener, _held) = unresponsive_listener().await;
    let config = RouterConfig {
        connect_timeout: Duration::from_millis(200),
        ..quick_config()
    };
    let router = TestRouter::start(demo(hung), config).await;
    let mut client = router.client().await;
    let reply = client.get("demo.localhost", "/").await;
    assert_eq!(reply.status, 503);
    let lines = router.logs.wait_for(1).await;
    assert!(
        lines[0]
            .1
            .message
            .starts_with("at=error code=H19 desc=\"Backend connection timeout\" "),
        "{}",
        lines[0].1.message
    );
    router.stop().await;
}

#[tokio::test]
async fn a_client_going_idle_mid_body_is_logged_as_h28() {
    let web = backend("web.1").await;
    let router = TestRouter::start(
        demo(web),
        RouterConfig {
            idle_timeout: Duration::from_millis(300),
            ..quick_config()
        },
    )
    .await;
    // Promises 10 body bytes, sends 3, then stays connected but silent; the dyno waits too.
    let mut stream = tokio::net::TcpStream::connect(router.addr).await.unwrap();
    stream
        .write_all(b"POST /never HTTP/1.1\r\nHost: demo.localhost\r\nContent-Length: 10\r\n\r\nabc")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut answer),
    )
    .await
    .expect("router kept an idle mid-body client connection open")
    .unwrap();
    assert!(
        answer.is_empty(),
        "an H28 client gets no response: {}",
        String::from_utf8_lossy(&answer)
    );
    let lines = router.logs.wait_for(1).await;
    assert_eq!(
        normalize(&lines[0].1.message),
        "at=warning sock=client code=H28 desc=\"Client Connection Idle\" method=POST path=\"/never\" host=demo.localhost request_id=<id> fwd=\"127.0.0.1\" dyno=web.1 connect=<n>ms service=<n>ms status=499 bytes=0 protocol=http"
    );
    router.stop().await;
}

#[tokio::test]
async fn a_malformed_chunked_body_is_logged_as_h26() {
    let web = backend("web.1").await;
    let router = TestRouter::start(demo(web), quick_config()).await;
    // "zz" is not a hexadecimal chunk size.
    let answer = raw_exchange(
        router.addr,
        b"POST /echo HTTP/1.1\r\nHost: demo.localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        false,
    )
    .await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    assert!(answer.contains("\r\nConnection: close\r\n"), "{answer}");
    let lines = router.logs.wait_for(1).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(
        normalize(&lines[0].1.message),
        "at=error code=H26 desc=\"Request Error\" method=POST path=\"/echo\" host=demo.localhost request_id=<id> fwd=\"127.0.0.1\" dyno=web.1 connect=<n>ms service=<n>ms status=400 bytes=0 protocol=http"
    );
    router.stop().await;
}

/// Request-smuggling shapes over the wire: ambiguous framing is refused with a 400 before
/// any dyno sees the request; chunked framing with bare LF fails the request as H26.
#[tokio::test]
async fn ambiguous_request_framing_is_refused() {
    let (web, accepted) = backend_counting("web.1").await;
    let router = TestRouter::start(demo(web), quick_config()).await;
    for head in [
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Transfer-Encoding: chunked, identity\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
        "X-Folded: a\r\n b\r\nContent-Length: 5\r\n",
    ] {
        let request =
            format!("POST /echo HTTP/1.1\r\nHost: demo.localhost\r\n{head}\r\n0\r\n\r\nhello");
        let answer = raw_exchange(router.addr, request.as_bytes(), false).await;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{head:?}: {answer}"
        );
        assert!(answer.contains("\r\nConnection: close\r\n"), "{answer}");
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 0);

    let answer = raw_exchange(
        router.addr,
        b"POST /echo HTTP/1.1\r\nHost: demo.localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
        false,
    )
    .await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    let lines = router.logs.wait_for(1).await;
    assert!(
        lines[0].1.message.starts_with("at=error code=H26 "),
        "{lines:?}"
    );
    router.stop().await;
}

#[tokio::test]
async fn an_http2_connection_without_open_streams_is_closed_after_the_keepalive_idle() {
    use rustls::pki_types::CertificateDer;
    use slipway_router::{CertIssuer, CertTable, Router, TlsSettings};

    let web = backend("web.1").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_routes, receiver) = tokio::sync::watch::channel(std::sync::Arc::new(demo(web)));
    let (_certs, cert_receiver) =
        tokio::sync::watch::channel(std::sync::Arc::new(CertTable::new()));
    let logs = Logs::default();
    let issuer = CertIssuer::generate("localhost").unwrap();
    let ca = {
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(issuer.ca_pem().as_bytes()).unwrap()
    };
    let router = Router::new(
        receiver,
        logs.sink(),
        RouterConfig {
            client_keepalive_idle: Duration::from_millis(500),
            ..quick_config()
        },
    );
    let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
    let settings = TlsSettings {
        certs: cert_receiver,
        issuer: std::sync::Arc::new(issuer),
        port_for_header: 8443,
    };
    let task = tokio::spawn(router.serve_tls(listener, settings, async move {
        let _ = signal.await;
    }));

    let mut store = rustls::RootCertStore::empty();
    store.add(ca).unwrap();
    let mut tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(store)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let stream = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls))
        .connect("demo.localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    let mut connection = tokio::spawn(connection);
    let mut get = |path: &str| {
        sender.send_request(
            Request::get(format!("https://demo.localhost{path}"))
                .body(full(Bytes::new()))
                .unwrap(),
        )
    };

    // A stream open longer than the idle window keeps the connection: the window only runs
    // while no stream is open, so a request right after it still works on the same connection.
    let slow = get("/sleep/1200").await.unwrap();
    assert_eq!(slow.status(), 200);
    slow.into_body().collect().await.unwrap();
    let next = get("/")
        .await
        .expect("the connection was closed while busy");
    assert_eq!(next.status(), 200);
    next.into_body().collect().await.unwrap();
    assert!(!connection.is_finished());

    // With no stream open, the router closes the connection after the idle window.
    tokio::time::timeout(Duration::from_secs(5), &mut connection)
        .await
        .expect("an idle HTTP/2 connection was kept open")
        .unwrap()
        .unwrap();
    assert_eq!(logs.wait_for(2).await.len(), 2);

    let _ = shutdown.send(());
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("router did not shut down")
        .unwrap()
        .unwrap();
}

/// RFC 9112 §3.2.2: an absolute-form request is routed by its authority, and that authority
/// replaces the client's Host on the way to the dyno; the dyno gets the origin form.
#[tokio::test]
async fn the_absolute_form_authority_replaces_the_host_header() {
    let victim = backend("victim-web.1").await;
    let evil = backend("evil-web.1").await;
    let router = TestRouter::start(
        table(&[
            (
                "victim.localhost",
                route("victim", RouteStatus::Serving, &[("web.1", victim)]),
            ),
            (
                "evil.example",
                route("evil", RouteStatus::Serving, &[("web.1", evil)]),
            ),
        ]),
        quick_config(),
    )
    .await;
    for request in [
        &b"GET http://victim.localhost/headers HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"[..],
        &b"GET http://victim.localhost/headers HTTP/1.1\r\nConnection: close\r\n\r\n"[..],
        &b"GET http://VICTIM.localhost:8080/headers HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"[..],
    ] {
        let answer = raw_exchange(router.addr, request, false).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let hosts: Vec<&str> = answer
            .lines()
            .filter_map(|line| line.strip_prefix("host: "))
            .collect();
        assert_eq!(hosts.len(), 1, "{answer}");
        assert!(
            hosts[0].eq_ignore_ascii_case("victim.localhost")
                || hosts[0].eq_ignore_ascii_case("victim.localhost:8080"),
            "{answer}"
        );
        assert!(!answer.contains("evil"), "{answer}");
    }
    router.stop().await;
}

/// The dyno gets the origin form of an absolute-form request line.
#[tokio::test]
async fn the_dyno_gets_the_origin_form() {
    let (sender, mut received) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dyno = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let head = read_head(&mut stream).await;
            let _ = sender.send(head);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await;
        }
    });
    let router = TestRouter::start(
        table(&[(
            "victim.localhost",
            route("victim", RouteStatus::Serving, &[("web.1", dyno)]),
        )]),
        quick_config(),
    )
    .await;
    let answer = raw_exchange(
        router.addr,
        b"GET http://victim.localhost/a?b=c HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
        false,
    )
    .await;
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    let head = String::from_utf8(received.recv().await.unwrap()).unwrap();
    assert!(head.starts_with("GET /a?b=c HTTP/1.1\r\n"), "{head}");
    let hosts: Vec<&str> = head
        .lines()
        .filter(|line| line.to_ascii_lowercase().starts_with("host:"))
        .collect();
    assert_eq!(hosts, ["Host: victim.localhost"], "{head}");
    router.stop().await;
}
