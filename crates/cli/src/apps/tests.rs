//! The suggestion for a mistyped command and the `ps:scale` hint, as tables.

use super::*;

const NAMES: [&str; 9] = [
    "apps",
    "apps:create",
    "apps:destroy",
    "ps",
    "ps:scale",
    "config",
    "config:set",
    "logs",
    "releases",
];

#[test]
fn a_mistyped_command_gets_the_closest_one_first() {
    for (given, expected) in [
        ("aps", Some("apps")),
        ("APPS", Some("apps")),
        ("ps:scal", Some("ps:scale")),
        ("confg", Some("config")),
        ("confi:set", Some("config:set")),
        ("releses", Some("releases")),
        ("lgs", Some("logs")),
        ("deploy-everything", None),
        ("x", None),
    ] {
        assert_eq!(
            closest_command(given, NAMES).as_deref(),
            expected,
            "{given:?}"
        );
    }
}

#[test]
fn edit_distances() {
    assert_eq!(edit_distance("aps", "apps"), 1);
    assert_eq!(edit_distance("", "abc"), 3);
    assert_eq!(edit_distance("kitten", "sitting"), 3);
    assert_eq!(edit_distance("same", "same"), 0);
}
