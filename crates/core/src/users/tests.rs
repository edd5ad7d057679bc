//! Accounts on a real (SQLite) store: passwords kept only as argon2 hashes, the admin
//! bootstrap, and removal rules.

use std::sync::Arc;

use super::*;
use crate::authorizations::key_digest;

async fn platform(data_dir: &std::path::Path) -> Arc<Platform> {
    let store = slipway_store::SqliteStore::open(
        &data_dir.join("slipway.db"),
        slipway_store::StoreOptions::default(),
    )
    .unwrap();
    Platform::open(
        crate::PlatformConfig::new(data_dir.to_path_buf()),
        store,
        Arc::new(slipway_runtime::ProcessRuntime::new()),
        slipway_logplex::LogHub::default(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn passwords_are_stored_as_argon2_hashes_and_verified() {
    let temp = tempfile::tempdir().unwrap();
    let platform = platform(temp.path()).await;
    let throttle = LoginThrottle::default();
    let (user, key) = platform
        .add_user("dev@example.com", Some("correct horse battery"), false)
        .await
        .unwrap();
    assert!(key.is_none());
    let hash = platform.password_hash(&user).await.unwrap().unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("correct horse"), "{hash}");
    // Nothing anywhere in the store holds the password itself.
    let (all, _) = platform.store().range("").await.unwrap();
    for kv in all {
        assert!(
            !String::from_utf8_lossy(&kv.value).contains("correct horse"),
            "{}",
            kv.key
        );
    }
    let verified = platform
        .verify_password("dev@example.com", "correct horse battery", &throttle)
        .await
        .unwrap();
    assert_eq!(verified.id, user.id);
    for (email, password) in [
        ("dev@example.com", "wrong password!"),
        ("nobody@example.com", "correct horse battery"),
        ("dev@example.com", ""),
    ] {
        assert!(matches!(
            platform.verify_password(email, password, &throttle).await,
            Err(CoreError::Unauthorized)
        ));
    }
}

#[tokio::test]
async fn repeated_failures_make_an_email_wait() {
    let temp = tempfile::tempdir().unwrap();
    let platform = platform(temp.path()).await;
    let throttle = LoginThrottle::default();
    platform
        .add_user("dev@example.com", Some("correct horse battery"), false)
        .await
        .unwrap();
    for _ in 0..LoginThrottle::FREE_FAILURES {
        assert_eq!(throttle.wait("dev@example.com"), None);
        let _ = platform
            .verify_password("dev@example.com", "guess guess", &throttle)
            .await;
    }
    let _ = platform
        .verify_password("dev@example.com", "guess guess", &throttle)
        .await;
    assert!(throttle.wait("DEV@example.com").is_some());
    assert_eq!(throttle.wait("other@example.com"), None);
}

#[tokio::test]
async fn bad_emails_and_passwords_are_refused_and_leave_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let platform = platform(temp.path()).await;
    for email in [
        "",
        "no-at-sign",
        "a/b@example.com",
        "a b@example.com",
        "@example.com",
        "a@",
    ] {
        assert!(
            matches!(
                platform.add_user(email, Some("long enough"), true).await,
                Err(CoreError::Invalid { .. })
            ),
            "{email:?}"
        );
    }
    assert!(matches!(
        platform
            .add_user("dev@example.com", Some("short"), true)
            .await,
        Err(CoreError::Invalid { .. })
    ));
    assert!(platform.list_users().await.unwrap().is_empty());
    let (rest, _) = platform.store().range("api-keys/").await.unwrap();
    assert!(rest.is_empty());
}

#[tokio::test]
async fn bootstrap_makes_one_admin_and_promotes_an_old_record() {
    let temp = tempfile::tempdir().unwrap();
    let platform = platform(temp.path()).await;
    let key = platform
        .bootstrap_admin("admin@slipway.local")
        .await
        .unwrap()
        .unwrap();
    assert!(platform.authenticate(&key).await.unwrap().admin);
    assert_eq!(
        platform
            .bootstrap_admin("admin@slipway.local")
            .await
            .unwrap(),
        None
    );
    // A record written before the admin flag existed becomes the admin at the next start.
    let mut user = platform.user_by_email("admin@slipway.local").await.unwrap();
    user.admin = false;
    slipway_store::json::put_json(
        platform.store().as_ref(),
        &keys::user("admin@slipway.local"),
        &user,
    )
    .await
    .unwrap();
    platform
        .bootstrap_admin("admin@slipway.local")
        .await
        .unwrap();
    assert!(platform.authenticate(&key).await.unwrap().admin);
}

#[tokio::test]
async fn removing_a_user_revokes_its_keys_but_not_the_last_admin() {
    let temp = tempfile::tempdir().unwrap();
    let platform = platform(temp.path()).await;
    platform
        .bootstrap_admin("admin@slipway.local")
        .await
        .unwrap();
    let (_, key) = platform
        .add_user("dev@example.com", None, true)
        .await
        .unwrap();
    let key = key.unwrap();
    assert!(platform.authenticate(&key).await.is_ok());
    platform.remove_user("dev@example.com").await.unwrap();
    assert!(matches!(
        platform.authenticate(&key).await,
        Err(CoreError::Unauthorized)
    ));
    assert!(matches!(
        platform.remove_user("admin@slipway.local").await,
        Err(CoreError::Invalid { .. })
    ));
    assert!(matches!(
        platform.remove_user("nobody@example.com").await,
        Err(CoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_legacy_key_entry_still_authenticates() {
    let temp = tempfile::tempdir().unwrap();
    let platform = platform(temp.path()).await;
    platform
        .create_user("old@example.com", "old-key")
        .await
        .unwrap();
    // A data directory from before authorizations holds the bare email under the digest.
    platform
        .store()
        .put(
            &keys::api_key(&key_digest("older-key")),
            b"old@example.com".to_vec(),
        )
        .await
        .unwrap();
    let (user, authorization) = platform.authenticate_token("older-key").await.unwrap();
    assert_eq!(user.email, "old@example.com");
    assert!(authorization.is_none());
    let (_, authorization) = platform.authenticate_token("old-key").await.unwrap();
    assert!(authorization.unwrap().default);
}
