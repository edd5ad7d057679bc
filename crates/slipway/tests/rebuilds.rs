//! End to end: cached rebuilds. An npm app and a pip app are pushed, then pushed again with
//! one source file changed, and again with nothing changed: those builds reuse the installed
//! dependencies (Heroku's "Skipping installation, as <lockfile> hasn't changed since last
//! deploy.") and the app serves the changed source; a push that changes the lockfile installs
//! again. The virtualenv and node are kept by the platform beside the build cache (renamed in
//! and out, never copied); `builds:cache:purge` and `apps:destroy` remove them with the slug
//! runs. Real git, runc, the npm registry and PyPI, as in `lang_nodejs.rs` and
//! `lang_python.rs`.
//!
//! How fast that is, is measured by `bench/builds.sh`, never asserted here.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::{commit_all, repo, text, Server};

fn assert_contains(output: &str, expected: &str) {
    assert!(
        output.contains(expected),
        "expected {expected:?} in the build output:\n{output}"
    );
}

fn assert_lacks(output: &str, unexpected: &str) {
    assert!(
        !output.contains(unexpected),
        "did not expect {unexpected:?} in the build output:\n{output}"
    );
}

/// Pushes `dir` to `app` and returns the build output, failing the test when the push fails.
fn push(server: &Server, app: &str, dir: &Path) -> String {
    let output = server.push(app, dir);
    let shown = text(&output);
    assert!(output.status.success(), "{shown}\n{}", server.log());
    shown
}

/// Polls `app`'s `path` until its body is `expected` (a new release's dynos replace the old
/// ones shortly after the push returns).
async fn wait_for_body(server: &Server, app: &str, path: &str, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(response) = server.request(reqwest::Method::GET, app, path).send().await {
            let status = response.status();
            last = response.text().await.unwrap_or_default();
            if status == 200 && last == expected {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{app}{path} never served {expected:?} (last: {last:?})\napp log:\n{}",
        server.logs(app)
    );
}

fn npm_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nodejs/npm-build")
}

