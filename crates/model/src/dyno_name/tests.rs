//! Dyno names: the table of accepted and refused names, and round-trip properties.

use proptest::prelude::*;

use super::{DynoName, DynoNameError};

fn check(input: &str, expected: Option<(&str, u32)>) {
    let parsed = input.parse::<DynoName>();
    match expected {
        Some((process_type, number)) => {
            let name = parsed.unwrap_or_else(|error| panic!("{input:?}: {error}"));
            assert_eq!(name.process_type, process_type, "{input:?}");
            assert_eq!(name.number, number, "{input:?}");
            assert_eq!(name.to_string(), input);
        }
        None => assert!(parsed.is_err(), "{input:?} parsed as {parsed:?}"),
    }
}

#[test]
fn dyno_names_are_a_process_type_and_a_number() {
    check("web.1", Some(("web", 1)));
    check("run.3", Some(("run", 3)));
    check("release.1", Some(("release", 1)));
    check("worker_2-x.42", Some(("worker_2-x", 42)));
    check("web.0", Some(("web", 0)));
    check("web.4294967295", Some(("web", u32::MAX)));
    check("web.4294967296", None);
    check("web", None);
    check("web.", None);
    check(".1", None);
    check("web.01", None);
    check("web.+1", None);
    check("web.-1", None);
    check("web.1.2", None);
    check("web.1 ", None);
    check("my web.1", None);
    check("", None);
}

#[test]
fn errors_say_what_is_allowed() {
    assert_eq!(
        "web".parse::<DynoName>().unwrap_err(),
        DynoNameError::MissingNumber {
            name: "web".to_owned()
        }
    );
    assert_eq!(
        "web".parse::<DynoName>().unwrap_err().to_string(),
        "\"web\" is not a dyno name: use <process type>.<number>, e.g. web.1."
    );
    assert_eq!(
        "web.x".parse::<DynoName>().unwrap_err().to_string(),
        "\"web.x\" is not a dyno name: the number after the dot must be a whole number without leading zeros, e.g. web.1."
    );
    assert!(matches!(
        "we b.1".parse::<DynoName>(),
        Err(DynoNameError::InvalidProcessType { .. })
    ));
}

#[test]
fn dynos_order_by_process_type_then_number() {
    let mut names: Vec<DynoName> = ["web.10", "worker.1", "web.2"]
        .iter()
        .map(|name| name.parse().unwrap())
        .collect();
    names.sort();
    let names: Vec<String> = names.iter().map(DynoName::to_string).collect();
    assert_eq!(names, ["web.2", "web.10", "worker.1"]);
}

#[test]
fn serde_is_a_plain_string() {
    let name: DynoName = serde_json::from_str("\"web.3\"").unwrap();
    assert_eq!(name, DynoName::new("web".parse().unwrap(), 3));
    assert_eq!(serde_json::to_string(&name).unwrap(), "\"web.3\"");
    assert!(serde_json::from_str::<DynoName>("\"web\"").is_err());
}

proptest! {
    #[test]
    fn parsing_never_panics(input in ".*") {
        let _ = input.parse::<DynoName>();
    }

    #[test]
    fn display_parses_back(process_type in "[a-zA-Z0-9_-]{1,128}", number: u32) {
        let name = DynoName::new(process_type.parse().unwrap(), number);
        prop_assert_eq!(name.to_string().parse::<DynoName>(), Ok(name));
    }

    #[test]
    fn whatever_parses_displays_as_its_input(input in "[a-z0-9.+-]{0,12}") {
        if let Ok(name) = input.parse::<DynoName>() {
            prop_assert_eq!(name.to_string(), input);
        }
    }
}
