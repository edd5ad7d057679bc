//! Manifests as tables, the on-disk registry in a temp dir, and the debootstrap command line.

use std::path::Path;

use uuid::Uuid;

use super::build::debootstrap_args;
use super::*;

fn check(text: &str, expected: Result<(&[&str], &[&str]), &str>) {
    match (parse_manifest(text), expected) {
        (Ok(manifest), Ok((run, build))) => {
            assert_eq!(manifest.run, run, "{text}");
            assert_eq!(manifest.build, build, "{text}");
        }
        (Err(error), Err(part)) => {
            assert!(error.to_string().contains(part), "{text}: {error}");
        }
        (got, expected) => panic!("{text}: got {got:?}, expected {expected:?}"),
    }
}

#[test]
fn manifests() {
    check(
        "suite bookworm\n[run]\ncurl\npython3 # the interpreter\n[build]\ngcc\ncurl\n",
        Ok((&["curl", "python3"], &["gcc"])),
    );
    check("suite bookworm\n[run]\n", Ok((&[], &[])));
    check("suite bookworm\n[run]\ncurl\ncurl\n", Ok((&["curl"], &[])));
    check("[run]\ncurl\n", Err("names no `suite`"));
    check("suite Bookworm\n", Err("line 1: the suite"));
    check(
        "suite bookworm\nmirror ftp://x\n",
        Err("line 2: the mirror"),
    );
    check("suite bookworm\nmirror http://a b\n", Err("the mirror"));
    check("suite bookworm\nkeyring /x\n", Err("unknown setting"));
    check("suite bookworm\ncurl\n", Err("line 2: expected"));
    // A package that would be an option, a path or a list to debootstrap is refused.
    for bad in ["--foreign", "a,b", "/etc/passwd", "Curl", "c", "a b"] {
        check(&format!("suite bookworm\n[run]\n{bad}\n"), Err("line 3"));
    }
    check(&"#".repeat(70_000), Err("larger than"));
}

#[test]
fn the_builtin_heroku_24_manifest_parses_and_has_a_build_image() {
    let (_, text) = BUILTIN_MANIFESTS[0];
    let manifest = parse_manifest(text).expect("the compiled-in manifest is valid");
    assert_eq!(manifest.suite, "bookworm");
    assert!(manifest.run.contains(&"python3".to_string()));
    assert!(manifest.build.contains(&"gcc".to_string()));
    assert!(manifest.digest.starts_with("sha256:"));
}

#[test]
fn stack_names() {
    for good in ["host", "heroku-24", "a", "tiny-1"] {
        assert!(is_stack_name(good), "{good}");
    }
    for bad in [
        "",
        "Heroku-24",
        "-x",
        "1x",
        "../x",
        "a/b",
        "a.b",
        &"a".repeat(33),
    ] {
        assert!(!is_stack_name(bad), "{bad}");
    }
}

#[test]
fn debootstrap_command_line() {
    let manifest = parse_manifest("suite bookworm\n[run]\ncurl\ngit\n").expect("valid");
    let args = debootstrap_args(
        &manifest,
        &manifest.run,
        Path::new("/data/stacks/.tmp/x/run"),
        Path::new("/cache"),
    );
    assert_eq!(
        args,
        [
            "--variant=minbase",
            "--include=curl,git",
            "--cache-dir=/cache",
            "bookworm",
            "/data/stacks/.tmp/x/run",
            "http://deb.debian.org/debian",
        ]
    );
}

fn record(config: &PlatformConfig, name: &str, current: bool, build_image: bool) -> BuiltStack {
    let built = BuiltStack {
        id: Uuid::new_v4(),
        name: name.to_string(),
        suite: "bookworm".into(),
        manifest_digest: "sha256:00".into(),
        packages: vec!["curl".into()],
        build_packages: Vec::new(),
        created_at: Utc::now(),
        build_seconds: 1.0,
    };
    let dir = build_dir(config, name, built.id);
    std::fs::create_dir_all(dir.join("run/usr")).expect("mkdir");
    if build_image {
        std::fs::create_dir_all(dir.join("build/usr")).expect("mkdir");
    }
    let json = serde_json::to_vec(&built).expect("json");
    std::fs::write(dir.join("stack.json"), &json).expect("write");
    if current {
        std::fs::write(stacks_dir(config).join(name).join("current.json"), &json).expect("write");
    }
    built
}

