//! The catalog's parsing, as a table.

use super::*;

fn check(spec: &str, expected: Result<&str, &str>) {
    let got = parse_plan(spec)
        .map(Plan::full_name)
        .map_err(|e| e.to_string());
    match (got, expected) {
        (Ok(plan), Ok(want)) => assert_eq!(plan, want, "{spec}"),
        (Err(message), Err(want)) => assert!(message.contains(want), "{spec}: {message}"),
        (got, want) => panic!("{spec}: got {got:?}, want {want:?}"),
    }
}

#[test]
fn service_and_plan_names() {
    check("heroku-postgresql", Ok("heroku-postgresql:essential-0"));
    check("postgresql", Ok("heroku-postgresql:essential-0"));
    check(
        "heroku-postgresql:essential-2",
        Ok("heroku-postgresql:essential-2"),
    );
    check("heroku-redis", Ok("heroku-redis:mini"));
    check("redis:premium-0", Ok("heroku-redis:premium-0"));
    check("mysql", Err("Couldn't find either the add-on service"));
    check(
        "heroku-postgresql:gigantic",
        Err("Available plans: essential-0"),
    );
    check("", Err("Couldn't find"));
}

#[test]
fn human_names() {
    assert_eq!(POSTGRES_PLANS[1].human_name(), "Essential 1");
    assert_eq!(REDIS_PLANS[1].human_name(), "Premium 0");
}
