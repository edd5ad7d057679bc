//! Tests of the build's filesystem chores: reading tenant files safely, ownership, copies.

use super::*;
use std::os::unix::fs::symlink;

#[test]
fn reads_regular_files_and_reports_missing_ones() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("Procfile"), "web: x\n").unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();
    fs::write(dir.path().join("sub/f"), "y").unwrap();
    let read = |rel| read_tenant_file(dir.path(), rel, TENANT_FILE_CAP);
    assert_eq!(read("Procfile").unwrap().unwrap(), b"web: x\n");
    assert_eq!(read("sub/f").unwrap().unwrap(), b"y");
    assert!(read("missing").unwrap().is_none());
    assert!(read("missing/f").unwrap().is_none());
    assert!(read("Procfile/f").unwrap().is_none());
    for bad in ["", "/etc/shadow", "../x", "sub/../Procfile", "."] {
        assert!(
            matches!(read(bad), Err(TenantFileError::InvalidPath { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn symlinks_anywhere_in_the_path_are_refused_without_reading_the_target() {
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("admin.key"), "SECRET-KEY-MATERIAL").unwrap();
    let dir = tempfile::tempdir().unwrap();
    symlink(
        outside.path().join("admin.key"),
        dir.path().join("Procfile"),
    )
    .unwrap();
    symlink(outside.path(), dir.path().join("linked")).unwrap();
    fs::write(dir.path().join("real"), "web: x").unwrap();
    symlink("real", dir.path().join("relative")).unwrap();
    for rel in ["Procfile", "linked/admin.key", "relative"] {
        let error = read_tenant_file(dir.path(), rel, TENANT_FILE_CAP).unwrap_err();
        assert!(
            matches!(error, TenantFileError::Symlink { .. }),
            "{rel}: {error:?}"
        );
        assert!(!error.to_string().contains("SECRET"), "{error}");
    }
}

#[test]
fn special_files_are_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("Procfile");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    fs::create_dir(dir.path().join("app.json")).unwrap();
    for (rel, kind) in [("Procfile", "FIFO"), ("app.json", "directory")] {
        match read_tenant_file(dir.path(), rel, TENANT_FILE_CAP) {
            Err(TenantFileError::NotRegular { kind: found, .. }) => assert_eq!(found, kind),
            other => panic!("{rel}: {other:?}"),
        }
    }
}

#[test]
fn files_over_the_cap_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("big"), vec![b'x'; 1025]).unwrap();
    fs::write(dir.path().join("fits"), vec![b'x'; 1024]).unwrap();
    assert!(matches!(
        read_tenant_file(dir.path(), "big", 1024),
        Err(TenantFileError::TooLarge { cap: 1024, .. })
    ));
    assert_eq!(
        read_tenant_file(dir.path(), "fits", 1024)
            .unwrap()
            .unwrap()
            .len(),
        1024
    );
}
