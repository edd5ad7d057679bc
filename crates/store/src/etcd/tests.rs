//! Unit tests of the etcd store's pure parts: the `--store` URL and the txn planner.

use super::config::EtcdConfig;
use super::plan::{plan_branch, prefix_end, Branch, Guard, Write};
use crate::{Op, StoreError};

/// What a URL should parse to: endpoints, namespace, user and password, TLS.
type Parsed<'a> = (&'a [&'a str], &'a str, Option<(&'a str, &'a str)>, bool);

fn check_url(url: &str, want: Result<Parsed<'_>, &str>) {
    match (EtcdConfig::parse_url(url), want) {
        (Ok(config), Ok((endpoints, namespace, user, tls))) => {
            assert_eq!(config.endpoints, endpoints, "{url}");
            assert_eq!(config.namespace, namespace, "{url}");
            assert_eq!(
                config.user.as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
                user,
                "{url}"
            );
            assert_eq!(config.tls, tls, "{url}");
        }
        (Err(StoreError::InvalidUrl { reason }), Err(fragment)) => {
            assert!(reason.contains(fragment), "{url}: {reason}");
            // The password of a URL never comes back in its error.
            assert!(!reason.contains("s3cret"), "{url}: {reason}");
        }
        (got, want) => panic!("{url}: got {got:?}, want {want:?}"),
    }
}

#[test]
fn store_urls() {
    check_url(
        "etcd://127.0.0.1:2379",
        Ok((&["http://127.0.0.1:2379"], "slipway/", None, false)),
    );
    check_url(
        "etcd://a:1,b.example:2,[::1]:3",
        Ok((
            &["http://a:1", "http://b.example:2", "http://[::1]:3"],
            "slipway/",
            None,
            false,
        )),
    );
    check_url(
        "etcds://root:p%40ss@h:2379/team-a",
        Ok((&["https://h:2379"], "team-a/", Some(("root", "p@ss")), true)),
    );
    check_url(
        "etcd://h:2379/ns/",
        Ok((&["http://h:2379"], "ns/", None, false)),
    );
    check_url("http://h:2379", Err("starts with etcd://"));
    check_url("etcd://", Err("an empty member"));
    check_url("etcd://h", Err("without :PORT"));
    check_url("etcd://h:0", Err("port"));
    check_url("etcd://h:99999", Err("port"));
    check_url("etcd://h:2379,", Err("an empty member"));
    check_url("etcd://bad host:1", Err("invalid host"));
    check_url("etcd://[zz]:1", Err("IPv6"));
    check_url("etcd://root@h:1", Err("password is missing"));
    check_url("etcd://:s3cret@h:1", Err("user name"));
    check_url("etcd://u:s3cret@h:1?x=1", Err("no query"));
    check_url("etcd://u:s3cret@h/x", Err("without :PORT"));
}

#[test]
fn config_debug_hides_the_password() {
    let config = EtcdConfig::parse_url("etcd://root:s3cret@h:1").unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
    assert!(debug.contains("root"), "{debug}");
}

#[test]
fn prefix_ends() {
    let cases: &[(&[u8], Option<&[u8]>)] = &[
        (b"", None),
        (b"a", Some(b"b")),
        (b"apps/", Some(b"apps0")),
        (b"a\xff", Some(b"b")),
        (b"\xff\xff", None),
    ];
    for (prefix, want) in cases {
        assert_eq!(prefix_end(prefix).as_deref(), *want, "{prefix:?}");
    }
}

fn b(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

fn put(key: &str) -> Write {
    Write::Put {
        key: b(key),
        value: b"v".to_vec(),
        lease: None,
    }
}

fn check_plan(ops: Vec<Op>, writes: Vec<Write>, guards: Vec<Guard>) {
    let got = plan_branch("ns/", &["releases/".to_string()], &ops);
    assert_eq!(got, Branch { writes, guards }, "{ops:?}");
}

#[test]
fn plans() {
    // Plain writes are namespaced and kept in order.
    check_plan(
        vec![Op::put("a", b"v".to_vec()), Op::delete("b")],
        vec![put("ns/a"), Write::Delete { key: b("ns/b") }],
        vec![],
    );
    // A later write to the same key wins.
    check_plan(
        vec![Op::put("a", b"x".to_vec()), Op::put("a", b"v".to_vec())],
        vec![put("ns/a")],
        vec![],
    );
    check_plan(
        vec![Op::put("a", b"x".to_vec()), Op::delete("a")],
        vec![Write::Delete { key: b("ns/a") }],
        vec![],
    );
    // A range delete swallows earlier writes inside it and later deletes inside it.
    check_plan(
        vec![
            Op::put("d/1", b"v".to_vec()),
            Op::put("e", b"v".to_vec()),
            Op::delete_prefix("d/"),
            Op::delete("d/2"),
        ],
        vec![
            put("ns/e"),
            Write::DeleteRange {
                from: b("ns/d/"),
                to: Some(b("ns/d0")),
            },
        ],
        vec![],
    );
    // A put after a range delete that covers it splits the range around the key.
    check_plan(
        vec![Op::delete_prefix("d/"), Op::put("d/k", b"v".to_vec())],
        vec![
            Write::DeleteRange {
                from: b("ns/d/"),
                to: Some(b("ns/d/k")),
            },
            Write::DeleteRange {
                from: b("ns/d/k\0"),
                to: Some(b("ns/d0")),
            },
            put("ns/d/k"),
        ],
        vec![],
    );
    // Ledger keys put or deleted are guarded; so is the ledger part of a range delete.
    check_plan(
        vec![
            Op::put("releases/1/v1", b"v".to_vec()),
            Op::delete("releases/1/v0"),
            Op::delete_prefix("releases/1/"),
            Op::delete_prefix(""),
            Op::delete_prefix("other/"),
        ],
        vec![
            Write::DeleteRange {
                from: b("ns/releases/1/"),
                to: Some(b("ns/releases/10")),
            },
            Write::DeleteRange {
                from: b("ns/"),
                to: Some(b("ns0")),
            },
            Write::DeleteRange {
                from: b("ns/other/"),
                to: Some(b("ns/other0")),
            },
        ],
        vec![
            Guard::Key(b("ns/releases/1/v1")),
            Guard::Key(b("ns/releases/1/v0")),
            Guard::Range {
                from: b("ns/releases/1/"),
                to: Some(b("ns/releases/10")),
            },
            Guard::Range {
                from: b("ns/releases/"),
                to: Some(b("ns/releases0")),
            },
        ],
    );
    // A range delete that starts inside the ledger prefix's name but past it is unguarded.
    check_plan(
        vec![Op::delete_prefix("releases0")],
        vec![Write::DeleteRange {
            from: b("ns/releases0"),
            to: Some(b("ns/releases1")),
        }],
        vec![],
    );
}
