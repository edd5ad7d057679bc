//! `run`'s pure parts: the command line the real CLI would send, `--env`, attach URLs and
//! the CA bundle.

use super::*;

fn argv(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

#[test]
fn argv_is_joined_like_the_heroku_cli() {
    assert_eq!(join_command(&argv(&["rake test"])), "rake test");
    assert_eq!(join_command(&argv(&["ls", "-la"])), "ls -la");
    assert_eq!(
        join_command(&argv(&["sh", "-c", "echo \"hi\"; exit 3"])),
        r#"sh -c "echo \"hi\"; exit 3""#
    );
    assert_eq!(join_command(&argv(&["echo", "a\"b"])), r#"echo "a\"b""#);
}

#[test]
fn env_flag_is_semicolon_separated_pairs() {
    let env = parse_env(Some("A=1;B=x=y; ;C=")).unwrap();
    assert_eq!(
        env.into_iter().collect::<Vec<_>>(),
        vec![
            ("A".to_owned(), "1".to_owned()),
            ("B".to_owned(), "x=y".to_owned()),
            ("C".to_owned(), String::new()),
        ]
    );
    assert!(parse_env(None).unwrap().is_empty());
    let err = parse_env(Some("A=1;oops")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "\"oops\" is invalid. Must be in the format FOO=bar;BAZ=qux."
    );
    assert!(parse_env(Some("=v")).is_err());
}

#[test]
fn attach_urls_are_host_port_and_secret() {
    assert_eq!(
        parse_attach_url("rendezvous://127.0.0.1:5001/abc123?x=1"),
        Some(AttachTarget {
            host: "127.0.0.1".into(),
            port: 5001,
            secret: "abc123?x=1".into(),
        })
    );
    assert_eq!(
        parse_attach_url("rendezvous://slipway.example:443/s").map(|t| t.host),
        Some("slipway.example".into())
    );
    assert_eq!(
        parse_attach_url("rendezvous://[::1]:9/s").map(|t| t.host),
        Some("::1".into())
    );
    assert_eq!(parse_attach_url("https://h:1/s"), None);
    assert_eq!(parse_attach_url("rendezvous://h/s"), None);
    assert_eq!(parse_attach_url("rendezvous://h:1/"), None);
    assert_eq!(parse_attach_url("not a url"), None);
}

#[test]
fn ca_bundles_without_certificates_are_refused() {
    assert!(roots_from_pem(b"").is_none());
    assert!(
        roots_from_pem(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n").is_none()
    );
}

#[test]
fn tailing_a_detached_dyno_shows_its_lines_and_stops_at_its_exit() {
    let since = chrono::DateTime::parse_from_rfc3339("2026-11-29T00:10:00.500000+00:00")
        .unwrap()
        .to_utc();
    let lines = DynoLines::new("run.42", since);
    let at = |stamp: &str, rest: &str| format!("2026-11-29T00:{stamp}+00:00 {rest}");
    // Another dyno's lines, and a dyno of the same name that ran earlier, are not shown.
    assert_eq!(
        lines.accept(&at("10:01.000000", "app[run.421]: other")),
        Shown::Skip
    );
    assert_eq!(
        lines.accept(&at("10:01.000000", "app[web.1]: run.42")),
        Shown::Skip
    );
    assert_eq!(
        lines.accept(&at(
            "09:00.000000",
            "heroku[run.42]: Process exited with status 0"
        )),
        Shown::Skip
    );
    assert_eq!(
        lines.accept(&at(
            "10:00.900000",
            "heroku[run.42]: Starting process with command `true`"
        )),
        Shown::Print
    );
    assert_eq!(
        lines.accept(&at("10:01.000000", "app[run.42]: hello")),
        Shown::Print
    );
    assert_eq!(
        lines.accept(&at(
            "10:02.000000",
            "heroku[run.42]: Process exited with status 3"
        )),
        Shown::Last
    );
    // A line without a readable timestamp is shown rather than lost.
    assert_eq!(lines.accept("garbled app[run.42]: x"), Shown::Print);
}
