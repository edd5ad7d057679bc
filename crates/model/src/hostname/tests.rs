//! Hostnames: validation, canonical form, wildcard cover (the router's and the core's tests
//! of certificate names), and round-trip properties.

use proptest::prelude::*;

use super::Hostname;

fn check(input: &str, expected: Option<&str>) {
    let parsed = input.parse::<Hostname>();
    match expected {
        Some(canonical) => assert_eq!(
            parsed.as_ref().map(Hostname::as_str),
            Ok(canonical),
            "{input:?}"
        ),
        None => assert_eq!(
            parsed.map_err(|error| error.hostname),
            Err(input.to_owned())
        ),
    }
}

fn host(name: &str) -> Hostname {
    name.parse().unwrap()
}

#[test]
fn hostnames_are_lowercase_dns_names() {
    check("www.example.com", Some("www.example.com"));
    check("WWW.Example.COM", Some("www.example.com"));
    check("example.com.", Some("example.com"));
    check("localhost", Some("localhost"));
    check("a-b.c1.example", Some("a-b.c1.example"));
    check("1.2.3.4", Some("1.2.3.4"));
    check("*.example.com", Some("*.example.com"));
    check("*.Example.com.", Some("*.example.com"));
    check(
        &format!("{}.com", "a".repeat(63)),
        Some(&format!("{}.com", "a".repeat(63))),
    );
    check(&format!("{}.com", "a".repeat(64)), None);
    check(&["a"; 127].join("."), Some(&["a"; 127].join(".")));
    check(&format!("{}.a", ["a"; 127].join(".")), None);
    check("", None);
    check(".", None);
    check("example..com", None);
    check(".example.com", None);
    check("-a.example.com", None);
    check("a-.example.com", None);
    check("a_b.example.com", None);
    check("exa mple.com", None);
    check(" example.com", None);
    check("*", None);
    check("*.", None);
    check("*.*.example.com", None);
    check("a.*.example.com", None);
    check("w*.example.com", None);
    check("exämple.com", None);
    check("example.com:443", None);
}

#[test]
fn an_exact_name_covers_itself_only() {
    let name = host("example.org");
    assert!(name.covers("example.org"));
    assert!(name.covers("EXAMPLE.org"));
    assert!(name.covers("example.org."));
    assert!(!name.covers("www.example.org"));
    assert!(!name.covers("example.com"));
    assert!(!name.covers(""));
}

#[test]
fn a_wildcard_covers_exactly_one_label() {
    let wildcard = host("*.example.com");
    assert!(wildcard.covers("www.example.com"));
    assert!(wildcard.covers("WWW.Example.com"));
    assert!(wildcard.covers("api-1.example.com"));
    assert!(!wildcard.covers("example.com"));
    assert!(!wildcard.covers("a.b.example.com"));
    assert!(!wildcard.covers("www.example.org"));
    assert!(!wildcard.covers("wwwexample.com"));
    assert!(!wildcard.covers(".example.com"));
    assert!(!wildcard.covers("a_b.example.com"));
    assert!(!wildcard.covers("*.*.example.com"));
    // A wildcard domain is covered by the same wildcard only.
    assert!(wildcard.covers("*.example.com"));
    assert!(!host("*.com").covers("*.example.com"));
    assert!(!host("www.example.com").covers("*.example.com"));
}

#[test]
fn is_within_means_the_domain_or_under_it() {
    let domain = host("apps.example.com");
    assert!(host("apps.example.com").is_within(&domain));
    assert!(host("x.apps.example.com").is_within(&domain));
    assert!(host("a.b.apps.example.com").is_within(&domain));
    assert!(host("*.apps.example.com").is_within(&domain));
    assert!(!host("xapps.example.com").is_within(&domain));
    assert!(!host("example.com").is_within(&domain));
    assert!(host("x.localhost").is_within(&host("localhost")));
    assert!(!host("xlocalhost").is_within(&host("localhost")));
}

#[test]
fn errors_say_what_is_allowed() {
    assert_eq!(
        "a_b.example.com".parse::<Hostname>().unwrap_err().to_string(),
        "\"a_b.example.com\" is not a valid hostname. Use a name like www.example.com: labels of letters, digits and dashes separated by dots, optionally starting with a `*.` wildcard."
    );
}

#[test]
fn serde_is_the_canonical_string() {
    let name: Hostname = serde_json::from_str("\"WWW.Example.com\"").unwrap();
    assert_eq!(serde_json::to_string(&name).unwrap(), "\"www.example.com\"");
    assert!(serde_json::from_str::<Hostname>("\"not a host\"").is_err());
}

proptest! {
    #[test]
    fn parsing_and_covering_never_panic(input in ".*", other in ".*") {
        if let Ok(name) = input.parse::<Hostname>() {
            let _ = name.covers(&other);
        }
    }

    #[test]
    fn the_canonical_form_parses_to_itself(
        input in r"(\*\.)?([a-zA-Z0-9]([a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?\.){0,4}[a-zA-Z0-9]{1,10}\.?"
    ) {
        let name: Hostname = input.parse().unwrap();
        prop_assert_eq!(name.as_str(), input.trim_end_matches('.').to_ascii_lowercase());
        prop_assert_eq!(name.to_string().parse::<Hostname>(), Ok(name.clone()));
        prop_assert!(name.covers(name.as_str()));
    }

    #[test]
    fn a_wildcard_covers_every_single_label_under_it(
        label in "[a-z0-9]{1,20}",
        parent in "[a-z0-9]{1,10}(\\.[a-z0-9]{1,10}){0,3}",
    ) {
        let wildcard: Hostname = format!("*.{parent}").parse().unwrap();
        let covered = format!("{label}.{parent}");
        let too_deep = format!("{label}.{label}.{parent}");
        prop_assert!(wildcard.covers(&covered));
        prop_assert!(!wildcard.covers(&too_deep));
        prop_assert!(!wildcard.covers(&parent));
    }
}
