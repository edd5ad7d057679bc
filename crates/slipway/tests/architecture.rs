//! Architecture checks: the crate graph only has the edges ARCHITECTURE.md allows, every crate
//! is in its code map, and every source file says what it is for.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .expect("workspace root")
}

/// Which Slipway crates each crate may depend on. Leaves know nothing of the store or the API;
/// only the core composes subsystems; only the binary depends on everything.
fn allowed_edges() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    let edges: &[(&str, &[&str])] = &[
        ("slipway-store", &[]),
        ("slipway-runtime", &[]),
        ("slipway-outbound", &[]),
        ("slipway-logplex", &["slipway-outbound"]),
        ("slipway-git", &[]),
        ("slipway-model", &[]),
        ("slipway-api-types", &["slipway-model"]),
        ("slipway-router", &["slipway-logplex", "slipway-model"]),
        ("slipway-build", &["slipway-runtime", "slipway-model"]),
        (
            "slipway-core",
            &[
                "slipway-store",
                "slipway-runtime",
                "slipway-logplex",
                "slipway-router",
                "slipway-build",
                "slipway-outbound",
                "slipway-git",
                "slipway-model",
            ],
        ),
        (
            "slipway-api",
            &[
                "slipway-core",
                "slipway-api-types",
                "slipway-git",
                "slipway-logplex",
                "slipway-model",
            ],
        ),
        ("slipway-cli", &["slipway-api-types", "slipway-model"]),
        (
            "slipway",
            &[
                "slipway-core",
                "slipway-api",
                "slipway-cli",
                "slipway-git",
                "slipway-store",
                "slipway-runtime",
                "slipway-router",
                "slipway-logplex",
                "slipway-outbound",
                "slipway-model",
            ],
        ),
    ];
    edges
        .iter()
        .map(|(name, deps)| (*name, deps.iter().copied().collect()))
        .collect()
}

fn metadata() -> serde_json::Value {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("metadata JSON")
}

#[test]
fn crates_depend_only_on_allowed_crates() {
    let allowed = allowed_edges();
    let metadata = metadata();
    let packages = metadata["packages"].as_array().expect("packages");
    let names: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    for package in packages {
        let name = package["name"].as_str().unwrap();
        let Some(allowed_deps) = allowed.get(name) else {
            panic!("crate {name} is not in the allowed-edges table: add it here and to ARCHITECTURE.md");
        };
        for dep in package["dependencies"].as_array().unwrap() {
            let dep_name = dep["name"].as_str().unwrap();
            let is_dev = dep["kind"].as_str() == Some("dev");
            if names.contains(dep_name) && !is_dev {
                assert!(
                    allowed_deps.contains(dep_name),
                    "{name} must not depend on {dep_name} (see ARCHITECTURE.md, 'Crate graph')"
                );
            }
        }
    }
}

#[test]
fn every_crate_is_in_the_code_map() {
    let architecture =
        std::fs::read_to_string(workspace_root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    for package in metadata()["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap();
        assert!(
            architecture.contains(&format!("### `{name}`")),
            "ARCHITECTURE.md's code map has no `### `{name}`` section"
        );
    }
}

#[test]
fn every_source_file_starts_with_a_module_doc() {
    let mut missing = Vec::new();
    let mut stack = vec![workspace_root().join("crates")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if !path.ends_with("target")
                    && !path.ends_with("snapshots")
                    && !path.ends_with("fixtures")
                {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs")
                && path.components().any(|c| c.as_os_str() == "src")
            {
                let text = std::fs::read_to_string(&path).unwrap();
                if !text.trim_start().starts_with("//!") {
                    missing.push(path.display().to_string());
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "source files without a `//!` module doc: {missing:#?}"
    );
}
