//! End to end: the classic buildpack contract with third-party buildpacks fetched by URL. An
//! app's `.buildpacks` names three buildpacks written the way public ones are: one in a git
//! repository served over smart HTTP (`git http-backend` on loopback) at a tag, which writes
//! `$BUILDPACK_DIR/export`, keeps a counter in `$CACHE_DIR` and has `bin/report`; a null
//! buildpack (no `bin/release`) in a `.tgz`; and an inline buildpack in a `.tgz` that runs the
//! app's own `bin/compile` and `bin/release`. The pushed app serves what the export told it,
//! the last buildpack's default `web` runs with no Procfile, `builds`/`builds:info`/
//! `builds:output` show the push, and `builds:cache:purge` makes the next build cold. An app
//! whose language no buildpack builds (a build.sbt) is refused naming the file, and builds once
//! a buildpack for it is set by URL; without `--allow-private-urls` a loopback buildpack URL
//! is refused by the outbound policy.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::{commit_all, git, repo, text, Server};

/// Serves the bare repositories under `root` over git's smart HTTP protocol on a loopback
/// port, through `git http-backend` run as a CGI per request. Returns the base URL.
fn serve_git(root: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let root = root.clone();
            std::thread::spawn(move || {
                let _ = serve_git_request(&root, &mut stream);
            });
        }
    });
    base
}

fn serve_git_request(root: &Path, stream: &mut std::net::TcpStream) -> std::io::Result<()> {
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut buffer)?;
        if n == 0 {
            return Ok(());
        }
        data.extend_from_slice(&buffer[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or_default().to_owned();
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("GET").to_owned();
    let target = parts.next().unwrap_or("/").to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut headers = std::collections::HashMap::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    assert!(
        !headers.contains_key("transfer-encoding"),
        "this test server reads Content-Length bodies only"
    );
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = data[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buffer[..n]);
    }
    let mut cgi = Command::new("git");
    cgi.arg("http-backend")
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("CONTENT_LENGTH", body.len().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (header, variable) in [
        ("content-type", "CONTENT_TYPE"),
        ("content-encoding", "HTTP_CONTENT_ENCODING"),
        ("git-protocol", "GIT_PROTOCOL"),
    ] {
        if let Some(value) = headers.get(header) {
            cgi.env(variable, value);
        }
    }
    let mut child = cgi.spawn()?;
    child.stdin.take().expect("stdin").write_all(&body)?;
    let output = child.wait_with_output()?;
    let out = output.stdout;
    let (cgi_head, cgi_body) = match out.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(at) => (&out[..at], &out[at + 4..]),
        None => match out.windows(2).position(|w| w == b"\n\n") {
            Some(at) => (&out[..at], &out[at + 2..]),
            None => (&out[..0], &out[..]),
        },
    };
    let cgi_head = String::from_utf8_lossy(cgi_head);
    let mut status = "200 OK".to_owned();
    let mut response = Vec::new();
    for line in cgi_head.lines() {
        match line.split_once(':') {
            Some((name, value)) if name.eq_ignore_ascii_case("status") => {
                status = value.trim().to_owned();
            }
            Some(_) => response.extend_from_slice(format!("{line}\r\n").as_bytes()),
            None => {}
        }
    }
    let mut reply = format!("HTTP/1.1 {status}\r\n").into_bytes();
    reply.extend_from_slice(&response);
    reply.extend_from_slice(
        format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            cgi_body.len()
        )
        .as_bytes(),
    );
    reply.extend_from_slice(cgi_body);
    stream.write_all(&reply)
}

/// Serves `files` (path → bytes) over HTTP on a loopback port; other paths are 404s.
fn serve_files(files: Vec<(String, Vec<u8>)>) -> String {
    support::serve_http(move |path| {
        let (status, body) = match files.iter().find(|(p, _)| p == path) {
            Some((_, body)) => ("200 OK", body.as_slice()),
            None => ("404 Not Found", b"not found".as_slice()),
        };
        let mut response = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        response.extend_from_slice(body);
        response
    })
}

/// Writes `files` under `dir`; a path under `bin/` is made executable.
fn write_tree(dir: &Path, files: &[(&str, &str)]) {
    for (path, contents) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, contents).expect("write");
        if path.parent().is_some_and(|p| p.ends_with("bin")) {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
    }
}

