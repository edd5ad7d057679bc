//! The HTTPS listener over real loopback TCP with a rustls client: certificates chosen by SNI
//! (uploaded ones first, then ones issued by the platform CA), HTTP/2 and HTTP/1.1 by ALPN,
//! Heroku's headers with `https`, H codes and log lines for HTTPS requests, shutdown.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::BodyExt;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use slipway_router::{
    CertIssuer, CertTable, RouteStatus, RouteTable, Router, RouterConfig, ServerCert, TlsSettings,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio_rustls::client::TlsStream;

const TLS_PORT_HEADER: u16 = 8443;

struct TlsRouter {
    addr: SocketAddr,
    certs: watch::Sender<Arc<CertTable>>,
    routes: watch::Sender<Arc<RouteTable>>,
    logs: Logs,
    ca: CertificateDer<'static>,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TlsRouter {
    async fn start(table: RouteTable) -> TlsRouter {
        TlsRouter::start_with(
            table,
            RouterConfig {
                listen_port_for_header: 8080,
                ..RouterConfig::default()
            },
        )
        .await
    }

    async fn start_with(table: RouteTable, config: RouterConfig) -> TlsRouter {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (routes, receiver) = watch::channel(Arc::new(table));
        let (certs, cert_receiver) = watch::channel(Arc::new(CertTable::new()));
        let logs = Logs::default();
        let issuer = CertIssuer::generate("localhost").unwrap();
        let ca = CertificateDer::from(pem_der(issuer.ca_pem()));
        let router = Router::new(receiver, logs.sink(), config);
        let (shutdown, signal) = oneshot::channel::<()>();
        let settings = TlsSettings {
            certs: cert_receiver,
            issuer: Arc::new(issuer),
            port_for_header: TLS_PORT_HEADER,
        };
        let task = tokio::spawn(router.serve_tls(listener, settings, async move {
            let _ = signal.await;
        }));
        TlsRouter {
            addr,
            certs,
            routes,
            logs,
            ca,
            shutdown: Some(shutdown),
            task,
        }
    }

    /// A TLS connection for `sni` trusting only `root`, offering `alpn`.
    async fn connect(
        &self,
        sni: &str,
        root: &CertificateDer<'static>,
        alpn: &[&[u8]],
    ) -> Result<TlsStream<TcpStream>, std::io::Error> {
        let mut store = rustls::RootCertStore::empty();
        store.add(root.clone()).unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        connector
            .connect(ServerName::try_from(sni.to_owned()).unwrap(), tcp)
            .await
    }

    async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("router did not shut down")
            .unwrap()
            .unwrap();
    }
}

fn pem_der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

/// A TLS connection that accepts any certificate (what `curl -k` does), offering HTTP/1.1.
async fn insecure_connect(addr: SocketAddr, sni: &str) -> TlsStream<TcpStream> {
    insecure_tls(addr, sni, &[b"http/1.1"]).await
}

