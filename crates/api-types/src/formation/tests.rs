//! Tests of formation updates: quantities and sizes as the heroku CLI sends them.

use super::FormationQuantity::{self, Absolute, Relative};

#[test]
fn quantity_from_json() {
    let cases: &[(&str, Option<FormationQuantity>)] = &[
        ("2", Some(Absolute(2))),
        ("0", Some(Absolute(0))),
        ("\"2\"", Some(Absolute(2))),
        ("\"+1\"", Some(Relative(1))),
        ("\"-3\"", Some(Relative(-3))),
        ("\"abc\"", None),
        ("\"+\"", None),
        ("\"\"", None),
        ("\"1.5\"", None),
        ("1.5", None),
        ("null", None),
    ];
    for (json, expected) in cases {
        let parsed = serde_json::from_str::<FormationQuantity>(json).ok();
        assert_eq!(parsed, *expected, "quantity {json}");
    }
}

#[test]
fn quantity_to_json() {
    let cases = [
        (Absolute(2), "2"),
        (Relative(1), "\"+1\""),
        (Relative(-2), "\"-2\""),
    ];
    for (quantity, expected) in cases {
        assert_eq!(serde_json::to_string(&quantity).unwrap(), expected);
    }
}

#[test]
fn quantity_apply() {
    let cases = [
        (Absolute(3), 1, 3),
        (Relative(1), 1, 2),
        (Relative(-2), 1, 0),
        (Absolute(-1), 5, 0),
    ];
    for (quantity, current, expected) in cases {
        assert_eq!(quantity.apply(current), expected, "{quantity} on {current}");
    }
}
