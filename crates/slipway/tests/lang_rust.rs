//! End to end: a Rust web app (the standard library's TCP listener and one crate, `httparse`,
//! from the crates.io registry) built by the built-in Rust buildpack as the community Rust
//! buildpack builds it, pushed with the real git client and served through the router by its
//! single binary as the default web process; a rebuild compiles only the app's own crate (the
//! cached `target/` and `CARGO_HOME`); and the failures a user can act on (a toolchain the
//! platform lacks, a missing or out-of-date Cargo.lock, a compile error) fail with what to do
//! and release nothing.
//!
//! rustup and static.rust-lang.org are not reachable from this machine: the toolchain is the
//! stack's (Debian's `rustc-web` and `cargo-web`, which `.ci/run` installs), named once as a
//! runtime source directory (`--runtime-source rust=file:///usr`). Crates come from crates.io
//! through the build container's network.

mod support;

use std::path::Path;

use support::{commit_all, repo, text, Server};

const CARGO_TOML: &str = include_str!("fixtures/rust/hello/Cargo.toml");
const CARGO_LOCK: &str = include_str!("fixtures/rust/hello/Cargo.lock");
const TOOLCHAIN: &str = include_str!("fixtures/rust/hello/rust-toolchain.toml");
const MAIN_RS: &str = include_str!("fixtures/rust/hello/src/main.rs");

macro_rules! require_tools {
    () => {
        require_runc!();
        let missing: Vec<&str> = ["/usr/bin/cargo", "/usr/bin/rustc"]
            .into_iter()
            .filter(|path| !Path::new(path).exists())
            .collect();
        if !missing.is_empty() {
            eprintln!(
                "SKIPPED: the stack lacks {missing:?}; install cargo-web rustc-web (as .ci/run does)"
            );
            return;
        }
    };
}

/// The sample app's files, `replace` replacing or adding some and `remove` left out.
fn rust_app(replace: &[(&'static str, &'static str)], remove: &[&str]) -> tempfile::TempDir {
    let mut files = vec![
        ("Cargo.toml", CARGO_TOML),
        ("Cargo.lock", CARGO_LOCK),
        ("rust-toolchain.toml", TOOLCHAIN),
        ("src/main.rs", MAIN_RS),
    ];
    files.retain(|(path, _)| !replace.iter().any(|(p, _)| p == path) && !remove.contains(path));
    files.extend_from_slice(replace);
    repo(&files)
}

fn push_expecting(server: &Server, app: &str, dir: &Path, success: bool) -> String {
    let push = server.push(app, dir);
    let output = text(&push);
    assert_eq!(
        push.status.success(),
        success,
        "push of {app} should {}:\n{output}\n{}",
        if success { "succeed" } else { "fail" },
        server.log()
    );
    output
}

fn assert_contains(output: &str, expected: &str) {
    assert!(
        output.contains(expected),
        "expected {expected:?} in the build output:\n{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cargo_app_builds_with_crates_from_the_registry_serves_and_rebuilds_from_the_cache() {
    require_tools!();
    let server = Server::start();
    server.cli_ok(&["apps:create", "rustweb"]);
    let app = rust_app(&[], &[]);

    let output = push_expecting(&server, "rustweb", app.path(), true);
    for expected in [
        "remote: -----> Rust app detected",
        "remote: -----> Using Rust 1.",
        "(stable) from the host stack",
        "remote:        rust-toolchain.toml asks for stable",
        "remote:        $ cargo build --release --locked",
        "Downloaded httparse v1.10.1",
        "Compiling httparse v1.10.1",
        "Compiling hello-web v0.1.0",
        "remote:        Installed: hello-web into target/release",
        "remote:        Default types for buildpack -> web",
    ] {
        assert_contains(&output, expected);
    }
    assert_eq!(
        output.matches("-----> Rust app detected").count(),
        1,
        "the platform says it once:\n{output}"
    );
    // No Procfile: the web process is the package's single binary.
    let body = server.wait_for_200("rustweb", "/some/path").await;
    assert_eq!(body, "rust says hi from web.1 at /some/path\n");
    let ps = server.cli_ok(&["ps", "-a", "rustweb"]);
    assert!(ps.contains("./target/release/hello-web"), "{ps}");

    // A rebuild downloads and compiles no dependency: target/ and CARGO_HOME are cached.
    commit_all(app.path(), "again");
    let output = push_expecting(&server, "rustweb", app.path(), true);
    assert_contains(
        &output,
        "remote: -----> Restoring target/ and ~/.cargo from the build cache",
    );
    assert_contains(&output, "Installed: hello-web into target/release");
    for absent in ["Downloaded httparse", "Compiling httparse"] {
        assert!(
            !output.contains(absent),
            "a cached rebuild should not show {absent:?}:\n{output}"
        );
    }
    let body = server.wait_for_200("rustweb", "/").await;
    assert_eq!(body, "rust says hi from web.1 at /\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_apps_the_platform_cannot_build_are_refused_with_what_to_do() {
    require_tools!();
    // The toolchain named as a runtime source directory on the stack.
    let server = Server::start_with(&["--runtime-source", "rust=file:///usr"]);
    type Case = (
        &'static str,
        Vec<(&'static str, &'static str)>,
        &'static [&'static str],
        &'static [&'static str],
    );
    let cases: [Case; 5] = [
        (
            "rust-ancient",
            vec![("rust-toolchain.toml", "[toolchain]\nchannel = \"1.20\"\n")],
            &[],
            &[
                "Rust toolchain 1.20 (from rust-toolchain.toml) is not available.",
                "Available Rust toolchains: Rust 1.",
                "(stable) from the runtime source file:///usr.",
                "Set the channel in rust-toolchain.toml to 1.",
            ],
        ),
        (
            "rust-nightly",
            vec![("RustConfig", "VERSION=nightly\n")],
            &["rust-toolchain.toml"],
            &["Rust toolchain nightly (from RustConfig) is not available."],
        ),
        (
            "rust-unlocked",
            vec![],
            &["Cargo.lock"],
            &[
                "Cargo.lock is required.",
                "commit Cargo.lock and push again.",
            ],
        ),
        (
            "rust-stale-lock",
            vec![(
                "Cargo.toml",
                "[package]\nname = \"hello-web\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
                 [dependencies]\nhttparse = \"1\"\nitoa = \"1\"\n\n[workspace]\n",
            )],
            &[],
            &[
                "--locked",
                "Failed to compile the Rust app: see cargo's messages above.",
                "If Cargo.lock is out of date, run cargo build locally, commit Cargo.lock",
            ],
        ),
        (
            "rust-broken",
            vec![("src/main.rs", "fn main() {\n    let x: u32 = \"no\";\n}\n")],
            &[],
            &[
                "error[E0308]: mismatched types",
                "Failed to compile the Rust app: see cargo's messages above.",
            ],
        ),
    ];
    for (app, files, remove, expected) in cases {
        server.cli_ok(&["apps:create", app]);
        let dir = rust_app(&files, remove);
        let output = push_expecting(&server, app, dir.path(), false);
        for line in expected {
            assert_contains(&output, line);
        }
        let releases = server.cli_ok(&["releases", "-a", app]);
        assert!(
            !releases.contains("Deploy"),
            "{app}: a failed build writes no deploy release:\n{releases}"
        );
    }
}
