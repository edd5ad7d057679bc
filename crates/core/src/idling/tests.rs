//! Tests of sleeping apps.

use super::*;

#[test]
fn requests_are_remembered_per_app() {
    let activity = Activity::default();
    assert_eq!(activity.last_request("a"), None);
    let before = Utc::now();
    activity.touch("a");
    let first = activity.last_request("a").expect("recorded");
    assert!(first >= before - chrono::Duration::milliseconds(1));
    activity.touch("a");
    assert!(activity.last_request("a").unwrap() >= first);
    assert_eq!(activity.last_request("b"), None);
}
