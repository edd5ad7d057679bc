//! Boundary tests of both stores (SQLite and etcd, see `support/mod.rs`): CAS, ranges,
//! revisions, ledgers, leases, concurrency; then what only one of them has (SQLite's
//! triggers and files, etcd's namespaces).

mod support;

use slipway_store::{
    json, Compare, EventKind, KeyValue, Op, SqliteStore, Store, StoreError, StoreOptions, Txn,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::Backend;

fn open(dir: &tempfile::TempDir) -> Arc<SqliteStore> {
    SqliteStore::open(
        &dir.path().join("state.db"),
        StoreOptions::default().immutable_prefix("releases/"),
    )
    .expect("open store")
}

both!(put_delete_revisions_and_versions);
async fn put_delete_revisions_and_versions(b: Backend) {
    let (s, r0) = (&b.store, b.base);
    assert_eq!(s.current_revision().await.unwrap(), r0);

    assert_eq!(s.put("a", b"1".to_vec()).await.unwrap(), r0 + 1);
    assert_eq!(s.put("b", b"x".to_vec()).await.unwrap(), r0 + 2);
    assert_eq!(s.put("a", b"2".to_vec()).await.unwrap(), r0 + 3);
    let a = s.get("a").await.unwrap().unwrap();
    assert_eq!(
        a,
        KeyValue {
            key: "a".into(),
            value: b"2".to_vec(),
            create_revision: r0 + 1,
            mod_revision: r0 + 3,
            version: 2,
            lease: None
        }
    );
    // Deleting bumps the revision; deleting a missing key does not.
    assert_eq!(s.delete("a").await.unwrap(), r0 + 4);
    assert_eq!(s.delete("a").await.unwrap(), r0 + 4);
    assert!(s.get("a").await.unwrap().is_none());
    // Re-creating starts a new life: version 1, new create_revision.
    assert_eq!(s.put("a", b"3".to_vec()).await.unwrap(), r0 + 5);
    let a = s.get("a").await.unwrap().unwrap();
    assert_eq!(
        (a.create_revision, a.mod_revision, a.version),
        (r0 + 5, r0 + 5, 1)
    );
    assert_eq!(s.current_revision().await.unwrap(), r0 + 5);
}

both!(cas_success_and_failure_cases);
async fn cas_success_and_failure_cases(b: Backend) {
    let s = &b.store;
    let rev = s.put("k", b"v1".to_vec()).await.unwrap();
    // (compare, expected outcome)
    let cases = vec![
        (Compare::mod_revision("k", rev), true),
        (Compare::mod_revision("k", rev + 1), false),
        (Compare::mod_revision("k", 0), false),
        (Compare::mod_revision("missing", 0), true),
        (Compare::mod_revision("missing", rev), false),
        (Compare::exists("k"), true),
        (Compare::exists("missing"), false),
        (Compare::absent("missing"), true),
        (Compare::absent("k"), false),
        (Compare::value_equals("k", b"v1".to_vec()), true),
        (Compare::value_equals("k", b"v2".to_vec()), false),
        (Compare::value_equals("missing", Vec::new()), false),
    ];
    for (compare, want) in cases {
        let before = s.current_revision().await.unwrap();
        let r = s
            .txn(
                Txn::new()
                    .when(compare.clone())
                    .then(Op::put("out", b"success".to_vec()))
                    .otherwise(Op::put("out", b"failure".to_vec())),
            )
            .await
            .unwrap();
        assert_eq!(r.succeeded, want, "{compare:?}");
        assert_eq!(r.revision, before + 1, "{compare:?}");
        let out = s.get("out").await.unwrap().unwrap();
        let expect: &[u8] = if want { b"success" } else { b"failure" };
        assert_eq!(out.value, expect, "{compare:?}");
        assert_eq!(out.mod_revision, r.revision);
    }
    // Several compares: all must hold.
    let r = s
        .txn(
            Txn::new()
                .when(Compare::exists("k"))
                .when(Compare::exists("missing"))
                .then(Op::put("z", b"1".to_vec())),
        )
        .await
        .unwrap();
    assert!(!r.succeeded);
    assert!(s.get("z").await.unwrap().is_none());
    // A txn that writes nothing keeps the revision.
    let before = s.current_revision().await.unwrap();
    assert_eq!(r.revision, before);
}

both!(multi_op_txn_is_one_revision_and_prefix_ops);
async fn multi_op_txn_is_one_revision_and_prefix_ops(b: Backend) {
    let (s, r0) = (&b.store, b.base);
    let r = s
        .txn(
            Txn::new()
                .then(Op::put("apps/b", b"2".to_vec()))
                .then(Op::put("apps/a", b"1".to_vec()))
                .then(Op::put("apps/c/x", b"3".to_vec()))
                .then(Op::put("apps0", b"not under apps/".to_vec()))
                .then(Op::put("app", b"neither".to_vec())),
        )
        .await
        .unwrap();
    assert_eq!(r.revision, r0 + 1);
    let (kvs, rev) = s.range("apps/").await.unwrap();
    assert_eq!(rev, r0 + 1);
    let keys: Vec<_> = kvs.iter().map(|k| k.key.as_str()).collect();
    assert_eq!(keys, ["apps/a", "apps/b", "apps/c/x"]);
    assert!(kvs.iter().all(|k| k.mod_revision == r0 + 1));
    let (all, _) = s.range("").await.unwrap();
    assert_eq!(all.len(), 5);
    let (none, _) = s.range("zzz").await.unwrap();
    assert!(none.is_empty());

    let r = s
        .txn(Txn::new().then(Op::delete_prefix("apps/")))
        .await
        .unwrap();
    assert_eq!(r.revision, r0 + 2);
    let (left, rev) = s.range("").await.unwrap();
    assert_eq!(rev, r0 + 2);
    let keys: Vec<_> = left.iter().map(|k| k.key.as_str()).collect();
    assert_eq!(keys, ["app", "apps0"]);
}

both!(invalid_requests_are_refused);
async fn invalid_requests_are_refused(b: Backend) {
    let s = &b.store;
    for txn in [
        Txn::new().then(Op::put("", b"x".to_vec())),
        Txn::new().then(Op::put("a\0b", b"x".to_vec())),
        Txn::new().when(Compare::exists("")),
    ] {
        let err = s.txn(txn.clone()).await.unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidRequest { .. }),
            "{txn:?}: {err}"
        );
    }
    assert!(matches!(
        s.txn(Txn::new().then(Op::put_with_lease("k", b"x".to_vec(), 4242)))
            .await
            .unwrap_err(),
        StoreError::LeaseNotFound { lease: 4242 }
    ));
    assert_eq!(s.current_revision().await.unwrap(), b.base);
}

