//! Shared harness for the router's integration tests: a router on loopback (plain HTTP/1.1,
//! or HTTPS serving HTTP/2 for [`Proto::Http2`]), tiny hyper backends, raw misbehaving
//! backends, keep-alive clients for either protocol and a log collector.
#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1 as client_http1;
use hyper::server::conn::http1 as server_http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use slipway_logplex::LogLine;
use slipway_router::{
    AppRoute, Backend, CertIssuer, CertTable, RouteStatus, RouteTable, Router, RouterConfig,
    RouterLogSink, TlsSettings,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

pub type BoxBody = http_body_util::combinators::BoxBody<Bytes, hyper::Error>;

/// Every line the router logged, with its app.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<(String, LogLine)>>>);

impl Logs {
    pub fn sink(&self) -> RouterLogSink {
        let logs = self.0.clone();
        Arc::new(move |app: &str, line: LogLine| {
            logs.lock().unwrap().push((app.to_owned(), line));
        })
    }

    pub fn lines(&self) -> Vec<(String, LogLine)> {
        self.0.lock().unwrap().clone()
    }

    /// Waits (up to 5 s) until `count` lines were logged and returns them.
    pub async fn wait_for(&self, count: usize) -> Vec<(String, LogLine)> {
        for _ in 0..500 {
            let lines = self.lines();
            if lines.len() >= count {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("expected {count} log lines, got {:?}", self.lines());
    }
}

/// The client side of a scenario: the router's two engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// Plain HTTP/1.1: the router's own engine.
    Http1,
    /// HTTP/2 over TLS (ALPN `h2`): the hyper-based path.
    Http2,
}

impl Proto {
    pub const ALL: [Proto; 2] = [Proto::Http1, Proto::Http2];

    /// `X-Forwarded-Proto` and the log line's `protocol=`.
    pub fn scheme(self) -> &'static str {
        match self {
            Proto::Http1 => "http",
            Proto::Http2 => "https",
        }
    }
}

/// Heroku's defaults, telling dynos port 8080.
pub fn quick_config() -> RouterConfig {
    RouterConfig {
        listen_port_for_header: 8080,
        ..RouterConfig::default()
    }
}

/// Replaces the parts of a log line that change from run to run.
pub fn normalize(line: &str) -> String {
    let line = regex::Regex::new(r"request_id=\S+")
        .unwrap()
        .replace(line, "request_id=<id>");
    let line = regex::Regex::new(r"(connect|service)=\d+ms")
        .unwrap()
        .replace_all(&line, "$1=<n>ms");
    line.into_owned()
}

/// A router serving on an ephemeral loopback port.
pub struct TestRouter {
    pub addr: SocketAddr,
    pub proto: Proto,
    pub routes: watch::Sender<Arc<RouteTable>>,
    pub logs: Logs,
    shutdown: Option<oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestRouter {
    pub async fn start(table: RouteTable, config: RouterConfig) -> TestRouter {
        TestRouter::start_with(Proto::Http1, table, config).await
    }

    /// A router whose listener serves `proto`; HTTPS tells dynos the same
    /// `X-Forwarded-Port` as plain HTTP (`listen_port_for_header`), so scenarios expect the
    /// same headers from both.
    pub async fn start_with(proto: Proto, table: RouteTable, config: RouterConfig) -> TestRouter {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (routes, receiver) = watch::channel(Arc::new(table));
        let logs = Logs::default();
        let port_for_header = config.listen_port_for_header;
        let router = Router::new(receiver, logs.sink(), config);
        let (shutdown, signal) = oneshot::channel::<()>();
        let signal = async move {
            let _ = signal.await;
        };
        let task = match proto {
            Proto::Http1 => tokio::spawn(router.serve(listener, signal)),
            Proto::Http2 => {
                let (_certs, cert_receiver) = watch::channel(Arc::new(CertTable::new()));
                let settings = TlsSettings {
                    certs: cert_receiver,
                    issuer: Arc::new(CertIssuer::generate("localhost").unwrap()),
                    port_for_header,
                };
                tokio::spawn(router.serve_tls(listener, settings, signal))
            }
        };
        TestRouter {
            addr,
            proto,
            routes,
            logs,
            shutdown: Some(shutdown),
            task,
        }
    }

    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("router did not shut down")
            .unwrap()
            .unwrap();
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// A keep-alive client speaking the router's protocol.
    pub async fn connect(&self) -> AnyClient {
        match self.proto {
            Proto::Http1 => AnyClient::Http1(Client::connect(self.addr).await),
            Proto::Http2 => {
                let stream = insecure_tls(self.addr, "localhost", &[b"h2"]).await;
                let (sender, connection) = hyper::client::conn::http2::handshake(
                    hyper_util::rt::TokioExecutor::new(),
                    TokioIo::new(stream),
                )
                .await
                .unwrap();
                tokio::spawn(connection);
                AnyClient::Http2(sender)
            }
        }
    }
}

/// One client connection of either protocol.
pub enum AnyClient {
    Http1(Client),
    Http2(hyper::client::conn::http2::SendRequest<BoxBody>),
}

impl AnyClient {
    /// Sends a request written as for HTTP/1.1 (a `Host` header, an origin-form target); over
    /// HTTP/2 the host becomes the `:authority` and connection headers, which HTTP/2 does not
    /// have, are left out.
    pub async fn send_raw(&mut self, request: Request<BoxBody>) -> Response<Incoming> {
        match self {
            AnyClient::Http1(client) => client.raw_send(request).await,
            AnyClient::Http2(sender) => {
                let (mut parts, body) = request.into_parts();
                let host = parts.headers.remove("host").expect("a Host header");
                let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
                parts.uri = format!("https://{}{target}", host.to_str().unwrap())
                    .parse()
                    .unwrap();
                for name in ["connection", "keep-alive", "upgrade", "transfer-encoding"] {
                    parts.headers.remove(name);
                }
                sender.ready().await.expect("client connection closed");
                let response = sender
                    .send_request(Request::from_parts(parts, body))
                    .await
                    .unwrap();
                assert_eq!(response.version(), http::Version::HTTP_2);
                response
            }
        }
    }

    pub async fn send(&mut self, request: Request<BoxBody>) -> Reply {
        let (parts, body) = self.send_raw(request).await.into_parts();
        Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }

    pub async fn get(&mut self, host: &str, path: &str) -> Reply {
        self.send(get(host, path)).await
    }
}

/// A GET request for `host` and `path` without a body.
pub fn get(host: &str, path: &str) -> Request<BoxBody> {
    Request::get(path)
        .header("host", host)
        .body(full(Bytes::new()))
        .unwrap()
}

/// A TLS connection offering `alpn` that accepts any certificate (what `curl -k` does).
pub async fn insecure_tls(
    addr: SocketAddr,
    sni: &str,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    #[derive(Debug)]
    struct AcceptAnything;
    impl rustls::client::danger::ServerCertVerifier for AcceptAnything {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            rustls::crypto::ring::default_provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AcceptAnything))
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(sni.to_owned()).unwrap(), tcp)
        .await
        .unwrap()
}

