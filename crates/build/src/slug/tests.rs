//! Slug pack/unpack round trips, GNU tar interoperability and hostile tarballs.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use tar::{EntryType, Header};

use super::{layers_dir, pack, pack_reusing, unpack_slug, unpack_source, PackStats};
use crate::BuildError;

const UID: u32 = 65534;
const GID: u32 = 65534;

fn write(path: &Path, contents: &str, mode: u32) {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, contents).expect("write");
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A small app tree with the awkward cases: symlinks, executables, a long path, empty dirs.
fn sample_tree(root: &Path) {
    write(&root.join("Procfile"), "web: ./serve.sh\n", 0o644);
    write(&root.join("serve.sh"), "#!/bin/sh\necho hi\n", 0o755);
    let long_dir = root.join("a".repeat(60)).join("b".repeat(60));
    write(&long_dir.join("c".repeat(40)), "deep", 0o600);
    fs::create_dir_all(root.join("empty/dir")).expect("mkdir");
    symlink("serve.sh", root.join("relative-link")).expect("symlink");
    symlink("/etc/passwd", root.join("absolute-link")).expect("symlink");
    symlink("x".repeat(150), root.join("long-target-link")).expect("symlink");
}

/// Paths, kinds, modes and contents of a tree, for comparison.
fn describe(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    describe_into(root, root, &mut out);
    out.sort();
    out
}

fn describe_into(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        let relative = path
            .strip_prefix(root)
            .expect("prefix")
            .display()
            .to_string();
        let meta = fs::symlink_metadata(&path).expect("meta");
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).expect("readlink");
            out.push(format!("{relative} -> {}", target.display()));
        } else if meta.is_dir() {
            out.push(format!("{relative}/ {:o}", meta.mode() & 0o777));
            describe_into(root, &path, out);
        } else {
            let contents = fs::read_to_string(&path).expect("read");
            out.push(format!("{relative} {:o} {contents:?}", meta.mode() & 0o777));
        }
    }
}

#[test]
fn pack_then_unpack_round_trips() {
    let build = tempfile::tempdir().expect("tempdir");
    let store = tempfile::tempdir().expect("tempdir");
    let dest = tempfile::tempdir().expect("tempdir");
    sample_tree(build.path());

    let packed = pack(build.path(), store.path(), None).expect("pack");
    assert_eq!(
        packed.path,
        store.path().join(format!("{}.tgz", packed.sha256))
    );
    let bytes = fs::read(&packed.path).expect("read slug");
    assert_eq!(packed.size, bytes.len() as u64);
    use sha2::Digest;
    assert_eq!(packed.sha256, hex::encode(sha2::Sha256::digest(&bytes)));
    // Nothing but the slug is left in the store (no temporary files).
    assert_eq!(fs::read_dir(store.path()).expect("ls").count(), 1);

    let app = dest.path().join("app");
    unpack_slug(&packed.path, &app, UID, GID).expect("unpack");
    assert_eq!(describe(build.path()), describe(&app));
    for entry in describe(&app) {
        let name = entry.split(' ').next().expect("name").trim_end_matches('/');
        let meta = fs::symlink_metadata(app.join(name)).expect("meta");
        assert_eq!((meta.uid(), meta.gid()), (UID, GID), "owner of {name}");
    }

    // Packing the same tree again gives the same content address.
    let again = pack(build.path(), store.path(), None).expect("pack again");
    assert_eq!(again.sha256, packed.sha256);
}

