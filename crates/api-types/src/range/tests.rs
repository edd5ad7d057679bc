//! Tests of parsing and printing the `Range` header.

use super::{ListRange, RangeOrder};

fn range(
    field: &str,
    start: Option<&str>,
    exclusive: bool,
    end: Option<&str>,
    order: RangeOrder,
    max: usize,
) -> ListRange {
    ListRange {
        field: field.to_owned(),
        start: start.map(str::to_owned),
        start_exclusive: exclusive,
        end: end.map(str::to_owned),
        order,
        max,
    }
}

#[test]
fn parse_table() {
    use RangeOrder::{Asc, Desc};
    let cases: Vec<(&str, Option<ListRange>)> = vec![
        ("", None),
        ("   ", None),
        (
            "id ..; max=1000;",
            Some(range("id", None, false, None, Asc, 1000)),
        ),
        (
            "version ..; order=desc,max=1",
            Some(range("version", None, false, None, Desc, 1)),
        ),
        (
            "version ..; max=15, order=desc",
            Some(range("version", None, false, None, Desc, 15)),
        ),
        (
            "name ..; order=desc,max=10;",
            Some(range("name", None, false, None, Desc, 10)),
        ),
        ("id", Some(range("id", None, false, None, Asc, 200))),
        (
            "version 3..7",
            Some(range("version", Some("3"), false, Some("7"), Asc, 200)),
        ),
        (
            "version ]3..; max=2",
            Some(range("version", Some("3"), true, None, Asc, 2)),
        ),
        (
            "id ..; max=5000",
            Some(range("id", None, false, None, Asc, 1000)),
        ),
    ];
    for (header, expected) in cases {
        assert_eq!(
            ListRange::parse(header).unwrap(),
            expected,
            "header {header:?}"
        );
    }
}

#[test]
fn parse_errors() {
    for header in [
        "id ..; max=0",
        "id ..; max=abc",
        "id ..; order=sideways",
        "id ..; color=red",
        "id ..; max",
        "id 3-7",
        "i-d ..",
        "; max=3",
    ] {
        let err = ListRange::parse(header).expect_err(header);
        assert!(err.to_string().contains(header), "{err}");
    }
}

#[test]
fn display_round_trips() {
    for header in [
        "version ..; max=15, order=desc",
        "id ]abc..; max=200",
        "version 3..7; max=2",
    ] {
        let parsed = ListRange::parse(header).unwrap().unwrap();
        assert_eq!(parsed.to_string(), header);
    }
}
