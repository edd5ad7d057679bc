//! The rendezvous listener end to end: a real TLS listener with a certificate from a test
//! CA, clients speaking both modes over TLS, and one-off "dynos" that are real local
//! processes on a real pty or real pipes ([`LocalSessions`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use slipway_api_types::rendezvous::{self as proto, Frame};
use slipway_rendezvous::testing::LocalSessions;
use slipway_runtime::Attach;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const TTY: Attach = Attach::Tty { cols: 80, rows: 24 };

struct Listener {
    addr: SocketAddr,
    sessions: Arc<LocalSessions>,
    client: tokio_rustls::TlsConnector,
    _stop: tokio::sync::watch::Sender<bool>,
}

/// A CA, a server certificate for 127.0.0.1 signed by it, and the listener serving with it.
async fn listener(window: Duration) -> Listener {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::default();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let server = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca.der().to_vec())).unwrap();
    let client = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let sessions = LocalSessions::new(window);
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(slipway_rendezvous::serve(
        tcp,
        Arc::new(server),
        sessions.clone(),
        stop_rx,
    ));
    Listener {
        addr,
        sessions,
        client: tokio_rustls::TlsConnector::from(Arc::new(client)),
        _stop: stop,
    }
}

impl Listener {
    async fn connect(&self) -> TlsStream<TcpStream> {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        self.client.connect(name, tcp).await.unwrap()
    }

    /// Connects and sends `line` as the first line.
    async fn open(&self, line: &str) -> TlsStream<TcpStream> {
        let mut stream = self.connect().await;
        stream
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
        stream
    }
}

/// Everything until the server closes, or what came within `limit`.
async fn read_all(stream: &mut TlsStream<TcpStream>, limit: Duration) -> Vec<u8> {
    let mut all = Vec::new();
    let _ = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    all
}

/// Reads until `needle` has arrived; returns everything read.
async fn read_until(stream: &mut TlsStream<TcpStream>, needle: &[u8]) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(10), async {
        while !all.windows(needle.len()).any(|w| w == needle) {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "closed before {:?}: {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(&all)
            );
            all.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "no {:?} in {:?}",
            String::from_utf8_lossy(needle),
            String::from_utf8_lossy(&all)
        )
    });
    all
}

/// Reads frames until the server closes.
async fn read_frames(stream: &mut TlsStream<TcpStream>) -> Vec<Frame> {
    read_frames_after(stream, Vec::new()).await
}

/// Reads frames until the server closes, after the bytes `read_until` already took (which
/// need not end on a frame boundary).
async fn read_frames_after(stream: &mut TlsStream<TcpStream>, mut bytes: Vec<u8>) -> Vec<Frame> {
    bytes.extend(read_all(stream, Duration::from_secs(10)).await);
    let mut frames = Vec::new();
    let mut rest = &bytes[..];
    while let Some((frame, used)) = proto::decode(rest).unwrap() {
        frames.push(frame);
        rest = &rest[used..];
    }
    assert!(rest.is_empty(), "trailing bytes: {rest:?}");
    frames
}

