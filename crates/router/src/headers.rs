//! Header rules of the router: host normalisation, request ids, hop-by-hop stripping and the
//! `X-Forwarded-*` / `Via` headers added on the way to the dyno (reference §6.3, §6.4).

use http::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE, VIA,
};

/// The token the router adds to `Via` in both directions.
pub(crate) const VIA_TOKEN: &str = "1.1 slipway";

/// `Host` header value → routing key: port stripped, lowercase, no trailing dot.
/// `None` when nothing usable is left.
pub(crate) fn normalize_host(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let host = if let Some(rest) = raw.strip_prefix('[') {
        // IPv6 literal: "[::1]:8080" -> "[::1]"
        let end = rest.find(']')?;
        &raw[..end + 2]
    } else {
        match raw.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            Some(_) => return None,
            None => raw,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty()
        || !host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':')
        })
    {
        return None;
    }
    Some(host.to_ascii_lowercase())
}

/// Heroku keeps a client's `X-Request-Id` if it is 20–200 characters of `[A-Za-z0-9+/=-]`.
pub(crate) fn acceptable_request_id(value: &[u8]) -> bool {
    (20..=200).contains(&value.len())
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-'))
}

/// Removes hop-by-hop headers: the fixed list plus every header named in `Connection`.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [CONNECTION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    let proxy: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("proxy-"))
        .cloned()
        .collect();
    for name in proxy {
        headers.remove(name);
    }
}

/// Appends `item` to a comma-separated list header (all existing values joined), returning the
/// new value. Values that are not valid UTF-8 are dropped.
pub(crate) fn append_list(headers: &HeaderMap, name: &str, item: &str) -> String {
    let mut out = String::new();
    for value in headers.get_all(name) {
        if let Ok(value) = value.to_str() {
            let value = value.trim();
            if !value.is_empty() {
                out.push_str(value);
                out.push_str(", ");
            }
        }
    }
    out.push_str(item);
    out
}

/// Adds the router to `Via`.
pub(crate) fn add_via(headers: &mut HeaderMap) {
    let via = append_list(headers, VIA.as_str(), VIA_TOKEN);
    if let Ok(value) = HeaderValue::from_str(&via) {
        headers.insert(VIA, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_normalisation_table() {
        let cases = [
            ("demo.localhost", Some("demo.localhost")),
            ("Demo.LocalHost:8080", Some("demo.localhost")),
            ("demo.localhost.", Some("demo.localhost")),
            ("127.0.0.1:80", Some("127.0.0.1")),
            ("[::1]:8080", Some("[::1]")),
            ("", None),
            (":80", None),
            ("demo:abc", None),
            ("de mo", None),
            ("a/b", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(normalize_host(raw).as_deref(), expected, "{raw:?}");
        }
    }

    #[test]
    fn request_id_table() {
        let long = "a".repeat(200);
        let too_long = "a".repeat(201);
        let cases: [(&str, bool); 6] = [
            ("abcdefghij0123456789", true),
            ("abcdefghij012345678", false),
            ("abc+/=-ABCDEFGHIJKLMNOP", true),
            ("abcdefghij0123456789!", false),
            (&long, true),
            (&too_long, false),
        ];
        for (id, ok) in cases {
            assert_eq!(acceptable_request_id(id.as_bytes()), ok, "{id}");
        }
    }

    #[test]
    fn hop_by_hop_headers_are_stripped() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, X-Secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("proxy-authorization", "x"),
            ("te", "trailers"),
            ("trailer", "x"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("x-kept", "yes"),
            ("content-length", "3"),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }
        strip_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-length", "x-kept"]);
    }

    #[test]
    fn list_append() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            append_list(&headers, "x-forwarded-for", "127.0.0.1"),
            "127.0.0.1"
        );
        headers.append("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        headers.append("x-forwarded-for", HeaderValue::from_static("5.6.7.8 "));
        assert_eq!(
            append_list(&headers, "x-forwarded-for", "127.0.0.1"),
            "1.2.3.4, 5.6.7.8, 127.0.0.1"
        );
    }
}
