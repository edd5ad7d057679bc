//! Tidy test of the router's module structure: the top-level modules (with `lib.rs` as a node
//! of its own) import each other without cycles, `lib.rs` holds only module declarations and
//! re-exports, `shared` sits below both engines, `policy` does no IO, and no module silences
//! dead code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module name → the top-level modules its files import through `crate::`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "rs") {
            let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
            modules.insert(name, std::fs::read_to_string(&path).unwrap());
        }
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    modules
        .iter()
        .map(|(module, text)| {
            let code: String = text
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            let mut used = BTreeSet::new();
            for (at, _) in code.match_indices("crate::") {
                let rest = &code[at + "crate::".len()..];
                // `crate::{a, b::C}` names several modules at once.
                let names_here: Vec<&str> = match rest.strip_prefix('{') {
                    Some(group) => group[..group.find('}').unwrap()]
                        .split(',')
                        .map(|item| item.trim().split("::").next().unwrap())
                        .collect(),
                    None => vec![rest
                        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .next()
                        .unwrap()],
                };
                for name in names_here {
                    if names.contains(name) && name != module {
                        used.insert(name.to_owned());
                    } else if !names.contains(name) && !name.is_empty() && module != "lib" {
                        // An item defined in lib.rs used by a submodule: lib is a node too.
                        used.insert("lib".to_owned());
                    }
                }
            }
            if module == "lib" {
                for line in code.lines() {
                    if let Some(name) = line.strip_prefix("mod ") {
                        used.insert(name.trim_end_matches(';').to_owned());
                    }
                }
            }
            (module.clone(), used)
        })
        .collect()
}

fn source(module: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("src/{module}.rs"));
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn router_modules_import_each_other_without_cycles() {
    let graph = imports();
    // Depth-first search for a back edge.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if done.contains(node) {
            return;
        }
        if let Some(at) = path.iter().position(|n| n == node) {
            panic!("import cycle: {} -> {node}", path[at..].join(" -> "));
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(node.to_owned());
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done);
    }
}

#[test]
fn the_shared_state_and_the_policy_sit_below_the_engines() {
    let graph = imports();
    let allowed: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("shared", &["config", "route", "upstream"][..]),
        ("policy", &["logline", "route"][..]),
        ("route", &[][..]),
        ("config", &[][..]),
        ("wire", &[][..]),
        ("logline", &[][..]),
    ]);
    for (module, allowed) in allowed {
        let used: Vec<&String> = graph[module]
            .iter()
            .filter(|name| !allowed.contains(&name.as_str()))
            .collect();
        assert!(used.is_empty(), "{module} imports {used:?}");
    }
    // No IO in the policy: no sockets, no clock reads, no tasks.
    let policy = source("policy");
    for io in [
        "tokio::net",
        "Instant::now()",
        "SystemTime::now()",
        "tokio::spawn",
        "std::fs",
    ] {
        assert!(!policy.contains(io), "policy.rs uses {io}");
    }
}

#[test]
fn lib_rs_only_declares_modules_and_reexports() {
    let lib = source("lib");
    for line in lib.lines() {
        let line = line.trim();
        assert!(
            line.is_empty()
                || line.starts_with("//")
                || line.starts_with("mod ")
                || line.starts_with("pub use "),
            "lib.rs holds more than modules and re-exports: {line}"
        );
    }
}

#[test]
fn no_module_silences_dead_code() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![src];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let text = std::fs::read_to_string(&path).unwrap();
                assert!(
                    !text.contains(&format!("allow({})", "dead_code")),
                    "{} allows dead code",
                    path.display()
                );
            }
        }
    }
}
