//! Tests of the SQLite engine's helpers.

use super::prefix_end;

#[test]
fn prefix_end_cases() {
    let cases: &[(&str, Option<&str>)] = &[
        ("", None),
        ("a", Some("b")),
        ("apps/", Some("apps0")),
        ("a\u{10FFFF}", Some("b")),
        ("\u{10FFFF}", None),
        ("x\u{D7FF}", Some("x\u{E000}")),
    ];
    for (p, want) in cases {
        assert_eq!(prefix_end(p).as_deref(), *want, "prefix {p:?}");
    }
}
