//! Tests of line formatting, filtering, history and tails.

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::hub::TAIL_BUFFER;

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

#[test]
fn lines_get_consecutive_sequence_numbers_and_since_resumes_after_one() {
    let hub = LogHub::new(5);
    let seqs: Vec<u64> = (0..8)
        .map(|i| hub.publish_seq("demo", LogLine::app("web.1", format!("line {i}"))))
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert_eq!(hub.last_seq("demo"), Some(seqs[7]));
    assert_eq!(hub.last_seq("other"), None);
    let messages = |lines: &[SeqLine]| -> Vec<(u64, String)> {
        lines
            .iter()
            .map(|(seq, line)| (*seq, line.message.clone()))
            .collect()
    };
    // (after, expected messages): within history, before history (only what is left), at the
    // end, and beyond the end (a client from the future gets only new lines).
    let cases: [(u64, &[usize]); 4] = [
        (seqs[5], &[6, 7]),
        (seqs[0], &[3, 4, 5, 6, 7]),
        (seqs[7], &[]),
        (seqs[7] + 100, &[]),
    ];
    for (after, expected) in cases {
        let (lines, _) = hub.since("demo", after, &LogFilter::default());
        let expected: Vec<(u64, String)> = expected
            .iter()
            .map(|&i| (seqs[i], format!("line {i}")))
            .collect();
        assert_eq!(messages(&lines), expected, "after {after}");
    }
    let (recent, _) = hub.recent_and_tail_seq("demo", 2, &LogFilter::default());
    assert_eq!(
        messages(&recent),
        vec![
            (seqs[6], "line 6".to_owned()),
            (seqs[7], "line 7".to_owned())
        ]
    );
}

#[test]
fn sequence_numbers_outlive_a_restart() {
    let before = LogHub::new(10);
    let old = before.publish_seq("demo", LogLine::app("web.1", "before"));
    std::thread::sleep(std::time::Duration::from_millis(2));
    let after = LogHub::new(10);
    let new = after.publish_seq("demo", LogLine::app("web.1", "after"));
    assert!(new > old, "{new} <= {old}");
    // Per app: another app's numbers are unrelated.
    let a = after.publish_seq("demo", LogLine::app("web.1", "x"));
    after.publish_seq("other", LogLine::app("web.1", "y"));
    assert_eq!(after.publish_seq("demo", LogLine::app("web.1", "z")), a + 1);
}

#[tokio::test]
async fn since_filters_history_and_tails_from_the_next_line() {
    let hub = LogHub::new(100);
    hub.publish("demo", LogLine::app("web.1", "a"));
    let mark = hub.publish_seq("demo", LogLine::heroku("router", "b"));
    hub.publish("demo", LogLine::app("web.2", "c"));
    hub.publish("demo", LogLine::heroku("router", "d"));
    let router = LogFilter {
        source: None,
        process: Some("router".to_owned()),
    };
    let (lines, mut tail) = hub.since("demo", mark - 1, &router);
    let texts: Vec<&str> = lines.iter().map(|(_, l)| l.message.as_str()).collect();
    assert_eq!(texts, vec!["b", "d"]);
    let next = hub.publish_seq("demo", LogLine::app("web.1", "e"));
    match tail.next_seq().await {
        Some(SeqTailEvent::Line(seq, line)) => {
            assert_eq!((seq, line.message.as_str()), (next, "e"));
        }
        other => panic!("unexpected {other:?}"),
    }
    for i in 0..(TAIL_BUFFER + 3) {
        hub.publish("demo", LogLine::app("web.1", format!("{i}")));
    }
    assert_eq!(tail.next_seq().await, Some(SeqTailEvent::Missed(3)));
    hub.forget("demo");
    assert!(hub.recent("demo", 10, &LogFilter::default()).is_empty());
}

