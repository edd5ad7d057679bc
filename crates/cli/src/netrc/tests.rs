//! Netrc edits keep everything they do not change.

use super::*;

const EXISTING: &str = "# my logins\nmachine example.com login me password secret\n\nmachine 127.0.0.1:5000\n  login old@example.com\n  password old-token\nmachine other.org\n  login x\n  password y\ndefault login anonymous password guest\n";

#[test]
fn reads_both_layouts() {
    let netrc = Netrc::parse(EXISTING);
    assert_eq!(
        netrc.get("example.com"),
        Some(Entry {
            login: Some("me".into()),
            password: Some("secret".into())
        })
    );
    assert_eq!(
        netrc.get("127.0.0.1:5000").unwrap().password.as_deref(),
        Some("old-token")
    );
    assert_eq!(netrc.get("127.0.0.1"), None);
}

#[test]
fn set_replaces_only_its_host_and_remove_drops_it() {
    let mut netrc = Netrc::parse(EXISTING);
    netrc
        .set("127.0.0.1:5000", "dev@example.com", "new-token")
        .unwrap();
    let text = netrc.render();
    assert_eq!(
        text,
        EXISTING.replace(
            "machine 127.0.0.1:5000\n  login old@example.com\n  password old-token\n",
            "machine 127.0.0.1:5000\n  login dev@example.com\n  password new-token\n"
        )
    );
    assert!(netrc.remove("127.0.0.1:5000"));
    assert!(!netrc.remove("127.0.0.1:5000"));
    let text = netrc.render();
    assert!(!text.contains("127.0.0.1:5000"));
    assert!(text.contains("machine other.org\n  login x\n  password y\n"));
    assert!(text.starts_with("# my logins\nmachine example.com login me password secret\n"));
}

#[test]
fn appends_a_new_host_and_refuses_whitespace() {
    let mut netrc = Netrc::parse("machine a.com login a password b");
    netrc.set("h:1", "e@x", "t").unwrap();
    assert_eq!(
        netrc.render(),
        "machine a.com login a password b\nmachine h:1\n  login e@x\n  password t\n"
    );
    assert!(matches!(
        netrc.set("h:1", "e x", "t"),
        Err(NetrcError::Whitespace { what: "login" })
    ));
}

#[test]
fn writes_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".netrc");
    let mut netrc = Netrc::read(&path).unwrap();
    netrc.set("h:1", "e@x", "t").unwrap();
    netrc.write(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        Netrc::read(&path)
            .unwrap()
            .get("h:1")
            .unwrap()
            .password
            .as_deref(),
        Some("t")
    );
}

#[test]
fn machine_names_carry_the_port() {
    let url = url::Url::parse("http://127.0.0.1:5000").unwrap();
    assert_eq!(machine_for(&url).as_deref(), Some("127.0.0.1:5000"));
    let url = url::Url::parse("https://paas.example.com/").unwrap();
    assert_eq!(machine_for(&url).as_deref(), Some("paas.example.com"));
}
