//! Cloud Native Buildpacks builds in real runc build containers, as the unprivileged user
//! 65534, with the buildpacks of `tests/fixtures/cnb` (bash, written like the public samples):
//! a hello world whose launch layer and environment work in a dyno-like container, a pair
//! that provides and requires in the build plan, and a cached layer reused by the next build.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::{write, AppDirs, Harness};
use slipway_build::{BuildError, BuiltSlug, MountView};
use slipway_runtime::{
    run_to_completion, ContainerSpec, Limits, Network, OutputSink, RuncConfig, RuncRuntime, Runtime,
};

const NOBODY: u32 = 65534;

/// A runc harness, or `None` (after saying so loudly) when runc cannot be used here.
fn harness() -> Option<Harness> {
    let me = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = me
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"));
    if !root {
        eprintln!("SKIPPED: CNB runc build tests need root");
        return None;
    }
    if std::process::Command::new("runc")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: runc is not installed");
        return None;
    }
    let state = tempfile::Builder::new()
        .prefix("slipway-cnb-runc-")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let runtime = RuncRuntime::new(RuncConfig::new(state.path())).expect("runc runtime");
    let mut harness = Harness::new(Arc::new(runtime), MountView::Container, NOBODY, NOBODY);
    harness.keep_alive.push(state);
    Some(harness)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cnb")
        .join(name)
}

/// Copies a fixture buildpack to `dest` (`cp -a`, modes kept).
fn copy_fixture(name: &str, dest: &Path) {
    std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(fixture(name))
        .arg(dest)
        .status()
        .expect("cp");
    assert!(status.success());
}

/// A fixture buildpack installed on the "server" (outside any app), readable by the build
/// user, for the app's buildpack list.
fn server_buildpack(h: &Harness, name: &str) -> String {
    let dest = h.root.path().join("server-buildpacks").join(name);
    if !dest.exists() {
        copy_fixture(name, &dest);
    }
    dest.display().to_string()
}

fn project_toml(uris: &[&str]) -> String {
    let mut text = "[_]\nschema-version = \"0.2\"\n\n".to_string();
    for uri in uris {
        text.push_str(&format!("[[io.buildpacks.group]]\nuri = \"{uri}\"\n\n"));
    }
    text
}

fn has_line(lines: &[String], expected: &str) -> bool {
    lines.iter().any(|l| l.trim() == expected.trim())
}

/// Runs `script` with bash in a dyno-like container: the slug at `/app` through the runtime's
/// overlay, `DYNO` set, `.profile.d` sourced first as dynos do.
async fn run_in_dyno(h: &Harness, app: PathBuf, dyno: &str, script: &str) -> Vec<String> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink: OutputSink = {
        let lines = lines.clone();
        Arc::new(move |_stream, line: &str| lines.lock().expect("lock").push(line.to_string()))
    };
    let spec = ContainerSpec {
        id: format!(
            "cnb-test.dyno.{}.{}",
            std::process::id(),
            dyno.replace('.', "-")
        ),
        labels: BTreeMap::new(),
        app_dir: Some(app),
        rootfs: slipway_runtime::Rootfs::Host,
        binds: Vec::new(),
        args: vec![
            "/bin/bash".to_string(),
            "-c".to_string(),
            format!("for f in /app/.profile.d/*.sh; do . \"$f\"; done; {script}"),
        ],
        env: vec![
            ("HOME".to_string(), "/app".to_string()),
            (
                "PATH".to_string(),
                "/usr/local/bin:/usr/bin:/bin".to_string(),
            ),
            ("DYNO".to_string(), dyno.to_string()),
        ],
        cwd: "/app".to_string(),
        uid: NOBODY,
        gid: NOBODY,
        hostname: "dyno".to_string(),
        limits: Limits::default(),
        network: Network::Host,
        allowed_host_ports: Vec::new(),
    };
    let status = run_to_completion(h.runtime.as_ref() as &dyn Runtime, spec, sink)
        .await
        .expect("run the dyno");
    let lines = lines.lock().expect("lock").clone();
    assert!(status.success(), "{status}: {lines:?}");
    lines
}

fn ok(result: Result<BuiltSlug, BuildError>, lines: &[String]) -> BuiltSlug {
    match result {
        Ok(slug) => slug,
        Err(error) => panic!("build failed: {error}\n{}", lines.join("\n")),
    }
}

fn hello_app(h: &Harness) -> AppDirs {
    let dirs = h.dirs("cnbhello");
    copy_fixture("hello", &dirs.source.join("buildpacks/hello"));
    write(
        &dirs.source.join("project.toml"),
        &project_toml(&["buildpacks/hello"]),
    );
    write(&dirs.source.join("index.html"), "hello from a CNB app\n");
    dirs
}