#[tokio::test]
async fn invalid_sqlite_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert!(StoreOptions::default().history_retention > 0);
    let bad = SqliteStore::open(
        &dir.path().join("other.db"),
        StoreOptions {
            history_retention: 0,
            ..Default::default()
        },
    );
    assert!(matches!(bad, Err(StoreError::InvalidRequest { .. })));
}

both!(immutable_prefix_refused_through_api_and_whole_txn_rolls_back);
async fn immutable_prefix_refused_through_api_and_whole_txn_rolls_back(b: Backend) {
    let s = &b.store;
    // Creation is allowed.
    let r1 = s.put("releases/web/v1", b"one".to_vec()).await.unwrap();
    s.put("apps/web", b"app".to_vec()).await.unwrap();

    let attempts = vec![
        Txn::new().then(Op::put("releases/web/v1", b"changed".to_vec())),
        Txn::new().then(Op::put("releases/web/v1", b"one".to_vec())),
        Txn::new().then(Op::delete("releases/web/v1")),
        Txn::new().then(Op::delete_prefix("releases/")),
        Txn::new().then(Op::delete_prefix("")),
        // The ledger write comes after an ordinary write: nothing may stick.
        Txn::new()
            .then(Op::put("apps/web", b"changed".to_vec()))
            .then(Op::put("releases/web/v2", b"two".to_vec()))
            .then(Op::delete("releases/web/v1")),
    ];
    let before = s.current_revision().await.unwrap();
    for txn in attempts {
        let err = s.txn(txn.clone()).await.unwrap_err();
        match &err {
            StoreError::Immutable { key } => assert_eq!(key, "releases/web/v1", "{txn:?}"),
            other => panic!("{txn:?}: expected Immutable, got {other}"),
        }
        assert!(err.to_string().contains("append-only ledger"), "{err}");
    }
    assert_eq!(s.current_revision().await.unwrap(), before);
    assert_eq!(s.get("apps/web").await.unwrap().unwrap().value, b"app");
    assert!(s.get("releases/web/v2").await.unwrap().is_none());
    let v1 = s.get("releases/web/v1").await.unwrap().unwrap();
    assert_eq!((v1.value.as_slice(), v1.mod_revision), (&b"one"[..], r1));

    // Ledger keys cannot be attached to leases (expiry would have to delete them).
    let lease = s.grant_lease(Duration::from_secs(60)).await.unwrap();
    let err = s
        .txn(Txn::new().then(Op::put_with_lease("releases/web/v9", b"x".to_vec(), lease)))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidRequest { .. }), "{err}");

    // New ledger entries via CAS on absence work.
    let r = s
        .txn(
            Txn::new()
                .when(Compare::absent("releases/web/v2"))
                .then(Op::put("releases/web/v2", b"two".to_vec())),
        )
        .await
        .unwrap();
    assert!(r.succeeded);
}

