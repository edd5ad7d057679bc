//! Drains against real receivers on loopback: syslog over TCP and TLS, and HTTP endpoints that
//! answer 200, 500, 429, 400 or hang, as each test scripts.

mod support;

use std::time::Duration;

use slipway_logplex::{
    DrainConfig, DrainOptions, LogFilter, LogHub, LogLine, SeqTailEvent, DRAIN_BUFFER,
};
use support::{http_receiver, parse_syslog, syslog_receiver, Answer, TestPki};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(30);

fn hub_with(extra_roots: Vec<slipway_logplex::CertificateDer<'static>>) -> LogHub {
    LogHub::with_drain_options(
        1500,
        DrainOptions {
            extra_roots,
            retry_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
            connect_timeout: Duration::from_secs(5),
            io_timeout: Duration::from_secs(120),
            // The receivers are on loopback.
            outbound: slipway_outbound::OutboundPolicy::new(true),
            ..DrainOptions::default()
        },
    )
}

async fn next<T>(receiver: &mut tokio::sync::mpsc::UnboundedReceiver<T>) -> T {
    timeout(WAIT, receiver.recv())
        .await
        .expect("the receiver got nothing within 30 s")
        .expect("receiver closed")
}

/// The stats of the app's `index`th drain once `done` holds for them (the counters are updated
/// right after the receiver has the lines).
async fn stats_when(
    hub: &LogHub,
    index: usize,
    done: impl Fn(&slipway_logplex::DrainStats) -> bool,
) -> slipway_logplex::DrainStats {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let stats = hub.drains("demo")[index].stats;
        if done(&stats) || tokio::time::Instant::now() > deadline {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn sample_lines() -> Vec<LogLine> {
    vec![
        LogLine::app("web.1", "Listening on 5000"),
        LogLine::heroku(
            "router",
            "at=info method=GET path=/ host=demo.example.com status=200 bytes=13",
        ),
        LogLine::heroku("web.1", "State changed from starting to up"),
        LogLine::app("worker.2", "multi\nline ünïcødé ✓ and trailing space "),
        LogLine::app("web.1", ""),
    ]
}

/// Every sample line arrives as an RFC 5424 message with the token as HOSTNAME, the source as
/// APP-NAME, the dyno as PROCID, the right PRI and the message intact.
async fn check_syslog_drain(url_scheme: &str, pki: Option<&TestPki>) {
    let mut receiver = syslog_receiver(pki.map(|p| p.server_config.clone())).await;
    let hub = hub_with(pki.map(|p| vec![p.ca.clone()]).unwrap_or_default());
    let config = DrainConfig::new(&format!("{url_scheme}://{}", receiver.addr)).expect("config");
    hub.add_drain("demo", config.clone()).expect("add drain");
    let lines = sample_lines();
    for line in &lines {
        hub.publish("demo", line.clone());
    }
    for line in &lines {
        let text = next(&mut receiver.messages).await;
        let parsed = parse_syslog(&text, true);
        let expected_pri = match (line.source.as_str(), line.process.as_str()) {
            ("app", _) => 190,
            (_, "router") => 158,
            _ => 45,
        };
        assert_eq!(parsed.pri, expected_pri, "{text}");
        assert_eq!(parsed.version, 1);
        assert_eq!(parsed.timestamp, line.formatted_timestamp());
        assert_eq!(parsed.hostname, config.token);
        assert_eq!(parsed.app_name, line.source.as_str());
        assert_eq!(parsed.procid, line.process);
        assert_eq!(parsed.msgid, "-");
        assert_eq!(parsed.structured_data.as_deref(), Some("-"));
        assert_eq!(parsed.message, line.message);
    }
    let stats = stats_when(&hub, 0, |s| s.delivered == lines.len() as u64).await;
    assert_eq!((stats.delivered, stats.dropped), (lines.len() as u64, 0));
}

/// A line published without drains reaches the history but not the drain; the next one, published
/// as usual, is the drain's first message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_published_without_drains_stays_out_of_them() {
    let mut receiver = syslog_receiver(None).await;
    let hub = hub_with(Vec::new());
    let config = DrainConfig::new(&format!("syslog://{}", receiver.addr)).expect("config");
    hub.add_drain("demo", config).expect("add drain");
    hub.publish_without_drains("demo", LogLine::app("web.1", "seen by tails only"));
    hub.publish("demo", LogLine::app("web.1", "seen by the drain too"));
    let first = parse_syslog(&next(&mut receiver.messages).await, true);
    assert_eq!(first.message, "seen by the drain too");
    let stats = stats_when(&hub, 0, |s| s.delivered == 1).await;
    assert_eq!((stats.delivered, stats.dropped), (1, 0));
    let history: Vec<String> = hub
        .recent("demo", 10, &LogFilter::default())
        .iter()
        .map(|line| line.message.clone())
        .collect();
    assert_eq!(history, ["seen by tails only", "seen by the drain too"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_tcp_drain_sends_octet_counted_rfc5424() {
    check_syslog_drain("syslog", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_tls_drain_verifies_the_certificate_and_delivers() {
    let pki = TestPki::new();
    check_syslog_drain("syslog+tls", Some(&pki)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_tls_drain_reports_l14_and_delivers_nothing() {
    let pki = TestPki::new();
    let mut receiver = syslog_receiver(Some(pki.server_config.clone())).await;
    // The hub trusts only the web PKI, not this test's CA.
    let hub = hub_with(Vec::new());
    let url = format!("syslog+tls://{}", receiver.addr);
    hub.add_drain("demo", DrainConfig::new(&url).expect("config"))
        .expect("add drain");
    hub.publish("demo", LogLine::app("web.1", "secret"));
    let filter = LogFilter {
        source: None,
        process: Some("logplex".to_owned()),
    };
    let (_, mut tail) = hub.recent_and_tail("demo", 0, &filter);
    let l14 = loop {
        let Some(recent) = hub.recent("demo", 10, &filter).pop() else {
            timeout(WAIT, tail.next())
                .await
                .expect("no L14 within 30 s");
            continue;
        };
        break recent;
    };
    assert!(
        l14.message
            .starts_with("Error L14 (certificate validation): error=\""),
        "{}",
        l14.message
    );
    assert!(
        l14.message.ends_with(&format!("uri=\"{url}\"")),
        "{}",
        l14.message
    );
    // Only one L14 per failure streak, and the line never reached the untrusted receiver.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hub.recent("demo", 10, &filter).len(), 1);
    assert!(receiver.messages.try_recv().is_err());
    let stats = stats_when(&hub, 0, |s| s.dropped == 1).await;
    assert_eq!(stats.delivered, 0);
    assert_eq!(
        stats.dropped, 1,
        "the batch is dropped once retries run out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_drain_posts_logplex_frames_with_headers_and_basic_auth() {
    let pki = TestPki::new();
    let mut receiver = http_receiver(Some(pki.server_config.clone())).await;
    let hub = hub_with(vec![pki.ca.clone()]);
    let config = DrainConfig::new(&format!("https://user:p%40ss@{}/logs?x=1", receiver.addr))
        .expect("config");
    hub.add_drain("demo", config.clone()).expect("add drain");
    let lines = sample_lines();
    for line in &lines {
        hub.publish("demo", line.clone());
    }
    let mut got = Vec::new();
    while got.len() < lines.len() {
        let request = next(&mut receiver.requests).await;
        assert_eq!(request.header("content-type"), "application/logplex-1");
        assert_eq!(request.header("logplex-drain-token"), config.token);
        assert!(!request.header("logplex-frame-id").is_empty());
        assert!(request.header("user-agent").starts_with("Logplex/"));
        // "user:p@ss" in base64.
        assert_eq!(request.header("authorization"), "Basic dXNlcjpwQHNz");
        let messages = request.messages();
        assert_eq!(
            request.header("logplex-msg-count"),
            messages.len().to_string()
        );
        got.extend(messages);
    }
    for (text, line) in got.iter().zip(&lines) {
        let parsed = parse_syslog(text, false);
        assert_eq!(parsed.hostname, "host");
        assert_eq!(parsed.app_name, line.source.as_str());
        assert_eq!(parsed.procid, line.process);
        assert_eq!(parsed.msgid, "-");
        assert_eq!(parsed.message, line.message);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_drain_retries_5xx_and_429_with_the_same_frame_id() {
    let mut receiver = http_receiver(None).await;
    receiver.script(&[
        Answer::Status(500),
        Answer::Status(429),
        Answer::Status(200),
    ]);
    let hub = hub_with(Vec::new());
    let config = DrainConfig::new(&format!("http://{}/", receiver.addr)).expect("config");
    hub.add_drain("demo", config).expect("add drain");
    hub.publish("demo", LogLine::app("web.1", "try me"));
    let attempts = [
        next(&mut receiver.requests).await,
        next(&mut receiver.requests).await,
        next(&mut receiver.requests).await,
    ];
    let answers: Vec<Answer> = attempts.iter().map(|r| r.answer).collect();
    assert_eq!(
        answers,
        [
            Answer::Status(500),
            Answer::Status(429),
            Answer::Status(200)
        ]
    );
    let frame_id = attempts[0].header("logplex-frame-id");
    for attempt in &attempts {
        assert_eq!(attempt.header("logplex-frame-id"), frame_id);
        assert_eq!(attempt.body, attempts[0].body);
    }
    // The next batch gets a new frame id and no L10: nothing was lost.
    hub.publish("demo", LogLine::app("web.1", "again"));
    let later = next(&mut receiver.requests).await;
    assert_ne!(later.header("logplex-frame-id"), frame_id);
    let messages = later.messages();
    assert_eq!(messages.len(), 1);
    assert!(messages[0].ends_with(" - again"), "{messages:?}");
    let stats = stats_when(&hub, 0, |s| s.delivered == 2).await;
    assert_eq!((stats.delivered, stats.dropped), (2, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_drain_drops_a_batch_refused_with_400_and_says_so() {
    let mut receiver = http_receiver(None).await;
    receiver.script(&[Answer::Status(400)]);
    let hub = hub_with(Vec::new());
    let config = DrainConfig::new(&format!("http://{}/", receiver.addr)).expect("config");
    hub.add_drain("demo", config).expect("add drain");
    hub.publish("demo", LogLine::app("web.1", "refused"));
    let refused = next(&mut receiver.requests).await;
    assert_eq!(refused.answer, Answer::Status(400));
    hub.publish("demo", LogLine::app("web.1", "accepted"));
    let request = next(&mut receiver.requests).await;
    assert_eq!(request.answer, Answer::Status(200));
    let messages = request.messages();
    assert_eq!(messages.len(), 2, "{messages:?}");
    let l10 = parse_syslog(&messages[0], false);
    assert_eq!(
        (l10.app_name.as_str(), l10.procid.as_str()),
        ("heroku", "logplex")
    );
    assert!(
        l10.message
            .starts_with("Error L10 (output buffer overflow): 1 messages dropped since "),
        "{}",
        l10.message
    );
    assert!(messages[1].ends_with(" - accepted"));
    // Not retried: exactly one request carried the refused line.
    assert!(receiver.requests.try_recv().is_err());
}

/// With one drain hung, 10,000 lines still reach the tail and the other drain; the hung drain
/// keeps the newest 1024, and says how many it dropped when it comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_drain_blocks_nothing_and_reports_its_overflow() {
    const LINES: usize = 10_000;
    let mut hung = http_receiver(None).await;
    hung.set_default(Answer::Hang);
    let mut healthy = syslog_receiver(None).await;
    let hub = hub_with(Vec::new());
    hub.add_drain(
        "demo",
        DrainConfig::new(&format!("http://{}/", hung.addr)).expect("config"),
    )
    .expect("add hung drain");
    hub.add_drain(
        "demo",
        DrainConfig::new(&format!("syslog://{}", healthy.addr)).expect("config"),
    )
    .expect("add healthy drain");
    let (_, mut tail) = hub.recent_and_tail_seq("demo", 0, &LogFilter::default());
    let tail_task = tokio::spawn(async move {
        let (mut lines, mut missed, mut last) = (0u64, 0u64, 0u64);
        while lines + missed < LINES as u64 {
            match tail.next_seq().await {
                Some(SeqTailEvent::Line(seq, _)) => {
                    assert!(seq > last, "sequence numbers increase");
                    last = seq;
                    lines += 1;
                }
                Some(SeqTailEvent::Missed(count)) => missed += count,
                None => break,
            }
        }
        (lines, missed)
    });

    // The first line goes out and hangs; wait until the endpoint holds it.
    hub.publish("demo", LogLine::app("web.1", "line 0"));
    let in_flight = next(&mut hung.requests).await;
    assert_eq!(in_flight.answer, Answer::Hang);
    let in_flight_count = in_flight.messages().len();
    assert_eq!(in_flight_count, 1);
    assert_eq!(
        next(&mut healthy.messages).await.rsplit(' ').next(),
        Some("0")
    );

    // Publish the rest in chunks no larger than the healthy drain's buffer, waiting for it to
    // catch up between chunks, so only the hung drain can overflow.
    let mut sent = 1;
    while sent < LINES {
        let chunk = (LINES - sent).min(500);
        for i in sent..sent + chunk {
            hub.publish("demo", LogLine::app("web.1", format!("line {i}")));
        }
        for i in sent..sent + chunk {
            let text = next(&mut healthy.messages).await;
            assert!(
                text.ends_with(&format!(" - line {i}")),
                "{text} != line {i}"
            );
        }
        sent += chunk;
    }
    let (tail_lines, tail_missed) = timeout(WAIT, tail_task)
        .await
        .expect("the tail ended within 30 s")
        .expect("tail task");
    assert_eq!(tail_lines + tail_missed, LINES as u64);

    let healthy_stats = stats_when(&hub, 1, |s| s.delivered == LINES as u64).await;
    let hung_stats = hub.drains("demo")[0].stats;
    assert_eq!(healthy_stats.delivered, LINES as u64);
    assert_eq!(healthy_stats.dropped, 0);
    let expected_dropped = (LINES - in_flight_count - DRAIN_BUFFER) as u64;
    assert_eq!(hung_stats.queued, DRAIN_BUFFER);
    assert_eq!(hung_stats.dropped, expected_dropped);

    // Back to life: the next POST starts with the L10 line, then the 1024 newest lines.
    hung.set_default(Answer::Status(200));
    hung.release();
    let mut delivered = Vec::new();
    while delivered.len() < DRAIN_BUFFER + 1 {
        delivered.extend(next(&mut hung.requests).await.messages());
    }
    let l10 = parse_syslog(&delivered[0], false);
    assert_eq!(
        l10.message.split(" since ").next().expect("L10 text"),
        format!("Error L10 (output buffer overflow): {expected_dropped} messages dropped")
    );
    for (offset, text) in delivered[1..].iter().enumerate() {
        let i = LINES - DRAIN_BUFFER + offset;
        assert!(
            text.ends_with(&format!(" - line {i}")),
            "{text} != line {i}"
        );
    }
    // The L10 line is in the app's stream too, but was not sent to the healthy drain.
    let l10_in_history = hub.recent(
        "demo",
        5,
        &LogFilter {
            source: None,
            process: Some("logplex".to_owned()),
        },
    );
    assert_eq!(l10_in_history.len(), 1);
    assert_eq!(l10_in_history[0].message, l10.message);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(healthy.messages.try_recv().is_err());
}

/// Drains to loopback are refused when added and, for a drain started anyway (restored from
/// storage, or a name that changed its address since), at connection time: nothing arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drains_to_private_addresses_are_refused_when_added_and_when_connecting() {
    let strict = LogHub::with_drain_options(
        1500,
        DrainOptions {
            retry_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(50),
            connect_timeout: Duration::from_secs(2),
            io_timeout: Duration::from_secs(2),
            max_retries: 1,
            ..DrainOptions::default()
        },
    );
    let mut syslog = syslog_receiver(None).await;
    let mut http = http_receiver(None).await;
    let urls = [
        format!("syslog://{}", syslog.addr),
        format!("syslog://localhost:{}", syslog.addr.port()),
        format!("http://{}/logs", http.addr),
        format!("http://localhost:{}/logs", http.addr.port()),
        "syslog://[::1]:514".to_owned(),
        "syslog://10.0.0.1:514".to_owned(),
        "https://169.254.169.254/latest/meta-data".to_owned(),
        "https://192.168.0.1/".to_owned(),
        "syslog+tls://[fd00::1]:6514".to_owned(),
    ];
    for url in &urls {
        let error = strict.check_drain_url(url).await.unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains("is refused") && text.contains("--allow-private-urls"),
            "{url}: {text}"
        );
    }
    for url in &urls[..4] {
        strict
            .add_drain("demo", DrainConfig::new(url).unwrap())
            .unwrap();
    }
    for i in 0..20 {
        strict.publish("demo", LogLine::app("web.1", format!("line {i}")));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        syslog.messages.try_recv().is_err(),
        "a refused syslog drain was delivered to"
    );
    assert!(
        http.requests.try_recv().is_err(),
        "a refused HTTP drain was delivered to"
    );
    for (index, info) in strict.drains("demo").iter().enumerate() {
        assert_eq!(info.stats.delivered, 0, "drain {index}: {info:?}");
    }

    // The same receivers get the lines when private targets are allowed.
    let open = hub_with(Vec::new());
    for url in &urls[..4] {
        open.check_drain_url(url).await.unwrap();
        open.add_drain("demo", DrainConfig::new(url).unwrap())
            .unwrap();
    }
    open.publish("demo", LogLine::app("web.1", "hello"));
    assert!(next(&mut syslog.messages).await.contains("hello"));
    assert!(String::from_utf8_lossy(&next(&mut http.requests).await.body).contains("hello"));
}