/// The bash hello world from project.toml: detect and build run with the CNB environment
/// (config vars in the platform dir and, without `clear-env`, in the environment), its
/// launch layer lands in the slug under `/app/.layers`, launch.toml's processes become the
/// process types, and in a dyno its `bin/` is on PATH with its launch env (default and
/// per-process) applied, at the path baked in at build time.
#[tokio::test]
async fn hello_world_from_project_toml() {
    let Some(h) = harness() else { return };
    let dirs = hello_app(&h);
    let mut request = h.request("cnbhello", &dirs);
    request.config_vars = BTreeMap::from([("GREETING".to_string(), "howdy".to_string())]);
    let (result, lines) = h.run(&request).await;
    let slug = ok(result, &lines);
    for expected in [
        "-----> Detecting Cloud Native Buildpacks (1 in the group)",
        "1 of 1 buildpacks participating",
        "examples/hello 0.0.1",
        "-----> Building with examples/hello 0.0.1",
        "GREETING config var in env/: howdy",
        "GREETING in the environment: howdy",
        "working dir: /app",
        "Adding layer 'examples/hello:hello'",
        "Default types for buildpack -> greet, web",
    ] {
        assert!(
            has_line(&lines, expected),
            "missing {expected:?} in {lines:#?}"
        );
    }
    assert_eq!(
        slug.process_types,
        BTreeMap::from([
            (
                "web".to_string(),
                "bash -c 'hello && exec python3 -m http.server $PORT'".to_string()
            ),
            ("greet".to_string(), r"hello 'it'\''s me'".to_string()),
        ])
    );
    assert_eq!(slug.buildpack_description, "Hello World Buildpack");

    let app = h.unpack(&slug);
    assert!(app.join(".layers/examples_hello/hello/bin/hello").is_file());
    assert!(app.join("index.html").is_file());
    // The config var values never reach the slug, and the layer's metadata file is not a layer.
    assert!(!app.join(".layers/examples_hello/hello.toml").exists());
    assert!(!app.join(".layers/examples_hello/launch.toml").exists());

    let web = run_in_dyno(&h, app.clone(), "web.1", "command -v hello; hello").await;
    assert_eq!(
        web,
        [
            "/app/.layers/examples_hello/hello/bin/hello",
            "Hello from hello at /app/.layers/examples_hello/hello/bin (web)"
        ]
    );
    // Per-process env applies to web only; `.default` yields to a config var.
    let worker = run_in_dyno(
        &h,
        app,
        "worker.1",
        "export HELLO_GREETING=Hey; for f in /app/.profile.d/*.sh; do . \"$f\"; done; hello",
    )
    .await;
    assert_eq!(
        worker,
        ["Hey from hello at /app/.layers/examples_hello/hello/bin (any)"]
    );
}

/// A Procfile wins over launch.toml's processes, as for classic buildpacks.
#[tokio::test]
async fn procfile_wins_over_launch_toml() {
    let Some(h) = harness() else { return };
    let dirs = hello_app(&h);
    write(
        &dirs.source.join("Procfile"),
        "web: hello --from-procfile\n",
    );
    let request = h.request("cnbhello", &dirs);
    let (result, lines) = h.run(&request).await;
    let slug = ok(result, &lines);
    assert_eq!(slug.process_types["web"], "hello --from-procfile");
    assert_eq!(slug.process_types["greet"], r"hello 'it'\''s me'");
    assert!(has_line(&lines, "Procfile declares types     -> web"));
}

/// Two buildpacks from the app's buildpack list (server-side directories): one provides
/// `greeting-tool`, the other requires it (through an `or` alternative, its first choice
/// being unprovided) with metadata. The provider gets the requirement's metadata in its
/// Buildpack Plan, its build layer's `bin/` and env files reach the next buildpack's build,
/// and the build-only layer stays out of the slug.
#[tokio::test]
async fn build_plan_provides_and_requires() {
    let Some(h) = harness() else { return };
    let dirs = h.dirs("cnbplan");
    write(&dirs.source.join("greeting.txt"), "hi\n");
    let mut request = h.request("cnbplan", &dirs);
    request.buildpacks = vec![
        server_buildpack(&h, "tool-provider"),
        server_buildpack(&h, "tool-user"),
    ];
    let (result, lines) = h.run(&request).await;
    let slug = ok(result, &lines);
    for expected in [
        "2 of 2 buildpacks participating",
        "[[entries]]",
        "name = \"greeting-tool\"",
        "version = \"1.2\"",
        "---> Tool user, buildpack plan entries: 0",
        "greeting-tool 1.2: polite",
        "TOOL_CHAIN=provider",
    ] {
        assert!(
            has_line(&lines, expected),
            "missing {expected:?} in {lines:#?}"
        );
    }
    let app = h.unpack(&slug);
    assert_eq!(
        std::fs::read_to_string(app.join("built-greeting.txt")).expect("built file"),
        "greeting-tool 1.2: polite\n"
    );
    assert!(
        !app.join(".layers/examples_tool-provider").exists(),
        "a build-only layer must not be in the slug"
    );
}

