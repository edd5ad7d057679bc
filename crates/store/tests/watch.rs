//! Watch tests, on both stores (see `support/mod.rs`): ordering, resume from a revision,
//! lagging watchers, compaction, and "range then watch" under concurrent writers.

mod support;

use slipway_store::{
    EventKind, KeyValue, Op, Revision, SqliteStore, Store, StoreError, StoreOptions, Txn,
    WatchEvent, Watcher,
};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use support::Backend;

fn open_with(dir: &tempfile::TempDir, options: StoreOptions) -> Arc<SqliteStore> {
    SqliteStore::open(&dir.path().join("state.db"), options).expect("open store")
}

async fn next(w: &mut Watcher) -> Result<WatchEvent, StoreError> {
    tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .expect("watch event within 10 s")
        .expect("watch still open")
}

both!(events_are_ordered_filtered_and_carry_prev);
async fn events_are_ordered_filtered_and_carry_prev(b: Backend) {
    let (s, r0) = (&b.store, b.base);
    let mut w = s.watch("apps/", None).await.unwrap();
    s.put("apps/a", b"1".to_vec()).await.unwrap();
    s.put("other/x", b"ignored".to_vec()).await.unwrap();
    s.put("apps/a", b"2".to_vec()).await.unwrap();
    s.txn(
        Txn::new()
            .then(Op::put("apps/c", b"3".to_vec()))
            .then(Op::put("apps/b", b"4".to_vec())),
    )
    .await
    .unwrap();
    s.delete("apps/a").await.unwrap();

    // (kind, key, revision, value, prev value)
    type Row = (
        EventKind,
        &'static str,
        Revision,
        &'static [u8],
        Option<&'static [u8]>,
    );
    let want: Vec<Row> = vec![
        (EventKind::Put, "apps/a", 1, b"1", None),
        (EventKind::Put, "apps/a", 3, b"2", Some(b"1")),
        (EventKind::Put, "apps/c", 4, b"3", None),
        (EventKind::Put, "apps/b", 4, b"4", None),
        (EventKind::Delete, "apps/a", 5, b"", Some(b"2")),
    ];
    for (kind, key, rev, value, prev) in want {
        let ev = next(&mut w).await.unwrap();
        assert_eq!(ev.kind, kind);
        assert_eq!(ev.kv.key, key);
        assert_eq!(ev.kv.mod_revision, r0 + rev);
        assert_eq!(ev.kv.value, value);
        assert_eq!(ev.prev.as_ref().map(|p| p.value.as_slice()), prev);
    }
    // Metadata of a put event matches what get() shows.
    let mut w2 = s.watch("apps/c", Some(r0 + 3)).await.unwrap();
    let ev = next(&mut w2).await.unwrap();
    assert_eq!(Some(ev.kv), s.get("apps/c").await.unwrap());
}

both!(resume_from_past_revision_replays_history_then_live);
async fn resume_from_past_revision_replays_history_then_live(b: Backend) {
    let (s, r0) = (&b.store, b.base);
    for i in 1..=20 {
        s.put(&format!("k/{i:02}"), i.to_string().into_bytes())
            .await
            .unwrap();
    }
    for after in [0, 7, 19, 20, 24] {
        let after = r0 + after;
        let mut w = s.watch("k/", Some(after)).await.unwrap();
        // Live writes after the watch started follow the replayed history.
        let live_base = s.current_revision().await.unwrap();
        let live_key = format!("k/live-{after}");
        s.put(&live_key, b"x".to_vec()).await.unwrap();
        let mut seen = Vec::new();
        loop {
            let ev = next(&mut w).await.unwrap();
            let rev = ev.kv.mod_revision;
            seen.push(rev);
            if ev.kv.key == live_key {
                break;
            }
        }
        // Every revision in (after, live_base] (each wrote one k/ key, or earlier
        // live puts), then the live one, in order and exactly once.
        let want: Vec<Revision> = ((after + 1)..=live_base + 1).collect();
        assert_eq!(seen, want, "after={after}");
    }
    // Watching from a future revision: nothing until a revision > after.
    let cur = s.current_revision().await.unwrap();
    let mut w = s.watch("k/", Some(cur + 1)).await.unwrap();
    s.put("k/future-1", b"skipped".to_vec()).await.unwrap();
    s.put("k/future-2", b"seen".to_vec()).await.unwrap();
    let ev = next(&mut w).await.unwrap();
    assert_eq!(
        (ev.kv.key.as_str(), ev.kv.mod_revision),
        ("k/future-2", cur + 2)
    );
}

