//! Tests of the PostgreSQL add-on's pure helpers.

use super::*;

#[test]
fn url_decode_decodes_escapes_and_keeps_invalid_ones() {
    assert_eq!(url_decode("p%40ss%2Fw%3Ard"), "p@ss/w:rd");
    assert_eq!(url_decode("plain"), "plain");
    // An escape without two hex digits is kept as typed, at the end too.
    assert_eq!(url_decode("100%zz%4"), "100%zz%4");
    assert_eq!(url_decode("%"), "%");
    // Bytes that are not UTF-8 become replacement characters, not an error.
    assert_eq!(url_decode("%ff"), "\u{fffd}");
}

#[test]
fn size_limit_revokes_writes_and_gives_them_back() {
    let revoke = size_limit_sql("postgresql_a_1", true);
    for needle in [
        "\\connect postgresql_a_1\n",
        "REVOKE CREATE ON DATABASE postgresql_a_1 FROM postgresql_a_1;",
        "REVOKE INSERT, UPDATE ON ALL TABLES IN SCHEMA %I FROM postgresql_a_1",
        "REVOKE CREATE ON SCHEMA %I FROM postgresql_a_1, pg_database_owner",
        "ALTER ROLE postgresql_a_1 SET slipway.over_storage_limit = on;",
    ] {
        assert!(revoke.contains(needle), "{needle} missing from {revoke}");
    }
    // DELETE and TRUNCATE stay: they are how a tenant gets back under.
    assert!(!revoke.contains("DELETE") && !revoke.contains("TRUNCATE"));
    let grant = size_limit_sql("postgresql_a_1", false);
    assert!(grant.contains("GRANT INSERT, UPDATE ON ALL TABLES IN SCHEMA %I TO postgresql_a_1"));
    assert!(grant.contains("ALTER ROLE postgresql_a_1 RESET slipway.over_storage_limit;"));
}
