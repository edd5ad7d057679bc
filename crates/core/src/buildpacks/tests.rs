//! The buildpack names a tenant may install, as tables.

use super::*;

#[test]
fn builtin_names_in_every_spelling_become_herokus() {
    for (given, expected) in [
        ("python", "heroku/python"),
        ("heroku/python", "heroku/python"),
        (" heroku/nodejs ", "heroku/nodejs"),
        ("procfile", "heroku/procfile"),
        (
            "https://github.com/heroku/heroku-buildpack-python",
            "heroku/python",
        ),
        (
            "https://github.com/heroku/heroku-buildpack-nodejs.git",
            "heroku/nodejs",
        ),
    ] {
        assert_eq!(canonical_buildpack(given).unwrap(), expected, "{given:?}");
    }
}

#[test]
fn other_buildpacks_are_refused_with_the_builtins_listed() {
    for given in [
        "heroku/scala",
        "/usr/local/buildpacks/evil",
        "ftp://example.com/bp.tgz",
        "file:///usr/local/buildpacks/evil",
        "https://example.com/bp.git#--upload-pack=evil",
        "https://example.com/bp.git#a/../b",
        "https://example.com/bp.tgz#v1",
        "https://example.com/a b.git",
        "",
        "../python",
        "heroku/python/..",
    ] {
        let error = canonical_buildpack(given).unwrap_err().to_string();
        assert!(
            error.contains(
                "heroku/python, heroku/nodejs, heroku/ruby, heroku/php, heroku/go, heroku/java, \
                 heroku/rust, heroku/static, heroku/procfile"
            ),
            "{given:?}: {error}"
        );
        assert!(matches!(
            canonical_buildpack(given),
            Err(CoreError::Invalid { .. })
        ));
    }
}

#[test]
fn lists_refuse_duplicates_and_too_many() {
    assert_eq!(
        canonical_buildpacks(&["nodejs".into(), "heroku/python".into()]).unwrap(),
        vec!["heroku/nodejs", "heroku/python"]
    );
    assert!(canonical_buildpacks(&[]).unwrap().is_empty());
    let duplicate = canonical_buildpacks(&["python".into(), "heroku/python".into()]);
    assert!(duplicate
        .unwrap_err()
        .to_string()
        .contains("already set on your app"));
    let many = vec!["python".to_string(); MAX_BUILDPACKS + 1];
    assert!(canonical_buildpacks(&many)
        .unwrap_err()
        .to_string()
        .contains("at most 6"));
}

#[test]
fn urls_name_git_repositories_or_tarballs() {
    fn git(url: &str, reference: Option<&str>) -> BuildpackRef {
        BuildpackRef::Git {
            url: Url::parse(url).unwrap(),
            reference: reference.map(str::to_owned),
        }
    }
    for (given, expected) in [
        ("python", BuildpackRef::Builtin("python".into())),
        (
            "https://example.com/bp.git",
            git("https://example.com/bp.git", None),
        ),
        (
            "https://example.com/bp.git#v1.2",
            git("https://example.com/bp.git", Some("v1.2")),
        ),
        (
            "http://127.0.0.1:8080/repo#feature/x",
            git("http://127.0.0.1:8080/repo", Some("feature/x")),
        ),
        (
            "https://example.com/bp.git#0123456789abcdef0123456789abcdef01234567",
            git(
                "https://example.com/bp.git",
                Some("0123456789abcdef0123456789abcdef01234567"),
            ),
        ),
        (
            "https://example.com/releases/bp-v3.tgz",
            BuildpackRef::Tarball {
                url: Url::parse("https://example.com/releases/bp-v3.tgz").unwrap(),
            },
        ),
        (
            "https://example.com/bp.TAR.GZ?token=x",
            BuildpackRef::Tarball {
                url: Url::parse("https://example.com/bp.TAR.GZ?token=x").unwrap(),
            },
        ),
    ] {
        assert_eq!(parse_buildpack_ref(given), Ok(expected), "{given:?}");
    }
    assert_eq!(
        canonical_buildpack(" https://example.com/bp.git#main ").unwrap(),
        "https://example.com/bp.git#main"
    );
}

#[test]
fn credentials_in_urls_are_never_shown() {
    assert_eq!(
        display_buildpack("https://user:s3cret@example.com/bp.git?token=t0k#main"),
        "https://example.com/bp.git#main"
    );
    let error = canonical_buildpack("https://user:s3cret@example.com/bp.tgz#v1")
        .unwrap_err()
        .to_string();
    assert!(!error.contains("s3cret"), "{error}");
}
