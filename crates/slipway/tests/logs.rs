//! End to end: log drains receive an app's lines as RFC 5424 syslog and logplex HTTP batches,
//! and log-session streams resume from `Last-Event-ID` without gaps or repeats.

mod support;

use std::time::Duration;

use reqwest::Method;
use support::{text, Server};
use tokio::io::AsyncReadExt;

async fn deployed(server: &Server, app: &str) {
    server.deploy_echo_app(app).await;
}

/// Reads octet-counted syslog frames (`LEN SP FRAME`) from a stream until one contains `needle`.
async fn read_frames_until(stream: &mut tokio::net::TcpStream, needle: &str) -> Vec<String> {
    let mut buffer = Vec::new();
    let mut frames = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        while let Some(space) = buffer.iter().position(|&b| b == b' ') {
            let length: usize = std::str::from_utf8(&buffer[..space])
                .unwrap()
                .parse()
                .expect("octet count");
            if buffer.len() < space + 1 + length {
                break;
            }
            let frame = String::from_utf8(buffer[space + 1..space + 1 + length].to_vec()).unwrap();
            buffer.drain(..space + 1 + length);
            let done = frame.contains(needle);
            frames.push(frame);
            if done {
                return frames;
            }
        }
        let mut chunk = [0u8; 4096];
        let read = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("no frame containing {needle:?}; got {frames:#?}"))
            .unwrap();
        assert!(read > 0, "the drain closed the connection; got {frames:#?}");
        buffer.extend_from_slice(&chunk[..read]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_drains_receive_the_apps_lines() {
    require_runc!();
    // The test's receiver is on loopback.
    let server = Server::start_with(&["--allow-private-urls"]);
    deployed(&server, "drained").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("syslog://127.0.0.1:{port}");

    let added = server.cli_ok(&["drains:add", &url, "-a", "drained"]);
    assert!(
        added.contains(&format!("Successfully added drain {url}")),
        "{added}"
    );
    let listed = server.cli_ok(&["drains", "-a", "drained"]);
    assert!(listed.contains(&url) && listed.contains("(d."), "{listed}");
    let drains: Vec<serde_json::Value> = server.api_get("/apps/drained/log-drains").await;
    let token = drains[0]["token"].as_str().unwrap().to_owned();
    assert!(
        token.starts_with("d.") && uuid::Uuid::parse_str(&token[2..]).is_ok(),
        "{token}"
    );

    let (mut stream, _) = tokio::time::timeout(Duration::from_secs(20), async {
        // The drain connects when it has something to send.
        let request = server.get("drained", "/drained-request");
        let (accepted, _) = tokio::join!(listener.accept(), request);
        accepted
    })
    .await
    .expect("the drain connects")
    .unwrap();
    let frames = read_frames_until(&mut stream, "path=\"/drained-request\"").await;
    let router = frames
        .iter()
        .find(|f| f.contains("path=\"/drained-request\""))
        .unwrap();
    // <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG, the token as HOSTNAME.
    let fields: Vec<&str> = router.splitn(8, ' ').collect();
    assert_eq!(fields[0], "<158>1", "{router}");
    assert!(
        chrono::DateTime::parse_from_rfc3339(fields[1]).is_ok(),
        "{router}"
    );
    assert_eq!(fields[2], token);
    assert_eq!((fields[3], fields[4]), ("heroku", "router"), "{router}");
    assert!(fields[7].starts_with("at=info method=GET"), "{router}");

    // More than five drains are refused; a bad URL is refused with a clear message.
    for i in 0..4 {
        server.cli_ok(&[
            "drains:add",
            &format!("syslog://127.0.0.1:{}", 1000 + i),
            "-a",
            "drained",
        ]);
    }
    let sixth = server.cli(&["drains:add", "syslog://127.0.0.1:2000", "-a", "drained"]);
    assert!(!sixth.status.success());
    assert!(text(&sixth).contains('5'), "{}", text(&sixth));
    let bad = server.cli(&["drains:add", "ftp://example", "-a", "drained"]);
    assert!(!bad.status.success());
    assert!(text(&bad).to_lowercase().contains("ftp"), "{}", text(&bad));

    let removed = server.cli_ok(&["drains:remove", &url, "-a", "drained"]);
    assert!(
        removed.contains(&format!("Successfully removed drain {url}")),
        "{removed}"
    );
    let listed = server.cli_ok(&["drains", "-a", "drained"]);
    assert!(!listed.contains(&url), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_streams_resume_after_the_last_event_id() {
    require_runc!();
    let server = Server::start();
    deployed(&server, "resumed").await;
    for i in 0..5 {
        server.get("resumed", &format!("/first-{i}")).await;
    }
    server
        .wait_for_log("resumed", |log| log.contains("path=\"/first-4\""))
        .await;

    let session = |tail: bool| {
        let server = &server;
        async move {
            let session = server
        .api_send(Method::POST, "/apps/resumed/log-sessions", serde_json::json!({"lines": 1500, "source": "heroku", "dyno": "router", "tail": tail}))
        .await;
            session["logplex_url"].as_str().unwrap().to_owned()
        }
    };
    let events = |body: &str| -> Vec<(u64, String)> {
        let mut out = Vec::new();
        let mut id = None;
        for line in body.lines() {
            if let Some(value) = line.strip_prefix("id: ") {
                id = value.parse().ok();
            } else if let Some(data) = line.strip_prefix("data: ") {
                out.push((id.take().expect("every line has an id"), data.to_owned()));
            }
        }
        out
    };
    let url = session(false).await;
    let body = reqwest::Client::new()
        .get(&url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Only this test's requests (polling during the deploy logged H14 lines too).
    let ours = |events: Vec<(u64, String)>| -> Vec<(u64, String)> {
        events
            .into_iter()
            .filter(|(_, line)| line.contains("path=\"/first-") || line.contains("path=\"/second-"))
            .collect()
    };
    let first = ours(events(&body));
    assert_eq!(first.len(), 5, "{body}");
    assert!(
        first.windows(2).all(|w| w[1].0 > w[0].0),
        "ids increase: {first:?}"
    );

    // Lines after the third one, then the new ones, resuming from its id.
    for i in 0..3 {
        server.get("resumed", &format!("/second-{i}")).await;
    }
    server
        .wait_for_log("resumed", |log| log.contains("path=\"/second-2\""))
        .await;
    let fetch = |last_event_id: Option<u64>| {
        let url = url.clone();
        async move {
            let mut request = reqwest::Client::new()
                .get(&url)
                .header("accept", "text/event-stream");
            if let Some(id) = last_event_id {
                request = request.header("last-event-id", id.to_string());
            }
            request.send().await.unwrap().text().await.unwrap()
        }
    };
    let everything = ours(events(&fetch(None).await));
    let resumed = ours(events(&fetch(Some(first[2].0)).await));
    // Exactly the lines after that id, in the same order and with the same ids. (Concurrent
    // requests may log in either order, so the expectation comes from the full stream.)
    let expected: Vec<(u64, String)> = everything
        .into_iter()
        .filter(|(id, _)| *id > first[2].0)
        .collect();
    assert_eq!(resumed, expected);
    let path_of = |line: &str| -> String {
        let after = line.split("path=\"").nth(1).unwrap_or_default();
        after.split('"').next().unwrap_or_default().to_owned()
    };
    let mut paths: Vec<String> = resumed.iter().map(|(_, line)| path_of(line)).collect();
    paths.sort();
    let mut wanted: Vec<String> = first[3..].iter().map(|(_, line)| path_of(line)).collect();
    wanted.extend(["/second-0", "/second-1", "/second-2"].map(String::from));
    wanted.sort();
    assert_eq!(paths, wanted);
}
