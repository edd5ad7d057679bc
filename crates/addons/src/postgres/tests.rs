//! Tests of the PostgreSQL add-on's pure helpers.

use super::*;

#[test]
fn url_decode_decodes_escapes_and_keeps_invalid_ones() {
    assert_eq!(url_decode("p%40ss%2Fw%3Ard"), "p@ss/w:rd");
    assert_eq!(url_decode("plain"), "plain");
    // An escape without two hex digits is kept as typed, at the end too.
    assert_eq!(url_decode("100%zz%4"), "100%zz%4");
    assert_eq!(url_decode("%"), "%");
    // Bytes that are not UTF-8 become replacement characters, not an error.
    assert_eq!(url_decode("%ff"), "\u{fffd}");
}
