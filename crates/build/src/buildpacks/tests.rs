//! Tests of buildpack resolution, `.buildpacks` parsing and the language-file check.

use super::*;

#[test]
fn dot_buildpacks_is_one_buildpack_per_line() {
    fn check(text: &str, expected: Result<&[&str], &str>) {
        let parsed = parse_dot_buildpacks(text);
        match expected {
            Ok(list) => assert_eq!(
                parsed,
                Ok(list.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
                "{text:?}"
            ),
            Err(needle) => {
                let error = parsed.expect_err(text);
                assert!(
                    error.contains(needle),
                    "{error:?} should contain {needle:?}"
                );
            }
        }
    }
    check("", Ok(&[]));
    check(
        "heroku/nodejs\n\n# the app itself\nhttps://example.com/bp.git#v2\r\nhttps://example.com/bp.tgz\n",
        Ok(&[
            "heroku/nodejs",
            "https://example.com/bp.git#v2",
            "https://example.com/bp.tgz",
        ]),
    );
    check("  heroku/python  \n", Ok(&["heroku/python"]));
    check("heroku/python extra\n", Err(".buildpacks line 1"));
    check("a\nb\x07c\n", Err(".buildpacks line 2"));
    check(&"x\n".repeat(MAX_DOT_BUILDPACKS + 1), Err("more than 16"));
}

#[test]
fn language_files_without_a_builtin_are_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(unbuildable_language_files(dir.path()).is_empty());
    for file in [
        "Gemfile",
        "go.mod",
        "pom.xml",
        "Cargo.toml",
        "build.sbt",
        "mix.exs",
        "requirements.txt",
        "package.json",
    ] {
        std::fs::write(dir.path().join(file), "").expect("write");
    }
    // Python, Node.js, Ruby, Go, Java and Rust have built-ins; Scala and Elixir do not.
    assert_eq!(
        unbuildable_language_files(dir.path()),
        vec![("build.sbt", "Scala"), ("mix.exs", "Elixir")]
    );
    // A symbolic link counts as present and is not followed.
    let linked = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink("/nonexistent", linked.path().join("mix.exs")).expect("symlink");
    assert_eq!(
        unbuildable_language_files(linked.path()),
        vec![("mix.exs", "Elixir")]
    );
}

#[test]
fn every_language_with_a_builtin_is_left_out() {
    for (file, language) in LANGUAGE_FILES {
        let has = BUILTINS.iter().any(|b| b.kind_of_app == *language);
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(file), "").expect("write");
        assert_eq!(
            unbuildable_language_files(dir.path()).is_empty(),
            has,
            "{file} ({language})"
        );
    }
}