#[tokio::test]
async fn immutable_prefix_refused_by_raw_sql_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let s = open(&dir);
    s.put("releases/web/v1", b"one".to_vec()).await.unwrap();
    s.put("apps/web", b"app".to_vec()).await.unwrap();

    // A second, hand-written connection to the same file while the store is open.
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.busy_timeout(Duration::from_secs(5)).unwrap();
    let statements = [
        "UPDATE kv SET value = x'00' WHERE key = 'releases/web/v1'",
        "UPDATE kv SET mod_revision = 99 WHERE key = 'releases/web/v1'",
        "UPDATE kv SET key = 'releases/web/v0' WHERE key = 'apps/web'",
        "DELETE FROM kv WHERE key = 'releases/web/v1'",
        "DELETE FROM kv",
        "INSERT OR REPLACE INTO kv(key, value, create_revision, mod_revision, version, lease) VALUES ('releases/web/v1', x'00', 1, 1, 1, NULL)",
        "REPLACE INTO kv(key, value, create_revision, mod_revision, version, lease) VALUES ('releases/web/v1', x'00', 1, 1, 1, NULL)",
        "INSERT INTO kv(key, value, create_revision, mod_revision, version, lease) VALUES ('releases/web/v1', x'00', 1, 1, 1, NULL) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        "DELETE FROM immutable_prefixes",
        "UPDATE immutable_prefixes SET prefix = 'nothing/'",
    ];
    for sql in statements {
        let err = raw.execute(sql, []).expect_err(sql);
        assert!(
            err.to_string().contains("slipway-immutable"),
            "{sql}: unexpected error {err}"
        );
    }
    // Ordinary keys are still freely writable by SQL; ledger keys can be inserted.
    raw.execute("UPDATE kv SET value = x'01' WHERE key = 'apps/web'", [])
        .unwrap();
    drop(raw);

    let v1 = s.get("releases/web/v1").await.unwrap().unwrap();
    assert_eq!(v1.value, b"one");
    drop(s);

    // The prefix is stored in the db: reopening without options still enforces it.
    let s = SqliteStore::open(&path, StoreOptions::default()).unwrap();
    let err = s.delete("releases/web/v1").await.unwrap_err();
    assert!(matches!(err, StoreError::Immutable { .. }), "{err}");
}

