//! Tests of the `dyno` resource's request bodies.

use super::*;

#[test]
fn env_values_may_be_numbers_as_the_cli_sends_them() {
    let body = r#"{"command":"bash","attach":true,"env":{"TERM":"xterm","COLUMNS":132,"LINES":43,"X":true}}"#;
    let create: DynoCreate = serde_json::from_str(body).unwrap();
    let env = create.env.unwrap();
    assert_eq!(env["COLUMNS"], "132");
    assert_eq!(env["LINES"], "43");
    assert_eq!(env["TERM"], "xterm");
    assert_eq!(env["X"], "true");
    assert!(serde_json::from_str::<DynoCreate>(r#"{"command":"x","env":{"A":[1]}}"#).is_err());
}
