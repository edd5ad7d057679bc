//! Tests of the wire format: request and response heads, the chunked scanner and request
//! framing, with property tests over arbitrary bytes seeded with known request-smuggling
//! cases.

use super::*;

use proptest::prelude::*;

const LIMITS: HeadLimits = HeadLimits {
    max_line: 8192,
    max_headers: 1000,
    max_total: 1 << 20,
};

#[test]
fn chunked_bodies_are_followed_across_splits() {
    let body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
    for split in 0..=body.len() - 4 {
        let mut scanner = Chunked::default();
        let mut data = Vec::new();
        let first = scanner
            .scan(&body[..split], |r| data.extend_from_slice(&body[r]))
            .unwrap();
        assert_eq!(first, split);
        let rest = &body[split..];
        let second = scanner
            .scan(rest, |r| data.extend_from_slice(&rest[r]))
            .unwrap();
        assert!(scanner.is_done());
        assert_eq!(split + second, body.len() - 4, "split at {split}");
        assert_eq!(data, b"hello world");
    }
}

#[test]
fn bad_chunks_are_refused() {
    for bad in [
        &b"x\r\n"[..],
        b"5\r\nhelloXX",
        b"\r\n",
        b"ffffffffffffffffff\r\n",
    ] {
        assert_eq!(
            Chunked::default().scan(bad, |_| {}),
            Err(BadChunk),
            "{bad:?}"
        );
    }
}

#[test]
fn content_length_table() {
    assert_eq!(content_length(b"12"), Some(12));
    assert_eq!(content_length(b"12, 12"), Some(12));
    assert_eq!(content_length(b"12, 13"), None);
    assert_eq!(content_length(b"-1"), None);
    assert_eq!(content_length(b""), None);
    assert_eq!(content_length(b"+5"), None);
}

#[test]
fn request_heads_respect_the_limits() {
    let mut out = Vec::new();
    let ok = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    let line = parse_request(ok, &LIMITS, &mut out).unwrap().unwrap();
    assert_eq!(&ok[line.target.clone()], b"/a");
    assert_eq!(out.len(), 1);
    assert!(parse_request(b"GET / HTTP/1.1\r\nHost", &LIMITS, &mut out)
        .unwrap()
        .is_none());
    let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(9000));
    assert_eq!(
        parse_request(long.as_bytes(), &LIMITS, &mut out).unwrap_err(),
        HeadError::TooLarge
    );
    let partial = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(9000));
    assert_eq!(
        parse_request(partial.as_bytes(), &LIMITS, &mut out).unwrap_err(),
        HeadError::TooLarge
    );
    let mut many = String::from("GET / HTTP/1.1\r\n");
    for n in 0..1001 {
        many.push_str(&format!("X-{n}: 1\r\n"));
    }
    many.push_str("\r\n");
    assert_eq!(
        parse_request(many.as_bytes(), &LIMITS, &mut out).unwrap_err(),
        HeadError::TooManyHeaders
    );
}

/// The framing of a complete request head, as the HTTP/1 engine decides it: `Err` is a 400.
fn framing(request: &[u8]) -> Result<(RequestLine, BodyLength), String> {
    let mut headers = Vec::new();
    let line = parse_request(request, &LIMITS, &mut headers)
        .map_err(|error| error.reason().to_owned())?
        .ok_or("incomplete")?;
    let mut framing = Framing::default();
    for (name, value) in &headers {
        match crate::policy::classify(&request[name.clone()]) {
            crate::policy::Kind::ContentLength => {
                framing.content_length(&request[value.clone()])?
            }
            crate::policy::Kind::TransferEncoding => {
                framing.transfer_encoding(&request[value.clone()])
            }
            _ => {}
        }
    }
    Ok((line, framing.finish()?))
}

#[derive(Debug, PartialEq)]
enum Framed {
    Rejected,
    Body(BodyLength),
}

fn check_framing(head: &str, expected: Framed) {
    let got = match framing(head.as_bytes()) {
        Ok((_, length)) => Framed::Body(length),
        Err(_) => Framed::Rejected,
    };
    assert_eq!(got, expected, "{head:?}");
}

