//! The list edits of `buildpacks:*`, as tables.

use super::*;

fn list(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[test]
fn edits_change_the_list_as_herokus_cli_does() {
    let set = |b: &str, i| Edit::Set {
        buildpack: b.into(),
        index: i,
    };
    let add = |b: &str, i| Edit::Add {
        buildpack: b.into(),
        index: i,
    };
    for (before, edit, after) in [
        (
            list(&[]),
            set("heroku/python", None),
            list(&["heroku/python"]),
        ),
        (list(&["a", "b"]), set("c", None), list(&["c", "b"])),
        (list(&["a", "b"]), set("c", Some(2)), list(&["a", "c"])),
        (list(&["a"]), set("c", Some(5)), list(&["a", "c"])),
        (list(&["a"]), add("b", None), list(&["a", "b"])),
        (list(&["a", "b"]), add("c", Some(1)), list(&["c", "a", "b"])),
        (
            list(&["a", "b"]),
            Edit::Remove {
                buildpack: Some("a".into()),
                index: None,
            },
            list(&["b"]),
        ),
        (
            list(&["a", "b"]),
            Edit::Remove {
                buildpack: None,
                index: Some(2),
            },
            list(&["a"]),
        ),
        (list(&["a", "b"]), Edit::Clear, list(&[])),
    ] {
        assert_eq!(
            apply(before.clone(), &edit).unwrap(),
            after,
            "{before:?} {edit:?}"
        );
    }
}

#[test]
fn bad_edits_say_why() {
    assert!(apply(
        list(&["a"]),
        &Edit::Add {
            buildpack: "a".into(),
            index: None
        }
    )
    .unwrap_err()
    .contains("already set"));
    assert!(apply(
        list(&["a"]),
        &Edit::Remove {
            buildpack: Some("b".into()),
            index: None
        }
    )
    .unwrap_err()
    .contains("not found"));
    assert!(apply(
        list(&["a"]),
        &Edit::Remove {
            buildpack: None,
            index: Some(3)
        }
    )
    .unwrap_err()
    .contains("1 to 1"));
    assert!(apply(
        list(&["a"]),
        &Edit::Add {
            buildpack: "b".into(),
            index: Some(0)
        }
    )
    .unwrap_err()
    .contains("greater than 0"));
}

#[test]
fn lists_are_shown_like_herokus() {
    assert_eq!(format_list("demo", &[]), "demo has no Buildpacks.\n");
    assert_eq!(
        format_list("demo", &list(&["heroku/python"])),
        "=== demo Buildpack URL\n\nheroku/python\n"
    );
    assert_eq!(
        format_list("demo", &list(&["a", "b"])),
        "=== demo Buildpack URLs\n\n1. a\n2. b\n"
    );
}