/// A `.tgz` of a buildpack made of `files` (scripts under `bin/` executable).
fn buildpack_tgz(files: &[(&str, &str)]) -> Vec<u8> {
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = temp.path().join("bp");
    write_tree(&dir, files);
    let out = temp.path().join("bp.tgz");
    let status = Command::new("tar")
        .arg("czf")
        .arg(&out)
        .arg("-C")
        .arg(&dir)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(status.success());
    std::fs::read(out).expect("read the tarball")
}

/// The git buildpack: exports a variable and a PATH entry, counts its builds in the cache,
/// and reports what it did.
const EXPORTER: &[(&str, &str)] = &[
    ("bin/detect", "#!/bin/sh\necho Exporter\n"),
    (
        "bin/compile",
        r#"#!/usr/bin/env bash
set -euo pipefail
BUILD_DIR=$1 CACHE_DIR=$2 ENV_DIR=$3
BUILDPACK_DIR=$(cd "$(dirname "$0")"; cd ..; pwd)
mkdir -p "$CACHE_DIR"
count=$(( $(cat "$CACHE_DIR/exporter-count" 2>/dev/null || echo 0) + 1 ))
echo "$count" > "$CACHE_DIR/exporter-count"
echo "-----> Exporter cache run $count"
mkdir -p "$BUILD_DIR/.exporter/bin"
printf '#!/bin/sh\necho "shouted: $*"\n' > "$BUILD_DIR/.exporter/bin/shout"
chmod +x "$BUILD_DIR/.exporter/bin/shout"
echo "export EXPORTED_GREETING=\"$(cat "$ENV_DIR/GREETING") via export\"" > "$BUILDPACK_DIR/export"
echo "export PATH=\"$BUILD_DIR/.exporter/bin:\$PATH\"" >> "$BUILDPACK_DIR/export"
mkdir -p "$BUILD_DIR/.profile.d"
echo 'export FROM_PROFILE_D=exporter-profile' > "$BUILD_DIR/.profile.d/exporter.sh"
"#,
    ),
    (
        "bin/report",
        "#!/bin/sh\necho 'exporter_version: 2.0.0'\necho \"stack: $STACK\"\n",
    ),
    ("bin/release", "#!/bin/sh\necho '--- {}'\n"),
];

/// A null buildpack: detect and compile, no bin/release.
const NULL: &[(&str, &str)] = &[
    ("bin/detect", "#!/bin/sh\necho Null\n"),
    (
        "bin/compile",
        "#!/bin/sh\necho \"-----> Null buildpack sees: ${EXPORTED_GREETING:-nothing}\"\n",
    ),
];

/// The inline buildpack (as `heroku-buildpack-inline`): the app builds itself.
const INLINE: &[(&str, &str)] = &[
    (
        "bin/detect",
        "#!/bin/sh\n[ -x \"$1/bin/compile\" ] && echo Inline\n",
    ),
    ("bin/compile", "#!/bin/sh\nexec \"$1/bin/compile\" \"$@\"\n"),
    ("bin/release", "#!/bin/sh\nexec \"$1/bin/release\" \"$@\"\n"),
];

/// The app: its own bin/compile uses what the exporter exported (variable and PATH), its
/// bin/release names the web process; there is no Procfile.
const APP_COMPILE: &str = r#"#!/usr/bin/env bash
set -euo pipefail
echo "-----> Inline compile sees: $EXPORTED_GREETING"
mkdir -p "$1/public"
echo "$EXPORTED_GREETING" > "$1/public/greeting.txt"
shout "$SOURCE_VERSION" > "$1/public/version.txt"
cat > "$1/public/serve.py" <<'PY'
import http.server, os
os.chdir(os.path.dirname(os.path.abspath(__file__)))
with open("profile.txt", "w") as f:
    f.write(os.environ.get("FROM_PROFILE_D", "unset") + "\n")
http.server.ThreadingHTTPServer(("", int(os.environ["PORT"])), http.server.SimpleHTTPRequestHandler).serve_forever()
PY
"#;
const APP_RELEASE: &str =
    "#!/bin/sh\nprintf -- '---\\ndefault_process_types:\\n  web: python3 public/serve.py\\n'\n";

