//! Tests of line formatting, filtering, history and tails.

use chrono::TimeZone;

use super::*;

fn line_at(source: Source, process: &str, message: &str) -> LogLine {
    LogLine {
        timestamp: Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
            + chrono::Duration::microseconds(123_456),
        source,
        process: process.to_owned(),
        message: message.to_owned(),
    }
}

#[test]
fn formats_like_heroku() {
    assert_eq!(
        line_at(Source::App, "web.1", "hello").to_string(),
        "2026-11-26T12:00:00.123456+00:00 app[web.1]: hello"
    );
    assert_eq!(
        line_at(Source::Heroku, "router", "at=info").to_string(),
        "2026-11-26T12:00:00.123456+00:00 heroku[router]: at=info"
    );
}

#[test]
fn filters_by_source_and_process() {
    let check = |filter: LogFilter, process: &str, source: Source, expected: bool| {
        assert_eq!(
            filter.matches(&line_at(source, process, "x")),
            expected,
            "{filter:?} {process}"
        );
    };
    let ps = |p: &str| LogFilter {
        source: None,
        process: Some(p.to_owned()),
    };
    check(ps("web"), "web.1", Source::App, true);
    check(ps("web"), "web.12", Source::Heroku, true);
    check(ps("web"), "worker.1", Source::App, false);
    check(ps("web"), "webby.1", Source::App, false);
    check(ps("web.1"), "web.1", Source::App, true);
    check(ps("web.1"), "web.12", Source::App, false);
    check(ps("router"), "router", Source::Heroku, true);
    let src = LogFilter {
        source: Some(Source::App),
        process: None,
    };
    check(src.clone(), "web.1", Source::App, true);
    check(src, "router", Source::Heroku, false);
}

#[test]
fn splits_long_lines_on_char_boundaries() {
    let short = "abc";
    assert_eq!(split_long_line(short), vec!["abc"]);
    let long = "é".repeat(MAX_LINE_BYTES); // 2 bytes each
    let parts = split_long_line(&long);
    assert_eq!(parts.len(), 2);
    assert!(parts.iter().all(|p| p.len() <= MAX_LINE_BYTES));
    assert_eq!(parts.concat(), long);
}

#[test]
fn keeps_only_the_last_lines() {
    let hub = LogHub::new(3);
    for i in 0..5 {
        hub.publish("demo", LogLine::app("web.1", format!("line {i}")));
    }
    let lines: Vec<String> = hub
        .recent("demo", 10, &LogFilter::default())
        .iter()
        .map(|l| l.message.clone())
        .collect();
    assert_eq!(lines, vec!["line 2", "line 3", "line 4"]);
    assert_eq!(
        hub.recent("demo", 1, &LogFilter::default())[0].message,
        "line 4"
    );
    assert!(hub.recent("other", 10, &LogFilter::default()).is_empty());
}

#[tokio::test]
async fn tail_continues_after_history_and_reports_missed_lines() {
    let hub = LogHub::new(10);
    hub.publish("demo", LogLine::app("web.1", "old"));
    let (recent, mut tail) = hub.recent_and_tail("demo", 10, &LogFilter::default());
    assert_eq!(recent.len(), 1);
    hub.publish("demo", LogLine::app("web.1", "new"));
    match tail.next().await {
        Some(TailEvent::Line(line)) => assert_eq!(line.message, "new"),
        other => panic!("unexpected {other:?}"),
    }
    for i in 0..(TAIL_BUFFER + 10) {
        hub.publish("demo", LogLine::app("web.1", format!("{i}")));
    }
    assert_eq!(tail.next().await, Some(TailEvent::Missed(10)));
}
