//! The document against the router: every `.route(path, method(handler)...)` the crate's
//! sources register is documented, and the document has nothing the router lacks.

use std::collections::BTreeSet;

use super::*;

/// Every `(METHOD, path)` the crate registers, read from its sources' `.route(...)` calls (the
/// router cannot list its routes; its sources can).
fn registered() -> BTreeSet<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = BTreeSet::new();
    let mut files = vec![dir];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                files.push(entry.unwrap().path());
            }
            continue;
        }
        // The document's own `d.route(...)` lines are what is checked, not routes.
        if path.extension().is_none_or(|ext| ext != "rs")
            || path.ends_with("tests.rs")
            || path.ends_with("openapi.rs")
        {
            continue;
        }
        // Comments may mention `.route(...)` too; only code registers routes.
        let source: String = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .map(|line| format!("{line}\n"))
            .collect();
        routes_in(&source, &mut found);
    }
    found
}

/// The routes of one source file: each `.route(` call's path (a string literal, or the rate
/// limits' constant) and the methods of its method router.
fn routes_in(source: &str, found: &mut BTreeSet<(String, String)>) {
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        // The call's arguments: up to the parenthesis that closes `.route(`.
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map(|(i, _)| i)
            .unwrap();
        let call = &rest[..end];
        let (path_arg, methods) = call.split_once(',').unwrap();
        let path_arg = path_arg.trim();
        let path = if let Some(literal) = path_arg.strip_prefix('"') {
            literal.trim_end_matches('"').to_owned()
        } else if path_arg.ends_with("RATE_LIMITS_PATH") {
            crate::conventions::RATE_LIMITS_PATH.to_owned()
        } else {
            panic!("a route whose path is not a literal: {path_arg}");
        };
        let bytes = methods.as_bytes();
        for method in ["get", "post", "put", "patch", "delete"] {
            let mut from = 0;
            while let Some(i) = methods[from..].find(&format!("{method}(")) {
                let start = from + i;
                let before = start.checked_sub(1).map(|b| bytes[b]);
                // `get(` as a word: not the tail of `get_app(` or `forget(`.
                if before.is_none_or(|b| !(b.is_ascii_alphanumeric() || b == b'_')) {
                    found.insert((method.to_ascii_uppercase(), path.clone()));
                }
                from = start + method.len() + 1;
            }
        }
        rest = &rest[end..];
    }
}

/// Every `(METHOD, path)` the document has.
fn documented() -> BTreeSet<(String, String)> {
    let value = serde_json::to_value(document()).unwrap();
    let mut found = BTreeSet::new();
    for (path, item) in value["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                found.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    found
}

#[test]
fn the_source_reader_finds_methods_and_paths() {
    let mut found = BTreeSet::new();
    routes_in(
        r#".route("/a/{x}", get(m::get_a).delete(m::delete).patch(m::update))
           .route("/b", axum::routing::delete(m::restart))"#,
        &mut found,
    );
    let expected: BTreeSet<(String, String)> = [
        ("GET", "/a/{x}"),
        ("DELETE", "/a/{x}"),
        ("PATCH", "/a/{x}"),
        ("DELETE", "/b"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_owned(), p.to_owned()))
    .collect();
    assert_eq!(found, expected);
}

#[test]
fn every_route_is_documented_and_every_documented_route_exists() {
    let registered = registered();
    let documented = documented();
    assert!(
        registered.len() > 60,
        "found only {} routes",
        registered.len()
    );
    let undocumented: Vec<String> = registered
        .difference(&documented)
        .map(|(method, path)| format!("  {method} {path}"))
        .collect();
    let unrouted: Vec<String> = documented
        .difference(&registered)
        .map(|(method, path)| format!("  {method} {path}"))
        .collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "Routes the router has and crates/api/src/openapi.rs's `document` lacks (add one \
         `d.route(...)` line each):\n{}\nRoutes documented that the router lacks:\n{}",
        undocumented.join("\n"),
        unrouted.join("\n"),
    );
}

#[test]
fn the_document_is_openapi_3_with_the_wire_schemas() {
    let value = serde_json::to_value(document()).unwrap();
    assert!(value["openapi"].as_str().unwrap().starts_with("3."));
    let schemas = value["components"]["schemas"].as_object().unwrap();
    for name in [
        "App",
        "Release",
        "Domain",
        "ErrorBody",
        "AppCreate",
        "Formation",
        "IdRef",
    ] {
        assert!(schemas.contains_key(name), "no schema {name}");
    }
    let releases = &value["paths"]["/apps/{app}/releases"]["get"];
    let parameters = releases["parameters"].as_array().unwrap();
    assert!(parameters
        .iter()
        .any(|p| p["name"] == "app" && p["in"] == "path"));
    assert!(parameters
        .iter()
        .any(|p| p["name"] == "Range" && p["in"] == "header"));
    // Every reference resolves.
    let text = value.to_string();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "dangling reference to {name}");
    }
}