/// The certificate the server presented on `stream`.
fn presented(stream: &TlsStream<TcpStream>) -> Vec<u8> {
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// One HTTP/1.1 request on a TLS stream.
async fn h1_get(stream: TlsStream<TcpStream>, host: &str, path: &str) -> Reply {
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let response = sender
        .send_request(
            Request::get(path)
                .header("host", host)
                .body(full(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    collect(response).await
}

/// An HTTP/2 client on a TLS stream.
async fn h2_client(
    stream: TlsStream<TcpStream>,
) -> hyper::client::conn::http2::SendRequest<BoxBody> {
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    sender
}

async fn h2_get(
    sender: &mut hyper::client::conn::http2::SendRequest<BoxBody>,
    host: &str,
    path: &str,
) -> Reply {
    let response = sender
        .send_request(
            Request::get(format!("https://{host}{path}"))
                .body(full(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    collect(response).await
}

async fn collect(response: hyper::Response<hyper::body::Incoming>) -> Reply {
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

fn seen(text: &str, name: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix(&format!("{name}: ")))
        .map(str::to_owned)
        .collect()
}

fn self_signed(hostname: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![hostname.to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

#[tokio::test]
async fn http1_over_tls_reaches_the_dyno_with_https_headers() {
    let web = backend("web.1").await;
    let router = TlsRouter::start(demo(web)).await;
    let stream = router
        .connect("demo.localhost", &router.ca, &[b"http/1.1"])
        .await
        .expect("the issued certificate verifies against the platform CA");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let reply = h1_get(stream, "demo.localhost", "/headers").await;
    assert_eq!(reply.status, 200);
    let text = reply.text();
    assert_eq!(seen(&text, "x-forwarded-proto"), ["https"], "{text}");
    assert_eq!(
        seen(&text, "x-forwarded-port"),
        [TLS_PORT_HEADER.to_string()],
        "{text}"
    );
    assert_eq!(seen(&text, "host"), ["demo.localhost"], "{text}");
    let lines = router.logs.wait_for(1).await;
    let message = &messages(&lines, "demo")[0];
    assert!(
        message.starts_with("at=info method=GET path=\"/headers\" host=demo.localhost "),
        "{message}"
    );
    assert!(message.contains(" status=200 "), "{message}");
    assert!(message.ends_with(" protocol=https"), "{message}");
    router.stop().await;
}

#[tokio::test]
async fn http2_is_negotiated_and_dynos_get_http1_with_https_headers() {
    let web = backend("web.1").await;
    let router = TlsRouter::start(demo(web)).await;
    let stream = router
        .connect("demo.localhost", &router.ca, &[b"h2", b"http/1.1"])
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let mut sender = h2_client(stream).await;
    // Several streams on one connection, concurrently.
    let mut first = sender.clone();
    let mut second = sender.clone();
    let (a, b) = tokio::join!(
        h2_get(&mut first, "demo.localhost", "/headers"),
        h2_get(&mut second, "demo.localhost", "/bytes/100000"),
    );
    assert_eq!(a.status, 200);
    let text = a.text();
    // The backend is an HTTP/1.1-only server: it answering at all shows the dyno got HTTP/1.1.
    assert_eq!(seen(&text, "host"), ["demo.localhost"], "{text}");
    assert_eq!(seen(&text, "x-forwarded-proto"), ["https"], "{text}");
    assert_eq!(
        seen(&text, "x-forwarded-port"),
        [TLS_PORT_HEADER.to_string()],
        "{text}"
    );
    assert_eq!(seen(&text, "x-forwarded-for"), ["127.0.0.1"], "{text}");
    assert_eq!(b.status, 200);
    assert_eq!(b.body.len(), 100_000);

    let reply = h2_get(&mut sender, "nope.localhost", "/").await;
    assert_eq!(reply.status, 404);

    let lines = router.logs.wait_for(2).await;
    let mut messages = messages(&lines, "demo");
    messages.sort();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[0].contains("path=\"/bytes/100000\""),
        "{messages:?}"
    );
    assert!(
        messages[0].contains(" status=200 bytes=100000 protocol=https"),
        "{messages:?}"
    );
    assert!(messages[1].contains(" status=200 "), "{messages:?}");
    assert!(messages[1].ends_with(" protocol=https"), "{messages:?}");
    router.stop().await;
}

#[tokio::test]
async fn h_codes_and_error_pages_apply_to_https_requests() {
    let router = TlsRouter::start(table(&[
        (
            "scaled.localhost",
            route("scaled", RouteStatus::NoWebDynos, &[]),
        ),
        (
            "down.localhost",
            route(
                "down",
                RouteStatus::Serving,
                &[("web.1", closed_port().await)],
            ),
        ),
    ]))
    .await;
    let stream = router
        .connect("scaled.localhost", &router.ca, &[b"h2"])
        .await
        .unwrap();
    let mut sender = h2_client(stream).await;
    let reply = h2_get(&mut sender, "scaled.localhost", "/").await;
    assert_eq!(reply.status, 503);
    let reply = h2_get(&mut sender, "down.localhost", "/").await;
    assert_eq!(reply.status, 503);
    let stream = router
        .connect("scaled.localhost", &router.ca, &[b"http/1.1"])
        .await
        .unwrap();
    let reply = h1_get(stream, "scaled.localhost", "/").await;
    assert_eq!(reply.status, 503);

    let lines = router.logs.wait_for(3).await;
    let scaled = messages(&lines, "scaled");
    assert_eq!(scaled.len(), 2, "{scaled:?}");
    for message in &scaled {
        assert!(
            message.starts_with("at=error code=H14 desc=\"No web dynos running\" method=GET path=\"/\" host=scaled.localhost "),
            "{message}"
        );
        assert!(
            message.ends_with(" status=503 bytes=0 protocol=https"),
            "{message}"
        );
    }
    let down = messages(&lines, "down");
    assert!(down[0].starts_with("at=error code=H21 "), "{down:?}");
    router.stop().await;
}

#[tokio::test]
async fn sni_selects_uploaded_certificates_before_issued_ones() {
    let web = backend("web.1").await;
    let demo = route("demo", RouteStatus::Serving, &[("web.1", web)]);
    let router = TlsRouter::start(table(&[
        ("demo.localhost", demo.clone()),
        ("www.example.test", demo.clone()),
    ]))
    .await;
    let (chain, key) = self_signed("www.example.test");
    let uploaded = ServerCert::from_pem(&chain, &key).unwrap();
    let uploaded_der = CertificateDer::from(uploaded.leaf_der().to_vec());
    let mut certs = CertTable::new();
    certs.insert("www.example.test", uploaded);
    router.certs.send(Arc::new(certs)).unwrap();

    // The custom domain gets the uploaded certificate: a client trusting only it connects...
    let stream = router
        .connect("www.example.test", &uploaded_der, &[b"http/1.1"])
        .await
        .expect("the uploaded certificate is served for its domain");
    assert_eq!(presented(&stream), uploaded_der.to_vec());
    let reply = h1_get(stream, "www.example.test", "/").await;
    assert_eq!(reply.text(), "hello from web.1");
    // ...and one trusting only the platform CA does not.
    assert!(router
        .connect("www.example.test", &router.ca, &[b"http/1.1"])
        .await
        .is_err());
    // The default hostname still gets a certificate issued by the platform CA.
    let stream = router
        .connect("demo.localhost", &router.ca, &[b"http/1.1"])
        .await
        .unwrap();
    assert_ne!(presented(&stream), uploaded_der.to_vec());

    // Without the upload, the routed custom domain gets no certificate from the platform CA
    // (which may vouch for the platform's domain alone): the self-signed fallback, chained to
    // nothing.
    router.certs.send(Arc::new(CertTable::new())).unwrap();
    let error = router
        .connect("www.example.test", &router.ca, &[b"http/1.1"])
        .await
        .expect_err("a custom domain without an upload gets no CA-signed certificate");
    assert!(error.to_string().contains("certificate"), "{error}");
    let stream = insecure_connect(router.addr, "www.example.test").await;
    let chain = stream.get_ref().1.peer_certificates().unwrap().to_vec();
    assert_eq!(chain.len(), 1, "the fallback comes alone, without the CA");
    assert!(!slipway_router::verifies(
        &router.ca,
        &chain[0],
        "www.example.test"
    ));
    assert!(!slipway_router::verifies(
        &router.ca,
        &chain[0],
        "slipway-router.invalid"
    ));
    let reply = h1_get(stream, "www.example.test", "/").await;
    assert_eq!(
        reply.status, 200,
        "a client that does not verify is still served"
    );

    // A hostname the router does not route gets no certificate for that name.
    assert!(router
        .connect("stranger.localhost", &router.ca, &[b"http/1.1"])
        .await
        .is_err());
    // Route updates are seen by the next handshake.
    router
        .routes
        .send(Arc::new(table(&[("stranger.localhost", demo)])))
        .unwrap();
    router
        .connect("stranger.localhost", &router.ca, &[b"http/1.1"])
        .await
        .expect("a newly routed hostname gets a certificate");
    router.stop().await;
}

#[tokio::test]
async fn a_silent_client_is_dropped_during_the_handshake_and_shutdown_is_prompt() {
    let router = TlsRouter::start(table(&[])).await;
    // A connection that never starts a handshake does not hold shutdown up past the grace.
    let _idle = TcpStream::connect(router.addr).await.unwrap();
    let stream = router.connect("x.localhost", &router.ca, &[b"h2"]).await;
    assert!(
        stream.is_err(),
        "unknown names get the fallback certificate"
    );
    router.stop().await;
}

/// The client side of the idle rule and client resets over HTTP/2, each logged with its code
/// and status 499: a body that stops mid-way (H28), a response the client stops reading (H28:
/// the connection is cut) and a stream reset mid-response (H27).
#[tokio::test]
async fn http2_clients_that_go_silent_or_reset_streams_get_h28_and_h27() {
    let web = backend("web.1").await;
    let idle = Duration::from_millis(400);
    let router = TlsRouter::start_with(
        demo(web),
        RouterConfig {
            listen_port_for_header: 8080,
            idle_timeout: idle,
            ..RouterConfig::default()
        },
    )
    .await;
    let connect = || router.connect("demo.localhost", &router.ca, &[b"h2"]);

    // 1. A request body that stops after its first chunk.
    let mut sender = h2_client(connect().await.unwrap()).await;
    let (mut tx, body) = http_body_util::channel::Channel::<Bytes, hyper::Error>::new(1);
    tx.send_data(Bytes::from_static(b"first part"))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let response = sender
        .send_request(
            Request::post("https://demo.localhost/count")
                .body(BodyExt::boxed(body))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 499);
    assert!(started.elapsed() >= idle, "answered before the idle window");
    let lines = router.logs.wait_for(1).await;
    let line = &messages(&lines, "demo")[0];
    assert!(
        line.starts_with("at=warning sock=client code=H28 desc=\"Client Connection Idle\" method=POST path=\"/count\""),
        "{line}"
    );
    assert!(line.contains(" status=499 "), "{line}");
    drop(tx);

    // 2. A client that stops reading a large response: the connection is cut.
    let stream = connect().await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let connection = tokio::spawn(connection);
    let response = sender
        .send_request(
            Request::get("https://demo.localhost/bytes/20000000")
                .body(full(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Never read the body: the flow-control windows fill and the router waits on the client.
    let ended = tokio::time::timeout(Duration::from_secs(10), connection)
        .await
        .expect("the router never cut the connection of a client that stopped reading");
    drop(ended);
    let lines = router.logs.wait_for(2).await;
    let line = &messages(&lines, "demo")[1];
    assert!(
        line.starts_with("at=warning sock=client code=H28 desc=\"Client Connection Idle\" method=GET path=\"/bytes/20000000\""),
        "{line}"
    );
    assert!(line.contains(" status=499 "), "{line}");
    drop(response);

    // 3. A stream reset in the middle of the response.
    let mut sender = h2_client(connect().await.unwrap()).await;
    let response = sender
        .send_request(
            Request::get("https://demo.localhost/bytes/20000000")
                .body(full(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.data_ref().is_some_and(|data| !data.is_empty()));
    drop(body); // RST_STREAM(CANCEL)
    let lines = router.logs.wait_for(3).await;
    let line = &messages(&lines, "demo")[2];
    assert!(
        line.starts_with("at=warning sock=client code=H27 desc=\"Client Request Interrupted\" method=GET path=\"/bytes/20000000\""),
        "{line}"
    );
    assert!(line.contains(" status=499 "), "{line}");

    // A whole response read to the end is a plain 200 line, on the same connection.
    let reply = h2_get(&mut sender, "demo.localhost", "/bytes/300000").await;
    assert_eq!(reply.body.len(), 300_000);
    let lines = router.logs.wait_for(4).await;
    let line = &messages(&lines, "demo")[3];
    assert!(line.starts_with("at=info method=GET"), "{line}");
    assert!(line.contains(" status=200 bytes=300000 "), "{line}");
    router.stop().await;
}

/// A dyno that speaks only HTTP/1.1 WebSocket handshakes: it reads one request head, sends it
/// back to the test, answers 101 and then echoes bytes.
async fn websocket_dyno() -> (SocketAddr, tokio::sync::mpsc::Receiver<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (heads, received) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let heads = heads.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let _ = heads
                    .send(String::from_utf8_lossy(&head).into_owned())
                    .await;
                stream
                    .write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
                    .await
                    .unwrap();
                let mut buf = [0u8; 1024];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, received)
}

/// WebSockets over HTTP/2 (RFC 8441 extended CONNECT): the dyno gets an HTTP/1.1 upgrade with
/// a `Sec-WebSocket-Key`, the client a 200, and bytes flow both ways on the stream; the
/// stream is closed after the idle window without traffic.
#[tokio::test]
async fn websockets_over_http2_reach_the_dyno_as_an_http1_upgrade() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (dyno, mut heads) = websocket_dyno().await;
    let plain = backend("web.2").await;
    let idle = Duration::from_millis(600);
    let router = TlsRouter::start_with(
        table(&[
            (
                "chat.localhost",
                route("chat", RouteStatus::Serving, &[("web.1", dyno)]),
            ),
            (
                "demo.localhost",
                route("demo", RouteStatus::Serving, &[("web.1", plain)]),
            ),
        ]),
        RouterConfig {
            listen_port_for_header: 8080,
            idle_timeout: idle,
            ..RouterConfig::default()
        },
    )
    .await;
    let stream = router
        .connect("chat.localhost", &router.ca, &[b"h2"])
        .await
        .unwrap();
    let mut sender = h2_client(stream).await;
    // One ordinary request first, so the client has the router's settings (extended CONNECT).
    assert_eq!(h2_get(&mut sender, "demo.localhost", "/").await.status, 200);

    let mut request = Request::builder()
        .method("CONNECT")
        .uri("https://chat.localhost/socket?room=1")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-protocol", "chat")
        .body(full(Bytes::new()))
        .unwrap();
    request
        .extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    let mut response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("connection").is_none());

    let head = heads.recv().await.unwrap().to_ascii_lowercase();
    assert!(
        head.starts_with("get /socket?room=1 http/1.1\r\n"),
        "{head}"
    );
    let unix_lines = head.replace("\r\n", "\n");
    for (name, value) in [
        ("upgrade", "websocket"),
        ("connection", "upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-protocol", "chat"),
        ("host", "chat.localhost"),
    ] {
        assert_eq!(seen(&unix_lines, name), [value], "{head}");
    }
    let key = seen(&unix_lines, "sec-websocket-key");
    assert_eq!(key.len(), 1, "{head}");
    assert_eq!(key[0].len(), 24, "a base64 16-byte key: {head}");

    let mut io = TokioIo::new(hyper::upgrade::on(&mut response).await.unwrap());
    for message in [&b"hello over h2"[..], b"second frame"] {
        io.write_all(message).await.unwrap();
        let mut back = vec![0u8; message.len()];
        io.read_exact(&mut back).await.unwrap();
        assert_eq!(back, message);
    }
    let lines = router.logs.wait_for(2).await;
    let line = &messages(&lines, "chat")[0];
    // Logged as the client asked (CONNECT), with the dyno's 101.
    assert!(
        line.starts_with("at=info method=CONNECT path=\"/socket?room=1\" host=chat.localhost "),
        "{line}"
    );
    assert!(
        line.contains(" status=101 ") && line.ends_with(" protocol=https"),
        "{line}"
    );

    // Quiet in both directions for the idle window: the router closes the stream.
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(idle * 5, io.read_to_end(&mut rest)).await;
    assert!(ended.is_ok(), "an idle upgraded stream was never closed");
    router.stop().await;
}

/// HTTP/2 answers as HTTP/1 does for the absolute form: the `:authority` routes the request and
/// is the Host the dyno gets, whatever `host` header the client adds.
#[tokio::test]
async fn http2_authority_wins_over_a_host_header() {
    let victim = backend("victim-web.1").await;
    let evil = backend("evil-web.1").await;
    let router = TlsRouter::start(table(&[
        (
            "victim.localhost",
            route("victim", RouteStatus::Serving, &[("web.1", victim)]),
        ),
        (
            "evil.localhost",
            route("evil", RouteStatus::Serving, &[("web.1", evil)]),
        ),
    ]))
    .await;
    let stream = router
        .connect("victim.localhost", &router.ca, &[b"h2"])
        .await
        .unwrap();
    let mut sender = h2_client(stream).await;
    let response = sender
        .send_request(
            Request::get("https://victim.localhost/headers")
                .header("host", "evil.localhost")
                .body(full(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    let reply = collect(response).await;
    assert_eq!(reply.status, 200);
    let text = reply.text();
    assert_eq!(seen(&text, "host"), ["victim.localhost"], "{text}");
    router.stop().await;
}
