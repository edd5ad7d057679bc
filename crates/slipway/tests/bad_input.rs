//! End to end: bad input gets a clear message and a non-zero exit (or the right HTTP status),
//! and leaves nothing behind: no half-made release, no stray container, and the app keeps
//! serving its previous release.

mod support;

use support::{expect_api_error, repo, text, Server, ECHO_APP};

/// Deploys the echo app as the app's first release and waits until it serves.
async fn deployed(server: &Server, app: &str) -> tempfile::TempDir {
    server.deploy_echo_app(app).await
}

/// The number of releases the API reports.
async fn release_count(server: &Server, app: &str) -> usize {
    let releases: Vec<serde_json::Value> = server
        .api(reqwest::Method::GET, &format!("/apps/{app}/releases"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    releases.len()
}

/// Pushes a bad revision of `app`; requires that git fails with `expected` in its output and
/// that nothing changed.
async fn rejected_push(server: &Server, app: &str, files: &[(&str, &str)], expected: &[&str]) {
    let before = release_count(server, app).await;
    let dir = repo(files);
    let push = server.push_ref(app, dir.path(), "+main");
    let output = text(&push);
    assert!(
        !push.status.success(),
        "the push should be rejected:\n{output}"
    );
    for line in expected {
        assert!(
            output.contains(line),
            "push output lacks {line:?}:\n{output}"
        );
    }
    assert!(
        output.contains("pre-receive hook declined"),
        "git reports the rejection: {output}"
    );
    assert_eq!(
        release_count(server, app).await,
        before,
        "no release was created"
    );
    // The previous release still serves, from exactly one container.
    assert_eq!(
        server.get(app, "/").await.text().await.unwrap(),
        "hello from web.1\n"
    );
    let containers: Vec<String> = server
        .containers()
        .into_iter()
        .filter(|c| c.contains(app))
        .collect();
    assert_eq!(
        containers.len(),
        1,
        "no stray build or dyno container: {containers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_builds_reject_the_push_and_keep_the_previous_release() {
    require_runc!();
    let server = Server::start();
    deployed(&server, "steady").await;

    rejected_push(
        &server,
        "steady",
        &[("README.md", "no code here\n")],
        &[
            "No default language could be detected for this app",
            "requirements.txt",
            "package.json",
            "Procfile",
            "Push rejected to steady",
        ],
    )
    .await;

    server.cli_ok(&["config:set", "PIP_NO_INDEX=1", "-a", "steady"]);
    rejected_push(
        &server,
        "steady",
        &[
            ("requirements.txt", "no-such-package-anywhere==9.9\n"),
            ("Procfile", "web: python app.py\n"),
        ],
        &[
            "remote: -----> Python app detected",
            "Push rejected to steady",
        ],
    )
    .await;

    rejected_push(
        &server,
        "steady",
        &[
            ("Procfile", "web: python3 server.py\n:::\n"),
            ("server.py", ECHO_APP),
        ],
        &["Procfile", "line 2", "Push rejected to steady"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_process_that_never_binds_port_crashes_with_r10() {
    require_runc!();
    let server = Server::start_with(&["--boot-timeout", "2"]);
    server.cli_ok(&["apps:create", "sleepy"]);
    let dir = repo(&[("Procfile", "web: sleep 1000\n")]);
    let push = server.push("sleepy", dir.path());
    assert!(
        push.status.success(),
        "the build itself succeeds: {}",
        text(&push)
    );
    let log = server
        .wait_for_log("sleepy", |log| {
            log.matches("State changed from starting to crashed")
                .count()
                >= 2
        })
        .await;
    assert!(
        log.contains("heroku[web.1]: Error R10 (Boot timeout) -> Web process failed to bind to $PORT within 2 seconds of launch"),
        "{log}"
    );
    assert!(
        log.contains("heroku[web.1]: Stopping process with SIGKILL"),
        "{log}"
    );
    assert!(
        log.contains("heroku[web.1]: Process exited with status 137"),
        "{log}"
    );
    // The first crash restarts at once; the second waits 20 minutes, so the dyno stays crashed.
    let ps = server.cli_ok(&["ps", "-a", "sleepy"]);
    assert!(ps.contains("web.1: crashed"), "{ps}");
    let response = server.get("sleepy", "/").await;
    assert_eq!(response.status(), 503);
    let log = server
        .wait_for_log("sleepy", |log| log.contains("code=H10"))
        .await;
    assert!(
        log.contains("heroku[router]: at=error code=H10 desc=\"App crashed\""),
        "{log}"
    );
    server.wait_for_containers("sleepy", 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_names_are_checked_and_unique() {
    require_runc!();
    let server = Server::start();
    for bad in [
        "Demo",
        "ab",
        "1app",
        "app-",
        "way-too-long-name-for-an-app-on-heroku",
    ] {
        let output = server.cli(&["apps:create", bad]);
        assert!(!output.status.success(), "{bad} should be refused");
        let message = text(&output);
        assert!(
            message.contains("Name") && message.contains("lowercase letters"),
            "the rule is explained: {message}"
        );
    }
    server.cli_ok(&["apps:create", "taken"]);
    let output = server.cli(&["apps:create", "taken"]);
    assert!(!output.status.success());
    assert!(
        text(&output).contains("Name taken is already taken"),
        "{}",
        text(&output)
    );

    let response = server
        .api(reqwest::Method::POST, "/apps")
        .json(&serde_json::json!({"name": "Bad_Name"}))
        .send()
        .await
        .unwrap();
    let message = expect_api_error(response, 422, "invalid_params").await;
    assert!(message.contains("Bad_Name"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_need_the_right_key_and_an_existing_app() {
    require_runc!();
    let server = Server::start();
    server.cli_ok(&["apps:create", "guarded"]);
    let dir = repo(&[
        ("Procfile", "web: python3 server.py\n"),
        ("server.py", ECHO_APP),
    ]);

    // No credentials: 401 with a Basic challenge, so git asks its credential helper.
    let response = reqwest::get(format!(
        "{}/guarded.git/info/refs?service=git-receive-pack",
        server.api_url
    ))
    .await
    .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Basic realm=\"Slipway\""
    );
    let anonymous = support::git(dir.path(), &["push", &server.git_url("guarded"), "main"]);
    assert!(!anonymous.status.success());

    let wrong = server.push_with_key("guarded", dir.path(), "not-the-key");
    assert!(!wrong.status.success());
    assert!(
        text(&wrong).contains("Authentication failed"),
        "{}",
        text(&wrong)
    );

    let unknown = server.push("nosuchapp", dir.path());
    assert!(!unknown.status.success());
    assert!(text(&unknown).contains("not found"), "{}", text(&unknown));
    assert!(
        !server.data_dir.join("repos/nosuchapp.git").exists(),
        "no repository for an unknown app"
    );

    // Nothing was deployed by any of them.
    let releases = server.cli_ok(&["releases", "-a", "guarded"]);
    assert!(!releases.contains("Deploy"), "{releases}");
    assert!(server.containers().is_empty());
}
