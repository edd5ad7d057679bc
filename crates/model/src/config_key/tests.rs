//! Config var keys: the core's rule (`1A` is refused), and round-trip properties.

use proptest::prelude::*;

use super::ConfigKey;

fn check(input: &str, valid: bool) {
    let parsed = input.parse::<ConfigKey>();
    if valid {
        assert_eq!(
            parsed.as_ref().map(ConfigKey::as_str),
            Ok(input),
            "{input:?}"
        );
    } else {
        assert_eq!(parsed.map_err(|error| error.key), Err(input.to_owned()));
    }
}

#[test]
fn config_keys_look_like_shell_variables() {
    check("FOO", true);
    check("foo_bar", true);
    check("_x1", true);
    check("_X1", true);
    check("_", true);
    check("DATABASE_URL", true);
    check("1X", false);
    check("1A", false);
    check("A-B", false);
    check("", false);
    check("A B", false);
    check("A=B", false);
    check("É", false);
    check("FOO ", false);
}

#[test]
fn errors_say_what_is_allowed() {
    assert_eq!(
        "1A".parse::<ConfigKey>().unwrap_err().to_string(),
        "Invalid config var key \"1A\": keys must match ^[A-Za-z_][A-Za-z0-9_]*$ (start with a letter or underscore, then only letters, digits and underscores)."
    );
}

#[test]
fn serde_refuses_an_invalid_key() {
    assert!(serde_json::from_str::<ConfigKey>("\"1A\"").is_err());
    let key: ConfigKey = serde_json::from_str("\"PORT\"").unwrap();
    assert_eq!(serde_json::to_string(&key).unwrap(), "\"PORT\"");
}

proptest! {
    #[test]
    fn parsing_never_panics(input in ".*") {
        let _ = input.parse::<ConfigKey>();
    }

    #[test]
    fn keys_of_the_rule_round_trip(input in "[A-Za-z_][A-Za-z0-9_]{0,40}") {
        let key: ConfigKey = input.parse().unwrap();
        prop_assert_eq!(key.to_string(), input);
        prop_assert_eq!(key.to_string().parse::<ConfigKey>(), Ok(key));
    }

    #[test]
    fn a_leading_digit_is_refused(input in "[0-9][A-Za-z0-9_]{0,10}") {
        prop_assert!(input.parse::<ConfigKey>().is_err());
    }
}
