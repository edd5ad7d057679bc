//! Tests of the SSE parser and line splitter, fed the same stream in different chunkings.

use super::*;

/// Feeds `stream` to a parser in chunks of `size` bytes and collects the printed lines.
fn sse_lines(stream: &str, size: usize) -> (Vec<String>, SseParser) {
    let mut parser = SseParser::default();
    let mut lines = Vec::new();
    for chunk in stream.as_bytes().chunks(size) {
        for event in parser.feed(chunk) {
            lines.extend(event_lines(&event).into_iter().map(str::to_owned));
        }
    }
    (lines, parser)
}

#[test]
fn sse_streams() {
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "id: 42\ndata: 2026-01-01T00:00:00Z app[web.1]: hello\n\n",
            vec!["2026-01-01T00:00:00Z app[web.1]: hello"],
        ),
        ("data: a\ndata: b\n\ndata: c\n\n", vec!["a", "b", "c"]),
        ("data: a\n\n\ndata:  b  \n\n", vec!["a", "b"]),
        ("data: x\r\n\r\n", vec!["x"]),
        (": keep-alive comment\n\ndata: y\n\n", vec!["y"]),
        (
            "event: heartbeat\ndata: ignored\n\ndata: shown\n\n",
            vec!["shown"],
        ),
        (
            "event: message\ndata: named message\n\n",
            vec!["named message"],
        ),
        ("data: multi\ndata:\ndata: line\n\n", vec!["multi", "line"]),
        ("data: unterminated event", vec![]),
        ("retry: 100\n\n", vec![]),
    ];
    for (stream, expected) in cases {
        for size in [1, 3, 7, stream.len().max(1)] {
            let (lines, _) = sse_lines(stream, size);
            assert_eq!(lines, expected, "stream {stream:?} in chunks of {size}");
        }
    }
}

#[test]
fn sse_remembers_id_and_retry() {
    let (_, parser) = sse_lines("id: 7\nretry: 250\ndata: a\n\nid: 8\ndata: b\n\n", 5);
    assert_eq!(parser.last_event_id.as_deref(), Some("8"));
    assert_eq!(parser.retry, Some(Duration::from_millis(250)));
}

#[test]
fn plain_text_lines() {
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("a\nb\n", vec!["a", "b"]),
        ("a\r\nb", vec!["a", "b"]),
        ("", vec![]),
        ("\n\n", vec!["", ""]),
        ("héllo wörld\n", vec!["héllo wörld"]),
    ];
    for (stream, expected) in cases {
        for size in [1, 2, stream.len().max(1)] {
            let mut splitter = LineSplitter::default();
            let mut lines = Vec::new();
            for chunk in stream.as_bytes().chunks(size) {
                lines.extend(splitter.feed(chunk));
            }
            lines.extend(splitter.finish());
            assert_eq!(lines, expected, "stream {stream:?} in chunks of {size}");
        }
    }
}
