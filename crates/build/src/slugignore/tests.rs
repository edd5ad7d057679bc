//! Tests of `.slugignore` patterns and pruning.

use std::fs;

use super::*;

fn check(slugignore: &str, path: &str, is_dir: bool, expected: bool) {
    let patterns = parse(slugignore);
    let matched = patterns.iter().any(|p| p.matches(path, is_dir));
    assert_eq!(
        matched, expected,
        "{slugignore:?} vs {path:?} (dir: {is_dir})"
    );
}

#[test]
fn matching() {
    check("*.psd", "art.psd", false, true);
    check("*.psd", "assets/deep/art.psd", false, true);
    check("*.psd", "art.psd.txt", false, false);
    check("/docs", "docs", true, true);
    check("/docs", "sub/docs", true, false);
    check("docs", "sub/docs", true, true);
    check("spec/fixtures", "spec/fixtures", true, true);
    check("spec/fixtures", "other/spec/fixtures", true, false);
    check("spec/*.rb", "spec/a.rb", false, true);
    check("spec/*.rb", "spec/x/a.rb", false, false);
    check("spec/**/*.rb", "spec/x/y/a.rb", false, true);
    check("spec/**/*.rb", "spec/a.rb", false, true);
    check("tmp/", "tmp", true, true);
    check("tmp/", "tmp", false, false);
    check("file?.txt", "file1.txt", false, true);
    check("# comment\n\n  ", "anything", false, false);
    check("log # trailing comment", "log", true, true);
    check("!keep.txt", "keep.txt", false, false);
}

#[test]
fn apply_removes_matches_and_not_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    for file in [
        "keep.txt",
        "big.psd",
        "docs/a.md",
        "src/big.psd",
        "src/main.py",
    ] {
        let path = root.join(file);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(&path, "x").expect("write");
    }
    std::os::unix::fs::symlink("/etc", root.join("etc-link")).expect("symlink");
    let removed = apply(root, &parse("*.psd\n/docs\netc-link\n")).expect("apply");
    assert_eq!(removed, ["big.psd", "docs", "etc-link", "src/big.psd"]);
    assert!(root.join("keep.txt").exists());
    assert!(root.join("src/main.py").exists());
    assert!(!root.join("docs").exists());
    assert!(
        Path::new("/etc/passwd").exists(),
        "the symlink was not followed"
    );
}