pub fn route(app: &str, status: RouteStatus, backends: &[(&str, SocketAddr)]) -> Arc<AppRoute> {
    Arc::new(AppRoute {
        app: app.to_owned(),
        status,
        backends: backends
            .iter()
            .map(|(dyno, addr)| Backend {
                dyno: (*dyno).to_owned(),
                addr: *addr,
            })
            .collect(),
    })
}

/// `demo.localhost` routed to app `demo`'s one dyno `web.1` at `web`.
pub fn demo(web: SocketAddr) -> RouteTable {
    table(&[(
        "demo.localhost",
        route("demo", RouteStatus::Serving, &[("web.1", web)]),
    )])
}

pub fn table(entries: &[(&str, Arc<AppRoute>)]) -> RouteTable {
    let mut table = RouteTable::new();
    for (host, route) in entries {
        table.insert(*host, route.clone());
    }
    table
}

/// A keep-alive HTTP/1.1 client on one connection.
pub struct Client {
    sender: client_http1::SendRequest<BoxBody>,
}

pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub fn full(body: impl Into<Bytes>) -> BoxBody {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed()
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (sender, connection) = client_http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(connection);
        Client { sender }
    }

    pub async fn send(&mut self, request: Request<BoxBody>) -> Reply {
        self.sender.ready().await.expect("client connection closed");
        let response = self.sender.send_request(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        }
    }

    pub async fn get(&mut self, host: &str, path: &str) -> Reply {
        self.send(
            Request::get(path)
                .header("host", host)
                .body(full(Bytes::new()))
                .unwrap(),
        )
        .await
    }

    /// Sends without reading the body.
    pub async fn raw_send(&mut self, request: Request<BoxBody>) -> Response<Incoming> {
        self.sender.ready().await.expect("client connection closed");
        self.sender.send_request(request).await.unwrap()
    }

    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }
}

