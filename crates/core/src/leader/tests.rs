//! Leader election on a real (SQLite) store: one leader at a time, takeover after a
//! resignation or a lost lease, fencing of a deposed leader, singletons started and stopped.

use super::*;
use slipway_store::{SqliteStore, StoreOptions};
use std::sync::atomic::{AtomicUsize, Ordering};

fn store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    SqliteStore::open(
        &dir.path().join("db"),
        StoreOptions {
            lease_check_interval: Duration::from_millis(50),
            ..Default::default()
        },
    )
    .unwrap()
}

const TTL: Duration = Duration::from_millis(900);

#[tokio::test]
async fn one_leader_at_a_time_and_the_next_takes_over_with_a_new_fence() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let a = Election::new(store.clone(), "a", TTL);
    let b = Arc::new(Election::new(store.clone(), "b", TTL));
    let term_a = a.campaign().await.unwrap();
    assert_eq!(store.get(LEADER_KEY).await.unwrap().unwrap().value, b"a");

    // b waits while a holds (and renews) its term.
    let waiting = tokio::spawn({
        let b = b.clone();
        async move { b.campaign().await }
    });
    let holding = tokio::time::timeout(Duration::from_secs(3), a.hold(term_a)).await;
    assert!(holding.is_err(), "a keeps its term while it renews it");
    assert!(!waiting.is_finished(), "b is not elected while a leads");

    // a's fence holds for a's writes.
    let fenced = Txn::new()
        .when(term_a.fence())
        .then(Op::put("dynos/web.1", b"a".to_vec()));
    assert!(store.txn(fenced.clone()).await.unwrap().succeeded);

    a.resign(term_a).await.unwrap();
    let term_b = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("b is elected soon after a resigns")
        .unwrap()
        .unwrap();
    assert_ne!(term_b, term_a);
    assert_eq!(store.get(LEADER_KEY).await.unwrap().unwrap().value, b"b");
    // A deposed leader's fenced write fails; the new leader's succeeds.
    assert!(!store.txn(fenced).await.unwrap().succeeded);
    let fenced_b = Txn::new()
        .when(term_b.fence())
        .then(Op::put("dynos/web.1", b"b".to_vec()));
    assert!(store.txn(fenced_b).await.unwrap().succeeded);
}

#[tokio::test]
async fn a_leader_whose_lease_is_gone_steps_down_and_another_is_elected() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let a = Election::new(store.clone(), "a", TTL);
    let term = a.campaign().await.unwrap();
    // The lease vanishes as if the store had expired it (the leader was cut off).
    store.revoke(term.lease).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), a.hold(term))
        .await
        .expect("the leader notices and steps down");
    let b = Election::new(store.clone(), "b", TTL);
    let term_b = tokio::time::timeout(Duration::from_secs(5), b.campaign())
        .await
        .unwrap()
        .unwrap();
    assert!(term_b.revision > term.revision);
}

#[tokio::test]
async fn singletons_run_only_while_leading() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let running = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let start = |running: Arc<AtomicUsize>, started: Arc<AtomicUsize>| {
        move |_fenced: Arc<dyn Store>| {
            started.fetch_add(1, Ordering::SeqCst);
            let running = running.clone();
            vec![tokio::spawn(async move {
                struct Count(Arc<AtomicUsize>);
                impl Drop for Count {
                    fn drop(&mut self) {
                        self.0.fetch_sub(1, Ordering::SeqCst);
                    }
                }
                running.fetch_add(1, Ordering::SeqCst);
                let _count = Count(running);
                std::future::pending::<()>().await;
            })]
        }
    };
    let first = run_while_leader(
        Election::new(store.clone(), "first", TTL),
        start(running.clone(), started.clone()),
    );
    wait_until(|| running.load(Ordering::SeqCst) == 1).await;
    let second = run_while_leader(
        Election::new(store.clone(), "second", TTL),
        start(running.clone(), started.clone()),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        running.load(Ordering::SeqCst),
        1,
        "only the leader runs them"
    );
    assert_eq!(started.load(Ordering::SeqCst), 1);

    // The first server dies: its singletons stop, and the second takes over once the
    // lease expires.
    first.abort();
    wait_until(|| started.load(Ordering::SeqCst) == 2).await;
    assert_eq!(running.load(Ordering::SeqCst), 1);
    assert_eq!(
        store.get(LEADER_KEY).await.unwrap().unwrap().value,
        b"second"
    );
    second.abort();
    wait_until(|| running.load(Ordering::SeqCst) == 0).await;
}

