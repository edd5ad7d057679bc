//! What `slipway stack` prints.

use chrono::Utc;
use slipway_api_types::Stack;

use super::format_stacks;

fn stack(name: &str) -> Stack {
    Stack {
        default: name == "host",
        created_at: Utc::now(),
        id: uuid::Uuid::new_v4(),
        name: name.into(),
        state: "public".into(),
        updated_at: Utc::now(),
    }
}

#[test]
fn the_apps_stack_is_marked() {
    let stacks = [stack("host"), stack("heroku-24")];
    assert_eq!(
        format_stacks("demo", "heroku-24", &stacks),
        "=== ⬢ demo Available Stacks\n  host\n* heroku-24\n"
    );
    // An app on a stack that is not built (yet) has no line marked.
    assert_eq!(
        format_stacks("demo", "tiny", &stacks[..1]),
        "=== ⬢ demo Available Stacks\n  host\n"
    );
}