// On SQLite: a buffer of 4 revisions; 300 writes while the watcher does not read.
both!(
    lagging_watcher_catches_up_from_history_without_blocking_writers,
    slipway_store::StoreOptions {
        watch_buffer: 4,
        ..Default::default()
    }
);
async fn lagging_watcher_catches_up_from_history_without_blocking_writers(b: Backend) {
    let (s, r0) = (&b.store, b.base);
    let mut w = s.watch("", None).await.unwrap();
    for i in 0..300 {
        s.put(&format!("k/{}", i % 7), i.to_string().into_bytes())
            .await
            .unwrap();
    }
    for rev in 1..=300 {
        let ev = next(&mut w).await.unwrap();
        assert_eq!(ev.kv.mod_revision, r0 + rev);
        assert_eq!(ev.kv.value, (rev - 1).to_string().into_bytes());
    }
    // And continues live.
    s.put("k/x", b"live".to_vec()).await.unwrap();
    assert_eq!(next(&mut w).await.unwrap().kv.mod_revision, r0 + 301);
}

#[tokio::test]
async fn compaction_refuses_old_watches_and_ends_hopelessly_lagged_ones() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_with(
        &dir,
        StoreOptions {
            history_retention: 10,
            watch_buffer: 2,
            ..Default::default()
        },
    );
    let mut lagging = s.watch("", Some(0)).await.unwrap();
    for i in 0..50 {
        s.put("k", vec![i]).await.unwrap();
    }
    assert_eq!(s.compact_revision().await.unwrap(), 40);
    for (after, ok) in [(0, false), (39, false), (40, true), (45, true), (50, true)] {
        match s.watch("k", Some(after)).await {
            Ok(_) => assert!(ok, "after={after} should be compacted"),
            Err(StoreError::Compacted {
                requested,
                compacted,
            }) => {
                assert!(!ok, "after={after} should be allowed");
                assert_eq!((requested, compacted), (after, 40));
            }
            Err(e) => panic!("after={after}: {e}"),
        }
    }
    // Resume at the compaction point gets revisions 41..=50 exactly.
    let mut w = s.watch("k", Some(40)).await.unwrap();
    for rev in 41..=50 {
        assert_eq!(next(&mut w).await.unwrap().kv.mod_revision, rev);
    }
    // The watcher that started at 0 and never read: its history is gone. It yields
    // Compacted once, then ends.
    match next(&mut lagging).await {
        Err(StoreError::Compacted { requested, .. }) => assert_eq!(requested, 0),
        other => panic!("expected Compacted, got {other:?}"),
    }
    assert!(lagging.next().await.is_none());
    // History on disk is bounded.
    let raw = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    let (min, max): (i64, i64) = raw
        .query_row("SELECT min(revision), max(revision) FROM log", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((min, max), (41, 50));
}

#[tokio::test]
async fn dropping_the_store_ends_watches() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_with(&dir, StoreOptions::default());
    let mut w = s.watch("", None).await.unwrap();
    s.put("a", b"1".to_vec()).await.unwrap();
    drop(s);
    assert_eq!(next(&mut w).await.unwrap().kv.key, "a");
    let end = tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .unwrap();
    assert!(end.is_none());
}

fn apply(state: &mut BTreeMap<String, KeyValue>, ev: &WatchEvent) {
    match ev.kind {
        EventKind::Put => {
            state.insert(ev.kv.key.clone(), ev.kv.clone());
        }
        EventKind::Delete => {
            state.remove(&ev.kv.key);
        }
    }
}

