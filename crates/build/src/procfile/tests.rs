//! Data-driven and property tests for the Procfile parser.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::{parse, ProcfileError};

/// Parses `text` and checks the processes and the number of warnings.
fn check(text: &str, expected: &[(&str, &str)], expected_warnings: usize) {
    let procfile = parse(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"));
    let expected: BTreeMap<String, String> = expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(procfile.processes, expected, "processes of {text:?}");
    assert_eq!(
        procfile.warnings.len(),
        expected_warnings,
        "warnings of {text:?}: {:?}",
        procfile.warnings
    );
}

/// Parses `text`, expects an error on `line` whose message contains `needle`.
fn check_error(text: &str, line: usize, needle: &str) {
    let error = parse(text).expect_err(text);
    assert_eq!(error.line(), line, "line of error {error} for {text:?}");
    let message = error.to_string();
    assert!(
        message.contains(needle),
        "{message:?} should contain {needle:?}"
    );
    assert!(
        message.contains(&format!("line {line}")),
        "{message:?} names the line"
    );
}

#[test]
fn valid_procfiles() {
    check("web: python app.py\n", &[("web", "python app.py")], 0);
    check(
        "web: gunicorn app:app --bind 0.0.0.0:$PORT\nworker: python worker.py",
        &[
            ("web", "gunicorn app:app --bind 0.0.0.0:$PORT"),
            ("worker", "python worker.py"),
        ],
        0,
    );
    // Comments, blank lines, CRLF, trailing whitespace, no space after the colon.
    check(
        "# my app\n\n   \nweb:bundle exec puma  \r\n  # indented comment\nclock: ./clock.sh # every minute\r\n",
        &[("web", "bundle exec puma"), ("clock", "./clock.sh # every minute")],
        0,
    );
    // A byte-order mark is ignored.
    check("\u{feff}web: ./serve", &[("web", "./serve")], 0);
    // Colons inside the command are kept.
    check("release: echo a:b:c", &[("release", "echo a:b:c")], 0);
}

#[test]
fn tolerated_with_warnings() {
    // Last duplicate wins.
    check("web: one\nweb: two\n", &[("web", "two")], 1);
    // Leading whitespace.
    check("  web: serve\n", &[("web", "serve")], 1);
    // Uppercase and underscore: CNB would rename.
    check("Web_Worker: run\n", &[("Web_Worker", "run")], 1);
    // Leading dash.
    check("-web: run\n", &[("-web", "run")], 1);
    // Whitespace before the colon.
    check("web : run\n", &[("web", "run")], 1);
    // Longer than CNB's 63 characters but within the API's 128.
    let long = "a".repeat(64);
    check(&format!("{long}: run"), &[(long.as_str(), "run")], 1);
    // An empty file declares nothing.
    check("", &[], 1);
    check("# only a comment\n", &[], 1);
}

#[test]
fn errors_name_the_line() {
    check_error(
        "web: ok\nweb python app.py\n",
        2,
        "expected `<process type>: <command>`",
    );
    check_error("# c\n\nweb:\n", 3, "empty command");
    check_error("web:    \t\n", 1, "empty command");
    check_error("web.1: run\n", 1, "invalid process type");
    check_error("my app: run\n", 1, "invalid process type");
    check_error(": run\n", 1, "expected");
    check_error(&format!("{}: run", "a".repeat(129)), 1, "limit is 128");
}

#[test]
fn error_type_is_structured() {
    assert_eq!(
        parse("x\n"),
        Err(ProcfileError::Malformed {
            line: 1,
            found: "x".to_string()
        })
    );
}

fn name_strategy() -> impl Strategy<Value = String> {
    // Names the strict CNB rules accept, so a round trip produces no warnings.
    "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?"
}

fn command_strategy() -> impl Strategy<Value = String> {
    // Any printable text without line breaks and without surrounding whitespace.
    "[!-~]([ -~]{0,40}[!-~])?"
}

proptest! {
    #[test]
    fn never_panics(text in "\\PC*") {
        let _ = parse(&text);
    }

    #[test]
    fn never_panics_on_line_soup(lines in proptest::collection::vec("[ \t#:a-zA-Z0-9_.-]{0,12}", 0..8)) {
        let _ = parse(&lines.join("\n"));
    }

    #[test]
    fn round_trip(
        processes in proptest::collection::btree_map(name_strategy(), command_strategy(), 1..6),
        comment_every in 0usize..4,
        crlf in any::<bool>(),
    ) {
        let newline = if crlf { "\r\n" } else { "\n" };
        let mut text = String::new();
        for (i, (name, command)) in processes.iter().enumerate() {
            if comment_every > 0 && i % comment_every == 0 {
                text.push_str("# a comment: with a colon");
                text.push_str(newline);
                text.push_str(newline);
            }
            text.push_str(&format!("{name}: {command}{newline}"));
        }
        let parsed = parse(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parsed.processes, processes);
        prop_assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    }
}
