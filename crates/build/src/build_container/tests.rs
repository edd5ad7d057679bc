//! Tests of what every build container shares.

use super::*;

#[test]
fn container_ids_are_sanitized() {
    assert_eq!(
        container_id("my app", "b/1", "compile-0-python"),
        "build.my-app.b-1.compile-0-python"
    );
}
