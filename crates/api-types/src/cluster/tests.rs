//! The cluster wire format, as the other side reads it.

use super::*;

#[test]
fn messages_are_tagged_json_lines() {
    let snapshot = RouteStreamMessage::Snapshot(RouteSnapshot {
        routes: vec![HostRoute {
            hostname: "web.slipway.local".into(),
            app: "web".into(),
            status: RouteStatus::Serving,
            backends: vec![RouteBackend {
                dyno: "web.1".into(),
                addr: "10.0.0.2:5000".parse().unwrap(),
            }],
        }],
    });
    let line = serde_json::to_string(&snapshot).unwrap();
    assert_eq!(
        line,
        r#"{"type":"snapshot","routes":[{"hostname":"web.slipway.local","app":"web","status":"serving","backends":[{"dyno":"web.1","addr":"10.0.0.2:5000"}]}]}"#
    );
    assert_eq!(
        serde_json::from_str::<RouteStreamMessage>(&line).unwrap(),
        snapshot
    );
    assert_eq!(
        serde_json::to_string(&RouteStreamMessage::Heartbeat).unwrap(),
        r#"{"type":"heartbeat"}"#
    );
    let wake: RouterEvent = serde_json::from_str(r#"{"type":"wake","app":"x"}"#).unwrap();
    assert_eq!(wake, RouterEvent::Wake { app: "x".into() });
    assert!(serde_json::from_str::<RouterEvent>(r#"{"type":"shell","cmd":"rm"}"#).is_err());
}

#[test]
fn a_certificate_line_carries_its_key_but_its_debug_does_not() {
    let message = CertStreamMessage::Snapshot(CertSnapshot {
        certs: vec![HostCert {
            hostname: "www.example.test".into(),
            chain_pem: "CHAIN".into(),
            key_pem: "SECRET-KEY".into(),
        }],
    });
    let line = serde_json::to_string(&message).unwrap();
    assert_eq!(
        line,
        r#"{"type":"snapshot","certs":[{"hostname":"www.example.test","chain_pem":"CHAIN","key_pem":"SECRET-KEY"}]}"#
    );
    assert_eq!(
        serde_json::from_str::<CertStreamMessage>(&line).unwrap(),
        message
    );
    let debug = format!("{message:?}");
    assert!(debug.contains("www.example.test"), "{debug}");
    assert!(!debug.contains("SECRET-KEY"), "{debug}");
}
