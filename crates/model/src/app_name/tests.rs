//! App name rule: the table from the core and the API types, and round-trip properties.

use proptest::prelude::*;

use super::{AppName, AppNameError};

fn check(input: &str, expected: Result<&str, fn(String) -> AppNameError>) {
    let parsed = input.parse::<AppName>();
    match expected {
        Ok(name) => assert_eq!(parsed.as_ref().map(AppName::as_str), Ok(name), "{input:?}"),
        Err(error) => assert_eq!(parsed, Err(error(input.to_owned())), "{input:?}"),
    }
}

fn malformed(name: String) -> AppNameError {
    AppNameError::Malformed { name }
}

fn too_short(name: String) -> AppNameError {
    AppNameError::TooShort { name }
}

fn too_long(name: String) -> AppNameError {
    AppNameError::TooLong { name }
}

#[test]
fn app_names_follow_herokus_rule() {
    check("demo", Ok("demo"));
    check("abc", Ok("abc"));
    check("a1b", Ok("a1b"));
    check("my-app-2", Ok("my-app-2"));
    check("a-1", Ok("a-1"));
    check("a--b", Ok("a--b"));
    check(
        "abcdefghijklmnopqrstuvwxyz0123",
        Ok("abcdefghijklmnopqrstuvwxyz0123"),
    );
    check("abcdefghijklmnopqrstuvwxyz01234", Err(too_long));
    check("", Err(too_short));
    check("a", Err(too_short));
    check("ab", Err(too_short));
    check("1abc", Err(malformed));
    check("-abc", Err(malformed));
    check("abc-", Err(malformed));
    check("Abc", Err(malformed));
    check("abC", Err(malformed));
    check("Ab", Err(malformed));
    check("ab_c", Err(malformed));
    check("ab.c", Err(malformed));
    check("ab c", Err(malformed));
    check("démo", Err(malformed));
    check(" demo", Err(malformed));
}

#[test]
fn errors_say_what_is_wrong_and_the_whole_rule() {
    let rule = "Name must start with a letter, end with a letter or digit and can only contain lowercase letters, digits, and dashes, and be 3 to 30 characters long.";
    assert_eq!(
        "Demo".parse::<AppName>().unwrap_err().to_string(),
        format!("Name \"Demo\" is invalid. {rule}")
    );
    assert_eq!(
        "ab".parse::<AppName>().unwrap_err().to_string(),
        format!("Name \"ab\" is too short (minimum is 3 characters). {rule}")
    );
    assert_eq!(
        "a".repeat(31).parse::<AppName>().unwrap_err().to_string(),
        format!(
            "Name \"{}\" is too long (maximum is 30 characters). {rule}",
            "a".repeat(31)
        )
    );
}

#[test]
fn serde_is_a_plain_string_validated_on_the_way_in() {
    let name: AppName = serde_json::from_str("\"my-app\"").unwrap();
    assert_eq!(serde_json::to_string(&name).unwrap(), "\"my-app\"");
    assert!(serde_json::from_str::<AppName>("\"My-App\"").is_err());
    assert!(serde_json::from_str::<AppName>("7").is_err());
}

proptest! {
    #[test]
    fn parsing_never_panics(input in ".*") {
        let _ = input.parse::<AppName>();
    }

    #[test]
    fn names_of_the_rule_parse_and_display_back(input in "[a-z][a-z0-9-]{1,28}[a-z0-9]") {
        let name: AppName = input.parse().unwrap();
        prop_assert_eq!(name.to_string(), input.clone());
        prop_assert_eq!(name.to_string().parse::<AppName>(), Ok(name));
    }

    #[test]
    fn whatever_parses_round_trips(input in "[a-zA-Z0-9_. -]{0,40}") {
        if let Ok(name) = input.parse::<AppName>() {
            prop_assert_eq!(name.as_str(), input.as_str());
            prop_assert_eq!(name.to_string().parse::<AppName>(), Ok(name));
        }
    }
}