/// A hyper backend named `name`:
/// - `/ws` switches protocols (echoing the `Upgrade` value) and then echoes bytes;
/// - `/echo` streams the request body back;
/// - `/count` reads the whole body, then answers its length;
/// - `/headers` answers the request headers as `name: value` lines;
/// - `/bytes/N` answers N bytes of `x`;
/// - `/never` never answers;
/// - anything else answers `hello from NAME`.
pub async fn backend(name: &'static str) -> SocketAddr {
    backend_counting(name).await.0
}

/// [`backend`], also counting the TCP connections it accepted.
pub async fn backend_counting(name: &'static str) -> (SocketAddr, Arc<AtomicUsize>) {
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| async move {
                    Ok::<_, Infallible>(answer(name, request).await)
                });
                let _ = server_http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    (addr, accepted)
}

async fn answer(name: &str, mut request: Request<Incoming>) -> Response<BoxBody> {
    let path = request.uri().path().to_owned();
    if path == "/ws" {
        let upgrade = request.headers().get("upgrade").cloned();
        let on_upgrade = hyper::upgrade::on(&mut request);
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            let mut io = TokioIo::new(upgraded);
            let mut buf = [0u8; 1024];
            loop {
                match io.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if io.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let mut response = Response::new(full(Bytes::new()));
        *response.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
        response
            .headers_mut()
            .insert("connection", "upgrade".parse().unwrap());
        if let Some(upgrade) = upgrade {
            response.headers_mut().insert("upgrade", upgrade);
        }
        return response;
    }
    if path == "/echo" {
        return Response::new(request.into_body().boxed());
    }
    if path == "/count" {
        // A body the router cuts (H28) ends the request here, without a panic in the log.
        return match request.into_body().collect().await {
            Ok(body) => Response::new(full(format!("{} bytes", body.to_bytes().len()))),
            Err(error) => Response::new(full(format!("body cut: {error}"))),
        };
    }
    if path == "/headers" {
        let mut text = String::new();
        for (key, value) in request.headers() {
            text.push_str(&format!("{}: {}\n", key, value.to_str().unwrap_or("?")));
        }
        return Response::new(full(text));
    }
    if let Some(n) = path.strip_prefix("/bytes/") {
        let n: usize = n.parse().unwrap();
        return Response::new(full(vec![b'x'; n]));
    }
    if let Some(ms) = path.strip_prefix("/sleep/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
    }
    if path == "/never" {
        std::future::pending::<()>().await;
    }
    Response::new(full(format!("hello from {name}")))
}

/// A raw TCP backend: for each connection, reads the request head, then runs `behaviour`.
pub async fn raw_backend<F, Fut>(behaviour: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let behaviour = Arc::new(behaviour);
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let behaviour = behaviour.clone();
            tokio::spawn(async move {
                read_head(&mut stream).await;
                behaviour(stream).await;
            });
        }
    });
    addr
}

/// Reads until the end of an HTTP header section (or EOF).
pub async fn read_head(stream: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    head
}

/// A loopback address nothing listens on.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

/// Sends raw bytes to `addr`, optionally half-closes, and reads the whole answer (up to 5 s).
pub async fn raw_exchange(addr: SocketAddr, request: &[u8], half_close: bool) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(request).await;
    if half_close {
        let _ = stream.shutdown().await;
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("router neither answered nor closed the connection");
    answer
}

/// The message part of the one log line an app got.
pub fn messages(lines: &[(String, LogLine)], app: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|(a, _)| a == app)
        .map(|(_, line)| {
            assert_eq!(line.process, "router");
            assert_eq!(line.source, slipway_logplex::Source::Heroku);
            line.message.clone()
        })
        .collect()
}
