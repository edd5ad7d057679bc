//! Tests of the `access` commands' output.

use super::*;

#[test]
fn lists_members_like_heroku() {
    let members: Vec<Collaborator> = serde_json::from_value(serde_json::json!([
        {"user": {"email": "owner@example.com"}, "role": "owner",
         "permissions": [{"name": "view"}, {"name": "manage"}]},
        {"user": {"email": "c@example.com"}, "role": "collaborator",
         "permissions": [{"name": "view"}, {"name": "deploy"}]}
    ]))
    .unwrap();
    assert_eq!(
        format_access("demo", &members),
        "=== demo Access List\n\nowner@example.com  owner         view, manage\nc@example.com      collaborator  view, deploy\n"
    );
    assert_eq!(permission_list("view, deploy,,"), ["view", "deploy"]);
}
