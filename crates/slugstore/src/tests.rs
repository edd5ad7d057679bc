//! The slug store's URL parsing as a table, and a round trip through a real S3-compatible
//! server (moto) on loopback.

use super::*;

fn check(url: &str, expected: Result<(&str, &str, Option<&str>, &str), &str>) {
    match (parse_slug_store_url(url), expected) {
        (Ok(config), Ok((bucket, prefix, endpoint, region))) => {
            assert_eq!(config.bucket, bucket, "{url}");
            assert_eq!(config.prefix, prefix, "{url}");
            assert_eq!(config.endpoint.as_deref(), endpoint, "{url}");
            assert_eq!(config.region, region, "{url}");
        }
        (Err(error), Err(needle)) => {
            let message = error.to_string();
            assert!(message.contains(needle), "{url}: {message}");
            assert!(!message.contains("hunter2"), "{url}: {message}");
        }
        (got, expected) => panic!("{url}: got {got:?}, expected {expected:?}"),
    }
}

#[test]
fn slug_store_urls() {
    check("s3://slugs", Ok(("slugs", "", None, "us-east-1")));
    check(
        "s3://slugs/prod/v1/?endpoint=http://127.0.0.1:9000/&region=eu-west-1",
        Ok((
            "slugs",
            "prod/v1",
            Some("http://127.0.0.1:9000"),
            "eu-west-1",
        )),
    );
    check("http://slugs", Err("only s3://"));
    check("s3://", Err("name the bucket"));
    check("s3://slugs:9000", Err("name the bucket"));
    check(
        "s3://key:hunter2@slugs",
        Err("credentials do not go in the URL"),
    );
    check(
        "s3://slugs?endpoint=http://key:hunter2@127.0.0.1:9000",
        Err("credentials do not go in the URL"),
    );
    check("s3://slugs?endpoint=ftp://x", Err("endpoint must be"));
    check(
        "s3://slugs?bucket=other",
        Err("unknown parameter \"bucket\""),
    );
    check("not a url", Err("not a URL"));
}

#[test]
fn only_checksums_name_slugs() {
    assert!(is_digest(&"a".repeat(64)));
    for bad in ["", "../etc/passwd", &"A".repeat(64), &"a".repeat(63)] {
        assert!(!is_digest(bad), "{bad}");
    }
}

#[cfg(feature = "test-support")]
#[tokio::test]
async fn a_slug_goes_to_the_store_and_comes_back() {
    let Some(moto) = testing::Moto::start() else {
        return;
    };
    moto.create_bucket("slugs");
    // moto takes any credentials; the client needs some.
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    let store = SlugStore::open(
        parse_slug_store_url(&format!("s3://slugs/builds?endpoint={}", moto.endpoint())).unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("slug.tgz");
    std::fs::write(&file, b"pretend this is a slug").unwrap();
    let digest = "b".repeat(64);
    store.put_file(&digest, &file).await.unwrap();
    // Again: already there, nothing to do.
    store.put_file(&digest, &file).await.unwrap();
    assert_eq!(store.object_name(&digest), format!("builds/{digest}.tgz"));
    let (size, chunks) = store.get(&digest).await.unwrap();
    assert_eq!(size, 22);
    let bytes: Vec<u8> = chunks.map(|chunk| chunk.unwrap()).concat().await;
    assert_eq!(bytes, b"pretend this is a slug");
    store.overwrite(&digest, b"other".to_vec()).await.unwrap();
    let (size, _) = store.get(&digest).await.unwrap();
    assert_eq!(size, 5);
    assert!(store
        .get(&"c".repeat(64))
        .await
        .is_err_and(|e| e.is_not_found()));
    assert!(matches!(
        store.get("../x").await,
        Err(SlugStoreError::BadDigest { .. })
    ));
}