fn output_of(frames: &[Frame]) -> String {
    let mut out = Vec::new();
    for frame in frames {
        if let Frame::Data(bytes) = frame {
            out.extend_from_slice(bytes);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn wait_for_hangups(sessions: &LocalSessions, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while sessions.hangups() < n {
        assert!(Instant::now() < deadline, "hangups: {}", sessions.hangups());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn heroku_mode_greets_alone_then_echoes_and_eot_ends_a_pipes_session() {
    let l = listener(Duration::from_secs(60)).await;
    l.sessions.add("s3cret", "cat; echo done", Attach::Pipes);
    let mut stream = l.open("s3cret").await;
    // The real CLI drops its whole first chunk: the greeting must come alone.
    let mut buf = [0u8; 256];
    let n = stream.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"rendezvous\r\n");
    stream.write_all(b"hello\n").await.unwrap();
    read_until(&mut stream, b"hello\n").await;
    // What the real CLI sends when its stdin ends: cat sees end of input and exits.
    stream.write_all(&[0x04]).await.unwrap();
    let rest = read_all(&mut stream, Duration::from_secs(10)).await;
    assert_eq!(String::from_utf8_lossy(&rest), "done\n");
    assert_eq!(
        l.sessions.hangups(),
        0,
        "a process that exits is not hung up"
    );
}

#[tokio::test]
async fn heroku_mode_types_eot_into_a_terminal() {
    let l = listener(Duration::from_secs(60)).await;
    l.sessions.add(
        "tty",
        "tty >/dev/null && echo on-a-tty; cat; echo cat-ended",
        TTY,
    );
    let mut stream = l.open("tty").await;
    read_until(&mut stream, b"on-a-tty").await;
    stream.write_all(b"typed\r").await.unwrap();
    read_until(&mut stream, b"typed\r\n").await;
    // Ctrl-D at the start of a line is the terminal's end of file for cat.
    stream.write_all(&[0x04]).await.unwrap();
    let rest = read_all(&mut stream, Duration::from_secs(10)).await;
    assert!(
        String::from_utf8_lossy(&rest).contains("cat-ended"),
        "{rest:?}"
    );
}

#[tokio::test]
async fn wrong_reused_and_expired_secrets_are_refused_without_echo() {
    let l = listener(Duration::from_secs(60)).await;
    l.sessions.add("once", "true", Attach::Pipes);
    let mut stream = l.open("wrong-secret-xyz").await;
    let reply = String::from_utf8(read_all(&mut stream, Duration::from_secs(5)).await).unwrap();
    assert_eq!(
        reply,
        "rendezvous\r\nError: no one-off dyno is waiting for this secret\r\n"
    );

    let mut first = l.open("once").await;
    read_all(&mut first, Duration::from_secs(5)).await;
    let mut second = l.open("once").await;
    let reply = String::from_utf8(read_all(&mut second, Duration::from_secs(5)).await).unwrap();
    assert!(reply.contains("already been used"), "{reply}");
    assert!(!reply.contains("once"), "{reply}");

    let expiring = listener(Duration::from_millis(50)).await;
    expiring.sessions.add("late", "true", Attach::Pipes);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut stream = expiring.open("late slipway/1").await;
    let frames = read_frames(&mut stream).await;
    assert_eq!(
        frames,
        vec![Frame::Error {
            message: "the secret has expired".into()
        }]
    );

    // Garbage and an overlong line get a short error and the connection closes.
    let mut stream = l.open("two words here").await;
    let reply = String::from_utf8(read_all(&mut stream, Duration::from_secs(5)).await).unwrap();
    assert!(
        reply.ends_with("Error: the secret is not valid\r\n"),
        "{reply}"
    );
    assert!(!reply.contains("words"), "{reply}");
    let mut stream = l.open(&"x".repeat(600)).await;
    let reply = String::from_utf8(read_all(&mut stream, Duration::from_secs(5)).await).unwrap();
    assert_eq!(reply, "error: the first line is too long\r\n");
}

#[tokio::test]
async fn a_silent_client_is_timed_out() {
    let l = listener(Duration::from_secs(60)).await;
    let mut stream = l.connect().await;
    let started = Instant::now();
    let reply = String::from_utf8(read_all(&mut stream, Duration::from_secs(15)).await).unwrap();
    assert_eq!(reply, "error: timed out waiting for the secret\r\n");
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_client_that_goes_away_hangs_the_process_up() {
    let l = listener(Duration::from_secs(60)).await;
    let marker = tempfile_path("hup");
    l.sessions.add(
        "hup",
        &format!(
            "trap 'echo hup > {marker}; exit 129' HUP; echo ready; while :; do sleep 0.05; done"
        ),
        Attach::Pipes,
    );
    let mut stream = l.open("hup").await;
    read_until(&mut stream, b"ready").await;
    drop(stream);
    wait_for_hangups(&l.sessions, 1).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(&marker).unwrap_or_default() != "hup\n" {
        assert!(Instant::now() < deadline, "the process never got SIGHUP");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = std::fs::remove_file(&marker);
}

#[tokio::test]
async fn slipway_mode_resizes_the_terminal_and_returns_the_exit_status() {
    let l = listener(Duration::from_secs(60)).await;
    l.sessions
        .add("sz", "stty size; read line; stty size; exit 3", TTY);
    let mut stream = l.open("sz slipway/1").await;
    let before = read_until(&mut stream, b"24 80\r\n").await;
    let mut resize = proto::encode_to_vec(&Frame::Resize {
        cols: 132,
        rows: 43,
    });
    proto::encode(&Frame::Data(b"go\r".to_vec()), &mut resize);
    stream.write_all(&resize).await.unwrap();
    let frames = read_frames_after(&mut stream, before).await;
    assert_eq!(
        frames.first(),
        Some(&Frame::Ready {
            dyno: "run.1".into()
        })
    );
    assert_eq!(frames.last(), Some(&Frame::Exit { code: 3 }));
    let output = output_of(&frames);
    assert!(output.starts_with("24 80\r\n"), "{output:?}");
    assert!(output.ends_with("43 132\r\n"), "{output:?}");
}

#[tokio::test]
async fn slipway_mode_end_of_input_and_signals() {
    let l = listener(Duration::from_secs(60)).await;
    l.sessions.add("wc", "wc -c", Attach::Pipes);
    let mut stream = l.open("wc slipway/1").await;
    let mut frames = proto::encode_to_vec(&Frame::Data(vec![b'x'; 100_000]));
    proto::encode(&Frame::EndOfInput, &mut frames);
    stream.write_all(&frames).await.unwrap();
    let frames = read_frames(&mut stream).await;
    assert_eq!(output_of(&frames).trim(), "100000");
    assert_eq!(frames.last(), Some(&Frame::Exit { code: 0 }));

    // Ctrl-C typed into the terminal interrupts the foreground process; the shell reports
    // 130 as it would on a laptop.
    l.sessions.add("int", "echo started; exec sleep 30", TTY);
    let mut stream = l.open("int slipway/1").await;
    let before = read_until(&mut stream, b"started").await;
    // Past the exec, so that the interrupt meets sleep, not a shell between fork and exec.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stream
        .write_all(&proto::encode_to_vec(&Frame::Data(vec![0x03])))
        .await
        .unwrap();
    let frames = read_frames_after(&mut stream, before).await;
    assert_eq!(
        frames.last(),
        Some(&Frame::Exit { code: 130 }),
        "{frames:?}"
    );
}

#[tokio::test]
async fn an_idle_session_is_ended_and_hung_up() {
    let l = listener(Duration::from_secs(60)).await;
    l.sessions.add_with_idle(
        "idle",
        "sleep 30",
        Attach::Pipes,
        Duration::from_millis(300),
    );
    let mut stream = l.open("idle slipway/1").await;
    let started = Instant::now();
    let frames = read_frames(&mut stream).await;
    assert_eq!(
        frames.last(),
        Some(&Frame::Error {
            message: "the session was idle for too long".into()
        })
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    wait_for_hangups(&l.sessions, 1).await;
}

#[tokio::test]
async fn a_client_that_does_not_read_does_not_stall_the_others() {
    let l = listener(Duration::from_secs(60)).await;
    l.sessions.add("flood", "yes flood", Attach::Pipes);
    let _flooding = l.open("flood").await;
    for i in 0..8 {
        let secret = format!("quick{i}");
        l.sessions
            .add(&secret, &format!("echo answer-{i}"), Attach::Pipes);
    }
    let started = Instant::now();
    // All eight are attached at once, next to the flood nobody reads.
    let mut streams = Vec::new();
    for i in 0..8 {
        streams.push(l.open(&format!("quick{i} slipway/1")).await);
    }
    for (i, stream) in streams.iter_mut().enumerate() {
        let frames = read_frames(stream).await;
        assert_eq!(output_of(&frames), format!("answer-{i}\n"));
        assert_eq!(frames.last(), Some(&Frame::Exit { code: 0 }));
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// The listener's own overhead: TCP connect to the first output byte of `echo` (TLS, the
/// secret line, the claim with its fork/exec, the Ready frame; Slipway mode, which has no
/// greeting pause), and to the exit frame. Reported, not asserted.
#[tokio::test]
async fn measure_connect_to_first_byte() {
    let l = listener(Duration::from_secs(60)).await;
    let mut first = Vec::new();
    let mut exit = Vec::new();
    for i in 0..20 {
        let secret = format!("m{i}");
        l.sessions.add(&secret, "echo x", Attach::Pipes);
        let started = Instant::now();
        let mut stream = l.open(&format!("{secret} slipway/1")).await;
        let mut bytes = Vec::new();
        let mut buf = [0u8; 1024];
        let mut first_at = None;
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            bytes.extend_from_slice(&buf[..n]);
            let mut rest = &bytes[..];
            while let Some((frame, used)) = proto::decode(rest).unwrap() {
                if matches!(frame, Frame::Data(_)) && first_at.is_none() {
                    first_at = Some(started.elapsed());
                }
                rest = &rest[used..];
            }
        }
        first.push(first_at.expect("no output"));
        exit.push(started.elapsed());
    }
    first.sort();
    exit.sort();
    eprintln!(
        "rendezvous, `echo x` over pipes: connect to first output byte median {:?} max {:?}; to close median {:?}",
        first[first.len() / 2],
        first[first.len() - 1],
        exit[exit.len() / 2],
    );
}

fn tempfile_path(stem: &str) -> String {
    let dir = std::env::temp_dir();
    dir.join(format!("rdv-{stem}-{}", std::process::id()))
        .display()
        .to_string()
}
