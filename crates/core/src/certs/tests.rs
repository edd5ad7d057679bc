//! Tests of SNI endpoints and the platform CA's certificates.

use super::*;

#[test]
fn the_ca_is_created_once_and_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let none = ListenerNames::default();
    let first = load_or_create_ca(dir.path(), "localhost", &none).unwrap();
    assert!(first.is_constrained());
    let again = load_or_create_ca(dir.path(), "localhost", &none).unwrap();
    assert_eq!(first.ca_pem(), again.ca_pem());
    // Another domain: a new CA, constrained to it.
    let moved = load_or_create_ca(dir.path(), "apps.example.com", &none).unwrap();
    assert_ne!(moved.ca_pem(), first.ca_pem());
    assert!(moved.is_constrained() && moved.covers("x.apps.example.com"));
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir.path().join("tls/router-ca-key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    std::fs::write(dir.path().join("tls/router-ca-key.pem"), "garbage").unwrap();
    assert!(matches!(
        load_or_create_ca(dir.path(), "localhost", &none),
        Err(CaError::Unusable { .. })
    ));
}

#[test]
fn new_listener_names_reissue_the_ca_certificate_from_the_same_key() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("tls/router-ca.pem");
    // A CA made by the previous version, for the apps' domain alone.
    let old = load_or_create_ca(dir.path(), "localhost", &ListenerNames::default()).unwrap();
    let names = ListenerNames::parse(["localhost", "127.0.0.1", "::1"]).unwrap();
    let widened = load_or_create_ca(dir.path(), "localhost", &names).unwrap();
    assert_eq!(widened.key_pem(), old.key_pem());
    assert_ne!(widened.ca_pem(), old.ca_pem());
    assert_eq!(
        std::fs::read_to_string(&cert_path).unwrap(),
        widened.ca_pem()
    );
    assert!(widened.is_current() && widened.is_constrained());
    // Unchanged names: the very same file, not rewritten.
    let again = load_or_create_ca(dir.path(), "localhost", &names).unwrap();
    assert_eq!(again.ca_pem(), widened.ca_pem());
    // Another address: re-issued again, same key; the key file stays 0600.
    let more = ListenerNames::parse(["localhost", "127.0.0.1", "::1", "192.0.2.10"]).unwrap();
    let moved = load_or_create_ca(dir.path(), "localhost", &more).unwrap();
    assert_ne!(moved.ca_pem(), widened.ca_pem());
    assert_eq!(moved.key_pem(), old.key_pem());
    for file in ["tls/router-ca-key.pem", "tls/router-ca.pem"] {
        let mode = std::fs::metadata(dir.path().join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
}
