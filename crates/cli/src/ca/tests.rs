//! Tests of `slipway ca`.

use super::*;

#[test]
fn only_certificates_are_printed() {
    let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
    for (input, ok) in [
        (format!("{cert}\n"), true),
        (format!("\n{cert}\n\n"), true),
        (
            "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n".to_owned(),
            false,
        ),
        (String::new(), false),
        ("<html>not found</html>".to_owned(), false),
    ] {
        let checked = check_pem(&input, "x");
        assert_eq!(checked.is_ok(), ok, "{input:?}");
        if let Ok(text) = checked {
            assert_eq!(text, format!("{cert}\n"));
        }
    }
}
