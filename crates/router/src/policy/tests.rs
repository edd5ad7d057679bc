//! Table tests of the router policy: admission and its H codes, host normalisation, request
//! ids, the headers dynos get, hop-by-hop stripping and the dyno choice with quarantine, on
//! injected time (no sleeping).

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{HeaderMap, HeaderValue};
use tokio::time::Instant;

use super::*;
use crate::route::{AppRoute, Backend, RouteStatus};

fn app(status: RouteStatus, dynos: usize) -> AppRoute {
    AppRoute {
        app: "demo".to_owned(),
        status,
        backends: (0..dynos).map(|i| backend(i as u16)).collect(),
    }
}

fn backend(i: u16) -> Backend {
    Backend {
        dyno: format!("web.{}", i + 1),
        addr: addr(i),
    }
}

fn addr(i: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 5000 + i))
}

#[test]
fn admission_table() {
    // (status, web dynos, requests in flight before this one, expected)
    let cases = [
        (RouteStatus::Serving, 1, 0, Ok(())),
        (RouteStatus::Serving, 1, 199, Ok(())),
        (RouteStatus::Serving, 1, 200, Err(ErrorCode::H11)),
        (RouteStatus::Serving, 2, 399, Ok(())),
        (RouteStatus::Serving, 2, 400, Err(ErrorCode::H11)),
        (RouteStatus::Serving, 0, 0, Err(ErrorCode::H14)),
        (RouteStatus::NoWebDynos, 0, 0, Err(ErrorCode::H14)),
        (RouteStatus::Crashed, 1, 0, Err(ErrorCode::H10)),
        (RouteStatus::NoRelease, 0, 0, Err(ErrorCode::H81)),
        (RouteStatus::Maintenance, 1, 0, Err(ErrorCode::H80)),
        (RouteStatus::Idle, 0, 0, Err(ErrorCode::H20)),
    ];
    for (status, dynos, in_flight, expected) in cases {
        let route = app(status, dynos);
        let mut entered = false;
        let got = admission(&route, 200, || {
            entered = true;
            in_flight
        });
        assert_eq!(
            got, expected,
            "{status:?} with {dynos} dynos, {in_flight} in flight"
        );
        // Only requests to a serving app count in its backlog.
        let serving = status == RouteStatus::Serving && dynos > 0;
        assert_eq!(
            entered, serving,
            "{status:?} with {dynos} dynos counted in the backlog"
        );
    }
}

fn check_host(
    authority: Option<&str>,
    host_headers: usize,
    host: Option<&str>,
    expected: Option<&str>,
) {
    let got = routing_host(
        authority.map(str::as_bytes),
        host_headers,
        host.map(str::as_bytes),
    );
    assert_eq!(
        got.as_deref().ok(),
        expected,
        "{authority:?} {host_headers} {host:?}"
    );
}

#[test]
fn routing_host_table() {
    check_host(None, 1, Some("Demo.Localhost:8080"), Some("demo.localhost"));
    // The authority wins over a Host header.
    check_host(
        Some("other.localhost"),
        1,
        Some("demo.localhost"),
        Some("other.localhost"),
    );
    check_host(Some("other.localhost"), 0, None, Some("other.localhost"));
    check_host(None, 0, None, None);
    // More than one Host header is refused, with or without an authority.
    check_host(None, 2, Some("demo.localhost"), None);
    check_host(Some("other.localhost"), 2, Some("demo.localhost"), None);
    check_host(None, 1, Some("de mo"), None);
    check_host(Some("bad host"), 1, Some("demo.localhost"), None);
}

#[test]
fn request_id_keeps_acceptable_client_ids_and_makes_the_rest() {
    let random = || [7u8; 16];
    let made = "07070707-0707-4707-8707-070707070707";
    let cases: [(Option<&[u8]>, &str); 4] = [
        (Some(b"abcdefghij0123456789"), "abcdefghij0123456789"),
        (Some(b"too-short"), made),
        (Some(b"abcdefghij0123456789!"), made),
        (None, made),
    ];
    for (client, expected) in cases {
        assert_eq!(request_id(client, random), expected, "{client:?}");
    }
}

