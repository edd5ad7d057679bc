//! What `--remote` accepts.

use super::*;

#[test]
fn parses_https_remotes_only() {
    assert_eq!(
        parse_remote("https://paas.example.com:5443").unwrap(),
        Remote {
            host: "paas.example.com".into(),
            port: 5443
        }
    );
    assert_eq!(parse_remote("https://10.0.0.5/").unwrap().port, 443);
    for bad in [
        "http://paas.example.com:5000",
        "paas.example.com",
        "https://",
        "",
    ] {
        assert!(parse_remote(bad).is_err(), "{bad}");
    }
}
