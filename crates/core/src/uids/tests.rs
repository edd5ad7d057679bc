//! Tests of the per-app uid allocator.

use super::*;
use std::sync::Arc;

use crate::model::User;
use crate::PlatformConfig;

async fn platform(dir: &std::path::Path, uids: std::ops::RangeInclusive<u32>) -> Arc<Platform> {
    let store = slipway_store::SqliteStore::open(&dir.join("db"), Default::default()).unwrap();
    let mut config = PlatformConfig::new(dir.join("data"));
    config.app_uids = uids;
    Platform::open(
        config,
        store,
        Arc::new(slipway_runtime::ProcessRuntime::new()),
        slipway_logplex::LogHub::default(),
    )
    .await
    .unwrap()
}

fn user() -> User {
    User {
        id: Uuid::nil(),
        email: "owner@example.com".into(),
        created_at: chrono::Utc::now(),
        admin: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_never_share_a_uid() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform(dir.path(), 100_000..=100_039).await;
    let creates = (0..40).map(|i| {
        let platform = platform.clone();
        tokio::spawn(async move {
            platform
                .create_app(&user(), Some(format!("app-{i:02}").parse().unwrap()))
                .await
                .unwrap()
        })
    });
    let apps: Vec<App> = futures::future::join_all(creates)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let uids: HashSet<u32> = apps.iter().map(|a| a.uid.unwrap()).collect();
    assert_eq!(uids.len(), 40, "every app has its own uid");
    assert!(uids.iter().all(|u| (100_000..=100_039).contains(u)));
    // The range is used up: the next app is refused with a message that says what to do.
    let error = platform
        .create_app(&user(), Some("one-too-many".parse().unwrap()))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("--dyno-uid-range"), "{error}");
    assert!(platform
        .store()
        .get(&keys::app("one-too-many"))
        .await
        .unwrap()
        .is_none());
    // The uid of a stored app is the one it was created with.
    let stored = platform.find_app("app-07").await.unwrap();
    assert_eq!(
        platform.app_uid(&stored).await.unwrap(),
        apps[7].uid.unwrap()
    );
}

#[tokio::test]
async fn a_destroyed_apps_uid_comes_back_only_after_a_wrap_around() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform(dir.path(), 2000..=2002).await;
    let a = platform
        .create_app(&user(), Some("aaa".parse().unwrap()))
        .await
        .unwrap();
    let b = platform
        .create_app(&user(), Some("bbb".parse().unwrap()))
        .await
        .unwrap();
    assert_eq!((a.uid, b.uid), (Some(2000), Some(2001)));
    platform.delete_app(&a).await.unwrap();
    let c = platform
        .create_app(&user(), Some("ccc".parse().unwrap()))
        .await
        .unwrap();
    assert_eq!(
        c.uid,
        Some(2002),
        "not the destroyed app's 2000 while others are free"
    );
    let d = platform
        .create_app(&user(), Some("ddd".parse().unwrap()))
        .await
        .unwrap();
    assert_eq!(d.uid, Some(2000), "after the wrap-around, the freed uid");
    // A name taken is still reported as such.
    let taken = platform
        .create_app(&user(), Some("bbb".parse().unwrap()))
        .await;
    assert!(matches!(taken, Err(CoreError::NameTaken { .. })));
}

#[tokio::test]
async fn an_app_from_before_uids_per_app_gets_one_on_first_use_and_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform(dir.path(), 3000..=3999).await;
    let other = platform
        .create_app(&user(), Some("newer".parse().unwrap()))
        .await
        .unwrap();
    let old = App {
        id: Uuid::new_v4(),
        name: "legacy".into(),
        owner_email: "owner@example.com".into(),
        stack: "heroku-24".into(),
        maintenance: false,
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
        uid: None,
    };
    // As an older server wrote it: no `uid` field at all.
    let json = serde_json::to_string(&old).unwrap();
    assert!(!json.contains("uid"));
    platform
        .store()
        .put(&keys::app("legacy"), json.into_bytes())
        .await
        .unwrap();
    let (first, second) = tokio::join!(platform.app_uid(&old), platform.app_uid(&old));
    let uid = first.unwrap();
    assert_eq!(second.unwrap(), uid, "two first uses agree");
    assert_ne!(Some(uid), other.uid);
    assert_eq!(platform.find_app("legacy").await.unwrap().uid, Some(uid));
    assert_eq!(platform.app_uid(&old).await.unwrap(), uid, "and it stays");
    platform.delete_app(&old).await.unwrap();
    let (claims, _) = platform.store().range(keys::UIDS).await.unwrap();
    assert_eq!(claims.len(), 1, "the claim went with the app");
}

#[test]
fn uid_ranges_parse_and_refuse_system_ids() {
    assert_eq!(parse_uid_range("100000-165535"), Ok(100_000..=165_535));
    assert_eq!(parse_uid_range("2000-2000"), Ok(2000..=2000));
    for bad in [
        "",
        "5",
        "0-100",
        "999-2000",
        "3000-2000",
        "1000-4294967295",
        "a-b",
    ] {
        assert!(parse_uid_range(bad).is_err(), "{bad}");
    }
}
