//! Authorizations on a real (SQLite) store: tokens stored only as digests, rotation and
//! revocation take effect at once, expiry and scope rules.

use super::*;

async fn platform(data_dir: &std::path::Path) -> std::sync::Arc<Platform> {
    let store = slipway_store::SqliteStore::open(
        &data_dir.join("slipway.db"),
        slipway_store::StoreOptions::default(),
    )
    .unwrap();
    Platform::open(
        crate::PlatformConfig::new(data_dir.to_path_buf()),
        store,
        std::sync::Arc::new(slipway_runtime::ProcessRuntime::new()),
        slipway_logplex::LogHub::default(),
    )
    .await
    .unwrap()
}

fn new(description: &str) -> NewAuthorization {
    NewAuthorization {
        description: description.into(),
        scope: vec!["global".into()],
        expires_in: None,
        default: false,
    }
}

#[tokio::test]
async fn tokens_are_stored_only_as_digests_and_work_until_revoked() {
    let temp = tempfile::tempdir().unwrap();
    let platform = platform(temp.path()).await;
    let user = platform
        .create_user("dev@example.com", "first-key")
        .await
        .unwrap();
    let (authorization, token) = platform
        .create_authorization(&user, new("CI"))
        .await
        .unwrap();
    let (all, _) = platform.store().range("").await.unwrap();
    for kv in &all {
        assert!(
            !String::from_utf8_lossy(&kv.value).contains(&token),
            "{}",
            kv.key
        );
        assert!(!kv.key.contains(&token), "{}", kv.key);
    }
    let (found, by) = platform.authenticate_token(&token).await.unwrap();
    assert_eq!(found.id, user.id);
    assert_eq!(by.unwrap().id, authorization.id);
    let listed = platform.list_authorizations(&user).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed[0].default && !listed[1].default);
    assert_eq!(
        platform.authorization(&user, "~").await.unwrap().id,
        listed[0].id
    );

    platform
        .revoke_authorization(&user, &authorization.id.to_string())
        .await
        .unwrap();
    assert!(matches!(
        platform.authenticate_token(&token).await,
        Err(CoreError::Unauthorized)
    ));
    assert!(platform.authenticate("first-key").await.is_ok());
}

#[tokio::test]
async fn rotation_replaces_the_token_under_the_same_id() {
    let temp = tempfile::tempdir().unwrap();
    let platform = platform(temp.path()).await;
    let user = platform
        .create_user("dev@example.com", "first-key")
        .await
        .unwrap();
    let (authorization, old) = platform
        .create_authorization(&user, new("CI"))
        .await
        .unwrap();
    let (rotated, fresh) = platform
        .regenerate_authorization(&user, &authorization.id.to_string())
        .await
        .unwrap();
    assert_eq!(rotated.id, authorization.id);
    assert_ne!(old, fresh);
    assert!(matches!(
        platform.authenticate_token(&old).await,
        Err(CoreError::Unauthorized)
    ));
    assert_eq!(
        platform
            .authenticate_token(&fresh)
            .await
            .unwrap()
            .1
            .unwrap()
            .id,
        authorization.id
    );
}

#[tokio::test]
async fn another_users_authorization_is_not_found() {
    let temp = tempfile::tempdir().unwrap();
    let platform = platform(temp.path()).await;
    let alice = platform
        .create_user("alice@example.com", "alice-key")
        .await
        .unwrap();
    let bob = platform
        .create_user("bob@example.com", "bob-key")
        .await
        .unwrap();
    let (authorization, token) = platform
        .create_authorization(&alice, new("a"))
        .await
        .unwrap();
    let id = authorization.id.to_string();
    for result in [
        platform.authorization(&bob, &id).await.map(|_| ()),
        platform.revoke_authorization(&bob, &id).await.map(|_| ()),
        platform
            .regenerate_authorization(&bob, &id)
            .await
            .map(|_| ()),
    ] {
        assert!(matches!(result, Err(CoreError::NotFound { .. })));
    }
    assert!(platform.authenticate_token(&token).await.is_ok());
}

#[tokio::test]
async fn expired_tokens_stop_working_and_bad_requests_are_refused() {
    let temp = tempfile::tempdir().unwrap();
    let platform = platform(temp.path()).await;
    let user = platform
        .create_user("dev@example.com", "first-key")
        .await
        .unwrap();
    let (_, token) = platform
        .create_authorization(
            &user,
            NewAuthorization {
                expires_in: Some(1),
                ..new("short")
            },
        )
        .await
        .unwrap();
    assert!(platform.authenticate_token(&token).await.is_ok());
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(matches!(
        platform.authenticate_token(&token).await,
        Err(CoreError::Unauthorized)
    ));
    assert_eq!(platform.list_authorizations(&user).await.unwrap().len(), 1);
    for bad in [
        NewAuthorization {
            scope: vec!["read".into()],
            ..new("x")
        },
        NewAuthorization {
            expires_in: Some(0),
            ..new("x")
        },
        new(&"d".repeat(201)),
        new("line\nbreak"),
    ] {
        assert!(matches!(
            platform.create_authorization(&user, bad).await,
            Err(CoreError::Invalid { .. })
        ));
    }
    assert_eq!(platform.list_authorizations(&user).await.unwrap().len(), 1);
}

#[test]
fn secrets_match_only_when_equal() {
    for (presented, expected, matches) in [
        ("s3cret-token", "s3cret-token", true),
        ("s3cret-tokeN", "s3cret-token", false),
        ("S3cret-token", "s3cret-token", false),
        ("s3cret", "s3cret-token", false),
        ("", "s3cret-token", false),
        ("", "", true),
    ] {
        assert_eq!(
            secrets_match(presented, expected),
            matches,
            "{presented:?} vs {expected:?}"
        );
    }
}
