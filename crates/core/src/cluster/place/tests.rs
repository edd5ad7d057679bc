//! Placement as tables: spread, headroom, never twice.

use super::*;

fn host(name: &str, memory_mb: u64) -> Host {
    Host {
        name: name.into(),
        memory_mb,
    }
}

fn placed(host: &str, container: &str, app: &str, process_type: &str, memory_mb: u64) -> Placed {
    Placed {
        host: host.into(),
        container: container.into(),
        app: app.into(),
        process_type: process_type.into(),
        memory_mb,
    }
}

fn web(container: &str, memory_mb: u64) -> Request {
    Request {
        container: container.into(),
        app: "demo".into(),
        process_type: "web".into(),
        memory_mb,
    }
}

fn check(hosts: &[Host], placed: &[Placed], request: &Request, expected: Option<&str>) {
    assert_eq!(
        place(hosts, placed, request).as_deref(),
        expected,
        "placing {request:?} on {hosts:?} with {placed:?}"
    );
}

#[test]
fn an_apps_dynos_of_one_type_spread_across_hosts() {
    let hosts = [host("a", 4096), host("b", 4096)];
    let mut placed_so_far = Vec::new();
    let mut per_host = std::collections::BTreeMap::<String, usize>::new();
    for n in 0..4 {
        let request = web(&format!("web.{n}"), 512);
        let chosen = place(&hosts, &placed_so_far, &request).unwrap();
        *per_host.entry(chosen.clone()).or_default() += 1;
        placed_so_far.push(placed(&chosen, &request.container, "demo", "web", 512));
    }
    assert_eq!(
        per_host.into_iter().collect::<Vec<_>>(),
        [("a".into(), 2), ("b".into(), 2)]
    );
}

#[test]
fn spread_counts_the_same_app_and_type_only() {
    let hosts = [host("a", 8192), host("b", 8192)];
    // b has more of other apps and types, a has one web dyno of this app: b wins.
    let on_hosts = [
        placed("a", "w1", "demo", "web", 512),
        placed("b", "x1", "other", "web", 512),
        placed("b", "x2", "demo", "worker", 512),
    ];
    check(&hosts, &on_hosts, &web("w2", 512), Some("b"));
}

#[test]
fn memory_headroom_decides_and_a_full_cluster_places_nothing() {
    let hosts = [host("a", 1024), host("b", 2048)];
    check(&hosts, &[], &web("w1", 512), Some("b"));
    let full_a = [placed("a", "o1", "other", "web", 1024)];
    check(&hosts, &full_a, &web("w1", 512), Some("b"));
    check(&hosts, &full_a, &web("w1", 2048), Some("b"));
    check(&hosts, &full_a, &web("w1", 2049), None);
    check(&[], &[], &web("w1", 1), None);
}

#[test]
fn a_container_is_never_placed_twice_even_if_its_host_is_fenced() {
    // "gone" is no live host any more (fenced), but its assignment is not released yet.
    let hosts = [host("a", 4096)];
    let leftover = [placed("gone", "w1", "demo", "web", 512)];
    check(&hosts, &leftover, &web("w1", 512), None);
    check(&hosts, &leftover, &web("w2", 512), Some("a"));
}

#[test]
fn ties_go_to_the_first_host_by_name() {
    let hosts = [host("b", 1024), host("a", 1024)];
    check(&hosts, &[], &web("w1", 512), Some("a"));
}
