//! Host names: the rule as a table.

use super::*;

fn check(input: &str, expected: Result<&str, HostNameError>) {
    assert_eq!(
        input.parse::<HostName>().as_ref().map(HostName::as_str),
        expected.as_ref().map(|s| *s),
        "{input:?}"
    );
}

#[test]
fn host_names() {
    check("host-1", Ok("host-1"));
    check("a", Ok("a"));
    check("9lives", Ok("9lives"));
    check("", Err(HostNameError::Empty));
    check(
        "-x",
        Err(HostNameError::InvalidCharacter { name: "-x".into() }),
    );
    check(
        "Host",
        Err(HostNameError::InvalidCharacter {
            name: "Host".into(),
        }),
    );
    check(
        "a/b",
        Err(HostNameError::InvalidCharacter { name: "a/b".into() }),
    );
    check(
        "../x",
        Err(HostNameError::InvalidCharacter {
            name: "../x".into(),
        }),
    );
    let long = "a".repeat(64);
    check(&long, Err(HostNameError::TooLong { name: long.clone() }));
    check(&"a".repeat(63), Ok(&"a".repeat(63)));
}
