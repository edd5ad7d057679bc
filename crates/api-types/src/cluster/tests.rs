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
