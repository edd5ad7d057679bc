//! Tests of the `certs` commands' output.

use super::*;

#[test]
fn lists_certs_like_heroku() {
    let endpoints: Vec<SniEndpoint> = serde_json::from_value(serde_json::json!([
        {"name": "sni-0a1b2c3d", "domains": ["01234567-89ab-cdef-0123-456789abcdef"],
         "ssl_cert": {"cert_domains": ["www.example.com"], "ca_signed?": false}},
        {"name": "sni-ffffffff", "domains": [],
         "ssl_cert": {"cert_domains": ["*.example.org", "example.org"], "ca_signed?": true}}
    ]))
    .unwrap();
    assert_eq!(
        format_certs(&endpoints),
        "Name          Common Name(s)              Trusted  Type  Domains\n\
         ────────────  ──────────────────────────  ───────  ────  ───────\n\
         sni-0a1b2c3d  www.example.com             False    SNI   1\n\
         sni-ffffffff  *.example.org, example.org  True     SNI   0\n"
    );
}
