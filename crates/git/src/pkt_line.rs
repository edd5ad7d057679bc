//! Git's pkt-line framing: a 4-hex-digit length (including itself) then the payload;
//! `0000` is a flush packet.

/// Encodes one pkt-line.
pub fn encode(payload: &[u8]) -> Vec<u8> {
    let mut line = format!("{:04x}", payload.len() + 4).into_bytes();
    line.extend_from_slice(payload);
    line
}

/// The flush packet.
pub const FLUSH: &[u8] = b"0000";

/// The first lines of a smart-HTTP ref advertisement: `# service=<name>` and a flush.
pub fn service_header(service: &str) -> Vec<u8> {
    let mut out = encode(format!("# service={service}\n").as_bytes());
    out.extend_from_slice(FLUSH);
    out
}

/// Splits a buffer of pkt-lines into payloads (`None` for a flush packet). Stops at the first
/// malformed length and returns what it parsed and the rest of the input.
pub fn decode(mut input: &[u8]) -> (Vec<Option<&[u8]>>, &[u8]) {
    let mut packets = Vec::new();
    while input.len() >= 4 {
        let Some(length) = std::str::from_utf8(&input[..4])
            .ok()
            .and_then(|hex| usize::from_str_radix(hex, 16).ok())
        else {
            break;
        };
        if length == 0 {
            packets.push(None);
            input = &input[4..];
            continue;
        }
        if length < 4 || length > input.len() {
            break;
        }
        packets.push(Some(&input[4..length]));
        input = &input[length..];
    }
    (packets, input)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encodes_like_git() {
        assert_eq!(encode(b"a\n"), b"0006a\n");
        assert_eq!(
            service_header("git-receive-pack"),
            b"001f# service=git-receive-pack\n0000".to_vec()
        );
    }

    #[test]
    fn decodes_flushes_and_stops_at_garbage() {
        let (packets, rest) = decode(b"0006a\n00000005bzzzz");
        assert_eq!(packets, vec![Some(&b"a\n"[..]), None, Some(&b"b"[..])]);
        assert_eq!(rest, b"zzzz");
        let (packets, rest) = decode(b"0003");
        assert!(packets.is_empty());
        assert_eq!(rest, b"0003");
    }

    proptest! {
        #[test]
        fn round_trips(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20)) {
            let mut wire = Vec::new();
            for payload in &payloads {
                if payload.is_empty() { wire.extend_from_slice(FLUSH); } else { wire.extend(encode(payload)); }
            }
            let (packets, rest) = decode(&wire);
            prop_assert!(rest.is_empty());
            let decoded: Vec<Vec<u8>> = packets.into_iter().map(|p| p.map(|p| p.to_vec()).unwrap_or_default()).collect();
            prop_assert_eq!(decoded, payloads);
        }

        #[test]
        fn never_panics(input in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&input);
        }
    }
}