/// Detection as the lifecycle does it: a group fails when a required buildpack does not
/// apply (exit 100) or when the plan does not resolve (a requirement nobody provides, a
/// provision nobody requires), and the message says which.
#[tokio::test]
async fn detection_failures_name_the_reason() {
    let Some(h) = harness() else { return };
    async fn check(h: &Harness, buildpacks: &[&str], greeting: bool, expected: &str) {
        let dirs = h.dirs("cnbdetect");
        if greeting {
            write(&dirs.source.join("greeting.txt"), "hi\n");
        }
        let mut request = h.request("cnbdetect", &dirs);
        request.buildpacks = buildpacks.iter().map(|b| server_buildpack(h, b)).collect();
        let (result, lines) = h.run(&request).await;
        let error = result.expect_err("detection must fail").to_string();
        assert!(
            error.contains("No buildpack groups passed detection") && error.contains(expected),
            "{buildpacks:?}: {error}\n{lines:#?}"
        );
        assert!(
            !dirs.slugs.exists() || std::fs::read_dir(&dirs.slugs).expect("slugs").count() == 0
        );
    }
    check(
        &h,
        &["tool-user"],
        false,
        "examples/tool-user does not apply to this app",
    )
    .await;
    check(
        &h,
        &["tool-user"],
        true,
        "examples/tool-user requires greeting-tool",
    )
    .await;
    check(
        &h,
        &["tool-provider"],
        true,
        "examples/tool-provider provides unused greeting-tool",
    )
    .await;
}

/// A cache layer is restored with its metadata on the next build, the buildpack sees it and
/// reuses it (the layer's contents are the first build's), and a changed input rebuilds it.
#[tokio::test]
async fn cached_layer_is_reused_by_the_next_build() {
    let Some(h) = harness() else { return };
    let build = |deps: &'static str| {
        let h = &h;
        async move {
            let dirs = h.dirs("cnbcache");
            copy_fixture("cached", &dirs.source.join("buildpacks/cached"));
            write(
                &dirs.source.join("project.toml"),
                &project_toml(&["./buildpacks/cached"]),
            );
            write(&dirs.source.join("deps.txt"), deps);
            let request = h.request("cnbcache", &dirs);
            let (result, lines) = h.run(&request).await;
            let slug = ok(result, &lines);
            let app = h.unpack(&slug);
            let built_at =
                std::fs::read_to_string(app.join(".layers/examples_cached/deps/built-at"))
                    .expect("the launch+cache layer is in the slug");
            (lines, built_at, slug)
        }
    };
    let (first, first_built, slug) = build("flask\nrequests\n").await;
    assert!(
        has_line(&first, "---> Installing dependencies"),
        "{first:#?}"
    );
    assert!(has_line(
        &first,
        "Adding cache layer 'examples/cached:deps'"
    ));
    assert_eq!(slug.process_types["worker"], "show-deps");

    let (second, second_built, _) = build("flask\nrequests\n").await;
    assert!(
        has_line(
            &second,
            "Restoring data for \"examples/cached:deps\" from cache"
        ),
        "{second:#?}"
    );
    assert!(
        has_line(
            &second,
            "---> Reusing cached dependencies (flask requests )"
        ),
        "{second:#?}"
    );
    assert_eq!(
        first_built, second_built,
        "the layer was rebuilt instead of reused"
    );

    let (third, third_built, _) = build("flask\n").await;
    assert!(
        has_line(&third, "---> Installing dependencies"),
        "{third:#?}"
    );
    assert_ne!(second_built, third_built);
}

/// Buildpacks committed with the app are referenced by a path inside it: a path leaving the
/// app, a URL or a link is refused before anything runs.
#[tokio::test]
async fn project_toml_uris_stay_inside_the_app() {
    let Some(h) = harness() else { return };
    for (uri, expected) in [
        ("../../etc", "leaves the app's directory"),
        ("/etc", "is an absolute path"),
        ("https://example.com/bp.tgz", "is not a path inside the app"),
        ("linked", "is a symbolic link or a file"),
        ("missing", "no such directory in the app"),
    ] {
        let dirs = h.dirs("cnburi");
        std::os::unix::fs::symlink(fixture("hello"), dirs.source.join("linked")).expect("link");
        write(&dirs.source.join("project.toml"), &project_toml(&[uri]));
        let request = h.request("cnburi", &dirs);
        let (result, lines) = h.run(&request).await;
        let error = result.expect_err("must be refused").to_string();
        assert!(error.contains(expected), "{uri}: {error}");
        assert!(error.starts_with("Push rejected"), "{error}");
        assert!(!lines.iter().any(|l| l.contains("Detecting")), "{lines:#?}");
    }
}