/// A bare repository `name.git` under `root` holding `files`, tagged `v1`.
fn bare_buildpack_repo(root: &Path, name: &str, files: &[(&str, &str)]) {
    let work = tempfile::tempdir().expect("tempdir");
    write_tree(work.path(), files);
    assert!(git(work.path(), &["init", "-q", "-b", "main"])
        .status
        .success());
    commit_all(work.path(), "buildpack v1");
    assert!(git(work.path(), &["tag", "-a", "v1", "-m", "v1"])
        .status
        .success());
    // A later commit on main that would break builds: the tag must be what is fetched.
    std::fs::write(work.path().join("bin/compile"), "#!/bin/sh\nexit 1\n").expect("write");
    commit_all(work.path(), "broken main");
    let bare = root.join(format!("{name}.git"));
    let clone = Command::new("git")
        .args(["clone", "-q", "--bare"])
        .arg(work.path())
        .arg(&bare)
        .output()
        .expect("git clone --bare");
    assert!(clone.status.success(), "{}", text(&clone));
}

#[tokio::test]
async fn third_party_buildpacks_by_url_follow_the_classic_contract() {
    require_runc!();
    let git_root = tempfile::tempdir().expect("tempdir");
    bare_buildpack_repo(git_root.path(), "exporter", EXPORTER);
    let git_base = serve_git(git_root.path().to_path_buf());
    let files_base = serve_files(vec![
        ("/null.tgz".to_owned(), buildpack_tgz(NULL)),
        ("/inline.tar.gz".to_owned(), buildpack_tgz(INLINE)),
    ]);
    let server = Server::start_with(&["--allow-private-urls"]);
    server.cli_ok(&["apps:create", "contracts"]);
    server.cli_ok(&["config:set", "GREETING=hello", "-a", "contracts"]);
    let dot_buildpacks = format!(
        "# the language first, the app's own build last\n{git_base}/exporter.git#v1\n{files_base}/null.tgz\n\n{files_base}/inline.tar.gz\n"
    );
    let app = repo(&[
        (".buildpacks", &dot_buildpacks),
        ("bin/compile", APP_COMPILE),
        ("bin/release", APP_RELEASE),
    ]);
    for script in ["bin/compile", "bin/release"] {
        std::fs::set_permissions(
            app.path().join(script),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
    }
    commit_all(app.path(), "executable scripts");
    let commit = String::from_utf8_lossy(&git(app.path(), &["rev-parse", "HEAD"]).stdout)
        .trim()
        .to_owned();

    let push = server.push("contracts", app.path());
    let output = text(&push);
    assert!(push.status.success(), "{output}\n{}", server.log());
    for expected in [
        "-----> Using the buildpacks listed in .buildpacks",
        &format!("-----> Fetching buildpack {git_base}/exporter.git#v1"),
        &format!("-----> Fetching buildpack {files_base}/null.tgz"),
        "-----> Exporter app detected",
        "-----> Exporter cache run 1",
        "-----> Build report of buildpack",
        "       exporter_version: 2.0.0",
        "       stack: host",
        "-----> Null buildpack sees: hello via export",
        "-----> Inline app detected",
        "-----> Inline compile sees: hello via export",
        "       Procfile declares types     -> (none)",
        "       Default types for buildpack -> web",
    ] {
        assert!(
            output.contains(expected),
            "{expected:?} missing in:\n{output}"
        );
    }
    assert_eq!(
        server.wait_for_200("contracts", "/greeting.txt").await,
        "hello via export\n"
    );
    assert_eq!(
        server.wait_for_200("contracts", "/version.txt").await,
        format!("shouted: {commit}\n")
    );
    // The exporter's .profile.d script is in the slug and sourced at boot.
    assert_eq!(
        server.wait_for_200("contracts", "/profile.txt").await,
        "exporter-profile\n"
    );

    // The push is a build: listed, shown and its output kept.
    let builds = server.cli_ok(&["builds", "-a", "contracts"]);
    assert!(builds.starts_with("=== contracts Builds"), "{builds}");
    assert!(builds.contains("  succeeded  "), "{builds}");
    assert!(builds.contains(&commit), "{builds}");
    let info = server.cli_ok(&["builds:info", "-a", "contracts"]);
    assert!(info.contains("Status:         succeeded"), "{info}");
    assert!(
        info.contains(&format!("Source Version: {commit}")),
        "{info}"
    );
    assert!(
        !info.contains("build-outputs"),
        "no capability URL shown: {info}"
    );
    let kept = server.cli_ok(&["builds:output", "-a", "contracts"]);
    assert!(kept.contains("-----> Exporter cache run 1"), "{kept}");
    // `builds:output` prints the stream's lines as the log stream does, indentation trimmed.
    assert!(kept.contains("exporter_version: 2.0.0"), "{kept}");

    // The cache persists, then purging it makes the next build cold.
    commit_all(app.path(), "again");
    let push = server.push("contracts", app.path());
    assert!(
        text(&push).contains("-----> Exporter cache run 2"),
        "{}",
        text(&push)
    );
    let refused = server.cli(&["builds:cache:purge", "-a", "contracts"]);
    assert!(!refused.status.success());
    let purged = server.cli_ok(&[
        "builds:cache:purge",
        "-a",
        "contracts",
        "--confirm",
        "contracts",
    ]);
    assert_eq!(purged, "Purging build cache for contracts... done\n");
    commit_all(app.path(), "cold");
    let push = server.push("contracts", app.path());
    assert!(
        text(&push).contains("-----> Exporter cache run 1"),
        "{}",
        text(&push)
    );
    let builds = server.cli_ok(&["builds", "-a", "contracts", "--json"]);
    let builds: serde_json::Value = serde_json::from_str(&builds).expect("JSON");
    assert_eq!(builds.as_array().map(Vec::len), Some(3), "{builds}");
}

#[tokio::test]
async fn a_language_without_a_buildpack_is_refused_until_one_is_set_by_url() {
    require_runc!();
    let ruby = buildpack_tgz(&[
        (
            "bin/detect",
            "#!/bin/sh\n[ -f \"$1/build.sbt\" ] && echo Scala\n",
        ),
        (
            "bin/compile",
            "#!/bin/sh\necho '-----> Installing a pretend Scala'\necho ok > \"$1/ruby.txt\"\n",
        ),
    ]);
    let files_base = serve_files(vec![("/scala.tgz".to_owned(), ruby)]);
    let server = Server::start_with(&["--allow-private-urls"]);
    server.cli_ok(&["apps:create", "gemapp"]);
    let app = repo(&[
        ("build.sbt", "scalaVersion := \"3.3.1\"\n"),
        ("Procfile", "web: python3 -m http.server $PORT\n"),
    ]);
    let push = server.push("gemapp", app.path());
    let output = text(&push);
    assert!(!push.status.success(), "{output}");
    assert!(
        output.contains(
            "Found build.sbt (Scala) but no buildpack for Scala is available. Set one with `slipway buildpacks:set URL`"
        ),
        "{output}"
    );
    let releases = server.cli_ok(&["releases", "-a", "gemapp"]);
    assert!(
        !releases.contains("Deploy"),
        "nothing was released: {releases}"
    );

    let url = format!("{files_base}/scala.tgz");
    let set = server.cli_ok(&["buildpacks:set", &url, "-a", "gemapp"]);
    assert!(
        set.contains(&format!("Next release on gemapp will use {url}")),
        "{set}"
    );
    let push = server.push("gemapp", app.path());
    let output = text(&push);
    assert!(push.status.success(), "{output}\n{}", server.log());
    assert!(output.contains("-----> Scala app detected"), "{output}");
    assert_eq!(server.wait_for_200("gemapp", "/ruby.txt").await, "ok\n");
}

#[tokio::test]
async fn buildpack_urls_obey_the_outbound_policy() {
    require_runc!();
    let files_base = serve_files(vec![(
        "/bp.tgz".to_owned(),
        buildpack_tgz(&[
            ("bin/detect", "#!/bin/sh\necho Never\n"),
            ("bin/compile", "#!/bin/sh\ntouch /tmp/never\n"),
        ]),
    )]);
    let server = Server::start();
    server.cli_ok(&["apps:create", "policed"]);
    let url = format!("{files_base}/bp.tgz");
    server.cli_ok(&["buildpacks:set", &url, "-a", "policed"]);
    let app = repo(&[("Procfile", "web: python3 -m http.server $PORT\n")]);
    let push = server.push("policed", app.path());
    let output = text(&push);
    assert!(!push.status.success(), "{output}");
    assert!(
        output.contains(&format!("Could not fetch buildpack {url}"))
            && output.contains("Slipway connects only to public addresses"),
        "{output}"
    );
    // A buildpack that is not a URL nor a built-in is refused when set, as Heroku's registry does.
    let refused = server.cli(&["buildpacks:set", "heroku/scala", "-a", "policed"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("is not available on Slipway"),
        "{}",
        text(&refused)
    );
}
