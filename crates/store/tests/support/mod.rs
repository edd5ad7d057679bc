//! The two stores the behavioural tests run against: a fresh SQLite database, and a fresh
//! namespace on the test binary's etcd server.
//!
//! etcd's revisions are global to the server, so a test reads its starting revision
//! ([`Backend::base`]) and counts from there; the etcd runs of one binary take turns (a
//! lock), so that "the next write is revision base + 1" holds as it does on SQLite.

use slipway_store::{EtcdConfig, EtcdStore, Revision, SqliteStore, Store, StoreOptions};
use std::sync::Arc;
use std::time::Duration;

/// A store under test, with what keeps it alive.
pub(crate) struct Backend {
    pub(crate) store: Arc<dyn Store>,
    /// The store's revision before the test wrote anything (0 on a new SQLite store).
    pub(crate) base: Revision,
    /// The etcd store itself, for etcd-only calls.
    pub(crate) etcd: Option<Arc<EtcdStore>>,
    _dir: Option<tempfile::TempDir>,
    _turn: Option<tokio::sync::MutexGuard<'static, ()>>,
}

/// The behavioural tests' SQLite options: a ledger prefix and a quick lease reaper.
pub(crate) fn sqlite_options() -> StoreOptions {
    StoreOptions {
        lease_check_interval: Duration::from_millis(50),
        ..StoreOptions::default().immutable_prefix("releases/")
    }
}

/// A new SQLite store with `options`.
pub(crate) async fn sqlite(options: StoreOptions) -> Backend {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("state.db"), options).expect("open store");
    let base = store.current_revision().await.expect("revision");
    assert_eq!(base, 0, "a new SQLite store starts at revision 0");
    Backend {
        store,
        base,
        etcd: None,
        _dir: Some(dir),
        _turn: None,
    }
}

/// A new namespace on this binary's etcd, with `releases/` append-only.
pub(crate) async fn etcd(test: &str) -> Backend {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let turn = TURN.lock().await;
    let server = tokio::task::spawn_blocking(slipway_store::testing::shared)
        .await
        .expect("start etcd");
    let config = EtcdConfig::new([server.client_addr.clone()])
        .namespace(slipway_store::testing::unique_namespace(test))
        .immutable_prefix("releases/");
    let store = EtcdStore::connect(config).await.expect("connect to etcd");
    let base = store.current_revision().await.expect("revision");
    assert!(base >= 1, "etcd's revisions start at 1");
    Backend {
        store: store.clone(),
        base,
        etcd: Some(store),
        _dir: None,
        _turn: Some(turn),
    }
}

/// Runs `$name(backend)` against both stores, as `$name::sqlite` and `$name::etcd`; the
/// optional second argument is the SQLite store's options.
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        both!($name, $crate::support::sqlite_options());
    };
    ($name:ident, $options:expr) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$name($crate::support::sqlite($options).await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn etcd() {
                super::$name($crate::support::etcd(stringify!($name)).await).await
            }
        }
    };
}
