//! Crash durability: a child process hammering the store with multi-key transactions is
//! SIGKILLed at arbitrary points; after every kill the database must open, the revision
//! history must be gap-free, and every transaction must be entirely present or absent.
//!
//! The child is this same test binary re-executed to run the `#[ignore]`d
//! `kill9_child_writer` test with `SLIPWAY_STORE_KILL9_DB` set.

use slipway_store::{Compare, Op, SqliteStore, Store, StoreOptions, Txn};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const ENV_DB: &str = "SLIPWAY_STORE_KILL9_DB";
const TOTAL: i64 = 1000;
const BATCH: usize = 5;

fn options() -> StoreOptions {
    StoreOptions {
        // Keep all history so the whole log can be replayed and compared with kv.
        history_retention: 1_000_000,
        ..StoreOptions::default().immutable_prefix("releases/")
    }
}

fn num(v: &[u8]) -> i64 {
    std::str::from_utf8(v).unwrap().parse().unwrap()
}

/// Child body: loop forever, one atomic multi-key txn per step, printing each committed
/// revision. Never returns normally; the parent kills it.
#[test]
#[ignore = "helper process for kill9_durability (runs only when re-executed by it)"]
fn kill9_child_writer() {
    let path =
        std::env::var(ENV_DB).expect("run by kill9_durability with SLIPWAY_STORE_KILL9_DB set");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let s = SqliteStore::open(Path::new(&path), options()).unwrap();
        loop {
            let (n, rev) = match s.get("counter").await.unwrap() {
                Some(kv) => (num(&kv.value), kv.mod_revision),
                None => (0, 0),
            };
            let a = s
                .get("acct/a")
                .await
                .unwrap()
                .map_or(TOTAL, |kv| num(&kv.value));
            let b = s
                .get("acct/b")
                .await
                .unwrap()
                .map_or(0, |kv| num(&kv.value));
            let next = n + 1;
            let moved = next % 7;
            let mut txn = Txn::new()
                .when(Compare::mod_revision("counter", rev))
                .then(Op::put("counter", next.to_string()))
                .then(Op::put("acct/a", (a - moved).to_string()))
                .then(Op::put("acct/b", (b + moved).to_string()));
            for i in 0..BATCH {
                txn = txn.then(Op::put(format!("batch/{next:08}/{i}"), next.to_string()));
            }
            if next > 3 {
                txn = txn.then(Op::delete_prefix(format!("batch/{:08}/", next - 3)));
            }
            if next % 3 == 0 {
                txn = txn.then(Op::put(format!("releases/{next:08}"), next.to_string()));
            }
            let r = s.txn(txn).await.unwrap();
            assert!(r.succeeded, "single writer: CAS cannot fail");
            println!("committed {} {}", r.revision, next);
        }
    });
}

/// Checks the database file with plain SQL; returns (revision, counter).
fn verify(path: &Path) -> (i64, i64) {
    let db = rusqlite::Connection::open(path).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let revision: i64 = db
        .query_row("SELECT value FROM meta WHERE name = 'revision'", [], |r| {
            r.get(0)
        })
        .unwrap();

    // History: revisions 1..=revision, each exactly once, seqs 0..k contiguous.
    let mut stmt = db
        .prepare("SELECT revision, count(*), min(seq), max(seq) FROM log GROUP BY revision ORDER BY revision")
        .unwrap();
    let revs: Vec<(i64, i64, i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        revs.len() as i64,
        revision,
        "one history entry per revision"
    );
    for (i, (rev, count, min, max)) in revs.iter().enumerate() {
        assert_eq!(*rev, i as i64 + 1, "revision sequence has a gap");
        assert_eq!((*min, *max), (0, count - 1), "revision {rev} seqs");
    }

    // Replaying the history reproduces the kv table exactly.
    let mut replay: BTreeMap<String, (Vec<u8>, i64, i64, i64)> = BTreeMap::new();
    let mut stmt = db
        .prepare("SELECT revision, key, kind, value, create_revision, version FROM log ORDER BY revision, seq")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<Vec<u8>>>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (rev, key, kind, value, create, version) = row.unwrap();
        if kind == 0 {
            replay.insert(key, (value.unwrap(), create, rev, version));
        } else {
            replay.remove(&key);
        }
    }
    let mut stmt = db
        .prepare("SELECT key, value, create_revision, mod_revision, version FROM kv ORDER BY key")
        .unwrap();
    let kv: BTreeMap<String, (Vec<u8>, i64, i64, i64)> = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(kv, replay, "kv table differs from replayed history");

    // Application invariants: each txn is all-or-nothing.
    let get = |k: &str| kv.get(k).map(|v| num(&v.0));
    let counter = get("counter").unwrap_or(0);
    assert_eq!(counter, revision, "one revision per txn");
    if counter > 0 {
        assert_eq!(get("acct/a").unwrap() + get("acct/b").unwrap(), TOTAL);
        for i in 0..BATCH {
            assert_eq!(get(&format!("batch/{counter:08}/{i}")), Some(counter));
        }
    }
    assert!(!kv
        .keys()
        .any(|k| k.starts_with(&format!("batch/{:08}/", counter + 1))));
    let batches = kv.keys().filter(|k| k.starts_with("batch/")).count();
    assert_eq!(batches, BATCH * counter.min(3) as usize);
    for m in (3..=counter).step_by(3) {
        assert_eq!(get(&format!("releases/{m:08}")), Some(m));
    }
    assert_eq!(
        kv.keys().filter(|k| k.starts_with("releases/")).count() as i64,
        counter / 3
    );
    (revision, counter)
}

#[test]
fn kill9_durability() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let exe = std::env::current_exe().unwrap();
    let mut total_acknowledged = 0;
    for round in 0..6u64 {
        let mut child = Command::new(&exe)
            .args([
                "kill9_child_writer",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ENV_DB, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        // Let it commit some txns, then kill it at a varying point mid-flight.
        let mut acknowledged = 0;
        let mut seen = 0;
        while seen < 20 + round * 15 {
            let line = lines
                .next()
                .expect("child exited before committing enough txns")
                .unwrap();
            // The harness may print "test name ... " on the same line as the first one.
            if let Some(rest) = line.split("committed ").nth(1) {
                acknowledged = rest.split(' ').next().unwrap().parse().unwrap();
                seen += 1;
            }
        }
        std::thread::sleep(Duration::from_micros(round * 1700));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success(), "child should have been killed");

        let (revision, counter) = verify(&path);
        assert!(
            revision >= acknowledged,
            "acknowledged revision {acknowledged} lost (now {revision})"
        );
        assert!(revision > total_acknowledged);
        total_acknowledged = acknowledged;
        eprintln!("round {round}: killed after ack {acknowledged}; db at revision {revision}, counter {counter}");

        // And the store itself opens and agrees.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let s = SqliteStore::open(&path, options()).unwrap();
            assert_eq!(s.current_revision().await.unwrap(), revision);
            let mut w = s
                .watch("counter", Some(revision.saturating_sub(1)))
                .await
                .unwrap();
            if revision > 0 {
                let ev = w.next().await.unwrap().unwrap();
                assert_eq!(ev.kv.mod_revision, revision);
            }
        });
    }
}
