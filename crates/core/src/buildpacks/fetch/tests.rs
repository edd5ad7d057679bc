//! Tests of the buildpack fetcher's pure parts and of tarball unpacking.

use super::*;

#[test]
fn ls_remote_listings_pick_branch_then_tag() {
    let a = "a".repeat(40);
    let b = "b".repeat(40);
    let c = "c".repeat(40);
    let d = "d".repeat(40);
    let listing = format!(
        "{a}\tHEAD\n{a}\trefs/heads/main\n{b}\trefs/heads/v1\n{c}\trefs/tags/v2\n{d}\trefs/tags/v2^{{}}\nnot a line\n"
    );
    fn check(listing: &str, wanted: &str, expected: Option<&str>) {
        assert_eq!(pick_ref(listing, wanted).as_deref(), expected, "{wanted}");
    }
    check(&listing, "HEAD", Some(&a));
    check(&listing, "main", Some(&a));
    check(&listing, "v1", Some(&b));
    // An annotated tag is the commit it points at.
    check(&listing, "v2", Some(&d));
    check(&listing, "v3", None);
    check("", "main", None);
}

#[test]
fn full_shas_only() {
    assert!(is_full_sha(&"0123456789abcdef".repeat(3)[..40]));
    assert!(!is_full_sha("0123456"));
    assert!(!is_full_sha(&"g".repeat(40)));
}

fn tgz(files: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (path, contents) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        builder
            .append_data(&mut header, path, contents.as_bytes())
            .unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

#[test]
fn tarballs_unpack_at_their_root_or_single_directory() {
    let temp = tempfile::tempdir().unwrap();
    let check = |name: &str, files: &[(&str, &str)], root: &str| {
        let tarball = temp.path().join(format!("{name}.tgz"));
        std::fs::write(&tarball, tgz(files)).unwrap();
        let dest = temp.path().join(name);
        let found = unpack_tarball(&tarball, &dest).unwrap();
        assert_eq!(found, dest.join(root), "{name}");
        assert!(is_buildpack_dir(&found), "{name}");
    };
    check(
        "flat",
        &[
            ("bin/detect", "#!/bin/sh\n"),
            ("bin/compile", "#!/bin/sh\n"),
        ],
        "",
    );
    check(
        "github",
        &[
            ("bp-1.0/bin/detect", "#!/bin/sh\n"),
            ("bp-1.0/bin/compile", "#!/bin/sh\n"),
        ],
        "bp-1.0",
    );
    let garbage = temp.path().join("garbage.tgz");
    std::fs::write(&garbage, b"not gzip at all").unwrap();
    let error = unpack_tarball(&garbage, &temp.path().join("garbage")).unwrap_err();
    assert!(error.contains("not a gzip'd tar archive"), "{error}");
}

#[tokio::test]
async fn a_tree_without_bin_compile_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    let tree = temp.path().join("tree");
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::write(tree.join("bin/detect"), "").unwrap();
    std::os::unix::fs::symlink("/bin/true", tree.join("bin/compile")).unwrap();
    let error = finish_tree(&tree, &temp.path().join("final"), false)
        .await
        .unwrap_err();
    assert!(error.contains("no bin/compile"), "{error}");
    assert!(!temp.path().join("final").exists());
}
