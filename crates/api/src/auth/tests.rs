//! Tests of reading the caller's credentials from a request.

use super::*;
use axum::http::HeaderValue;

fn headers(authorization: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(authorization).unwrap(),
    );
    headers
}

fn check(authorization: &str, expected: Option<&str>) {
    assert_eq!(
        api_key(&headers(authorization)).as_deref(),
        expected,
        "{authorization}"
    );
}

#[test]
fn reads_bearer_and_basic() {
    check("Bearer abc", Some("abc"));
    check("Basic aGVyb2t1OnNlY3JldC10b2tlbg==", Some("secret-token"));
    check("Basic Og==", Some(""));
    check("Basic !!!", None);
    check("Digest x", None);
    assert_eq!(api_key(&HeaderMap::new()), None);
}

#[test]
fn reads_the_email_and_password_of_basic() {
    // base64("dev@example.com:pa:ss") - a password may contain colons.
    let encoded = base64::engine::general_purpose::STANDARD.encode("dev@example.com:pa:ss");
    assert_eq!(
        basic_credentials(&headers(&format!("Basic {encoded}"))),
        Some(("dev@example.com".into(), "pa:ss".into()))
    );
    assert_eq!(basic_credentials(&headers("Bearer abc")), None);
    assert_eq!(bearer_token(&headers(&format!("Basic {encoded}"))), None);
}