both!(json_helpers_round_trip);
async fn json_helpers_round_trip(b: Backend) {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct App {
        name: String,
        dynos: u32,
    }
    let s = &b.store;
    let app = App {
        name: "web".into(),
        dynos: 2,
    };
    let rev = json::put_json(s.as_ref(), "apps/web", &app).await.unwrap();
    let got: Option<App> = json::get_json(s.as_ref(), "apps/web").await.unwrap();
    assert_eq!(got, Some(app));
    let (_, mod_rev) = json::get_json_versioned::<App, _>(s.as_ref(), "apps/web")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mod_rev, rev);
    let missing: Option<App> = json::get_json(s.as_ref(), "apps/none").await.unwrap();
    assert!(missing.is_none());
    // Works through a trait object too.
    let dynstore: Arc<dyn Store> = s.clone();
    assert_eq!(dynstore.current_revision().await.unwrap(), rev);
    s.put("apps/bad", b"not json".to_vec()).await.unwrap();
    let err = json::get_json::<App, _>(dynstore.as_ref(), "apps/bad")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Json { ref key, .. } if key == "apps/bad"));
    let (items, _) = json::range_json::<App, _>(dynstore.as_ref(), "apps/w")
        .await
        .unwrap();
    assert_eq!(items.len(), 1);
}

both!(apply_if_writes_only_when_its_compare_holds);
async fn apply_if_writes_only_when_its_compare_holds(b: Backend) {
    let s = b.store.as_ref();
    let get = |key: &'static str| async move { s.get(key).await.unwrap().map(|kv| kv.value) };
    // Create if absent: the first applies, the second finds the key and changes nothing.
    let create = |value: &'static [u8]| Op::put("k", value.to_vec());
    assert!(json::apply_if(s, Compare::absent("k"), create(b"one"))
        .await
        .unwrap());
    assert!(!json::apply_if(s, Compare::absent("k"), create(b"two"))
        .await
        .unwrap());
    assert_eq!(get("k").await, Some(b"one".to_vec()));
    // Change if unchanged: a stale revision is refused, the current one applies.
    let rev = s.get("k").await.unwrap().unwrap().mod_revision;
    let stale = Compare::mod_revision("k", rev - 1);
    assert!(!json::apply_if(s, stale, create(b"three")).await.unwrap());
    let current = Compare::mod_revision("k", rev);
    assert!(json::apply_if(s, current, create(b"four")).await.unwrap());
    assert_eq!(get("k").await, Some(b"four".to_vec()));
    // Delete if it exists: once, then there is nothing to delete.
    assert!(json::apply_if(s, Compare::exists("k"), Op::delete("k"))
        .await
        .unwrap());
    assert!(!json::apply_if(s, Compare::exists("k"), Op::delete("k"))
        .await
        .unwrap());
    assert_eq!(get("k").await, None);
}