#[test]
fn drain_urls_are_validated_with_clear_errors() {
    let ok = [
        ("syslog://logs.example.com:514", "syslog"),
        ("syslog+tls://logs.example.com:6514", "syslog+tls"),
        ("syslog://127.0.0.1:5140", "syslog"),
        ("syslog://[::1]:5140", "syslog"),
        ("https://user:pass@logs.example.com/drain?x=1", "http"),
        ("http://127.0.0.1:8080/", "http"),
        ("  https://logs.example.com  ", "http"),
    ];
    for (url, kind) in ok {
        let target = DrainTarget::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        let got = match target {
            DrainTarget::Syslog { .. } => "syslog",
            DrainTarget::SyslogTls { .. } => "syslog+tls",
            DrainTarget::Http(_) => "http",
        };
        assert_eq!(got, kind, "{url}");
    }
    assert_eq!(
        DrainTarget::parse("syslog://[::1]:5140"),
        Ok(DrainTarget::Syslog {
            host: "::1".to_owned(),
            port: 5140
        })
    );
    let bad: [(&str, &str); 6] = [
        ("not a url", "is not a valid URL"),
        ("ftp://logs.example.com/", "supported schemes are syslog://"),
        ("syslog://logs.example.com", "has no port"),
        ("syslog+tls://:6514", "not a valid URL"),
        ("syslog:/logs.example.com", "has no host"),
        ("udp://logs.example.com:514", "has scheme \"udp\""),
    ];
    for (url, message) in bad {
        let error = DrainTarget::parse(url).expect_err(url).to_string();
        assert!(error.contains(message), "{url}: {error}");
        assert!(DrainConfig::new(url).is_err(), "{url}");
    }
}

#[test]
fn drain_configs_get_ids_and_d_uuid_tokens() {
    let config = DrainConfig::new("syslog://logs.example.com:514").expect("config");
    assert!(uuid::Uuid::parse_str(&config.id).is_ok());
    let uuid = config.token.strip_prefix("d.").expect("d. prefix");
    assert_eq!(
        uuid::Uuid::parse_str(uuid).map(|u| u.get_version_num()),
        Ok(4)
    );
    assert!(config.validate().is_ok());
    for token in ["t.123", "d.not-a-uuid", ""] {
        let bad = DrainConfig {
            token: token.to_owned(),
            ..config.clone()
        };
        assert_eq!(
            bad.validate(),
            Err(DrainError::InvalidToken {
                token: token.to_owned()
            })
        );
    }
}

#[test]
fn add_drain_needs_a_runtime() {
    let hub = LogHub::new(10);
    let config = DrainConfig::new("syslog://127.0.0.1:9").expect("config");
    assert_eq!(hub.add_drain("demo", config), Err(DrainError::NoRuntime));
}

#[tokio::test]
async fn at_most_five_drains_per_app_each_removable_by_id_token_or_url() {
    let hub = LogHub::new(10);
    // Port 9 (discard) on loopback refuses connections: the drains just fail in the background.
    let configs: Vec<DrainConfig> = (0..6)
        .map(|i| DrainConfig::new(&format!("syslog://127.0.0.1:{}", 9 + i)).expect("config"))
        .collect();
    for config in &configs[..5] {
        hub.add_drain("demo", config.clone()).expect("add");
    }
    assert_eq!(
        hub.add_drain("demo", configs[5].clone()),
        Err(DrainError::TooManyDrains {
            app: "demo".to_owned(),
            limit: MAX_DRAINS_PER_APP
        })
    );
    // Other apps have their own five.
    hub.add_drain("other", configs[5].clone())
        .expect("other app");
    let listed: Vec<DrainConfig> = hub.drains("demo").into_iter().map(|d| d.config).collect();
    assert_eq!(listed, configs[..5].to_vec());

    let again = DrainConfig::new(&configs[0].url).expect("config");
    hub.remove_drain("demo", &configs[4].id)
        .expect("remove by id");
    assert_eq!(
        hub.add_drain("demo", again),
        Err(DrainError::DuplicateUrl {
            app: "demo".to_owned(),
            url: configs[0].url.clone()
        })
    );
    assert_eq!(
        hub.remove_drain("demo", &configs[1].token),
        Ok(configs[1].clone())
    );
    assert_eq!(
        hub.remove_drain("demo", &configs[2].url),
        Ok(configs[2].clone())
    );
    let missing = hub.remove_drain("demo", &configs[2].url).expect_err("gone");
    assert!(missing.to_string().contains("has no drain"), "{missing}");
    assert_eq!(hub.drains("demo").len(), 2);
    hub.forget("demo");
    assert!(hub.drains("demo").is_empty());
    assert_eq!(hub.drains("other").len(), 1);
}

fn fixed(source: Source, process: &str, message: &str) -> LogLine {
    line_at(source, process, message)
}

const TOKEN: &str = "d.9173ea1f-6f13-4bd4-8b6e-3c6f4c2fa9a1";

