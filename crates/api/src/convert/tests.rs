//! Tests of the conversions from records to wire shapes.

use super::*;

#[test]
fn sizes_are_written_like_heroku() {
    for (size, shown) in [
        ("standard-1x", "Standard-1X"),
        ("standard-2x", "Standard-2X"),
        ("eco", "Eco"),
        ("performance-m", "Performance-M"),
    ] {
        assert_eq!(display_size(size), shown);
    }
}

#[test]
fn catalog_ids_are_stable_and_distinct() {
    assert_eq!(
        catalog_id("stack", "heroku-24"),
        catalog_id("stack", "heroku-24")
    );
    assert_ne!(
        catalog_id("stack", "heroku-24"),
        catalog_id("stack", "heroku-22")
    );
}
