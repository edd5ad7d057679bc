//! Slug fetches against a one-shot HTTP server: the checksum and the cap are enforced and
//! nothing unverified is ever left in the cache.

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves `body` once to whoever connects, and returns the server's URL.
async fn serve_once(body: Vec<u8>) -> url::Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = vec![0; 4096];
        let _ = stream.read(&mut request).await;
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes()).await;
        let _ = stream.write_all(&body).await;
    });
    format!("http://{addr}/").parse().unwrap()
}

fn slugs(dir: &Path, server: url::Url, max_bytes: u64) -> Slugs {
    Slugs::new(
        dir.to_path_buf(),
        reqwest::Client::new(),
        server,
        "token".into(),
        max_bytes,
        None,
    )
}

fn cached_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir.join("slugs"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_slug_whose_checksum_matches_is_cached() {
    let body = b"not really a tarball".to_vec();
    let digest = hex::encode(Sha256::digest(&body));
    let dir = tempfile::tempdir().unwrap();
    let slugs = slugs(dir.path(), serve_once(body.clone()).await, 1024);
    let path = slugs.fetch(&digest).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), body);
    assert_eq!(cached_files(dir.path()), vec![format!("{digest}.tgz")]);
    // A second fetch is served from the cache (the server answered only once).
    assert_eq!(slugs.fetch(&digest).await.unwrap(), path);
}

#[tokio::test]
async fn a_slug_with_another_checksum_is_refused_and_not_kept() {
    let digest = "a".repeat(64);
    let dir = tempfile::tempdir().unwrap();
    let slugs = slugs(
        dir.path(),
        serve_once(b"something else".to_vec()).await,
        1024,
    );
    let error = slugs.fetch(&digest).await.unwrap_err().to_string();
    assert!(error.contains("another file"), "{error}");
    assert!(cached_files(dir.path()).is_empty());
}

#[tokio::test]
async fn a_slug_over_the_cap_is_refused_and_not_kept() {
    let body = vec![b'x'; 2048];
    let digest = hex::encode(Sha256::digest(&body));
    let dir = tempfile::tempdir().unwrap();
    let slugs = slugs(dir.path(), serve_once(body).await, 1024);
    let error = slugs.fetch(&digest).await.unwrap_err().to_string();
    assert!(error.contains("cap"), "{error}");
    assert!(cached_files(dir.path()).is_empty());
}

#[tokio::test]
async fn a_path_that_is_not_a_checksum_is_never_requested() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens here: the name is refused before any request.
    let slugs = slugs(dir.path(), "http://127.0.0.1:9/".parse().unwrap(), 1024);
    let error = slugs
        .app_dir("../../etc/passwd", 1000)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("not a SHA-256"), "{error}");
}

#[tokio::test]
async fn from_the_slug_store_a_good_slug_is_cached_and_a_tampered_one_refused() {
    let Some(moto) = slipway_slugstore::testing::Moto::start() else {
        return;
    };
    moto.create_bucket("agent-slugs");
    // moto takes any credentials; the client needs some.
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    let store = crate::open_slug_store(&moto.store_url("agent-slugs")).unwrap();
    let body = b"a slug in the store".to_vec();
    let digest = hex::encode(Sha256::digest(&body));
    store.overwrite(&digest, body.clone()).await.unwrap();
    let tampered = "d".repeat(64);
    store.overwrite(&tampered, body.clone()).await.unwrap();
    let big = vec![b'x'; 2048];
    let big_digest = hex::encode(Sha256::digest(&big));
    store.overwrite(&big_digest, big).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    // Nothing listens at the control plane's address: the store alone is asked.
    let slugs = Slugs::new(
        dir.path().to_path_buf(),
        reqwest::Client::new(),
        "http://127.0.0.1:9/".parse().unwrap(),
        "token".into(),
        1024,
        Some(store),
    );
    let path = slugs.fetch(&digest).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), body);
    let error = slugs.fetch(&tampered).await.unwrap_err().to_string();
    assert!(
        error.contains("the slug store sent another file; refused"),
        "{error}"
    );
    let error = slugs.fetch(&big_digest).await.unwrap_err().to_string();
    assert!(error.contains("cap"), "{error}");
    // A slug the store lacks is asked of the control plane (nothing listens there here).
    let error = slugs.fetch(&"e".repeat(64)).await.unwrap_err().to_string();
    assert!(
        error.contains("requesting it from the control plane"),
        "{error}"
    );
    assert_eq!(cached_files(dir.path()), vec![format!("{digest}.tgz")]);
}
