//! End to end, the platform's own outbound connections and files as a hostile tenant sees
//! them: source blob URLs and log drains pointing at loopback, this host's addresses, private
//! and link-local ranges (the cloud metadata service) are refused before any connection, with
//! a Heroku error body; the data directory is readable by root alone, also when an older
//! version left it world-readable.

mod support;

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use support::Server;

/// A loopback HTTP server that answers 200 to anything and counts its connections.
fn counting_server() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counter.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut stream) = stream {
                use std::io::Write;
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            }
        }
    });
    (port, hits)
}

/// This machine's interface addresses other than loopback and link-local (`ip -o addr`).
fn interface_addresses() -> Vec<String> {
    let output = std::process::Command::new("ip")
        .args(["-o", "addr"])
        .output()
        .expect("ip -o addr (iproute2)");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line
                .split_whitespace()
                .skip_while(|w| !w.starts_with("inet"));
            let family = words.next()?;
            let addr = words.next()?.split('/').next()?.to_owned();
            let skip = addr.starts_with("127.") || addr == "::1" || addr.starts_with("fe80");
            (!skip).then(|| {
                if family == "inet6" {
                    format!("[{addr}]")
                } else {
                    addr
                }
            })
        })
        .collect()
}

async fn post(server: &Server, path: &str, body: Value) -> (reqwest::StatusCode, Value) {
    let response = server
        .api(reqwest::Method::POST, path)
        .json(&body)
        .send()
        .await
        .expect("API request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Every private target a tenant might name, `port` being the counting server's.
fn private_targets(port: u16) -> Vec<String> {
    let mut targets: Vec<String> = [
        "127.0.0.1",
        "localhost",
        "[::1]",
        "0.0.0.0",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "[fd00::1]",
        "[::ffff:127.0.0.1]",
    ]
    .iter()
    .map(|host| format!("{host}:{port}"))
    .collect();
    let own = interface_addresses();
    assert!(
        !own.is_empty(),
        "this machine has no non-loopback address to test with"
    );
    targets.extend(own.into_iter().map(|addr| format!("{addr}:{port}")));
    targets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_blobs_on_private_addresses_are_refused_before_any_fetch() {
    let server = Server::start();
    server.cli_ok(&["apps:create", "fetcher"]);
    let (port, hits) = counting_server();
    for target in private_targets(port) {
        let url = format!("http://{target}/latest/meta-data/source.tgz");
        let (status, body) = post(
            &server,
            "/apps/fetcher/builds",
            json!({"source_blob": {"url": url}}),
        )
        .await;
        assert_eq!(status, 422, "{url}: {body}");
        assert_eq!(body["id"], "invalid_params", "{url}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("source_blob.url is refused")
                && message.contains("--allow-private-urls"),
            "{url}: {message}"
        );
    }
    let builds = server.api_json("/apps/fetcher/builds").await;
    assert_eq!(builds.as_array().unwrap().len(), 0, "{builds}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 0, "a refused URL was fetched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drains_to_private_addresses_are_refused_when_added() {
    let server = Server::start();
    server.cli_ok(&["apps:create", "leaky"]);
    let (port, hits) = counting_server();
    for target in private_targets(port) {
        for url in [
            format!("syslog://{target}"),
            format!("https://{target}/logs"),
        ] {
            let (status, body) = post(&server, "/apps/leaky/log-drains", json!({"url": url})).await;
            assert_eq!(status, 422, "{url}: {body}");
            let message = body["message"].as_str().unwrap_or_default();
            assert!(message.contains("is refused"), "{url}: {message}");
        }
    }
    let drains = server.api_json("/apps/leaky/log-drains").await;
    assert_eq!(drains.as_array().unwrap().len(), 0, "{drains}");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "a refused drain connected");
}

/// Paths under the data directory that others than root may read or enter, and why. Anything
/// else with a group or other permission bit fails the test.
fn allowed_open(relative: &Path) -> Option<&'static str> {
    let text = relative.to_string_lossy();
    let name = relative
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    if text == "buildpacks" || text.starts_with("buildpacks/") {
        return Some("the built-in buildpacks run inside build containers as the build user");
    }
    if text.starts_with("runtime/") {
        if text.starts_with("runtime/runc/") && relative.components().count() == 3 {
            return Some("runc's own state directory per container: traverse-only 0711, as runc makes it; its state.json is 0600");
        }
        if text.contains("/rootfs") {
            return Some("a container's root and mountpoints: its user must traverse them");
        }
        if name.as_deref() == Some("tmp")
            && (text.starts_with("runtime/disks/") || text.ends_with("/disk/tmp"))
        {
            return Some("a dyno's /tmp (1777, as every /tmp), on its own disk whose root is 0700");
        }
        if name.as_deref() == Some("netns") {
            return Some("a running dyno's network namespace, bind-mounted: the kernel's nsfs file (0444), not data");
        }
        if matches!(name.as_deref(), Some("runc.log" | "init.pid")) {
            return Some("written by runc, which runs with umask 022 so that the cgroups it creates are readable by the dyno; behind the 0700 data directory");
        }
    }
    None
}

/// Files and directories under `dir`, owned by root, that anyone but root could read or enter,
/// without an [`allowed_open`] reason. (Files owned by the dyno's user, its unpacked slug and
/// writable layer, are that user's to read.)
fn open_modes(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_symlink() || meta.uid() != 0 {
            continue;
        }
        let mode = meta.permissions().mode() & 0o777;
        let relative = path.strip_prefix(dir).unwrap();
        if mode & 0o077 != 0 && allowed_open(relative).is_none() {
            found.push(format!("{:o} {}", mode, relative.display()));
        }
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        }
    }
    found.sort();
    found
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Deploys the echo app and waits for it to answer.
async fn deploy(server: &Server, app: &str) {
    server.cli_ok(&["apps:create", app]);
    server.cli_ok(&["config:set", "SECRET=hunter2", "-a", app]);
    let dir = support::repo(&[
        ("Procfile", "web: python3 server.py\n"),
        ("server.py", support::ECHO_APP),
    ]);
    let push = server.push(app, dir.path());
    assert!(push.status.success(), "{}", support::text(&push));
    server.wait_for_200(app, "/").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_deploy_the_data_directory_is_readable_by_root_alone() {
    require_runc!();
    let server = Server::start();
    deploy(&server, "secretive").await;
    assert_eq!(mode(&server.data_dir), 0o700);
    assert_eq!(mode(&server.data_dir.join("slipway.db")), 0o600);
    let wal = server.data_dir.join("slipway.db-wal");
    if wal.exists() {
        assert_eq!(mode(&wal), 0o600);
    }
    let open = open_modes(&server.data_dir);
    assert!(open.is_empty(), "readable by others: {open:#?}");
    // The dyno, as its unprivileged user, still reads its cgroup limits and its slug.
    let facts: Value = server.get("secretive", "/env").await.json().await.unwrap();
    assert_eq!(facts["memory_quota"], 512 * 1024 * 1024, "{facts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_left_world_readable_by_an_older_version_is_fixed_on_start() {
    let mut server = Server::start();
    server.cli_ok(&["apps:create", "old"]);
    server.cli_ok(&["config:set", "SECRET=hunter2", "-a", "old"]);
    server.kill9();
    // What an older version left: 0755 directories, 0644 files.
    let old_dir = server.data_dir.join("repos").join("left-over");
    std::fs::create_dir_all(&old_dir).unwrap();
    std::fs::write(old_dir.join("file"), "x").unwrap();
    let set = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    set(&server.data_dir, 0o755);
    set(&server.data_dir.join("slipway.db"), 0o644);
    set(&server.data_dir.join("repos"), 0o755);
    set(&old_dir, 0o755);
    set(&old_dir.join("file"), 0o644);
    set(&server.data_dir.join("admin.key"), 0o644);
    assert!(!open_modes(&server.data_dir).is_empty());
    server.restart_with(&[]);
    assert_eq!(mode(&server.data_dir), 0o700);
    assert_eq!(mode(&server.data_dir.join("slipway.db")), 0o600);
    assert_eq!(mode(&old_dir), 0o700);
    assert_eq!(mode(&old_dir.join("file")), 0o600);
    assert_eq!(mode(&server.data_dir.join("admin.key")), 0o600);
    let open = open_modes(&server.data_dir);
    assert!(open.is_empty(), "readable by others: {open:#?}");
    // The platform still works on the fixed directory.
    let config = server.cli_ok(&["config", "-a", "old"]);
    assert!(config.contains("hunter2"), "{config}");
}

/// Serves `body` for any GET on a loopback port; returns the URL.
fn serve_bytes(body: Vec<u8>) -> String {
    let base = support::serve_http(move |_| {
        // No Content-Length: the limit must hold while streaming, not from the header.
        let mut response = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
        response.extend_from_slice(&body);
        response
    });
    format!("{base}/source.tgz")
}

/// A gzip'd tarball of one file of `size` zeros (a few KB per MB).
fn zero_bomb(size: usize) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::best(),
    ));
    let mut header = tar::Header::new_gnu();
    header.set_size(size as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(
            &mut header,
            "app/zeros",
            std::io::Read::take(std::io::repeat(0), size as u64),
        )
        .unwrap();
    builder.into_inner().unwrap().finish().unwrap()
}

async fn build_output(server: &Server, app: &str, url: &str) -> String {
    let (status, build) = post(
        server,
        &format!("/apps/{app}/builds"),
        json!({"source_blob": {"url": url}}),
    )
    .await;
    assert_eq!(status, 201, "{build}");
    let output = reqwest::get(build["output_stream_url"].as_str().unwrap())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let id = build["id"].as_str().unwrap();
    let build = server.api_json(&format!("/apps/{app}/builds/{id}")).await;
    assert_eq!(build["status"], "failed", "{build}\n{output}");
    output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_expanding_source_blobs_fail_cleanly() {
    let server = Server::start_with(&[
        "--allow-private-urls",
        "--max-source-blob-mb",
        "1",
        "--max-source-size-mb",
        "16",
    ]);
    server.cli_ok(&["apps:create", "bloated"]);
    // 3 MB that do not compress: over the 1 MB download limit.
    let noise: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let output = build_output(&server, "bloated", &serve_bytes(noise)).await;
    assert!(
        output.contains("The source blob from 127.0.0.1 is larger than the limit of 1 MB"),
        "{output}"
    );
    // 64 MB of zeros in a ~64 KB blob: over the 16 MB unpacked limit.
    let bomb = zero_bomb(64 * 1024 * 1024);
    assert!(bomb.len() < 1024 * 1024, "{}", bomb.len());
    let output = build_output(&server, "bloated", &serve_bytes(bomb)).await;
    assert!(
        output.contains("the source expands to more than 16M, the most Slipway unpacks"),
        "{output}"
    );
    // Nothing is left behind.
    let builds = server.data_dir.join("builds");
    let left: Vec<_> = std::fs::read_dir(&builds)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left over: {left:?}");
}