#[test]
fn forwarded_headers_are_the_same_for_both_engines() {
    let received = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
    let forwarded = Forwarded {
        forwarded_for: "1.2.3.4, 127.0.0.1",
        listener: Listener {
            proto: "https",
            port: 443,
        },
        received,
        request_id: "abcdefghij0123456789",
    };
    let expected = [
        ("x-forwarded-for", "1.2.3.4, 127.0.0.1"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-port", "443"),
        ("x-request-start", "1700000000123"),
        ("x-request-id", "abcdefghij0123456789"),
    ];
    // HTTP/1: header lines.
    let mut lines = Vec::new();
    forwarded.write_lines(&mut lines);
    let text = String::from_utf8(lines).unwrap();
    let parsed: Vec<(String, String)> = text
        .split_terminator("\r\n")
        .map(|line| {
            let (name, value) = line.split_once(": ").unwrap();
            (name.to_ascii_lowercase(), value.to_owned())
        })
        .collect();
    let expected_owned: Vec<(String, String)> = expected
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    assert_eq!(parsed, expected_owned);
    // HTTP/2: a header map, replacing what the client sent.
    let mut headers = HeaderMap::new();
    headers.insert("x-forwarded-proto", HeaderValue::from_static("gopher"));
    headers.insert("x-request-start", HeaderValue::from_static("0"));
    forwarded.insert_into(&mut headers);
    for (name, value) in expected {
        assert_eq!(headers.get_all(name).iter().count(), 1, "{name}");
        assert_eq!(headers[name], value, "{name}");
    }
    assert!(unix_millis(SystemTime::UNIX_EPOCH) == 0);
}

#[test]
fn header_classes_table() {
    let cases = [
        ("Host", Kind::Host),
        ("connection", Kind::Connection),
        ("Content-Length", Kind::ContentLength),
        ("transfer-encoding", Kind::TransferEncoding),
        ("TE", Kind::HopByHop),
        ("trailer", Kind::HopByHop),
        ("Keep-Alive", Kind::HopByHop),
        ("proxy-authorization", Kind::HopByHop),
        ("proxy-", Kind::Other),
        ("upgrade", Kind::Upgrade),
        ("expect", Kind::Expect),
        ("via", Kind::Via),
        ("X-Forwarded-For", Kind::ForwardedFor),
        ("x-request-id", Kind::RequestId),
        ("x-forwarded-proto", Kind::Replaced),
        ("x-forwarded-port", Kind::Replaced),
        ("x-request-start", Kind::Replaced),
        ("x-other", Kind::Other),
        ("", Kind::Other),
    ];
    for (name, kind) in cases {
        assert_eq!(classify(name.as_bytes()), kind, "{name:?}");
    }
}

/// Runs a [`DynoChoice`] against dynos of which `refusing` refuse connections and
/// `quarantined` were quarantined beforehand, picking the lowest open index each time (the
/// random pick is tested separately). Returns the steps taken, the time they took, and the
/// quarantine after.
fn walk(
    dynos: usize,
    refusing: &[usize],
    quarantined: &[usize],
    max_attempts: usize,
    budget: Duration,
) -> (Vec<Pick>, Duration, Quarantine) {
    let start = Instant::now();
    let mut now = start;
    let backends: Vec<Backend> = (0..dynos).map(|i| backend(i as u16)).collect();
    let mut quarantine = Quarantine::default();
    for &i in quarantined {
        quarantine.add(addr(i as u16), now, Duration::from_secs(5));
    }
    let mut choice = DynoChoice::new(now, max_attempts, budget);
    let mut steps = Vec::new();
    loop {
        let pick = choice.next(&backends, |a| quarantine.contains(a, now), now, |_| 0);
        steps.push(pick);
        match pick {
            Pick::Try(i) if refusing.contains(&i) => {
                quarantine.add(backends[i].addr, now, Duration::from_secs(5));
                choice.failed(i, ConnectFailed::Refused);
            }
            Pick::Try(_) | Pick::GiveUp(_) => return (steps, now - start, quarantine),
            Pick::Wait(wait) => now += wait,
        }
        assert!(steps.len() < 1000, "the choice never ends: {steps:?}");
    }
}

#[test]
fn dyno_choice_table() {
    let budget = Duration::from_secs(75);
    // A dead dyno beside a live one: the dead one is tried once, then the live one.
    let (steps, _, mut quarantine) = walk(2, &[0], &[], 10, budget);
    assert_eq!(steps, [Pick::Try(0), Pick::Try(1)]);
    assert!(quarantine.contains(addr(0), Instant::now()));
    // A quarantined dyno is skipped without a connect.
    let (steps, _, _) = walk(2, &[], &[0], 10, budget);
    assert_eq!(steps, [Pick::Try(1)]);
    // Every dyno refuses: H21 once each was tried.
    let (steps, _, _) = walk(3, &[0, 1, 2], &[], 10, budget);
    assert_eq!(
        steps,
        [
            Pick::Try(0),
            Pick::Try(1),
            Pick::Try(2),
            Pick::GiveUp(ErrorCode::H21)
        ]
    );
    // At most `max_connect_attempts` connects.
    let (steps, _, _) = walk(5, &[0, 1, 2, 3, 4], &[], 2, budget);
    assert_eq!(
        steps,
        [Pick::Try(0), Pick::Try(1), Pick::GiveUp(ErrorCode::H21)]
    );
    // No dynos at all.
    let (steps, _, _) = walk(0, &[], &[], 10, budget);
    assert_eq!(steps, [Pick::GiveUp(ErrorCode::H21)]);
}

#[test]
fn every_dyno_quarantined_waits_for_the_quarantine_then_tries_again() {
    // The quarantine (5 s) ends within the budget: the dyno is tried again.
    let (steps, waited, _) = walk(1, &[], &[0], 10, Duration::from_secs(75));
    assert_eq!(steps.last(), Some(&Pick::Try(0)));
    assert!(steps[..steps.len() - 1]
        .iter()
        .all(|step| matches!(step, Pick::Wait(_))));
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(7),
        "{waited:?}"
    );
    // Backoff doubles from 20 ms up to a second.
    let Pick::Wait(first) = steps[0] else {
        panic!("{steps:?}")
    };
    let Pick::Wait(second) = steps[1] else {
        panic!("{steps:?}")
    };
    assert_eq!(
        (first, second),
        (Duration::from_millis(20), Duration::from_millis(40))
    );
}