/// Replaces every `from` by `to` in the file `name` of `dir`, which must contain it.
fn edit(dir: &Path, name: &str, from: &str, to: &str) {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).expect("a file of the app");
    assert!(text.contains(from), "{name} has no {from:?}");
    std::fs::write(&path, text.replace(from, to)).expect("write a file of the app");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_npm_rebuild_skips_the_unchanged_install_and_a_changed_lockfile_installs_again() {
    require_runc!();
    let server = Server::start();
    server.cli_ok(&["apps:create", "npmrebuild"]);
    let files: Vec<(String, String)> = std::fs::read_dir(npm_fixture())
        .expect("the fixture app")
        .map(|entry| {
            let entry = entry.expect("a fixture file");
            (
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(entry.path()).expect("a fixture file's text"),
            )
        })
        .collect();
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let dir = repo(&borrowed);

    let first = push(&server, "npmrebuild", dir.path());
    assert_contains(&first, "Installing node modules");
    assert_lacks(&first, "Skipping installation");
    let built = "built by npm run build; is-number(42)=true NODE_ENV=production\n";
    wait_for_body(&server, "npmrebuild", "/", built).await;

    // One source file changed: the install is skipped, node_modules comes from the cache, and
    // the build script, the pruning and the changed code all take effect.
    edit(
        dir.path(),
        "server.js",
        "res.end(fs.readFileSync('public/index.html'));",
        "res.end('second push: ' + fs.readFileSync('public/index.html'));",
    );
    commit_all(dir.path(), "change the code");
    let second = push(&server, "npmrebuild", dir.path());
    assert_contains(
        &second,
        "Skipping installation, as package-lock.json hasn't changed since last deploy.",
    );
    assert_contains(&second, "(every package came from the build cache)");
    assert_lacks(&second, "Installing node modules");
    assert_contains(&second, "Installing node ");
    assert_contains(&second, " from the build cache...");
    assert_contains(&second, "build wrote public/index.html");
    assert_contains(&second, "-----> Pruning devDependencies");
    assert_contains(&second, "Nothing downloaded: node ");
    wait_for_body(&server, "npmrebuild", "/", &format!("second push: {built}")).await;
    // The restored node_modules is the install's: dependencies there, devDependencies pruned.
    let state: serde_json::Value =
        serde_json::from_str(&server.wait_for_200("npmrebuild", "/pruned").await).unwrap();
    assert_eq!(state["ms"], "1m", "{state}");
    assert_eq!(state["devDependencyPresent"], false, "{state}");

    // node and npm are kept by the platform between builds, beside the build cache.
    let id = server.api_json("/apps/npmrebuild").await["id"]
        .as_str()
        .expect("the app's id")
        .to_owned();
    let kept = server
        .data_dir
        .join("cache")
        .join(format!("{id}.kept/nodejs/.heroku-node"));
    assert!(
        kept.join("bin/node").is_file(),
        "no kept node in {}",
        kept.display()
    );

    // A no-op rebuild (an empty commit) skips the install and still builds and releases.
    commit_all(dir.path(), "rebuild");
    let noop = push(&server, "npmrebuild", dir.path());
    assert_contains(
        &noop,
        "Skipping installation, as package-lock.json hasn't changed since last deploy.",
    );
    assert_contains(&noop, "build wrote public/index.html");
    assert_contains(&noop, "Nothing downloaded: node ");
    assert_contains(&noop, "Released v3");
    wait_for_body(&server, "npmrebuild", "/", &format!("second push: {built}")).await;

    // A changed lockfile (and package.json with it) installs again.
    for file in ["package.json", "package-lock.json"] {
        edit(
            dir.path(),
            file,
            "\"version\": \"1.0.0\"",
            "\"version\": \"1.0.1\"",
        );
    }
    commit_all(dir.path(), "change the lockfile");
    let third = push(&server, "npmrebuild", dir.path());
    assert_contains(&third, "Installing node modules");
    assert_lacks(&third, "Skipping installation");
    wait_for_body(&server, "npmrebuild", "/", &format!("second push: {built}")).await;
}