async fn wait_until(condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "condition not met within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_deposed_leaders_fenced_writes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let a = Election::new(store.clone(), "a", TTL);
    let term_a = a.campaign().await.unwrap();
    let fenced = FencedStore::new(store.clone(), term_a);
    // While leading: writes land, compares decide between branches as usual.
    fenced.put("dynos/web.1", b"up".to_vec()).await.unwrap();
    let response = fenced
        .txn(
            Txn::new()
                .when(Compare::absent("dynos/web.1"))
                .then(Op::put("x", b"success".to_vec()))
                .otherwise(Op::put("x", b"failure".to_vec())),
        )
        .await
        .unwrap();
    assert!(!response.succeeded);
    assert_eq!(store.get("x").await.unwrap().unwrap().value, b"failure");

    // Another server takes over: every write of the old term is refused, nothing lands.
    a.resign(term_a).await.unwrap();
    let b = Election::new(store.clone(), "b", TTL);
    b.campaign().await.unwrap();
    for txn in [
        Txn::new().then(Op::put("dynos/web.1", b"crashed".to_vec())),
        Txn::new().then(Op::delete("dynos/web.1")),
        Txn::new()
            .when(Compare::absent("dynos/web.1"))
            .then(Op::put("x", b"1".to_vec()))
            .otherwise(Op::put("x", b"2".to_vec())),
    ] {
        let err = fenced.txn(txn.clone()).await.unwrap_err();
        assert!(
            matches!(err, StoreError::NotLeader { .. }),
            "{txn:?}: {err}"
        );
        assert!(err.to_string().contains("no longer leads"), "{err}");
    }
    assert_eq!(
        store.get("dynos/web.1").await.unwrap().unwrap().value,
        b"up"
    );
    assert_eq!(store.get("x").await.unwrap().unwrap().value, b"failure");
}

/// A store whose next `hangs` lease renewals never answer, as a request sent to an etcd
/// member that was just cut off; everything else goes to `inner`.
struct HangingRenewals {
    inner: Arc<dyn Store>,
    hangs: AtomicUsize,
}

#[async_trait::async_trait]
impl Store for HangingRenewals {
    async fn get(&self, key: &str) -> Result<Option<slipway_store::KeyValue>, StoreError> {
        self.inner.get(key).await
    }
    async fn range(
        &self,
        prefix: &str,
    ) -> Result<(Vec<slipway_store::KeyValue>, slipway_store::Revision), StoreError> {
        self.inner.range(prefix).await
    }
    async fn txn(&self, txn: Txn) -> Result<slipway_store::TxnResponse, StoreError> {
        self.inner.txn(txn).await
    }
    async fn watch(
        &self,
        prefix: &str,
        after: Option<slipway_store::Revision>,
    ) -> Result<slipway_store::Watcher, StoreError> {
        self.inner.watch(prefix, after).await
    }
    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        self.inner.grant_lease(ttl).await
    }
    async fn keep_alive(&self, lease: LeaseId) -> Result<(), StoreError> {
        let hang = self
            .hangs
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if hang {
            std::future::pending::<()>().await;
        }
        self.inner.keep_alive(lease).await
    }
    async fn revoke(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.inner.revoke(lease).await
    }
    async fn current_revision(&self) -> Result<slipway_store::Revision, StoreError> {
        self.inner.current_revision().await
    }
}

#[tokio::test]
async fn a_renewal_that_never_answers_is_retried_before_the_lease_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let hanging = Arc::new(HangingRenewals {
        inner: store(&dir),
        hangs: AtomicUsize::new(0),
    });
    let a = Election::new(hanging.clone(), "a", TTL);
    let term = a.campaign().await.unwrap();
    // One renewal hangs forever: the leader gives up on it and renews with the next.
    hanging.hangs.store(1, Ordering::SeqCst);
    let holding = tokio::time::timeout(TTL * 4, a.hold(term)).await;
    assert!(
        holding.is_err(),
        "the leader stepped down over one hung renewal"
    );
    assert_eq!(hanging.hangs.load(Ordering::SeqCst), 0, "no renewal hung");
}
