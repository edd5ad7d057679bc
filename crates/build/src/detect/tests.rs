//! The Rust rules agree with the built-in buildpacks' own `bin/detect` scripts: each script is
//! run (bash, on the host) against a table of source trees and must answer as the rule does,
//! status and framework name; where the rule is unsure (a link) it defers to the script.

use std::path::Path;
use std::process::Command;

use super::*;
use crate::buildpacks::BUILTIN_BUILDPACKS;

/// One entry of a test tree.
enum Node {
    File(&'static str, &'static str),
    Dir(&'static str),
    Link(&'static str, &'static str),
}
use Node::{Dir, File, Link};

fn tree(nodes: &[Node]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for node in nodes {
        let path = match node {
            File(path, _) | Dir(path) | Link(path, _) => dir.path().join(path),
        };
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        match node {
            File(_, contents) => std::fs::write(&path, contents).unwrap(),
            Dir(_) => std::fs::create_dir_all(&path).unwrap(),
            Link(_, target) => std::os::unix::fs::symlink(target, &path).unwrap(),
        }
    }
    dir
}

/// What the script `buildpacks/<name>/bin/detect` says about `source`.
fn script(name: &str, source: &Path) -> Detected {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("buildpacks")
        .join(name)
        .join("bin/detect");
    let output = Command::new("bash")
        .arg(&path)
        .arg(source)
        .output()
        .expect("bash runs the detect script");
    if !output.status.success() {
        return Detected::No;
    }
    let framework = String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    // The rule's names are 'static: find the same one.
    match builtin(name, source) {
        Some(Detected::Yes(rule)) if rule == framework => Detected::Yes(rule),
        _ => panic!("{name}'s script detected {framework:?}, the rule did not"),
    }
}

#[test]
fn the_rules_agree_with_the_scripts() {
    let cases: Vec<Vec<Node>> = vec![
        vec![],
        vec![File("requirements.txt", "six\n")],
        vec![File("setup.py", "")],
        vec![File("pyproject.toml", "")],
        vec![File("Pipfile", "")],
        vec![File("Pipfile.lock", "{}")],
        vec![File("poetry.lock", "")],
        vec![File("uv.lock", "")],
        vec![Dir("requirements.txt")],
        vec![File("package.json", "{}")],
        vec![File("package.json", "{}"), File("requirements.txt", "")],
        vec![File("Gemfile", "")],
        vec![File("Gemfile", ""), File("config.ru", "")],
        vec![
            File("Gemfile", ""),
            File("config/application.rb", ""),
            File("Gemfile.lock", "    rails (7.1.0)\n"),
        ],
        vec![
            File("Gemfile", ""),
            File("config/application.rb", ""),
            File("Gemfile.lock", "    sinatra (4.0)\n"),
        ],
        vec![
            File("Gemfile", ""),
            File("config/application.rb", ""),
            File("config.ru", ""),
        ],
        vec![File("Gemfile", ""), Dir("config/application.rb")],
        vec![
            File("Gemfile", ""),
            File("config/application.rb", ""),
            Dir("Gemfile.lock"),
        ],
        vec![File("composer.json", "{}")],
        vec![File("index.php", "")],
        vec![File("go.mod", "")],
        vec![File("pom.xml", "")],
        vec![File("build.gradle", "")],
        vec![File("build.gradle.kts", "")],
        vec![File("pom.xml", ""), File("build.gradle", "")],
        vec![File("Cargo.toml", "")],
        vec![File("static.json", "{}")],
        vec![File("Procfile", "web: x\n")],
        vec![Dir("Procfile")],
        vec![File("x/package.json", "{}")],
        // Links: the rule defers to the script.
        vec![Link("package.json", "/etc/hostname")],
        vec![Link("Procfile", "/etc/passwd")],
        vec![
            File("Gemfile", ""),
            Link("config", "/etc"),
            File("Gemfile.lock", "rails"),
        ],
        vec![
            File("Gemfile", ""),
            File("config/application.rb", ""),
            Link("Gemfile.lock", "/etc/passwd"),
        ],
    ];
    let mut unsure = 0;
    for (index, case) in cases.iter().enumerate() {
        let source = tree(case);
        for name in BUILTIN_BUILDPACKS {
            let rule = builtin(name, source.path()).expect("every built-in has a rule");
            if rule == Detected::Unsure {
                unsure += 1;
                continue;
            }
            assert_eq!(
                rule,
                script(name, source.path()),
                "case {index}, buildpack {name}"
            );
        }
    }
    assert!(unsure >= 4, "the link cases are the script's to decide");
}

#[test]
fn a_link_anywhere_on_the_way_defers_to_the_script() {
    let source = tree(&[Link("package.json", "/etc/hostname")]);
    assert_eq!(builtin("nodejs", source.path()), Some(Detected::Unsure));
    // A file that decides before the link is reached decides alone.
    let source = tree(&[
        File("requirements.txt", ""),
        Link("setup.py", "/etc/passwd"),
    ]);
    assert_eq!(
        builtin("python", source.path()),
        Some(Detected::Yes("Python"))
    );
    let source = tree(&[File("Gemfile", ""), Link("config", "/etc")]);
    assert_eq!(builtin("ruby", source.path()), Some(Detected::Unsure));
    assert_eq!(builtin("unknown", source.path()), None);
}
