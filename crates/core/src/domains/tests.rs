//! Tests of custom domains and maintenance mode.

use super::*;

#[test]
fn hostname_table() {
    let cases = [
        ("www.Example.com", Some("www.example.com")),
        ("example.com.", Some("example.com")),
        ("a-b.example.io", Some("a-b.example.io")),
        ("localhost", None),
        ("*.example.com", None),
        ("-a.example.com", None),
        ("a..example.com", None),
        ("exa mple.com", None),
        ("", None),
        (" www.example.com ", Some("www.example.com")),
        ("a_b.example.com", None),
        ("example.com:443", None),
    ];
    for (raw, expected) in cases {
        assert_eq!(normalize_hostname(raw).ok().as_deref(), expected, "{raw:?}");
    }
}
