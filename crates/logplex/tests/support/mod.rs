//! Real drain receivers on loopback for the drain tests and the pipeline benchmark: a syslog
//! listener (TCP or TLS) and an HTTP(S) endpoint whose answers the test scripts.

#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};
use tokio_rustls::TlsAcceptor;

use slipway_logplex::syslog::split_octet_counted;

/// A certificate authority made up for one test, and a server certificate for 127.0.0.1 it
/// signed.
pub struct TestPki {
    pub ca: CertificateDer<'static>,
    pub server_config: Arc<rustls::ServerConfig>,
}

impl TestPki {
    pub fn new() -> TestPki {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Slipway test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let key = KeyPair::generate().expect("server key");
        let params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("server params");
        let cert = params
            .signed_by(&key, &ca_cert, &ca_key)
            .expect("server certificate");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server_config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone(), ca_cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .expect("server config");
        TestPki {
            ca: ca_cert.der().clone(),
            server_config: Arc::new(server_config),
        }
    }
}

/// A syslog receiver: every octet-counted message it reads, as text, in order.
pub struct SyslogReceiver {
    pub addr: SocketAddr,
    pub messages: mpsc::UnboundedReceiver<String>,
}

pub async fn syslog_receiver(tls: Option<Arc<rustls::ServerConfig>>) -> SyslogReceiver {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind syslog");
    let addr = listener.local_addr().expect("local addr");
    let (sender, messages) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let sender = sender.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(config) => {
                        if let Ok(stream) = TlsAcceptor::from(config).accept(tcp).await {
                            read_frames(stream, sender).await;
                        }
                    }
                    None => read_frames(tcp, sender).await,
                }
            });
        }
    });
    SyslogReceiver { addr, messages }
}

async fn read_frames(
    mut stream: impl tokio::io::AsyncRead + Unpin,
    sender: mpsc::UnboundedSender<String>,
) {
    let mut buffer = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buffer.extend_from_slice(&chunk[..n]);
        // Parse the complete frames at the front of the buffer.
        let mut consumed = 0;
        loop {
            let rest = &buffer[consumed..];
            let Some(space) = rest.iter().position(|b| *b == b' ') else {
                break;
            };
            let length: usize = std::str::from_utf8(&rest[..space])
                .ok()
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(|| {
                    panic!("bad octet count in {:?}", String::from_utf8_lossy(rest))
                });
            if rest.len() < space + 1 + length {
                break;
            }
            let frame = &rest[..space + 1 + length];
            let messages = split_octet_counted(frame).expect("one frame");
            assert_eq!(messages.len(), 1);
            let _ = sender.send(String::from_utf8(messages[0].to_vec()).expect("UTF-8 frame"));
            consumed += frame.len();
        }
        buffer.drain(..consumed);
    }
}

/// How the HTTP endpoint answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Status(u16),
    /// Records the request, then waits until [`HttpReceiver::release`] before answering 200.
    Hang,
}

/// One request the HTTP endpoint got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
    pub answer: Answer,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn messages(&self) -> Vec<String> {
        split_octet_counted(&self.body)
            .expect("body is octet-counted frames")
            .into_iter()
            .map(|m| String::from_utf8(m.to_vec()).expect("UTF-8 frame"))
            .collect()
    }
}

struct Script {
    answers: Mutex<VecDeque<Answer>>,
    default: Mutex<Answer>,
    release: Notify,
    released: std::sync::atomic::AtomicBool,
}

/// An HTTP(S) drain endpoint answering as scripted (then with the default answer).
pub struct HttpReceiver {
    pub addr: SocketAddr,
    pub requests: mpsc::UnboundedReceiver<Received>,
    script: Arc<Script>,
}

impl HttpReceiver {
    /// Answers the next requests with these, in order.
    pub fn script(&self, answers: &[Answer]) {
        self.script
            .answers
            .lock()
            .expect("script")
            .extend(answers.iter().copied());
    }

    pub fn set_default(&self, answer: Answer) {
        *self.script.default.lock().expect("script") = answer;
    }

    /// Lets every hanging request (and later ones) answer 200.
    pub fn release(&self) {
        self.script
            .released
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.script.release.notify_waiters();
    }
}

pub async fn http_receiver(tls: Option<Arc<rustls::ServerConfig>>) -> HttpReceiver {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind http");
    let addr = listener.local_addr().expect("local addr");
    let (sender, requests) = mpsc::unbounded_channel();
    let script = Arc::new(Script {
        answers: Mutex::new(VecDeque::new()),
        default: Mutex::new(Answer::Status(200)),
        release: Notify::new(),
        released: std::sync::atomic::AtomicBool::new(false),
    });
    let server_script = script.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let sender = sender.clone();
            let script = server_script.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let sender = sender.clone();
                    let script = script.clone();
                    async move { Ok::<_, Infallible>(answer(request, &script, &sender).await) }
                });
                let builder = hyper::server::conn::http1::Builder::new();
                match tls {
                    Some(config) => {
                        if let Ok(stream) = TlsAcceptor::from(config).accept(tcp).await {
                            let io = hyper_util::rt::TokioIo::new(stream);
                            let _ = builder.serve_connection(io, service).await;
                        }
                    }
                    None => {
                        let io = hyper_util::rt::TokioIo::new(tcp);
                        let _ = builder.serve_connection(io, service).await;
                    }
                }
            });
        }
    });
    HttpReceiver {
        addr,
        requests,
        script,
    }
}

async fn answer(
    request: Request<Incoming>,
    script: &Script,
    sender: &mpsc::UnboundedSender<Received>,
) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let answer = script
        .answers
        .lock()
        .expect("script")
        .pop_front()
        .unwrap_or(*script.default.lock().expect("script"));
    let _ = sender.send(Received {
        headers: parts.headers,
        body,
        answer,
    });
    let status = match answer {
        Answer::Status(status) => status,
        Answer::Hang => {
            loop {
                let notified = script.release.notified();
                if script.released.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                notified.await;
            }
            200
        }
    };
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::new()))
        .expect("response")
}

/// The parts of an RFC 5424 message (as Slipway's drains write them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Syslog {
    pub pri: u8,
    pub version: u8,
    pub timestamp: String,
    pub hostname: String,
    pub app_name: String,
    pub procid: String,
    pub msgid: String,
    /// `Some` for syslog drains (`- -`), `None` for logplex-1 bodies (a single `-`).
    pub structured_data: Option<String>,
    pub message: String,
}

/// Parses `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG`; `with_sd` tells whether
/// the STRUCTURED-DATA field is there.
pub fn parse_syslog(text: &str, with_sd: bool) -> Syslog {
    let rest = text.strip_prefix('<').expect("starts with <PRI>");
    let (pri, rest) = rest.split_once('>').expect("PRI closes");
    let fields = if with_sd { 7 } else { 6 };
    let mut parts = rest.splitn(fields + 1, ' ');
    let mut next = || parts.next().expect("header field").to_owned();
    let version = next();
    let timestamp = next();
    let hostname = next();
    let app_name = next();
    let procid = next();
    let msgid = next();
    let structured_data = with_sd.then(&mut next);
    let message = parts.next().unwrap_or("").to_owned();
    Syslog {
        pri: pri.parse().expect("numeric PRI"),
        version: version.parse().expect("numeric version"),
        timestamp,
        hostname,
        app_name,
        procid,
        msgid,
        structured_data,
        message,
    }
}
