//! Tests of builds from a source tarball's URL.

use super::*;

#[test]
fn checksums_must_be_sha256_hex() {
    let hex = "a".repeat(64);
    assert_eq!(checksum_hex(&format!("SHA256:{hex}"), "x").unwrap(), hex);
    assert_eq!(
        checksum_hex(&format!("SHA256:{}", "A".repeat(64)), "x").unwrap(),
        hex
    );
    for bad in [
        "",
        "SHA256:",
        "MD5:abc",
        &hex,
        &format!("SHA256:{}", "g".repeat(64)),
    ] {
        assert!(checksum_hex(bad, "x").is_err(), "{bad}");
    }
}