#[test]
fn syslog_frames_look_like_herokus() {
    let frame = |line: &LogLine, http: bool| {
        let message = if http {
            syslog::logplex_message(line)
        } else {
            syslog::syslog_message(line, TOKEN)
        };
        let mut out = Vec::new();
        syslog::write_octet_counted(&mut out, &message);
        String::from_utf8(out).expect("UTF-8")
    };
    let app = fixed(Source::App, "web.1", "Listening on 5000");
    let router = fixed(
        Source::Heroku,
        "router",
        "at=info method=GET path=/ host=demo.example.com request_id=1 fwd=\"127.0.0.1\" \
         dyno=web.1 connect=0ms service=2ms status=200 bytes=13 protocol=http",
    );
    let manager = fixed(Source::Heroku, "web.1", "State changed from starting to up");
    insta::assert_snapshot!("syslog_app_line", frame(&app, false));
    insta::assert_snapshot!("syslog_router_line", frame(&router, false));
    insta::assert_snapshot!("syslog_dyno_manager_line", frame(&manager, false));
    insta::assert_snapshot!("logplex1_app_line", frame(&app, true));
    insta::assert_snapshot!("logplex1_router_line", frame(&router, true));
    // A process name that would break the header is sent as NILVALUE.
    let odd = fixed(Source::App, "web 1", "x");
    assert!(frame(&odd, false).contains(" app - - - x"));
}

#[test]
fn framing_errors_say_where() {
    assert_eq!(syslog::split_octet_counted(b""), Ok(vec![]));
    assert_eq!(
        syslog::split_octet_counted(b"3 abc2 de"),
        Ok(vec![&b"abc"[..], &b"de"[..]])
    );
    assert_eq!(
        syslog::split_octet_counted(b"3 abcx"),
        Err(syslog::FramingError::BadLength { offset: 5 })
    );
    assert_eq!(
        syslog::split_octet_counted(b"10 abc"),
        Err(syslog::FramingError::Truncated {
            offset: 0,
            length: 10,
            available: 3
        })
    );
    assert_eq!(
        syslog::split_octet_counted(b"3abc"),
        Err(syslog::FramingError::BadLength { offset: 0 })
    );
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn any_line() -> impl Strategy<Value = LogLine> {
        (
            any::<bool>(),
            "[a-z]{1,8}(\\.[0-9]{1,3})?",
            any::<String>(),
            0i64..4_000_000_000_000_000,
        )
            .prop_map(|(app, process, message, micros)| LogLine {
                timestamp: DateTime::from_timestamp_micros(micros).unwrap_or_default(),
                source: if app { Source::App } else { Source::Heroku },
                process,
                message,
            })
    }

    proptest! {
        #[test]
        fn octet_counted_frames_round_trip(messages in proptest::collection::vec(any::<Vec<u8>>(), 0..20)) {
            let mut out = Vec::new();
            for message in &messages {
                syslog::write_octet_counted(&mut out, message);
            }
            let frames = syslog::split_octet_counted(&out).expect("parse");
            prop_assert_eq!(frames, messages.iter().map(Vec::as_slice).collect::<Vec<_>>());
        }

        #[test]
        fn syslog_messages_keep_the_message_intact(line in any_line()) {
            let message = syslog::syslog_message(&line, TOKEN);
            let mut out = Vec::new();
            syslog::write_octet_counted(&mut out, &message);
            let frames = syslog::split_octet_counted(&out).expect("parse");
            prop_assert_eq!(frames.len(), 1);
            let text = std::str::from_utf8(frames[0]).expect("UTF-8");
            let fields: Vec<&str> = text.splitn(8, ' ').collect();
            prop_assert_eq!(fields.len(), 8);
            prop_assert_eq!(fields[1], line.formatted_timestamp());
            prop_assert_eq!(fields[2], TOKEN);
            prop_assert_eq!(fields[3], line.source.as_str());
            prop_assert_eq!(fields[4], line.process.as_str());
            prop_assert_eq!(fields[7], line.message.as_str());
            let with_http = syslog::logplex_message(&line);
            let http_text = std::str::from_utf8(&with_http).expect("UTF-8");
            prop_assert_eq!(http_text.splitn(7, ' ').nth(6), Some(line.message.as_str()));
        }

        #[test]
        fn garbage_never_panics_the_parser(data in any::<Vec<u8>>()) {
            let _ = syslog::split_octet_counted(&data);
        }
    }
}