// Ten tasks each add one to a counter with get + CAS(mod_revision) + retry.
both!(concurrent_cas_increments_are_exact);
async fn concurrent_cas_increments_are_exact(b: Backend) {
    let s = &b.store;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0u32;
            loop {
                let (n, rev) = match s.get("counter").await.unwrap() {
                    Some(kv) => (
                        String::from_utf8(kv.value).unwrap().parse::<u64>().unwrap(),
                        kv.mod_revision,
                    ),
                    None => (0, 0),
                };
                let r = s
                    .txn(
                        Txn::new()
                            .when(Compare::mod_revision("counter", rev))
                            .then(Op::put("counter", (n + 1).to_string().into_bytes())),
                    )
                    .await
                    .unwrap();
                if r.succeeded {
                    return conflicts;
                }
                conflicts += 1;
                tokio::task::yield_now().await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let kv = s.get("counter").await.unwrap().unwrap();
    assert_eq!(kv.value, b"10");
    assert_eq!(kv.version, 10);
    assert_eq!(s.current_revision().await.unwrap(), b.base + 10);
}

async fn wait_until_absent(s: &dyn Store, key: &str, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if s.get(key).await.unwrap().is_none() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

// The SQLite store checks leases every 50 ms here (`support::sqlite_options`); etcd raises
// the 1 s TTL to its minimum (about 2 s), which the keep-alives and the waits allow for.
both!(lease_expiry_deletes_keys_with_events_and_keep_alive_extends);
async fn lease_expiry_deletes_keys_with_events_and_keep_alive_extends(b: Backend) {
    let s = &b.store;
    let lease = s.grant_lease(Duration::from_millis(1000)).await.unwrap();
    s.txn(
        Txn::new()
            .then(Op::put_with_lease("dynos/web.1", b"up".to_vec(), lease))
            .then(Op::put_with_lease("dynos/web.2", b"up".to_vec(), lease))
            .then(Op::put("dynos/static", b"stays".to_vec())),
    )
    .await
    .unwrap();
    assert_eq!(
        s.get("dynos/web.1").await.unwrap().unwrap().lease,
        Some(lease)
    );
    let mut w = s.watch("dynos/", None).await.unwrap();

    // Keep-alives every 150 ms for ~2 s (twice the TTL) keep the keys.
    for _ in 0..14 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        s.keep_alive(lease).await.unwrap();
    }
    assert!(s.get("dynos/web.1").await.unwrap().is_some());

    // Stop renewing: the background task revokes the lease.
    assert!(wait_until_absent(s.as_ref(), "dynos/web.1", Duration::from_secs(10)).await);
    assert!(s.get("dynos/web.2").await.unwrap().is_none());
    assert!(s.get("dynos/static").await.unwrap().is_some());
    let mut deleted = Vec::new();
    for _ in 0..2 {
        let ev = tokio::time::timeout(Duration::from_secs(10), w.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(ev.kind, EventKind::Delete);
        assert_eq!(ev.prev.as_ref().unwrap().lease, Some(lease));
        deleted.push(ev.kv.key);
    }
    assert_eq!(deleted, ["dynos/web.1", "dynos/web.2"]);
    assert!(matches!(
        s.keep_alive(lease).await,
        Err(StoreError::LeaseNotFound { .. })
    ));
    assert!(matches!(
        s.revoke(lease).await,
        Err(StoreError::LeaseNotFound { .. })
    ));
}

#[test]
fn lease_expires_lazily_without_a_runtime_task() {
    // Opened outside any runtime: no background task; expiry happens before operations.
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("state.db"), StoreOptions::default()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let lease = s.grant_lease(Duration::from_millis(1500)).await.unwrap();
        s.txn(Txn::new().then(Op::put_with_lease("k", b"v".to_vec(), lease)))
            .await
            .unwrap();
        assert!(s.get("k").await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(1800)).await;
        assert!(s.get("k").await.unwrap().is_none());
        assert!(matches!(
            s.keep_alive(lease).await,
            Err(StoreError::LeaseNotFound { .. })
        ));
    });
}

both!(revoke_deletes_attached_keys_in_one_revision);
async fn revoke_deletes_attached_keys_in_one_revision(b: Backend) {
    let s = &b.store;
    let lease = s.grant_lease(Duration::from_secs(60)).await.unwrap();
    let other = s.grant_lease(Duration::from_secs(60)).await.unwrap();
    assert_ne!(lease, other);
    s.txn(
        Txn::new()
            .then(Op::put_with_lease("routes/a", b"1".to_vec(), lease))
            .then(Op::put_with_lease("routes/b", b"2".to_vec(), lease))
            .then(Op::put_with_lease("routes/c", b"3".to_vec(), other)),
    )
    .await
    .unwrap();
    // Overwriting without a lease detaches the key.
    s.put("routes/b", b"2'".to_vec()).await.unwrap();
    let rev = s.current_revision().await.unwrap();
    let mut w = s.watch("routes/", Some(rev)).await.unwrap();
    s.revoke(lease).await.unwrap();
    assert_eq!(s.current_revision().await.unwrap(), rev + 1);
    let (left, _) = s.range("routes/").await.unwrap();
    let keys: Vec<_> = left.iter().map(|k| k.key.as_str()).collect();
    assert_eq!(keys, ["routes/b", "routes/c"]);
    let ev = w.next().await.unwrap().unwrap();
    assert_eq!(
        (ev.kind, ev.kv.key.as_str(), ev.kv.mod_revision),
        (EventKind::Delete, "routes/a", rev + 1)
    );
    assert!(ev.kv.value.is_empty());
    // Revoking a lease with no keys left does not create a revision.
    let lonely = s.grant_lease(Duration::from_secs(60)).await.unwrap();
    s.revoke(lonely).await.unwrap();
    assert_eq!(s.current_revision().await.unwrap(), rev + 1);
    assert!(s.grant_lease(Duration::ZERO).await.is_err());
}

