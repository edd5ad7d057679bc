//! Secret tokens: generation, redaction, parsing.

use std::collections::HashSet;

use proptest::prelude::*;

use super::SecretToken;

fn check(input: &str, valid: bool) {
    let parsed = input.parse::<SecretToken>();
    assert_eq!(parsed.is_ok(), valid, "{input:?}");
    if let Ok(token) = parsed {
        assert_eq!(token.expose(), input);
    }
}

#[test]
fn generated_tokens_are_64_hex_digits_and_distinct() {
    let tokens: HashSet<String> = (0..100)
        .map(|_| SecretToken::generate().expose().to_owned())
        .collect();
    assert_eq!(tokens.len(), 100);
    for token in &tokens {
        assert_eq!(token.len(), 64);
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(token.parse::<SecretToken>().unwrap().expose(), token);
    }
}

#[test]
fn debug_does_not_print_the_secret() {
    let token = SecretToken::generate();
    let debug = format!("{token:?}");
    assert_eq!(debug, "SecretToken(<redacted>)");
    assert!(!debug.contains(token.expose()));
}

#[test]
fn tokens_are_lowercase_hex_of_a_sane_length() {
    check(&"a".repeat(32), true);
    check(&"0123456789abcdef".repeat(3), true);
    check(&"f".repeat(128), true);
    check(&"a".repeat(31), false);
    check(&"a".repeat(129), false);
    check(&"A".repeat(64), false);
    check(&"g".repeat(64), false);
    check("", false);
    assert_eq!(
        "x".parse::<SecretToken>().unwrap_err().to_string(),
        "Invalid secret token: expected 32 to 128 lowercase hex digits."
    );
}

#[test]
fn equality_compares_contents() {
    let token = SecretToken::generate();
    assert_eq!(token, token.expose().parse::<SecretToken>().unwrap());
    assert_ne!(token, SecretToken::generate());
    let longer: SecretToken = format!("{}00", token.expose()).parse().unwrap();
    assert_ne!(token, longer);
}

#[test]
fn serde_is_the_plain_token() {
    let token = SecretToken::generate();
    let json = serde_json::to_string(&token).unwrap();
    assert_eq!(json, format!("\"{}\"", token.expose()));
    assert_eq!(serde_json::from_str::<SecretToken>(&json).unwrap(), token);
    assert!(serde_json::from_str::<SecretToken>("\"short\"").is_err());
}

proptest! {
    #[test]
    fn parsing_never_panics(input in ".*") {
        let _ = input.parse::<SecretToken>();
    }

    #[test]
    fn hex_of_the_right_length_round_trips(input in "[0-9a-f]{32,128}") {
        let token: SecretToken = input.parse().unwrap();
        prop_assert_eq!(String::from(token), input);
    }
}
