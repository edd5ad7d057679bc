//! End to end: deploys without git. A build from a source tarball served on loopback (gzip'd,
//! with a GitHub-style top-level directory) is fetched, built and released in the background,
//! its output streamed from `output_stream_url`; a failing build ends `failed`. A slug
//! uploaded through `POST /slugs` + `PUT` is released with `POST /releases {slug}`, and an
//! upload whose checksum does not match is refused with nothing stored.

mod support;

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use support::{Server, ECHO_APP};

/// Serves `files` (path → bytes) over HTTP/1.1 on a loopback port until the test ends; any
/// other path is a 404. Returns the base URL.
fn serve(files: Vec<(&'static str, Vec<u8>)>) -> String {
    support::serve_http(move |path| {
        let (status, body) = match files.iter().find(|(p, _)| *p == path) {
            Some((_, body)) => ("200 OK", body.as_slice()),
            None => ("404 Not Found", b"not found".as_slice()),
        };
        let mut response = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        response.extend_from_slice(body);
        response
    })
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// `tar czf` of `files` under `dir` (e.g. `app-main`, or `./app` for a slug).
fn tarball(files: &[(&str, &str)], dir: &str) -> Vec<u8> {
    let temp = tempfile::tempdir().unwrap();
    for (path, contents) in files {
        let path = temp.path().join(dir).join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
    }
    let out = temp.path().join("out.tgz");
    let status = Command::new("tar")
        .arg("czf")
        .arg(&out)
        .arg("-C")
        .arg(temp.path())
        .arg("--owner=root")
        .arg("--group=root")
        .arg(dir)
        .status()
        .expect("run tar");
    assert!(status.success());
    std::fs::read(out).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    let temp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(temp.path(), bytes).unwrap();
    let output = Command::new("sha256sum").arg(temp.path()).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    format!("SHA256:{}", text.split_whitespace().next().unwrap())
}

async fn post(server: &Server, path: &str, body: Value) -> (reqwest::StatusCode, Value) {
    let response = server
        .api(Method::POST, path)
        .json(&body)
        .send()
        .await
        .expect("API request");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Polls a build until it is no longer pending.
async fn wait_for_build(server: &Server, app: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let build = server.api_json(&format!("/apps/{app}/builds/{id}")).await;
        if build["status"] != "pending" {
            return build;
        }
        assert!(
            Instant::now() < deadline,
            "build never ended: {build}\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reads a build's whole output stream; it ends when the build does.
async fn read_output(url: &str, sse: bool) -> String {
    let mut request = reqwest::Client::new().get(url);
    if sse {
        request = request.header("accept", "text/event-stream");
    }
    let response = tokio::time::timeout(Duration::from_secs(180), request.send())
        .await
        .expect("the stream answers")
        .expect("the stream answers");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with(if sse {
            "text/event-stream"
        } else {
            "text/plain"
        }),
        "{content_type}"
    );
    tokio::time::timeout(Duration::from_secs(180), response.text())
        .await
        .expect("the stream ends with the build")
        .expect("the stream's body")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_build_from_a_source_tarball_deploys_the_app() {
    require_runc!();
    // The test's tarball server is on loopback.
    let server = Server::start_with(&["--allow-private-urls"]);
    server.cli_ok(&["apps:create", "blob"]);
    let source = tarball(
        &[
            ("Procfile", "web: python3 server.py\n"),
            ("server.py", ECHO_APP),
        ],
        "blob-app-0123abc",
    );
    let checksum = sha256(&source);
    let base = serve(vec![("/source.tar.gz", source)]);

    let (status, build) = post(
        &server,
        "/apps/blob/builds",
        json!({"source_blob": {"url": format!("{base}/source.tar.gz"), "checksum": checksum, "version": "0123abc"}}),
    )
    .await;
    assert_eq!(status, 201, "{build}");
    assert_eq!(build["status"], "pending", "{build}");
    assert_eq!(build["source_blob"]["version"], "0123abc");
    let id = build["id"].as_str().unwrap().to_owned();
    let stream_url = build["output_stream_url"].as_str().unwrap().to_owned();

    // The stream starts from the beginning and follows the build to its end.
    let output = read_output(&stream_url, false).await;
    assert!(output.contains("-----> Building on the"), "{output}");
    assert!(output.contains("-----> Launching..."), "{output}");
    assert!(output.contains("Released v1"), "{output}");

    let build = wait_for_build(&server, "blob", &id).await;
    assert_eq!(build["status"], "succeeded", "{build}\n{output}");
    let release_id = build["release"]["id"]
        .as_str()
        .expect("a release")
        .to_owned();
    let slug_id = build["slug"]["id"].as_str().expect("a slug").to_owned();
    let release = server.api_json("/apps/blob/releases/1").await;
    assert_eq!(release["id"], release_id.as_str());
    assert_eq!(release["slug"]["id"], slug_id.as_str());
    assert_eq!(release["description"], "Deploy 0123abc");
    let body = server.wait_for_200("blob", "/").await;
    assert!(body.contains("hello from web.1"), "{body}");

    // Listed, and the finished output can be read again, also as Server-Sent Events.
    let builds = server.api_json("/apps/blob/builds").await;
    assert_eq!(builds.as_array().unwrap().len(), 1, "{builds}");
    let events = read_output(&stream_url, true).await;
    assert!(
        events.contains("id: 0\ndata: -----> Fetching source"),
        "{events}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_builds_end_failed_with_their_reason_in_the_output() {
    require_runc!();
    // The test's tarball server is on loopback.
    let server = Server::start_with(&["--allow-private-urls"]);
    server.cli_ok(&["apps:create", "nope"]);
    let no_language = tarball(&[("README", "nothing to run here\n")], "nope-main");
    let good = tarball(&[("Procfile", "web: python3 server.py\n")], "x");
    let base = serve(vec![
        ("/readme.tgz", no_language),
        ("/good.tgz", good.clone()),
    ]);
    let wrong_checksum = sha256(b"something else");
    for (blob, expected) in [
        (
            json!({"url": format!("{base}/readme.tgz")}),
            "No default language could be detected",
        ),
        // An HTTP error and a closed port read the same: the API is no port scanner.
        (
            json!({"url": format!("{base}/missing.tgz")}),
            "Could not fetch the source blob from 127.0.0.1: the URL is not reachable or did not return the file. Check source_blob.url",
        ),
        (
            json!({"url": format!("http://127.0.0.1:{}/good.tgz", closed_port())}),
            "Could not fetch the source blob from 127.0.0.1: the URL is not reachable or did not return the file. Check source_blob.url",
        ),
        (
            json!({"url": format!("{base}/good.tgz"), "checksum": wrong_checksum}),
            "The source blob's checksum is",
        ),
    ] {
        let (status, build) =
            post(&server, "/apps/nope/builds", json!({"source_blob": blob})).await;
        assert_eq!(status, 201, "{build}");
        let output = read_output(build["output_stream_url"].as_str().unwrap(), false).await;
        assert!(output.contains(expected), "{expected:?} in {output}");
        let id = build["id"].as_str().unwrap();
        let build = wait_for_build(&server, "nope", id).await;
        assert_eq!(build["status"], "failed", "{build}");
        assert!(build["release"].is_null(), "{build}");
    }
    let releases = server.api_json("/apps/nope/releases").await;
    assert_eq!(releases.as_array().unwrap().len(), 0, "{releases}");

    // Refused before anything starts: not an http(s) URL, an unknown buildpack.
    let (status, error) = post(
        &server,
        "/apps/nope/builds",
        json!({"source_blob": {"url": "file:///etc/passwd"}}),
    )
    .await;
    assert_eq!(status, 422, "{error}");
    let (status, error) = post(
        &server,
        "/apps/nope/builds",
        json!({"source_blob": {"url": format!("{base}/good.tgz")}, "buildpacks": [{"url": "heroku/scala"}]}),
    )
    .await;
    assert_eq!(status, 422, "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("heroku/scala"),
        "{error}"
    );
}

fn stored_slugs(data_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data_dir.join("slugs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn an_uploaded_slug_is_released_and_a_bad_checksum_stores_nothing() {
    require_runc!();
    // The test's tarball server is on loopback.
    let server = Server::start_with(&["--allow-private-urls"]);
    server.cli_ok(&["apps:create", "prebuilt"]);
    let slug = tarball(&[("server.py", ECHO_APP)], "./app");
    let checksum = sha256(&slug);

    // A checksum that does not match: 422, and nothing lands in the slug store.
    let before = stored_slugs(&server.data_dir);
    let (status, declared) = post(
        &server,
        "/apps/prebuilt/slugs",
        json!({"process_types": {"web": "python3 server.py"}, "checksum": sha256(b"other")}),
    )
    .await;
    assert_eq!(status, 201, "{declared}");
    let response = reqwest::Client::new()
        .put(declared["blob"]["url"].as_str().unwrap())
        .body(slug.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let error: Value = response.json().await.unwrap();
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("Checksum mismatch"),
        "{error}"
    );
    assert_eq!(stored_slugs(&server.data_dir), before);
    let (status, error) = post(
        &server,
        "/apps/prebuilt/releases",
        json!({"slug": declared["id"]}),
    )
    .await;
    assert!(status.is_client_error(), "{status} {error}");

    // The real flow: declare, PUT, release.
    let (status, declared) = post(
        &server,
        "/apps/prebuilt/slugs",
        json!({"process_types": {"web": "python3 server.py"}, "checksum": checksum, "commit": "feedbee"}),
    )
    .await;
    assert_eq!(status, 201, "{declared}");
    assert_eq!(declared["blob"]["method"], "PUT");
    let url = declared["blob"]["url"].as_str().unwrap();
    assert!(url.starts_with(&server.api_url), "{url}");
    let response = reqwest::Client::new()
        .put(url)
        .body(slug.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert!(stored_slugs(&server.data_dir)
        .contains(&format!("{}.tgz", checksum.trim_start_matches("SHA256:"))));
    let id = declared["id"].as_str().unwrap();
    let shown = server.api_json(&format!("/apps/prebuilt/slugs/{id}")).await;
    assert_eq!(shown["checksum"], checksum.as_str(), "{shown}");
    let (status, release) = post(&server, "/apps/prebuilt/releases", json!({"slug": id})).await;
    assert_eq!(status, 201, "{release}");
    assert_eq!(release["slug"]["id"], id);
    assert_eq!(release["description"], "Deploy feedbee");
    let body = server.wait_for_200("prebuilt", "/").await;
    assert!(body.contains("hello from web.1"), "{body}");

    // The upload URL was for one upload only.
    let response = reqwest::Client::new()
        .put(url)
        .body(slug)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}
