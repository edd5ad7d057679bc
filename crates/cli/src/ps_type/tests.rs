//! Tests of `ps:type`'s arguments and output.

use super::*;

#[test]
fn type_arguments_parse_into_size_changes() {
    let updates = parse_type_args(&["web=standard-2x".into(), "worker=Eco".into()]).expect("valid");
    assert_eq!(updates[0].process_type, "web");
    // Sizes travel in Heroku's spelling, whichever spelling was typed.
    assert_eq!(updates[0].size.as_deref(), Some("Standard-2X"));
    assert_eq!(updates[0].quantity, None);
    assert_eq!(updates[1].size.as_deref(), Some("Eco"));
    assert_eq!(
        parse_type_args(&["web=huge".into()]).unwrap_err().to_string(),
        "Unknown dyno size huge. Use one of: eco, basic, standard-1x, standard-2x, performance-m, performance-l."
    );
    for bad in ["web", "web=", "=eco", "web=a=b", "web.1=eco", "web=huge"] {
        assert!(parse_type_args(&[bad.into()]).is_err(), "{bad}");
    }
}
