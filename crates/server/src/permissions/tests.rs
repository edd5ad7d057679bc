//! Tests of the data directory's permissions.

use std::os::unix::fs::PermissionsExt;

use super::*;

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn tightens_everything_but_buildpacks_and_runtime_directories() {
    let temp = tempfile::tempdir().expect("temp dir");
    let data = temp.path();
    for dir in ["slugs", "buildpacks/python", "runtime/bundle/rootfs"] {
        std::fs::create_dir_all(data.join(dir)).expect("mkdir");
    }
    for file in ["slipway.db", "slugs/a.tgz", "runtime/bundle/config.json"] {
        std::fs::write(data.join(file), "x").expect("write");
        set_mode(&data.join(file), 0o644);
    }
    for dir in ["", "slugs", "buildpacks", "runtime", "runtime/bundle"] {
        set_mode(&data.join(dir), 0o755);
    }

    let changed = tighten_permissions(data).expect("tighten");

    assert_eq!(mode(data), 0o700);
    assert_eq!(mode(&data.join("slipway.db")), 0o600);
    assert_eq!(mode(&data.join("slugs")), 0o700);
    assert_eq!(mode(&data.join("slugs/a.tgz")), 0o600);
    assert_eq!(
        mode(&data.join("buildpacks")),
        0o755,
        "buildpacks are read by builds"
    );
    assert_eq!(mode(&data.join("runtime")), 0o700);
    assert_eq!(
        mode(&data.join("runtime/bundle")),
        0o755,
        "dynos traverse bundles"
    );
    assert_eq!(mode(&data.join("runtime/bundle/config.json")), 0o600);
    assert_eq!(changed, 6);
    assert_eq!(tighten_permissions(data).expect("again"), 0, "idempotent");
}

#[test]
fn secrets_are_written_0600() {
    let temp = tempfile::tempdir().expect("temp dir");
    let path = temp.path().join("admin.key");
    write_secret(&path, "sekrit").expect("write");
    assert_eq!(mode(&path), 0o600);
    assert_eq!(std::fs::read_to_string(&path).expect("read"), "sekrit");
}
