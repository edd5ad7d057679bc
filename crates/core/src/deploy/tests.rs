//! Tests of deploying: slug garbage collection and source unpacking.

use super::*;

/// A platform on a temporary data dir with a SQLite store and the process runtime.
async fn platform(data_dir: &Path) -> Arc<Platform> {
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

fn slug_record(app_id: Uuid, digest: &str) -> Slug {
    Slug {
        id: Uuid::new_v4(),
        app_id,
        checksum: format!("SHA256:{digest}"),
        size: 1,
        process_types: Default::default(),
        commit: None,
        buildpack_description: String::new(),
        stack: "heroku-24".into(),
        stack_id: None,
        created_at: Utc::now(),
    }
}

#[tokio::test]
async fn failed_deploys_remove_only_slugs_no_record_references() {
    let temp = tempfile::tempdir().unwrap();
    let platform = platform(temp.path()).await;
    let (app, other_app) = (Uuid::new_v4(), Uuid::new_v4());
    let referenced = "a".repeat(64);
    let orphan = "b".repeat(64);
    let record = slug_record(other_app, &referenced);
    slipway_store::json::put_json(
        platform.store().as_ref(),
        &keys::slug(other_app, record.id),
        &record,
    )
    .await
    .unwrap();
    let slugs = platform.config().slugs_dir();
    for digest in [&referenced, &orphan] {
        std::fs::write(slugs.join(format!("{digest}.tgz")), b"slug").unwrap();
    }
    // Another app's slug record names the same content: kept.
    platform
        .remove_slug_if_unreferenced(app, &slugs.join(format!("{referenced}.tgz")))
        .await;
    assert!(slugs.join(format!("{referenced}.tgz")).exists());
    // While another app builds, it may be about to record the same content: kept.
    platform.building().lock().unwrap().insert(other_app);
    platform
        .remove_slug_if_unreferenced(app, &slugs.join(format!("{orphan}.tgz")))
        .await;
    assert!(slugs.join(format!("{orphan}.tgz")).exists());
    platform.building().lock().unwrap().remove(&other_app);
    // Otherwise an unreferenced slug goes.
    platform
        .remove_slug_if_unreferenced(app, &slugs.join(format!("{orphan}.tgz")))
        .await;
    assert!(!slugs.join(format!("{orphan}.tgz")).exists());
}

#[tokio::test]
async fn the_start_up_sweep_keeps_referenced_slugs_and_removes_the_rest() {
    let temp = tempfile::tempdir().unwrap();
    let platform = platform(temp.path()).await;
    let app = Uuid::new_v4();
    let referenced = "c".repeat(64);
    let orphan = "d".repeat(64);
    let record = slug_record(app, &referenced);
    slipway_store::json::put_json(
        platform.store().as_ref(),
        &keys::slug(app, record.id),
        &record,
    )
    .await
    .unwrap();
    let (slugs, builds, unpacked) = (
        platform.config().slugs_dir(),
        platform.config().builds_dir(),
        platform.config().unpacked_slugs_dir(),
    );
    for name in [
        format!("{referenced}.tgz"),
        format!("{orphan}.tgz"),
        ".partial-x.tgz".into(),
        ".upload-y.tgz".into(),
    ] {
        std::fs::write(slugs.join(name), b"slug").unwrap();
    }
    std::fs::create_dir_all(builds.join(Uuid::new_v4().to_string()).join("source")).unwrap();
    std::fs::write(builds.join("source-1.tar"), b"tar").unwrap();
    let per_uid = platform.config().unpacked_slug_dir(&referenced, 100_000);
    for dir in [
        unpacked.join(&referenced),
        per_uid.clone(),
        platform.config().unpacked_slug_dir(&orphan, 100_001),
        unpacked.join(&orphan),
        unpacked.join(format!(".{referenced}.tmp")),
    ] {
        std::fs::create_dir_all(dir.join("app")).unwrap();
    }
    platform.clean_up_previous_run().await.unwrap();
    assert_eq!(read_dir_names(&slugs), [format!("{referenced}.tgz")]);
    assert!(read_dir_names(&builds).is_empty());
    let mut left = read_dir_names(&unpacked);
    left.sort();
    let per_uid = per_uid.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(
        left,
        [referenced, per_uid],
        "a running dyno's unpacked slug (its /app lower layer) must survive the sweep"
    );
}

fn tarball(entries: &[(&str, &str)], gzip: bool) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, contents) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, path, contents.as_bytes())
            .unwrap();
    }
    let tar = builder.into_inner().unwrap();
    if !gzip {
        return tar;
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut encoder, &tar).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn source_blobs_unpack_plain_or_gzipped_and_lose_a_single_top_level_directory() {
    for (entries, gzip, from_blob, expected) in [
        (
            &[("app-1234/Procfile", "web: x"), ("app-1234/lib/a.py", "")][..],
            true,
            true,
            &["Procfile", "lib"][..],
        ),
        (
            &[("app-1234/Procfile", "web: x")][..],
            false,
            true,
            &["Procfile"][..],
        ),
        (
            &[("Procfile", "web: x"), ("lib/a.py", "")][..],
            true,
            true,
            &["Procfile", "lib"][..],
        ),
        (&[("lib/a.py", "")][..], false, false, &["lib"][..]),
        (&[("only/a.py", "")][..], false, false, &["only"][..]),
    ] {
        let temp = tempfile::tempdir().unwrap();
        let tar_path = temp.path().join("source.tar");
        std::fs::write(&tar_path, tarball(entries, gzip)).unwrap();
        let dest = temp.path().join("source");
        std::fs::create_dir(&dest).unwrap();
        unpack_source(
            &tar_path,
            &dest,
            from_blob,
            &temp.path().join("scratch"),
            1 << 20,
        )
        .unwrap();
        let mut found: Vec<String> = std::fs::read_dir(&dest)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        found.sort();
        assert_eq!(
            found, expected,
            "{entries:?} gzip={gzip} from_blob={from_blob}"
        );
    }
}

#[test]
fn a_source_blob_that_is_not_a_tarball_is_an_error() {
    let temp = tempfile::tempdir().unwrap();
    let tar_path = temp.path().join("source.tar");
    std::fs::write(&tar_path, b"<html>not found</html>".repeat(40)).unwrap();
    let dest = temp.path().join("source");
    std::fs::create_dir(&dest).unwrap();
    assert!(unpack_source(&tar_path, &dest, true, &temp.path().join("s"), 1 << 20).is_err());
}