#[test]
fn slug_looks_like_gnu_tar_output() {
    let build = tempfile::tempdir().expect("tempdir");
    let store = tempfile::tempdir().expect("tempdir");
    sample_tree(build.path());
    let packed = pack(build.path(), store.path(), None).expect("pack");

    let listing = Command::new("tar")
        .arg("-tzvf")
        .arg(&packed.path)
        .arg("--numeric-owner")
        .output()
        .expect("run GNU tar");
    assert!(listing.status.success(), "{listing:?}");
    let listing = String::from_utf8_lossy(&listing.stdout);
    let lines: Vec<&str> = listing.lines().collect();
    assert!(lines[0].ends_with(" ./app/"), "{listing}");
    assert!(
        lines.iter().all(|l| l.contains(" 0/0 ")),
        "owned by root: {listing}"
    );
    assert!(
        listing.contains("./app/relative-link -> serve.sh"),
        "{listing}"
    );
    assert!(listing.contains(&format!(
        "./app/{}/{}/{}",
        "a".repeat(60),
        "b".repeat(60),
        "c".repeat(40)
    )));

    // GNU tar extracts the same tree.
    let extracted = tempfile::tempdir().expect("tempdir");
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(&packed.path)
        .arg("-C")
        .arg(extracted.path())
        .status()
        .expect("run GNU tar");
    assert!(status.success());
    assert_eq!(
        describe(build.path()),
        describe(&extracted.path().join("app"))
    );
}

#[test]
fn unpacks_slugs_made_by_gnu_tar() {
    let source = tempfile::tempdir().expect("tempdir");
    let app = source.path().join("app");
    sample_tree(&app);
    // Hard links are common in GNU tar output.
    fs::hard_link(app.join("serve.sh"), app.join("hardlinked.sh")).expect("link");
    write(&source.path().join("outside.txt"), "ignored", 0o644);
    let slug = source.path().join("slug.tgz");
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&slug)
        .arg("-C")
        .arg(source.path())
        .args(["./app", "./outside.txt"])
        .status()
        .expect("run GNU tar");
    assert!(status.success());

    let dest = tempfile::tempdir().expect("tempdir");
    unpack_slug(&slug, dest.path(), UID, GID).expect("unpack");
    assert_eq!(describe(&app), describe(dest.path()));
    assert!(!dest.path().join("outside.txt").exists());
}

/// Writes a tarball whose entries are given verbatim (name bytes are not sanitized).
fn hostile_slug(path: &Path, entries: &[(EntryType, &str, Option<&str>, &str)]) {
    let file = fs::File::create(path).expect("create");
    let encoder = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut builder = tar::Builder::new(encoder);
    for (kind, name, link, contents) in entries {
        let mut header = Header::new_gnu();
        header.set_entry_type(*kind);
        header.set_mode(0o755);
        header.set_size(contents.len() as u64);
        let old = header.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_cksum();
        builder
            .append(&header, contents.as_bytes())
            .expect("append");
    }
    builder
        .into_inner()
        .expect("finish tar")
        .finish()
        .expect("finish gzip");
}

/// Unpacks a hostile slug into `sandbox/dest` and checks it failed with `reason` and that
/// nothing but `dest` was created in the sandbox.
fn check_refused(entries: &[(EntryType, &str, Option<&str>, &str)], reason: &str) {
    let sandbox = tempfile::tempdir().expect("tempdir");
    let slug_dir = tempfile::tempdir().expect("tempdir");
    let slug = slug_dir.path().join("hostile.tgz");
    hostile_slug(&slug, entries);
    let dest = sandbox.path().join("dest");
    let error = unpack_slug(&slug, &dest, UID, GID).expect_err("hostile slug must be refused");
    match &error {
        BuildError::UnsafeSlugEntry { reason: r, .. } => {
            assert!(r.contains(reason), "{error} should be about {reason:?}")
        }
        other => panic!("unexpected error {other}"),
    }
    let names: Vec<_> = fs::read_dir(sandbox.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["dest"], "nothing written outside dest");
    assert!(!Path::new("/tmp/slipway-pwned").exists());
}

