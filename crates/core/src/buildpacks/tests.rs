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
        "heroku/ruby",
        "/usr/local/buildpacks/evil",
        "https://example.com/bp.tgz",
        "",
        "../python",
        "heroku/python/..",
    ] {
        let error = canonical_buildpack(given).unwrap_err().to_string();
        assert!(
            error.contains("heroku/python, heroku/nodejs, heroku/procfile"),
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
