//! A throwaway S3-compatible server on loopback for tests: moto (`pip install
//! 'moto[server]'`, as `.ci/run` installs it), with a bucket made for the test.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The moto server binary: `$SLIPWAY_MOTO_SERVER`, else `moto_server` on `PATH`.
pub fn moto_server() -> Option<std::path::PathBuf> {
    if let Some(path) = std::env::var_os("SLIPWAY_MOTO_SERVER").filter(|p| !p.is_empty()) {
        return Some(path.into());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/opt/moto-venv/bin".into()])
        .map(|dir| dir.join("moto_server"))
        .find(|candidate| candidate.is_file())
}

/// A running moto server, killed on drop.
pub struct Moto {
    child: Child,
    pub host: std::net::Ipv4Addr,
    pub port: u16,
}

impl Moto {
    /// Starts moto on a free loopback port; `None` (after saying why on stderr) when moto is
    /// not installed, which is outside the project.
    pub fn start() -> Option<Moto> {
        Self::start_on(std::net::Ipv4Addr::LOCALHOST)
    }

    /// [`Moto::start`] listening on `host` (an address of the test's own network).
    pub fn start_on(host: std::net::Ipv4Addr) -> Option<Moto> {
        let Some(binary) = moto_server() else {
            eprintln!(
                "\n\n!!! SKIPPED: moto (an S3-compatible server) is not installed; install it with `python3 -m venv /opt/moto-venv && /opt/moto-venv/bin/pip install 'moto[server]'` (as .ci/run does)\n"
            );
            return None;
        };
        let port = std::net::TcpListener::bind((host, 0))
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(binary)
            .args(["-H", &host.to_string(), "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = Moto { child, host, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect((host, port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(moto)
    }

    /// The endpoint URL (`http://HOST:PORT`).
    pub fn endpoint(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    /// `--slug-store`'s URL for `bucket` on this server.
    pub fn store_url(&self, bucket: &str) -> String {
        format!("s3://{bucket}?endpoint={}", self.endpoint())
    }

    /// Sends one plain HTTP request to moto (which checks no signature) and returns the status
    /// and body.
    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let mut stream = TcpStream::connect((self.host, self.port)).expect("connect to moto");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.host,
            self.port,
            body.len()
        );
        stream.write_all(head.as_bytes()).expect("write to moto");
        stream.write_all(body).expect("write to moto");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).expect("read from moto");
        let text = String::from_utf8_lossy(&answer);
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|at| answer[at + 4..].to_vec())
            .unwrap_or_default();
        (status, body)
    }

    /// Makes `bucket`.
    pub fn create_bucket(&self, bucket: &str) {
        let (status, body) = self.request("PUT", &format!("/{bucket}"), b"");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
