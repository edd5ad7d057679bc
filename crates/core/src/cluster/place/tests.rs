//! Placement as tables: spread, headroom, never twice, the formation cap with lost hosts.

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
        dyno: format!("{process_type}.{container}"),
        memory_mb,
        stopping: false,
    }
}

fn web(container: &str, memory_mb: u64) -> Request {
    Request {
        container: container.into(),
        app: "demo".into(),
        process_type: "web".into(),
        dyno: format!("web.{container}"),
        memory_mb,
        formation: None,
    }
}

fn fleet(hosts: &[Host]) -> Fleet<'_> {
    Fleet {
        hosts,
        lost: BTreeMap::new(),
        margin: Duration::from_secs(1),
    }
}

fn check(hosts: &[Host], placed: &[Placed], request: &Request, expected: Option<&str>) {
    assert_eq!(
        place(&fleet(hosts), placed, request).ok().as_deref(),
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
        let chosen = place(&fleet(&hosts), &placed_so_far, &request).unwrap();
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

/// A web dyno named `dyno` (container `container`) on `host`.
fn dyno_on(host: &str, container: &str, dyno: &str) -> Placed {
    Placed {
        dyno: dyno.into(),
        ..placed(host, container, "demo", "web", 512)
    }
}

/// `web.N` (container `container`) under a formation of `formation`.
fn capped(container: &str, dyno: &str, formation: u32) -> Request {
    Request {
        dyno: dyno.into(),
        formation: Some(formation),
        ..web(container, 512)
    }
}

/// Places `request` with `placed` on live hosts a and b, host `gone` lost `lost_for` ago (or
/// at an unknown time), and a one-second margin.
fn check_cap(
    placed: &[Placed],
    lost_for: Option<Duration>,
    request: &Request,
    expected: Result<(), u32>,
) {
    let hosts = [host("a", 65536), host("b", 65536)];
    let mut fleet = fleet(&hosts);
    if let Some(since) = lost_for {
        fleet.lost.insert("gone".into(), since);
    }
    let got = place(&fleet, placed, request);
    match expected {
        Ok(()) => assert!(got.is_ok(), "{request:?} with {placed:?}: {got:?}"),
        Err(running) => assert_eq!(
            got,
            Err(Refusal::FormationFull {
                process_type: "web".into(),
                running,
                formation: request.formation.unwrap(),
            }),
            "{request:?} with {placed:?}"
        ),
    }
}

#[test]
fn the_formation_cap_counts_dynos_of_lost_hosts_until_they_have_fenced_themselves() {
    let ms = Duration::from_millis;
    let two_live = [dyno_on("a", "c1", "web.1"), dyno_on("b", "c2", "web.2")];
    let lost_third = [
        dyno_on("a", "c1", "web.1"),
        dyno_on("b", "c2", "web.2"),
        dyno_on("gone", "c3", "web.3"),
    ];
    // web=3: the third slot is free when nothing else runs.
    check_cap(&two_live, Some(ms(0)), &capped("c9", "web.3", 3), Ok(()));
    // Scaling past the formation is refused, whatever the host.
    check_cap(&two_live, None, &capped("c9", "web.3", 2), Err(2));
    // web.3 was on a host lost 200 ms ago: it may still run, its replacement waits.
    check_cap(
        &lost_third,
        Some(ms(200)),
        &capped("c9", "web.3", 3),
        Err(3),
    );
    // A lost host whose expiry this control plane did not see counts as lost just now.
    check_cap(&lost_third, None, &capped("c9", "web.3", 3), Err(3));
    // Past the margin its agent has stopped it: the replacement goes.
    check_cap(
        &lost_third,
        Some(ms(1000)),
        &capped("c9", "web.3", 3),
        Ok(()),
    );
    // A lost dyno counts whatever its name: it is no slot of the live formation any more.
    let lost_same_name = [dyno_on("a", "c1", "web.1"), dyno_on("gone", "c2", "web.1")];
    check_cap(
        &lost_same_name,
        Some(ms(10)),
        &capped("c9", "web.2", 2),
        Err(2),
    );
    check_cap(
        &lost_same_name,
        Some(ms(10)),
        &capped("c9", "web.2", 3),
        Ok(()),
    );
}

#[test]
fn preboot_and_stopping_dynos_do_not_hold_the_formation_back() {
    // Preboot: web.1's replacement boots beside it under the same name, one slot of two.
    let full = [dyno_on("a", "c1", "web.1"), dyno_on("b", "c2", "web.2")];
    check_cap(&full, None, &capped("c9", "web.1", 2), Ok(()));
    // A dyno with a stop order is on its way out: web.3 of a scale-down does not count.
    let mut stopping = dyno_on("b", "c3", "web.3");
    stopping.stopping = true;
    let with_stopping = [full[0].clone(), full[1].clone(), stopping.clone()];
    check_cap(&with_stopping, None, &capped("c9", "web.1", 2), Ok(()));
    // But a stop order on a lost host changes nothing: its agent may not have heard it.
    stopping.host = "gone".into();
    let lost_stopping = [full[0].clone(), full[1].clone(), stopping];
    check_cap(
        &lost_stopping,
        Some(Duration::from_millis(10)),
        &capped("c9", "web.1", 2),
        Err(3),
    );
    // Other apps and process types never count.
    let others = [
        placed("a", "o1", "other", "web", 512),
        placed("a", "o2", "demo", "worker", 512),
    ];
    check_cap(&others, None, &capped("c9", "web.1", 1), Ok(()));
}
