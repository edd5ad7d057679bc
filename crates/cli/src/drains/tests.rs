//! Tests of the `drains` commands' output.

use super::*;

#[test]
fn lists_drains_like_heroku() {
    let drain: LogDrain = serde_json::from_value(serde_json::json!({
        "addon": null, "app": null, "created_at": "2026-11-26T12:00:00Z",
        "id": "01234567-89ab-cdef-0123-456789abcdef", "token": "d.01234567-89ab-cdef-0123-456789abcdef",
        "updated_at": "2026-11-26T12:00:00Z", "url": "syslog+tls://logs.example.com:6514"
    }))
    .unwrap();
    assert_eq!(
        format_drains(&[drain]),
        "=== Drains\n\nsyslog+tls://logs.example.com:6514 (d.01234567-89ab-cdef-0123-456789abcdef)\n"
    );
    assert_eq!(format_drains(&[]), "No drains for this app\n");
}