#[test]
fn request_smuggling_heads_are_refused_or_framed_once() {
    use BodyLength::*;
    use Framed::*;
    let cases = [
        // Plain framings.
        ("GET / HTTP/1.1\r\nHost: x\r\n\r\n", Body(None)),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n",
            Body(Length(5)),
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
            Body(None),
        ),
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            Body(Chunked),
        ),
        (
            "POST / HTTP/1.1\r\ntransfer-encoding: CHUNKED\r\n\r\n",
            Body(Chunked),
        ),
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            Body(Chunked),
        ),
        // Conflicting Content-Length and Transfer-Encoding (CL.TE / TE.CL).
        (
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            Rejected,
        ),
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            Rejected,
        ),
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
            Rejected,
        ),
        // Duplicate Content-Length: equal is one length, differing is refused.
        (
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            Body(Length(5)),
        ),
        (
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            Rejected,
        ),
        ("POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n", Rejected),
        (
            "POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n",
            Body(Length(5)),
        ),
        // Negative, signed, hex, padded, overlong lengths.
        ("POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n", Rejected),
        ("POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", Rejected),
        ("POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\n", Rejected),
        ("POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\n", Rejected),
        (
            "POST / HTTP/1.1\r\nContent-Length:  5 \r\n\r\n",
            Body(Length(5)),
        ),
        (
            "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            Rejected,
        ),
        ("POST / HTTP/1.1\r\nContent-Length: \r\n\r\n", Rejected),
        // Transfer-Encoding that does not end with a single chunked.
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            Rejected,
        ),
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n",
            Rejected,
        ),
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            Rejected,
        ),
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            Rejected,
        ),
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n",
            Rejected,
        ),
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n",
            Rejected,
        ),
        ("POST / HTTP/1.1\r\nTransfer-Encoding: \r\n\r\n", Rejected),
        // Obs-fold (a header continued on the next line) and a space before the colon.
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
            Rejected,
        ),
        (
            "POST / HTTP/1.1\r\nX-A: a\r\n\tb\r\nContent-Length: 5\r\n\r\n",
            Rejected,
        ),
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n",
            Rejected,
        ),
        // Bare LF line endings: the router re-writes the head with CRLF for the dyno, so it
        // only has to frame it once, as here.
        (
            "POST / HTTP/1.1\nHost: x\nContent-Length: 5\n\n",
            Body(Length(5)),
        ),
        (
            "POST / HTTP/1.1\nTransfer-Encoding: chunked\nContent-Length: 5\n\n",
            Rejected,
        ),
    ];
    for (head, expected) in cases {
        check_framing(head, expected);
    }
}

/// What scanning a chunked body gives: its data and how many bytes the body took.
type Scanned<'a> = Result<(&'a [u8], usize), BadChunk>;

fn check_chunked(body: &[u8], expected: Scanned<'_>) {
    let mut scanner = Chunked::default();
    let mut data = Vec::new();
    let got = scanner
        .scan(body, |range| data.extend_from_slice(&body[range]))
        .and_then(|used| {
            if scanner.is_done() {
                Ok(used)
            } else {
                Err(BadChunk)
            }
        });
    match expected {
        Ok((expected_data, used)) => {
            assert_eq!(got, Ok(used), "{:?}", String::from_utf8_lossy(body));
            assert_eq!(data, expected_data, "{:?}", String::from_utf8_lossy(body));
        }
        Err(BadChunk) => assert_eq!(got, Err(BadChunk), "{:?}", String::from_utf8_lossy(body)),
    }
}

