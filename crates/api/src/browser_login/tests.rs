//! The browser login's pure parts: the start request, HTML escaping, and the bookkeeping of
//! waiting logins (the cap, expiry, the CLI's token, one answer each).

use std::time::{Duration, Instant};

use axum::http::StatusCode;

use super::*;
use crate::testing::check;

#[test]
fn start_requests_give_a_clean_description() {
    check(
        parse_start(br#"{"description": "Heroku CLI login from laptop"}"#),
        Ok("Heroku CLI login from laptop".to_owned()),
    );
    check(parse_start(b""), Ok("Browser login".to_owned()));
    check(
        parse_start(br#"{"description": " bad\u0000\n\u001b[31mname "}"#),
        Ok("bad[31mname".to_owned()),
    );
    let long = format!(r#"{{"description": "{}"}}"#, "x".repeat(5000));
    check(
        parse_start(long.as_bytes()),
        Ok("x".repeat(MAX_DESCRIPTION)),
    );
    check(
        parse_start(b"[1]"),
        Err((StatusCode::BAD_REQUEST, "Heroku CLI login from")),
    );
}

#[test]
fn html_is_escaped() {
    assert_eq!(
        escape_html(r#"<a href="x">'&'</a>"#),
        "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
    );
}

#[tokio::test]
async fn a_login_answers_its_cli_once_with_the_right_token_only() {
    let logins = BrowserLogins::default();
    let now = Instant::now();
    let (id, token) = logins.start("from test".into(), now).unwrap();
    assert_eq!(logins.waiting(id, now).as_deref(), Some("from test"));
    assert!(logins.watch(id, "wrong").is_none());
    assert!(logins.watch(id, &token[1..]).is_none());
    let (mut done, _) = logins.watch(id, &token).unwrap();
    logins.finish(id, "the-key".into());
    assert_eq!(
        done.wait_for(Option::is_some).await.unwrap().as_deref(),
        Some("the-key")
    );
    // Done: the page no longer offers the form; forgotten, the CLI's URL finds nothing.
    assert_eq!(logins.waiting(id, now), None);
    logins.forget(id);
    assert!(logins.watch(id, &token).is_none());
}

#[test]
fn logins_expire_and_are_capped() {
    let logins = BrowserLogins::default();
    let now = Instant::now();
    let (id, _) = logins.start("old".into(), now).unwrap();
    assert_eq!(logins.waiting(id, now + LOGIN_LIFETIME), None);
    for _ in 1..MAX_PENDING {
        logins.start("more".into(), now).unwrap();
    }
    assert!(logins.start("one too many".into(), now).is_none());
    // Once the old ones have expired, new logins start again.
    let later = now + LOGIN_LIFETIME + Duration::from_secs(1);
    assert!(logins.start("later".into(), later).is_some());
}
