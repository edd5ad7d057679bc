//! End to end with Cloud Native Buildpacks: `git push` (the real git client) of an app whose
//! `project.toml` names two CNB buildpacks committed in the repository, built in runc build
//! containers, released and served through the router; a second push reuses the cached layer.

mod support;

use std::path::Path;

use support::{commit_all, repo, text, Server};

/// Copies one of the build crate's fixture buildpacks into the app repository.
fn add_buildpack(app: &Path, name: &str) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../build/tests/fixtures/cnb")
        .join(name);
    let dest = app.join("buildpacks");
    std::fs::create_dir_all(&dest).expect("mkdir buildpacks");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(&fixture)
        .arg(dest.join(name))
        .status()
        .expect("cp");
    assert!(status.success(), "copy {}", fixture.display());
}

const PROJECT_TOML: &str = r#"[_]
schema-version = "0.2"

[[io.buildpacks.group]]
uri = "buildpacks/hello"

[[io.buildpacks.group]]
uri = "buildpacks/cached"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_toml_app_is_built_with_cnb_served_and_rebuilt_from_cache() {
    require_runc!();
    let server = Server::start();
    server.cli_ok(&["apps:create", "cnbdemo"]);
    server.cli_ok(&["config:set", "GREETING=howdy", "-a", "cnbdemo"]);

    let app = repo(&[
        ("project.toml", PROJECT_TOML),
        ("index.html", "hello from a CNB app, v1\n"),
        ("deps.txt", "flask\n"),
    ]);
    add_buildpack(app.path(), "hello");
    add_buildpack(app.path(), "cached");
    commit_all(app.path(), "add the buildpacks");

    let push = server.push("cnbdemo", app.path());
    let output = text(&push);
    assert!(
        push.status.success(),
        "push failed:\n{output}\n{}",
        server.log()
    );
    for expected in [
        "remote: -----> Building on the host stack (this server's own system directories)",
        "remote: -----> Detecting Cloud Native Buildpacks (2 in the group)",
        "remote:        2 of 2 buildpacks participating",
        "remote:        examples/hello 0.0.1",
        "remote:        examples/cached 0.1.0",
        "remote:      GREETING in the environment: howdy",
        "remote: ---> Installing dependencies",
        "remote:        Adding layer 'examples/hello:hello'",
        "remote:        Adding cache layer 'examples/cached:deps'",
        "remote:        Default types for buildpack -> greet, web, worker",
        "remote:        Released v2",
    ] {
        assert!(
            output.contains(expected),
            "push output lacks {expected:?}:\n{output}"
        );
    }

    // launch.toml's default `web` process serves the app; before that it ran `hello` from
    // the launch layer, found on PATH with its launch env applied in the dyno.
    let body = server.wait_for_200("cnbdemo", "/index.html").await;
    assert_eq!(body, "hello from a CNB app, v1\n");
    server
        .wait_for_log("cnbdemo", |log| {
            log.contains(
                "app[web.1]: Hello from hello at /app/.layers/examples_hello/hello/bin (web)",
            )
        })
        .await;

    // The second push restores the cached layer and the buildpack reuses it.
    std::fs::write(app.path().join("index.html"), "hello from a CNB app, v2\n").expect("write");
    commit_all(app.path(), "v2");
    let push = server.push("cnbdemo", app.path());
    let output = text(&push);
    assert!(
        push.status.success(),
        "push failed:\n{output}\n{}",
        server.log()
    );
    for expected in [
        "remote:        Restoring data for \"examples/cached:deps\" from cache",
        "remote: ---> Reusing cached dependencies (flask )",
        "remote:        Released v3",
    ] {
        assert!(
            output.contains(expected),
            "push output lacks {expected:?}:\n{output}"
        );
    }
    assert!(!output.contains("Installing dependencies"), "{output}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let body = server.wait_for_200("cnbdemo", "/index.html").await;
        if body == "hello from a CNB app, v2\n" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "v2 never served: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A group that does not pass detection rejects the push with the lifecycle's reason, and
/// nothing is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_that_fails_detection_rejects_the_push() {
    require_runc!();
    let server = Server::start();
    server.cli_ok(&["apps:create", "cnbfail"]);
    let app = repo(&[
        ("project.toml", PROJECT_TOML),
        ("index.html", "no deps.txt\n"),
    ]);
    add_buildpack(app.path(), "hello");
    add_buildpack(app.path(), "cached");
    commit_all(app.path(), "add the buildpacks");
    let push = server.push("cnbfail", app.path());
    let output = text(&push);
    assert!(!push.status.success(), "push must be rejected:\n{output}");
    assert!(
        output.contains(
            "No buildpack groups passed detection: examples/cached does not apply to this app"
        ),
        "{output}"
    );
    let releases = server.cli_ok(&["releases", "-a", "cnbfail"]);
    assert!(!releases.contains("v2"), "{releases}");
}