#[test]
fn the_registry_on_disk() {
    let data = tempfile::tempdir().expect("tempdir");
    let config = PlatformConfig::new(data.path().to_path_buf());
    assert!(current_builds(&config).is_empty());
    let old = record(&config, "heroku-24", false, false);
    let new = record(&config, "heroku-24", true, true);
    let built = current_builds(&config);
    assert_eq!(built, std::slice::from_ref(&new));
    assert_eq!(current_build_id(&config, "heroku-24"), Some(new.id));
    assert_eq!(current_build_id(&config, "host"), None);
    assert_eq!(current_build_id(&config, "../heroku-24"), None);
    // An old build stays findable by its id, and its dynos keep its run image.
    assert_eq!(build_by_id(&config, old.id), Some(old.clone()));
    assert_eq!(
        run_rootfs(&config, "heroku-24", Some(old.id)),
        Rootfs::Dir(build_dir(&config, "heroku-24", old.id).join("run"))
    );
    // The host stack, and slugs from before stacks, run on the host.
    assert_eq!(run_rootfs(&config, "host", None), Rootfs::Host);
    assert_eq!(run_rootfs(&config, "heroku-24", None), Rootfs::Host);
    assert_eq!(run_rootfs(&config, "../../x", Some(old.id)), Rootfs::Host);
}

#[test]
fn the_default_stack_is_host() {
    let config = PlatformConfig::new("/data".into());
    assert_eq!(config.stack, HOST_STACK);
}

async fn platform(data_dir: &Path) -> std::sync::Arc<Platform> {
    let store = slipway_store::SqliteStore::open(
        &data_dir.join("slipway.db"),
        slipway_store::StoreOptions::default(),
    )
    .expect("store");
    Platform::open(
        PlatformConfig::new(data_dir.to_path_buf()),
        store,
        std::sync::Arc::new(slipway_runtime::ProcessRuntime::new()),
        slipway_logplex::LogHub::default(),
    )
    .await
    .expect("platform")
}

fn app(stack: &str) -> App {
    App {
        id: Uuid::new_v4(),
        name: "demo".into(),
        owner_email: "a@example.com".into(),
        stack: stack.into(),
        maintenance: false,
        created_at: Utc::now(),
        updated_at: Utc::now(),
        uid: None,
    }
}

#[tokio::test]
async fn stacks_an_app_may_use_and_what_its_build_runs_on() {
    let data = tempfile::tempdir().expect("tempdir");
    let platform = platform(data.path()).await;
    // Host, and a stack with a manifest even before it is built.
    assert_eq!(platform.check_stack("host").expect("host"), "host");
    assert_eq!(
        platform.check_stack("heroku-24").expect("manifest"),
        "heroku-24"
    );
    let error = platform
        .check_stack("cedar-14\u{7}")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("\"cedar-14\" is not available")
            && error.contains("Available stacks: host, heroku-24."),
        "{error}"
    );
    assert_eq!(
        platform.resolve_build_stack(&app("host")).expect("host"),
        ResolvedStack {
            name: "host".into(),
            id: None,
            build_rootfs: Rootfs::Host
        }
    );
    // Not built: the build says so and what to do.
    let error = platform
        .resolve_build_stack(&app("heroku-24"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("the heroku-24 stack is not built")
            && error.contains("slipway stacks:build heroku-24"),
        "{error}"
    );
    // Built: the build image when there is one; the current build's id.
    let built = record(platform.config(), "heroku-24", true, true);
    let resolved = platform
        .resolve_build_stack(&app("heroku-24"))
        .expect("built");
    assert_eq!(resolved.id, Some(built.id));
    assert_eq!(
        resolved.build_rootfs,
        Rootfs::Dir(build_dir(platform.config(), "heroku-24", built.id).join("build"))
    );
    assert_eq!(
        platform.check_stack(&built.id.to_string()).expect("by id"),
        "heroku-24"
    );
    let names: Vec<String> = platform
        .stacks()
        .iter()
        .map(|s| s.name().to_string())
        .collect();
    assert_eq!(names, ["host", "heroku-24"]);
    // Without a build image, builds use the run image.
    let run_only = record(platform.config(), "heroku-24", true, false);
    assert_eq!(
        platform
            .resolve_build_stack(&app("heroku-24"))
            .expect("built")
            .build_rootfs,
        Rootfs::Dir(build_dir(platform.config(), "heroku-24", run_only.id).join("run"))
    );
}

#[tokio::test]
async fn only_administrators_build_stacks_and_only_known_ones() {
    let data = tempfile::tempdir().expect("tempdir");
    let platform = platform(data.path()).await;
    let output: StackOutput = std::sync::Arc::new(|_: &str| {});
    let mut user = User {
        id: Uuid::new_v4(),
        email: "a@example.com".into(),
        created_at: Utc::now(),
        admin: false,
    };
    let error = platform
        .build_stack(&user, "heroku-24", output.clone())
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("Only an administrator"),
        "{error}"
    );
    user.admin = true;
    for (name, expected) in [
        ("host", "nothing to build"),
        ("cedar-14", "no manifest for a stack named \"cedar-14\""),
        ("../etc", "no manifest"),
    ] {
        let error = platform
            .build_stack(&user, name, output.clone())
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{name}: {error}");
    }
    // Nothing was created for the refused builds.
    assert!(!data.path().join("stacks").exists());
}