#[test]
fn request_smuggling_chunked_bodies_are_refused() {
    let cases: [(&[u8], Scanned<'_>); 16] = [
        (b"5\r\nhello\r\n0\r\n\r\n", Ok((b"hello", 15))),
        (b"0\r\n\r\nGET", Ok((b"", 5))),
        (b"5;name=value\r\nhello\r\n0\r\n\r\n", Ok((b"hello", 26))),
        (b"5 ;x\r\nhello\r\n0\r\n\r\n", Ok((b"hello", 18))),
        (b"0\r\nX-Trailer: y\r\n\r\n", Ok((b"", 19))),
        // Overflowing and malformed sizes.
        (b"ffffffffffffffffff\r\n", Err(BadChunk)),
        (b"0000000000000000001\r\nx\r\n0\r\n\r\n", Err(BadChunk)),
        (b"-5\r\nhello\r\n0\r\n\r\n", Err(BadChunk)),
        (b" 5\r\nhello\r\n0\r\n\r\n", Err(BadChunk)),
        (b"0x5\r\nhello\r\n0\r\n\r\n", Err(BadChunk)),
        // Bare LF anywhere in the framing.
        (b"5\nhello\r\n0\r\n\r\n", Err(BadChunk)),
        (b"5\r\nhello\n0\r\n\r\n", Err(BadChunk)),
        (b"5\r\nhello\r\n0\n\n", Err(BadChunk)),
        (b"0\r\nX: y\n\r\n", Err(BadChunk)),
        // A bare LF or control byte inside an extension.
        (b"5;a\nb\r\nhello\r\n0\r\n\r\n", Err(BadChunk)),
        (b"5;a\x00b\r\nhello\r\n0\r\n\r\n", Err(BadChunk)),
    ];
    for (body, expected) in cases {
        check_chunked(body, expected);
    }
}

/// Writes a parsed request head back out with CRLF line endings.
fn serialise(request: &[u8], line: &RequestLine, headers: &[HeaderRange]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&request[line.method.clone()]);
    out.push(b' ');
    out.extend_from_slice(&request[line.target.clone()]);
    out.extend_from_slice(format!(" HTTP/1.{}\r\n", line.minor).as_bytes());
    for (name, value) in headers {
        out.extend_from_slice(&request[name.clone()]);
        out.extend_from_slice(b": ");
        out.extend_from_slice(&request[value.clone()]);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Name and value bytes of the parsed headers.
fn header_bytes(request: &[u8], headers: &[HeaderRange]) -> Vec<(Vec<u8>, Vec<u8>)> {
    headers
        .iter()
        .map(|(name, value)| {
            (
                request[name.clone()].to_vec(),
                request[value.clone()].to_vec(),
            )
        })
        .collect()
}

/// Request heads built from pieces that matter for framing: known smuggling header lines
/// mixed with ordinary ones, in any order and with either line ending.
fn request_heads() -> impl Strategy<Value = Vec<u8>> {
    let header = prop_oneof![
        Just("Host: demo.localhost".to_owned()),
        Just("Content-Length: 5".to_owned()),
        Just("Content-Length: 6".to_owned()),
        Just("Content-Length: 5, 5".to_owned()),
        Just("Content-Length: -1".to_owned()),
        Just("Transfer-Encoding: chunked".to_owned()),
        Just("Transfer-Encoding: chunked, identity".to_owned()),
        Just("Transfer-Encoding: gzip".to_owned()),
        Just("transfer-encoding: Chunked".to_owned()),
        Just(" folded".to_owned()),
        "[A-Za-z-]{1,12}: [ -~]{0,20}".prop_map(|h| h),
        "[ -~]{0,30}".prop_map(|h| h),
    ];
    (
        prop_oneof![
            Just("GET".to_owned()),
            Just("POST".to_owned()),
            "[A-Z]{1,7}".prop_map(|m| m),
        ],
        "/[!-~]{0,20}",
        0u8..=1,
        proptest::collection::vec(header, 0..8),
        prop_oneof![Just("\r\n"), Just("\n")],
    )
        .prop_map(|(method, target, minor, headers, eol)| {
            let mut head = format!("{method} {target} HTTP/1.{minor}{eol}");
            for header in headers {
                head.push_str(&header);
                head.push_str(eol);
            }
            head.push_str(eol);
            head.into_bytes()
        })
}

/// A valid chunked encoding of `chunks` (empty chunks skipped: a zero size ends the body),
/// with an extension on every other chunk.
fn encode_chunked(chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, chunk) in chunks.iter().filter(|c| !c.is_empty()).enumerate() {
        if i % 2 == 0 {
            out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        } else {
            out.extend_from_slice(format!("{:X};n=v\r\n", chunk.len()).as_bytes());
        }
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn request_parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = framing(&bytes);
        let mut out = Vec::new();
        let _ = parse_response(&bytes, &LIMITS, &mut out);
    }

    #[test]
    fn the_chunked_scanner_never_panics_and_ignores_splits(
        bytes in proptest::collection::vec(any::<u8>(), 0..1024),
        split in 0usize..1024,
    ) {
        let split = split.min(bytes.len());
        let mut whole = Chunked::default();
        let at_once = whole.scan(&bytes, |_| {});
        let mut halves = Chunked::default();
        let in_two = halves.scan(&bytes[..split], |_| {}).and_then(|first| {
            if first < split {
                return Ok(first);
            }
            halves.scan(&bytes[split..], |_| {}).map(|second| first + second)
        });
        prop_assert_eq!(at_once, in_two);
        if at_once.is_ok() {
            prop_assert_eq!(whole.is_done(), halves.is_done());
        }
    }

    #[test]
    fn a_parsed_request_reserialised_parses_the_same(head in request_heads()) {
        let mut headers = Vec::new();
        let Ok(Some(line)) = parse_request(&head, &LIMITS, &mut headers) else {
            return Ok(());
        };
        let again = serialise(&head, &line, &headers);
        let mut headers_again = Vec::new();
        let line_again = parse_request(&again, &LIMITS, &mut headers_again)
            .expect("a re-serialised head parses")
            .expect("a re-serialised head is complete");
        prop_assert_eq!(&head[line.method.clone()], &again[line_again.method.clone()]);
        prop_assert_eq!(&head[line.target.clone()], &again[line_again.target.clone()]);
        prop_assert_eq!(line.minor, line_again.minor);
        prop_assert_eq!(header_bytes(&head, &headers), header_bytes(&again, &headers_again));
        let framed = framing(&head).map(|(_, length)| length);
        let framed_again = framing(&again).map(|(_, length)| length);
        prop_assert_eq!(framed, framed_again);
    }

    #[test]
    fn a_request_is_refused_or_has_one_body_length(head in request_heads()) {
        let mut headers = Vec::new();
        let Ok(Some(_)) = parse_request(&head, &LIMITS, &mut headers) else {
            return Ok(());
        };
        let lengths: Vec<&[u8]> = headers
            .iter()
            .filter(|(name, _)| head[name.clone()].eq_ignore_ascii_case(b"content-length"))
            .map(|(_, value)| &head[value.clone()])
            .collect();
        let encodings = headers
            .iter()
            .filter(|(name, _)| head[name.clone()].eq_ignore_ascii_case(b"transfer-encoding"))
            .count();
        match framing(&head).map(|(_, length)| length) {
            Err(_) => {}
            Ok(BodyLength::Chunked) => {
                prop_assert!(lengths.is_empty(), "chunked with a Content-Length");
                prop_assert!(encodings > 0);
            }
            Ok(length) => {
                prop_assert_eq!(encodings, 0, "a length despite Transfer-Encoding");
                let n = match length {
                    BodyLength::Length(n) => n,
                    _ => 0,
                };
                for value in lengths {
                    prop_assert_eq!(content_length(value), Some(n));
                }
            }
        }
    }

    #[test]
    fn valid_chunked_bodies_give_back_their_data(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8),
        split in 0usize..1024,
        tail in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let encoded = encode_chunked(&chunks);
        let mut stream = encoded.clone();
        stream.extend_from_slice(&tail);
        let split = split.min(stream.len());
        let mut scanner = Chunked::default();
        let mut data = Vec::new();
        let first = scanner.scan(&stream[..split], |r| data.extend_from_slice(&stream[r])).unwrap();
        let mut used = first;
        if first == split {
            let rest = &stream[split..];
            used += scanner.scan(rest, |r| data.extend_from_slice(&rest[r])).unwrap();
        }
        prop_assert!(scanner.is_done());
        prop_assert_eq!(used, encoded.len());
        prop_assert_eq!(data, chunks.concat());
    }
}