#[test]
fn every_dyno_quarantined_past_the_budget_is_h99() {
    let (steps, waited, _) = walk(2, &[], &[0, 1], 10, Duration::from_secs(2));
    assert_eq!(steps.last(), Some(&Pick::GiveUp(ErrorCode::H99)));
    assert_eq!(waited, Duration::from_secs(2));
}

#[test]
fn a_timed_out_connect_is_h19() {
    let now = Instant::now();
    let backends = [backend(0)];
    let mut choice = DynoChoice::new(now, 10, Duration::from_secs(75));
    assert_eq!(choice.next(&backends, |_| false, now, |_| 0), Pick::Try(0));
    choice.failed(0, ConnectFailed::TimedOut);
    assert_eq!(
        choice.next(&backends, |_| false, now, |_| 0),
        Pick::GiveUp(ErrorCode::H19)
    );
}

#[test]
fn the_random_pick_ranges_over_open_dynos_only() {
    let now = Instant::now();
    let backends: Vec<Backend> = (0..20).map(backend).collect();
    // Dynos 0..10 quarantined; the pick's number indexes the 10 open ones (more than fit
    // on the stack set, to cover its spill to the heap).
    for nth in 0..10 {
        let mut choice = DynoChoice::new(now, 10, Duration::from_secs(75));
        let mut asked = 0;
        let pick = choice.next(
            &backends,
            |a| a.port() < 5010,
            now,
            |n| {
                asked = n;
                nth
            },
        );
        assert_eq!(asked, 10);
        assert_eq!(pick, Pick::Try(10 + nth));
    }
    let backends: Vec<Backend> = (0..40).map(backend).collect();
    let mut choice = DynoChoice::new(now, 10, Duration::from_secs(75));
    assert_eq!(
        choice.next(&backends, |_| false, now, |n| n - 1),
        Pick::Try(39)
    );
}