// The Kubernetes-style informer pattern: range at R, watch after R, apply events. Under
// concurrent writers (with a tiny watch buffer on SQLite so lag recovery is exercised),
// the rebuilt state must equal a final range, with every revision seen exactly once.
both!(
    range_then_watch_misses_nothing_under_concurrent_writers,
    slipway_store::StoreOptions {
        watch_buffer: 8,
        ..Default::default()
    }
);
async fn range_then_watch_misses_nothing_under_concurrent_writers(b: Backend) {
    let s = &b.store;
    let mut writers = Vec::new();
    for w in 0..4u32 {
        let s = s.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..60u32 {
                let key = format!("w/{w}/{}", i % 5);
                if i % 7 == 6 {
                    s.delete(&key).await.unwrap();
                } else {
                    s.txn(
                        Txn::new()
                            .then(Op::put(key, i.to_le_bytes().to_vec()))
                            .then(Op::put(format!("w/{w}/last"), i.to_le_bytes().to_vec())),
                    )
                    .await
                    .unwrap();
                }
                if i % 10 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    // Start several informers at different moments while writers run.
    let mut informers = Vec::new();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(15)).await;
        let (kvs, rev) = s.range("w/").await.unwrap();
        let w = s.watch("w/", Some(rev)).await.unwrap();
        let state: BTreeMap<_, _> = kvs.into_iter().map(|kv| (kv.key.clone(), kv)).collect();
        informers.push((state, rev, w));
    }
    for w in writers {
        w.await.unwrap();
    }
    // A sentinel write marks the end of the stream for every informer.
    s.put("w/~end", Vec::new()).await.unwrap();
    let (final_kvs, final_rev) = s.range("w/").await.unwrap();
    let final_state: BTreeMap<_, _> = final_kvs
        .into_iter()
        .map(|kv| (kv.key.clone(), kv))
        .collect();
    for (mut state, start, mut w) in informers {
        let mut seen = HashSet::new();
        let mut last = (start, String::new());
        let mut revisions = HashSet::new();
        loop {
            let ev = next(&mut w).await.unwrap();
            let end = ev.kv.key == "w/~end";
            let id = (ev.kv.mod_revision, ev.kv.key.clone());
            assert!(id.0 > start);
            assert!(id.0 >= last.0, "out of order: {id:?} after {last:?}");
            assert!(seen.insert(id.clone()), "duplicate event {id:?}");
            revisions.insert(id.0);
            apply(&mut state, &ev);
            last = id;
            if end {
                break;
            }
        }
        // Every revision since the range changed a w/ key, so all must be present.
        let want: HashSet<Revision> = ((start + 1)..=final_rev).collect();
        let missing: Vec<_> = want.difference(&revisions).collect();
        assert!(missing.is_empty(), "missing revisions {missing:?}");
        assert_eq!(state, final_state, "informer started at {start}");
    }
}

/// etcd's compaction: a watch from a compacted revision is refused with the revision etcd
/// compacted to, one from the compaction point on replays exactly what follows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn etcd_compaction_refuses_old_watches() {
    let b = support::etcd("compaction").await;
    let (s, r0) = (&b.store, b.base);
    for i in 0..50 {
        s.put("k", vec![i]).await.unwrap();
    }
    b.etcd.as_ref().unwrap().compact(r0 + 40).await.unwrap();
    for (after, ok) in [
        (r0, false),
        (r0 + 39, false),
        (r0 + 40, true),
        (r0 + 45, true),
        (r0 + 50, true),
    ] {
        match s.watch("k", Some(after)).await {
            Ok(_) => assert!(ok, "after={after} should be compacted"),
            Err(StoreError::Compacted {
                requested,
                compacted,
            }) => {
                assert!(!ok, "after={after} should be allowed");
                assert_eq!((requested, compacted), (after, r0 + 40));
                assert!(StoreError::Compacted {
                    requested,
                    compacted
                }
                .to_string()
                .contains("re-read the current state"));
            }
            Err(e) => panic!("after={after}: {e}"),
        }
    }
    let mut w = s.watch("k", Some(r0 + 40)).await.unwrap();
    for rev in r0 + 41..=r0 + 50 {
        assert_eq!(next(&mut w).await.unwrap().kv.mod_revision, rev);
    }
}

/// Dropping an etcd store ends its watches (after the events already on their way).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn etcd_dropping_the_store_ends_watches() {
    let b = support::etcd("drop").await;
    let mut w = b.store.watch("", None).await.unwrap();
    b.store.put("a", b"1".to_vec()).await.unwrap();
    drop(b);
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(event) = w.next().await {
            assert_eq!(event.unwrap().kv.key, "a");
        }
    })
    .await;
    assert!(end.is_ok(), "the watch did not end within 10 s");
}
