//! Kept directories: restored only where the source has nothing of its own, kept only when
//! the build left a real directory, and never through a symbolic link.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::*;

const DIRS: &[&str] = &[".heroku/python"];

/// Our own uid and gid, the owner of what the tests create (they run as whoever runs them).
fn ids() -> (u32, u32) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let metadata = fs::metadata(dir.path()).expect("its metadata");
    (metadata.uid(), metadata.gid())
}

/// A build directory and a build cache beside each other, as the platform lays them out.
fn layout() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let root = tempfile::tempdir().expect("a temporary directory");
    let source = root.path().join("source");
    let cache = root.path().join("cache");
    fs::create_dir_all(&source).unwrap();
    fs::create_dir_all(&cache).unwrap();
    (root, source, cache)
}

fn write(path: &Path, contents: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, contents).unwrap();
}

#[test]
fn a_kept_tree_comes_back_in_the_next_build_and_goes_back_after_it() {
    let (_root, source, cache) = layout();
    let (uid, gid) = ids();

    // First build: nothing to restore, the directory is kept for the buildpack.
    let first = restore(&source, &cache, "python", DIRS, uid, gid).unwrap();
    assert_eq!(first.len(), 1);
    assert!(!first[0].restored);
    assert_eq!(
        step_env(&first),
        vec![
            (KEPT_DIRS_VAR.to_owned(), ".heroku/python".to_owned()),
            (RESTORED_DIRS_VAR.to_owned(), String::new()),
        ]
    );
    write(&source.join(".heroku/python/bin/python"), "venv");
    assert_eq!(keep(&first).unwrap(), 1);
    assert!(!source.join(".heroku/python").exists());
    let stored = kept_root(&cache).join("python/.heroku-python");
    assert_eq!(
        fs::read_to_string(stored.join("bin/python")).unwrap(),
        "venv"
    );
    let mode = fs::metadata(stored.parent().unwrap()).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o700, "the store is the platform's");

    // Next build, from a fresh source: the tree is back, by rename (the same inode).
    fs::remove_dir_all(&source).unwrap();
    fs::create_dir_all(&source).unwrap();
    let inode = fs::metadata(stored.join("bin/python")).unwrap().ino();
    let second = restore(&source, &cache, "python", DIRS, uid, gid).unwrap();
    assert!(second[0].restored);
    assert_eq!(step_env(&second)[1].1, ".heroku/python");
    let restored = source.join(".heroku/python/bin/python");
    assert_eq!(fs::metadata(&restored).unwrap().ino(), inode);
    assert!(!stored.exists());

    // Purging removes the store.
    keep(&second).unwrap();
    assert!(remove_all(&cache).unwrap());
    assert!(!kept_root(&cache).exists());
}

#[test]
fn the_sources_own_directory_or_a_link_on_the_way_is_never_replaced() {
    let (uid, gid) = ids();
    // The source has its own .heroku/python: the buildpack sees it, as without kept dirs.
    let (_root, source, cache) = layout();
    write(&source.join(".heroku/python/mine"), "tenant");
    assert!(restore(&source, &cache, "python", DIRS, uid, gid)
        .unwrap()
        .is_empty());
    assert_eq!(
        fs::read_to_string(source.join(".heroku/python/mine")).unwrap(),
        "tenant"
    );

    // .heroku is a symbolic link: nothing is created or restored through it.
    let (_root, source, cache) = layout();
    let elsewhere = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), source.join(".heroku")).unwrap();
    assert!(restore(&source, &cache, "python", DIRS, uid, gid)
        .unwrap()
        .is_empty());
    assert_eq!(fs::read_dir(elsewhere.path()).unwrap().count(), 0);
}

#[test]
fn a_link_left_by_the_build_is_not_kept() {
    let (_root, source, cache) = layout();
    let (uid, gid) = ids();
    let dirs = restore(&source, &cache, "python", DIRS, uid, gid).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), source.join(".heroku/python")).unwrap();
    assert_eq!(keep(&dirs).unwrap(), 0);
    assert!(!kept_root(&cache).join("python/.heroku-python").exists());
    assert!(fs::symlink_metadata(source.join(".heroku/python"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn a_tree_of_another_owner_is_discarded() {
    let (_root, source, cache) = layout();
    let (uid, gid) = ids();
    let stored = kept_root(&cache).join("python/.heroku-python");
    write(&stored.join("bin/python"), "someone else's");
    let dirs = restore(&source, &cache, "python", DIRS, uid + 1, gid).unwrap();
    assert!(!dirs[0].restored);
    assert!(!stored.exists());
    assert!(!source.join(".heroku/python").exists());
}