#[tokio::test]
async fn leases_survive_reopen_and_expire_if_deadline_passed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let (long, short) = {
        let s = SqliteStore::open(&path, StoreOptions::default()).unwrap();
        let long = s.grant_lease(Duration::from_secs(120)).await.unwrap();
        let short = s.grant_lease(Duration::from_millis(1000)).await.unwrap();
        s.txn(
            Txn::new()
                .then(Op::put_with_lease("long", b"1".to_vec(), long))
                .then(Op::put_with_lease("short", b"1".to_vec(), short)),
        )
        .await
        .unwrap();
        (long, short)
    };
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let s = SqliteStore::open(&path, StoreOptions::default()).unwrap();
    // The short lease expired while closed: its key is gone right after open, as a
    // recorded delete.
    let raw = rusqlite::Connection::open(&path).unwrap();
    let kv_short: i64 = raw
        .query_row("SELECT count(*) FROM kv WHERE key = 'short'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(kv_short, 0);
    let deletes: i64 = raw
        .query_row(
            "SELECT count(*) FROM log WHERE key = 'short' AND kind = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(deletes, 1);
    assert!(matches!(
        s.keep_alive(short).await,
        Err(StoreError::LeaseNotFound { .. })
    ));
    s.keep_alive(long).await.unwrap();
    assert_eq!(s.get("long").await.unwrap().unwrap().lease, Some(long));
    // Lease ids are never reused.
    let fresh = s.grant_lease(Duration::from_secs(1)).await.unwrap();
    assert!(fresh > short && fresh > long);
}

/// Namespaces keep two platforms on one etcd apart: neither sees, changes nor watches the
/// other's keys, and a delete of everything stays inside its own namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn etcd_namespaces_are_isolated() {
    let a = support::etcd("isolated").await;
    let a_etcd = a.etcd.clone().unwrap();
    let other = slipway_store::testing::unique_namespace("isolated");
    assert!(!other.starts_with(a_etcd.namespace()));
    let config =
        slipway_store::EtcdConfig::new([slipway_store::testing::shared().client_addr.clone()])
            .namespace(other);
    let b = slipway_store::EtcdStore::connect(config).await.unwrap();
    let mut watch_a = a.store.watch("", None).await.unwrap();
    b.put("k", b"b".to_vec()).await.unwrap();
    a.store.put("k", b"a".to_vec()).await.unwrap();
    assert_eq!(a.store.get("k").await.unwrap().unwrap().value, b"a");
    assert_eq!(b.get("k").await.unwrap().unwrap().value, b"b");
    for store in [a.store.as_ref(), b.as_ref() as &dyn Store] {
        let (all, _) = store.range("").await.unwrap();
        assert_eq!(
            all.iter().map(|kv| kv.key.as_str()).collect::<Vec<_>>(),
            ["k"]
        );
    }
    b.txn(Txn::new().then(Op::delete_prefix(""))).await.unwrap();
    assert!(b.get("k").await.unwrap().is_none());
    assert_eq!(a.store.get("k").await.unwrap().unwrap().value, b"a");
    // a's watch saw its own put, and nothing of b's put or delete.
    a.store.put("end", Vec::new()).await.unwrap();
    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some("end") {
        let ev = tokio::time::timeout(Duration::from_secs(10), watch_a.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push(ev.kv.key);
    }
    assert_eq!(seen, ["k", "end"]);
}