/// A web app with one dependency from PyPI (`six`), answering with `message` and the
/// dependency's version.
fn python_app(message: &str) -> String {
    format!(
        "import http.server, os, six\n\
         class H(http.server.BaseHTTPRequestHandler):\n    \
             def do_GET(self):\n        \
                 body = ({message:?} + ' six ' + six.__version__).encode()\n        \
                 self.send_response(200)\n        \
                 self.send_header('Content-Length', str(len(body)))\n        \
                 self.end_headers()\n        \
                 self.wfile.write(body)\n\
         http.server.HTTPServer(('', int(os.environ['PORT'])), H).serve_forever()\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pip_rebuild_skips_the_unchanged_install_and_a_changed_requirements_file_installs_again()
{
    require_runc!();
    let server = Server::start();
    server.cli_ok(&["apps:create", "piprebuild"]);
    let dir = repo(&[
        ("requirements.txt", "six==1.17.0\n"),
        ("app.py", &python_app("first")),
        ("Procfile", "web: python app.py\n"),
    ]);

    let first = push(&server, "piprebuild", dir.path());
    assert_contains(&first, "-----> Installing requirements with pip");
    assert_lacks(&first, "Skipping installation");
    wait_for_body(&server, "piprebuild", "/", "first six 1.17.0").await;

    std::fs::write(dir.path().join("app.py"), python_app("second")).unwrap();
    commit_all(dir.path(), "change the code");
    let second = push(&server, "piprebuild", dir.path());
    assert_contains(&second, "-----> Restoring cache");
    assert_contains(
        &second,
        "-----> Skipping installation, as requirements.txt hasn't changed since last deploy.",
    );
    assert_lacks(&second, "Installing requirements with pip");
    wait_for_body(&server, "piprebuild", "/", "second six 1.17.0").await;

    // The environment is kept by the platform beside the cache, not copied into it.
    let id = server.api_json("/apps/piprebuild").await["id"]
        .as_str()
        .expect("the app's id")
        .to_owned();
    let cache = server.data_dir.join("cache").join(&id);
    let kept = server.data_dir.join("cache").join(format!("{id}.kept"));
    let slug_layers = server
        .data_dir
        .join("cache")
        .join(format!("{id}.slug-layers"));
    let stat_index = server
        .data_dir
        .join("cache")
        .join(format!("{id}.slug-layers.index"));
    assert!(
        kept.join("python/.heroku-python/bin/python").exists(),
        "no kept environment in {}",
        kept.display()
    );
    assert!(
        !cache.join(".heroku/python-cache/env").exists(),
        "the environment was copied into the cache as well"
    );

    // A no-op rebuild (an empty commit) skips the install too, and its release serves.
    commit_all(dir.path(), "rebuild");
    let noop = push(&server, "piprebuild", dir.path());
    assert_contains(&noop, "-----> Restoring cache");
    assert_contains(
        &noop,
        "-----> Skipping installation, as requirements.txt hasn't changed since last deploy.",
    );
    assert_contains(&noop, "Released v3");
    wait_for_body(&server, "piprebuild", "/", "second six 1.17.0").await;

    std::fs::write(
        dir.path().join("requirements.txt"),
        "# Pinned.\nsix==1.17.0\n",
    )
    .unwrap();
    commit_all(dir.path(), "change the requirements");
    let third = push(&server, "piprebuild", dir.path());
    assert_contains(&third, "-----> Restoring cache");
    assert_contains(&third, "-----> Installing requirements with pip");
    assert_lacks(&third, "Skipping installation");
    wait_for_body(&server, "piprebuild", "/", "second six 1.17.0").await;

    // An install that fails is not trusted by the next build, although the environment it
    // changed is kept: that build starts the environment again.
    std::fs::write(dir.path().join("requirements.txt"), "six==99.0.0\n").unwrap();
    commit_all(dir.path(), "ask for a six that does not exist");
    let failed = server.push("piprebuild", dir.path());
    assert!(!failed.status.success(), "{}", text(&failed));
    std::fs::write(dir.path().join("requirements.txt"), "six==1.17.0\n").unwrap();
    commit_all(dir.path(), "back to a six that exists");
    let fixed = push(&server, "piprebuild", dir.path());
    assert_contains(
        &fixed,
        "-----> Discarding cache since: the last install did not finish",
    );
    assert_contains(&fixed, "-----> Installing requirements with pip");
    wait_for_body(&server, "piprebuild", "/", "second six 1.17.0").await;

    // Purging the build cache removes what the platform keeps beside it: the next build is
    // cold, and installs again.
    assert!(slug_layers.is_dir(), "no {}", slug_layers.display());
    assert!(stat_index.is_file(), "no {}", stat_index.display());
    let purged = server.cli_ok(&[
        "builds:cache:purge",
        "-a",
        "piprebuild",
        "--confirm",
        "piprebuild",
    ]);
    assert_eq!(purged, "Purging build cache for piprebuild... done\n");
    for gone in [&cache, &kept, &slug_layers, &stat_index] {
        assert!(!gone.exists(), "{} survived the purge", gone.display());
    }
    commit_all(dir.path(), "cold");
    let cold = push(&server, "piprebuild", dir.path());
    assert_lacks(&cold, "Restoring cache");
    assert_contains(&cold, "-----> Installing requirements with pip");
    wait_for_body(&server, "piprebuild", "/", "second six 1.17.0").await;

    // Destroying the app removes them too.
    assert!(kept.exists() && slug_layers.exists() && stat_index.exists() && cache.exists());
    server.cli_ok(&[
        "apps:destroy",
        "-a",
        "piprebuild",
        "--confirm",
        "piprebuild",
    ]);
    for gone in [&cache, &kept, &slug_layers, &stat_index] {
        assert!(!gone.exists(), "{} survived apps:destroy", gone.display());
    }
}
