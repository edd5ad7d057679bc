//! Process type rule: the Procfile's names, and round-trip properties.

use proptest::prelude::*;

use super::{ProcessType, ProcessTypeError};

fn check(input: &str, expected: Result<(), ProcessTypeError>) {
    let parsed = input.parse::<ProcessType>();
    match expected {
        Ok(()) => assert_eq!(parsed.as_ref().map(ProcessType::as_str), Ok(input)),
        Err(error) => assert_eq!(parsed, Err(error), "{input:?}"),
    }
}

fn invalid(name: &str) -> Result<(), ProcessTypeError> {
    Err(ProcessTypeError::InvalidCharacter {
        name: name.to_owned(),
    })
}

#[test]
fn process_types_follow_the_procfile_rule() {
    check("web", Ok(()));
    check("worker", Ok(()));
    check("urgent_worker-2", Ok(()));
    check("Web", Ok(()));
    check("-x-", Ok(()));
    check(&"a".repeat(128), Ok(()));
    check("", Err(ProcessTypeError::Empty));
    check("web.1", invalid("web.1"));
    check("my app", invalid("my app"));
    check("web:", invalid("web:"));
    check("wéb", invalid("wéb"));
    check(
        &"a".repeat(129),
        Err(ProcessTypeError::TooLong {
            name: "a".repeat(129),
        }),
    );
}

#[test]
fn web_is_web() {
    assert!(ProcessType::web().is_web());
    assert_eq!(ProcessType::web(), "web");
    assert!(!"worker".parse::<ProcessType>().unwrap().is_web());
}

#[test]
fn errors_say_what_is_allowed() {
    assert_eq!(
        "web.1".parse::<ProcessType>().unwrap_err().to_string(),
        "Invalid process type \"web.1\": use only letters, digits, `_` and `-` (e.g. web, worker)."
    );
    assert_eq!(
        "a".repeat(129)
            .parse::<ProcessType>()
            .unwrap_err()
            .to_string(),
        format!(
            "Process type \"{}\" is 129 characters long; the limit is 128.",
            "a".repeat(129)
        )
    );
}

proptest! {
    #[test]
    fn parsing_never_panics(input in ".*") {
        let _ = input.parse::<ProcessType>();
    }

    #[test]
    fn names_of_the_rule_round_trip(input in "[a-zA-Z0-9_-]{1,128}") {
        let process_type: ProcessType = input.parse().unwrap();
        prop_assert_eq!(process_type.to_string(), input);
        let json = serde_json::to_string(&process_type).unwrap();
        prop_assert_eq!(serde_json::from_str::<ProcessType>(&json).unwrap(), process_type);
    }
}