#[test]
fn hostile_slugs_are_refused() {
    use EntryType::*;
    check_refused(&[(Regular, "/tmp/slipway-pwned", None, "x")], "absolute");
    check_refused(&[(Regular, "./app/../../pwned", None, "x")], "..");
    check_refused(&[(Regular, "app/x/../../../pwned", None, "x")], "..");
    // Symlink to outside, then write through it.
    check_refused(
        &[
            (Symlink, "./app/escape", Some(".."), ""),
            (Regular, "./app/escape/pwned", None, "x"),
        ],
        "symlink",
    );
    check_refused(
        &[
            (Symlink, "./app/escape", Some("/tmp"), ""),
            (Directory, "./app/escape/sub/", None, ""),
        ],
        "symlink",
    );
    check_refused(&[(Char, "./app/null", None, "")], "device");
    check_refused(&[(Block, "./app/sda", None, "")], "device");
    check_refused(&[(Fifo, "./app/fifo", None, "")], "FIFO");
    check_refused(
        &[(Link, "./app/passwd", Some("/etc/passwd"), "")],
        "absolute",
    );
    check_refused(
        &[(Link, "./app/passwd", Some("../../etc/passwd"), "")],
        "..",
    );
    check_refused(
        &[
            (Symlink, "./app/link", Some("/etc/passwd"), ""),
            (Link, "./app/hard", Some("./app/link"), ""),
        ],
        "not an extracted regular file",
    );
}

#[test]
fn symlink_replaced_by_a_file_is_not_followed() {
    // A symlink entry followed by a regular file of the same name must replace the symlink,
    // not write to its target.
    let sandbox = tempfile::tempdir().expect("tempdir");
    let victim = sandbox.path().join("victim.txt");
    fs::write(&victim, "original").expect("write");
    let slug = sandbox.path().join("s.tgz");
    let victim_str = victim.to_string_lossy().into_owned();
    hostile_slug(
        &slug,
        &[
            (EntryType::Symlink, "./app/f", Some(victim_str.as_str()), ""),
            (EntryType::Regular, "./app/f", None, "overwritten"),
        ],
    );
    let dest = sandbox.path().join("dest");
    unpack_slug(&slug, &dest, UID, GID).expect("unpack");
    assert_eq!(fs::read_to_string(&victim).expect("read"), "original");
    assert_eq!(
        fs::read_to_string(dest.join("f")).expect("read"),
        "overwritten"
    );
    assert!(!fs::symlink_metadata(dest.join("f"))
        .expect("meta")
        .file_type()
        .is_symlink());
}

#[test]
fn setuid_bits_are_dropped_and_outside_entries_ignored() {
    let sandbox = tempfile::tempdir().expect("tempdir");
    let slug = sandbox.path().join("s.tgz");
    let file = fs::File::create(&slug).expect("create");
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::fast(),
    ));
    let mut header = Header::new_gnu();
    header.set_entry_type(EntryType::Regular);
    header.set_mode(0o4755);
    header.set_size(1);
    header.set_path("app/suid").expect("path");
    header.set_cksum();
    builder.append(&header, &b"x"[..]).expect("append");
    header.set_path("etc/passwd").expect("path");
    header.set_cksum();
    builder.append(&header, &b"x"[..]).expect("append");
    builder.into_inner().expect("tar").finish().expect("gzip");

    let dest = sandbox.path().join("dest");
    unpack_slug(&slug, &dest, UID, GID).expect("unpack");
    let mode = fs::metadata(dest.join("suid")).expect("meta").mode();
    assert_eq!(mode & 0o7777, 0o755);
    assert!(!dest.join("etc").exists());
}

/// One tar entry: kind, name, link target, contents.
type TarEntry<'a> = (EntryType, &'a str, Option<&'a str>, &'a [u8]);