#[test]
fn quarantine_ends_and_lifts() {
    let now = Instant::now();
    let mut quarantine = Quarantine::default();
    quarantine.add(addr(0), now, Duration::from_secs(5));
    quarantine.add(addr(1), now, Duration::ZERO);
    assert!(quarantine.contains(addr(0), now + Duration::from_millis(4999)));
    assert!(!quarantine.contains(addr(1), now));
    assert!(!quarantine.contains(addr(0), now + Duration::from_secs(5)));
    assert_eq!(quarantine.len(), 0);
    quarantine.add(addr(0), now, Duration::from_secs(5));
    quarantine.lift(addr(0));
    assert!(!quarantine.contains(addr(0), now));
}

#[test]
fn host_normalisation_table() {
    let cases = [
        ("demo.localhost", Some("demo.localhost")),
        ("Demo.LocalHost:8080", Some("demo.localhost")),
        ("demo.localhost.", Some("demo.localhost")),
        ("127.0.0.1:80", Some("127.0.0.1")),
        ("[::1]:8080", Some("[::1]")),
        ("", None),
        (":80", None),
        ("demo:abc", None),
        ("de mo", None),
        ("a/b", None),
    ];
    for (raw, expected) in cases {
        assert_eq!(normalize_host(raw).as_deref(), expected, "{raw:?}");
    }
}

#[test]
fn request_id_table() {
    let long = "a".repeat(200);
    let too_long = "a".repeat(201);
    let cases: [(&str, bool); 6] = [
        ("abcdefghij0123456789", true),
        ("abcdefghij012345678", false),
        ("abc+/=-ABCDEFGHIJKLMNOP", true),
        ("abcdefghij0123456789!", false),
        (&long, true),
        (&too_long, false),
    ];
    for (id, ok) in cases {
        assert_eq!(acceptable_request_id(id.as_bytes()), ok, "{id}");
    }
}

#[test]
fn hop_by_hop_headers_are_stripped() {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("connection", "keep-alive, X-Secret"),
        ("keep-alive", "timeout=5"),
        ("x-secret", "1"),
        ("proxy-authorization", "x"),
        ("te", "trailers"),
        ("trailer", "x"),
        ("transfer-encoding", "chunked"),
        ("upgrade", "websocket"),
        ("x-kept", "yes"),
        ("content-length", "3"),
    ] {
        headers.append(name, HeaderValue::from_static(value));
    }
    strip_hop_by_hop(&mut headers);
    let mut left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
    left.sort_unstable();
    assert_eq!(left, ["content-length", "x-kept"]);
}

#[test]
fn list_append() {
    let mut headers = HeaderMap::new();
    assert_eq!(
        append_list(&headers, "x-forwarded-for", "127.0.0.1"),
        "127.0.0.1"
    );
    headers.append("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
    headers.append("x-forwarded-for", HeaderValue::from_static("5.6.7.8 "));
    assert_eq!(
        append_list(&headers, "x-forwarded-for", "127.0.0.1"),
        "1.2.3.4, 5.6.7.8, 127.0.0.1"
    );
}
