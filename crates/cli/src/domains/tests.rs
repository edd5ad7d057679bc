//! Tests of the `domains` commands' output.

use super::*;

fn domain(hostname: &str, kind: &str, cname: Option<&str>) -> Domain {
    serde_json::from_value(serde_json::json!({
        "acm_status": null, "acm_status_reason": null,
        "app": {"id": "01234567-89ab-cdef-0123-456789abcdef", "name": "demo"},
        "cname": cname, "created_at": "2026-11-26T12:00:00Z", "hostname": hostname,
        "id": "01234567-89ab-cdef-0123-456789abcdef", "kind": kind,
        "updated_at": "2026-11-26T12:00:00Z", "status": "none", "sni_endpoint": null
    }))
    .unwrap()
}

#[test]
fn lists_domains_like_heroku() {
    let domains = [
        domain("demo.localhost", "heroku", None),
        domain("www.example.com", "custom", Some("demo.localhost")),
    ];
    assert_eq!(
        format_domains("demo", &domains),
        "=== demo Heroku Domain\n\ndemo.localhost\n\n=== demo Custom Domains\n\n\
         Domain Name      DNS Record Type  DNS Target\n\
         www.example.com  CNAME            demo.localhost\n"
    );
    assert_eq!(
        format_domains("demo", &domains[..1]),
        "=== demo Heroku Domain\n\ndemo.localhost\n"
    );
}