/// A plain (not gzip'd) tarball with the given entries, as `git archive` streams one.
fn plain_tar(entries: &[TarEntry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (kind, name, link, contents) in entries {
        let mut header = Header::new_gnu();
        header.set_entry_type(*kind);
        header.set_mode(0o644);
        header.set_size(contents.len() as u64);
        let old = header.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_cksum();
        builder.append(&header, *contents).expect("append");
    }
    builder.into_inner().expect("finish tar")
}

#[test]
fn sources_unpack_with_symlinks_kept_as_symlinks() {
    use EntryType::*;
    let sandbox = tempfile::tempdir().expect("tempdir");
    let dest = sandbox.path().join("source");
    let tar = plain_tar(&[
        (Directory, "lib/", None, b""),
        (Regular, "lib/a.py", None, b"print(1)"),
        (Symlink, "Procfile", Some("/etc/shadow"), b""),
        (Link, "copy.py", Some("lib/a.py"), b""),
    ]);
    unpack_source(tar.as_slice(), &dest, UID, GID, 1 << 20).expect("unpack");
    assert_eq!(
        fs::read_link(dest.join("Procfile")).expect("a symlink"),
        Path::new("/etc/shadow")
    );
    assert_eq!(fs::read(dest.join("copy.py")).expect("copy"), b"print(1)");
    assert_eq!(fs::read(dest.join("lib/a.py")).expect("file"), b"print(1)");
}

#[test]
fn hostile_sources_are_refused_and_write_nothing_outside() {
    use EntryType::*;
    let cases: &[(&[TarEntry<'_>], &str)] = &[
        (&[(Regular, "/tmp/slipway-pwned", None, b"x")], "absolute"),
        (&[(Regular, "../pwned", None, b"x")], ".."),
        (
            &[
                (Symlink, "escape", Some(".."), b""),
                (Regular, "escape/pwned", None, b"x"),
            ],
            "symlink",
        ),
        (&[(Link, "passwd", Some("/etc/passwd"), b"")], "absolute"),
        (&[(Link, "passwd", Some("../../etc/passwd"), b"")], ".."),
        (
            &[
                (Symlink, "link", Some("/etc/passwd"), b""),
                (Link, "hard", Some("link"), b""),
            ],
            "not an extracted regular file",
        ),
        (&[(Char, "null", None, b"")], "device"),
        (&[(Fifo, "fifo", None, b"")], "FIFO"),
    ];
    for (entries, reason) in cases {
        let sandbox = tempfile::tempdir().expect("tempdir");
        let dest = sandbox.path().join("source");
        let error = unpack_source(plain_tar(entries).as_slice(), &dest, UID, GID, 1 << 20)
            .expect_err("hostile source must be refused");
        match &error {
            BuildError::UnsafeSourceEntry { reason: r, .. } => {
                assert!(r.contains(reason), "{error} should be about {reason:?}")
            }
            other => panic!("unexpected error {other}"),
        }
        let names: Vec<_> = fs::read_dir(sandbox.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["source"], "nothing written outside dest");
        assert!(!sandbox.path().join("pwned").exists());
    }
}

#[test]
fn sources_and_slugs_expanding_past_the_cap_are_refused_early() {
    use EntryType::*;
    // A 4 MiB file of zeros: tiny once gzip'd, over a 1 MiB cap once unpacked.
    let zeros = vec![0u8; 4 << 20];
    let tar = plain_tar(&[
        (Regular, "small", None, b"ok"),
        (Regular, "big", None, zeros.as_slice()),
    ]);
    let sandbox = tempfile::tempdir().expect("tempdir");
    let dest = sandbox.path().join("source");
    let error = unpack_source(tar.as_slice(), &dest, UID, GID, 1 << 20).expect_err("over the cap");
    assert!(
        matches!(error, BuildError::ArchiveTooLarge { what: "source", max } if max == 1 << 20),
        "{error}"
    );
    assert!(error.to_string().contains("more than 1M"), "{error}");
    assert!(
        !dest.join("big").exists(),
        "the big entry is refused before it is written"
    );
    // Many hard links to one file count each copy.
    let mut entries: Vec<(EntryType, String, Option<&str>, &[u8])> =
        vec![(Regular, "f".to_string(), None, &zeros[..512 * 1024])];
    for i in 0..4 {
        entries.push((Link, format!("l{i}"), Some("f"), b""));
    }
    let entries: Vec<TarEntry<'_>> = entries
        .iter()
        .map(|(k, n, l, c)| (*k, n.as_str(), *l, *c))
        .collect();
    let dest = sandbox.path().join("links");
    let error = unpack_source(plain_tar(&entries).as_slice(), &dest, UID, GID, 1 << 20)
        .expect_err("copies count");
    assert!(
        matches!(error, BuildError::ArchiveTooLarge { .. }),
        "{error}"
    );
}

#[test]
fn a_slug_over_the_maximum_is_refused_with_herokus_message_and_not_kept() {
    let build = tempfile::tempdir().expect("tempdir");
    let store = tempfile::tempdir().expect("tempdir");
    // 3 MiB of random-ish bytes that gzip cannot shrink much.
    let mut data = Vec::with_capacity(3 << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while data.len() < 3 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    fs::write(build.path().join("blob"), &data).expect("write");
    let error = pack(build.path(), store.path(), Some(1 << 20)).expect_err("too large");
    assert!(
        matches!(error, BuildError::SlugTooLarge { size, max } if size > (3 << 20) && max == 1 << 20),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("Compiled slug size: 3M is too large (max is 1M)."),
        "{error}"
    );
    let left: Vec<_> = fs::read_dir(store.path()).expect("ls").collect();
    assert!(left.is_empty(), "no slug or partial file is kept: {left:?}");
    pack(build.path(), store.path(), Some(8 << 20)).expect("fits under a larger cap");
}

/// A tree with many entries (several runs) and a large file (a run of its own).
fn layered_tree(root: &Path) {
    sample_tree(root);
    for dir in 0..4 {
        for file in 0..60 {
            write(
                &root.join(format!("lib{dir}/mod{file}.js")),
                &format!("module.exports = {dir} * {file};\n").repeat(20),
                0o644,
            );
        }
    }
    let large: String = (0..200_000).map(|i| format!("{i:08}\n")).collect();
    write(&root.join("bin/runtime"), &large, 0o755);
}

fn pack_layered(build: &Path, store: &Path, layers: &Path) -> (super::PackedSlug, PackStats) {
    pack_reusing(build, store, None, Some(layers)).expect("pack with layers")
}

fn unpacked(slug: &Path) -> Vec<String> {
    let dest = tempfile::tempdir().expect("tempdir");
    let app = dest.path().join("app");
    unpack_slug(slug, &app, UID, GID).expect("unpack");
    describe(&app)
}

#[test]
fn a_repack_reuses_every_unchanged_run_and_recompresses_only_the_changed_one() {
    let build = tempfile::tempdir().expect("tempdir");
    let store = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    let layers = layers_dir(&cache.path().join("app-cache"));
    layered_tree(build.path());

    let (first, stats) = pack_layered(build.path(), store.path(), &layers);
    assert_eq!(stats.reused_parts, 0, "{stats:?}");
    assert!(stats.compressed_parts > 3, "several runs: {stats:?}");
    assert_eq!(unpacked(&first.path), describe(build.path()));

    // The same tree: every run comes from the layers, and the slug is byte for byte the same.
    let (second, stats) = pack_layered(build.path(), store.path(), &layers);
    assert_eq!(stats.compressed_parts, 0, "{stats:?}");
    assert_eq!(second.sha256, first.sha256);

    // One source file changed: only its run is compressed again, and the slug holds the change.
    write(&build.path().join("lib2/mod7.js"), "changed\n", 0o644);
    let (third, stats) = pack_layered(build.path(), store.path(), &layers);
    assert_eq!(stats.compressed_parts, 1, "{stats:?}");
    assert!(stats.reused_parts > 3, "{stats:?}");
    assert!(
        stats.reused_bytes > 1_000_000,
        "the large file was reused: {stats:?}"
    );
    assert_ne!(third.sha256, first.sha256);
    assert_eq!(unpacked(&third.path), describe(build.path()));

    // GNU tar reads the series of gzip members as one archive.
    let extracted = tempfile::tempdir().expect("tempdir");
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(&third.path)
        .arg("-C")
        .arg(extracted.path())
        .status()
        .expect("run GNU tar");
    assert!(status.success());
    assert_eq!(
        describe(build.path()),
        describe(&extracted.path().join("app"))
    );

    // Only the runs of the last slug are kept.
    let kept = fs::read_dir(&layers).expect("ls layers").count();
    assert_eq!(kept, stats.reused_parts + stats.compressed_parts);
}

#[test]
fn a_damaged_layer_is_compressed_again_never_copied_into_the_slug() {
    let build = tempfile::tempdir().expect("tempdir");
    let store = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    let layers = layers_dir(&cache.path().join("app-cache"));
    layered_tree(build.path());
    let (first, _) = pack_layered(build.path(), store.path(), &layers);

    // Cut every kept member short (as a crash during a write could) and garble another.
    let mut members: Vec<_> = fs::read_dir(&layers)
        .expect("ls layers")
        .map(|e| e.expect("entry").path())
        .collect();
    members.sort();
    let damaged = members.len();
    for (index, member) in members.iter().enumerate() {
        let bytes = fs::read(member).expect("read member");
        if index % 2 == 0 {
            fs::write(member, &bytes[..bytes.len() / 2]).expect("truncate");
        } else {
            let mut bytes = bytes;
            let last = bytes.len() - 1;
            bytes[last] ^= 0xff;
            fs::write(member, bytes).expect("garble");
        }
    }
    let (second, stats) = pack_layered(build.path(), store.path(), &layers);
    assert_eq!(stats.reused_parts, 0, "{stats:?}");
    assert_eq!(stats.compressed_parts, damaged, "{stats:?}");
    assert_eq!(second.sha256, first.sha256);
    assert_eq!(unpacked(&second.path), describe(build.path()));
}

#[test]
fn layers_live_beside_the_build_cache_not_inside_it() {
    let cache = Path::new("/data/cache/0b6f0f8e-app");
    assert_eq!(
        layers_dir(cache),
        Path::new("/data/cache/0b6f0f8e-app.slug-layers")
    );
    assert!(!layers_dir(cache).starts_with(cache));
}

#[test]
fn an_untouched_run_is_reused_unread_and_a_file_changed_in_place_is_read_again() {
    let build = tempfile::tempdir().expect("tempdir");
    let store = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    let layers = layers_dir(&cache.path().join("app-cache"));
    layered_tree(build.path());
    let (first, stats) = pack_layered(build.path(), store.path(), &layers);
    assert_eq!(stats.unread_parts, 0, "{stats:?}");

    // Nothing changed: every run is taken on its entries' inodes and ctimes alone.
    let (second, stats) = pack_layered(build.path(), store.path(), &layers);
    assert_eq!(stats.compressed_parts, 0, "{stats:?}");
    assert_eq!(stats.unread_parts, stats.reused_parts, "{stats:?}");
    assert_eq!(second.sha256, first.sha256);

    // A file rewritten in place with the same size and its old mtime put back: its ctime
    // moved, so its run is read (and compressed) again and the slug holds the new bytes.
    let path = build.path().join("lib2/mod7.js");
    let before = fs::metadata(&path).expect("stat");
    let old = fs::read(&path).expect("read");
    let mut new = old.clone();
    new[0] ^= 1;
    fs::write(&path, &new).expect("rewrite");
    fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|file| file.set_modified(before.modified().expect("mtime")))
        .expect("put the mtime back");
    assert_eq!(fs::metadata(&path).expect("stat").len(), before.len());
    let (third, stats) = pack_layered(build.path(), store.path(), &layers);
    assert_eq!(stats.compressed_parts, 1, "{stats:?}");
    assert_eq!(stats.unread_parts, stats.reused_parts, "{stats:?}");
    assert_ne!(third.sha256, first.sha256);
    assert_eq!(unpacked(&third.path), describe(build.path()));
    let plain = tempfile::tempdir().expect("tempdir");
    let (fresh, _) = pack_reusing(build.path(), plain.path(), None, None).expect("plain pack");
    assert_eq!(unpacked(&fresh.path), unpacked(&third.path));

    // The index is the platform's, beside the layers, and a garbled one is only ignored.
    let index = super::stat_index_path(&layers);
    assert!(index.is_file());
    assert!(!index.starts_with(&layers));
    fs::write(&index, "not an index\n0 1 2 3\n").expect("garble");
    let (fourth, stats) = pack_layered(build.path(), store.path(), &layers);
    assert_eq!(stats.unread_parts, 0, "{stats:?}");
    assert_eq!(fourth.sha256, third.sha256);
}
