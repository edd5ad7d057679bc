//! Tests of the TLS layer: the platform CA and its name constraints, certificate selection by SNI and the listener.

use super::*;

#[test]
fn wildcards_cover_one_label() {
    let issuer = CertIssuer::generate("localhost").unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert =
        rcgen::CertificateParams::new(vec!["*.example.com".to_owned(), "example.org".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
    let parsed = ServerCert::from_pem(&cert.pem(), &key.serialize_pem()).unwrap();
    assert!(parsed.covers("www.example.com"));
    assert!(parsed.covers("WWW.Example.com"));
    assert!(parsed.covers("example.org"));
    assert!(!parsed.covers("example.com"));
    assert!(!parsed.covers("a.b.example.com"));
    assert!(!parsed.covers("www.example.org"));
    assert!(parsed.self_signed());
    let issued = issuer.issue("demo.localhost").unwrap();
    assert_eq!(issued.hostnames(), ["demo.localhost"]);
    assert!(!issued.self_signed());
}

#[test]
fn a_key_of_another_certificate_is_refused() {
    let key = rcgen::KeyPair::generate().unwrap();
    let other = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["www.example.com".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    assert!(matches!(
        ServerCert::from_pem(&cert.pem(), &other.serialize_pem()),
        Err(CertError::KeyMismatch)
    ));
    assert!(matches!(
        ServerCert::from_pem("not pem", &key.serialize_pem()),
        Err(CertError::NoCertificate)
    ));
    assert!(matches!(
        ServerCert::from_pem(&cert.pem(), "garbage"),
        Err(CertError::BadKey(_))
    ));
}

#[test]
fn the_ca_is_name_constrained_to_the_platform_domain() {
    let issuer = CertIssuer::generate("LocalHost.").unwrap();
    assert_eq!(issuer.domain(), "localhost");
    assert!(issuer.is_constrained());
    let ca = CertificateDer::from_pem_slice(issuer.ca_pem().as_bytes()).unwrap();
    // Signed by the CA's own key, a certificate for a name outside the domain (what a
    // leaked key could mint) does not verify; names under the domain do.
    for (name, expected) in [
        ("demo.localhost", true),
        ("a.b.localhost", true),
        ("localhost", true),
        ("evil.com", false),
        ("www.tls-example.test", false),
        ("notlocalhost", false),
        ("localhost.evil.com", false),
    ] {
        let (leaf, _) = issuer.sign(name).unwrap();
        assert_eq!(verifies(&ca, leaf.der(), name), expected, "{name}");
    }
    // No IP address either.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["x.localhost".to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let leaf = params.signed_by(&key, &issuer.ca, &issuer.ca_key).unwrap();
    assert!(!verifies(&ca, leaf.der(), "127.0.0.1"));
    // The issuer refuses names outside the domain outright.
    assert!(matches!(
        issuer.issue("evil.com"),
        Err(CertError::OutsideDomain { .. })
    ));
    assert!(issuer.covers("x.localhost") && !issuer.covers("xlocalhost"));

    // A CA stored by an older version, without constraints, reads as unconstrained.
    let old_key = rcgen::KeyPair::generate().unwrap();
    let mut old_params = ca_params("localhost", &ListenerNames::default());
    old_params.name_constraints = None;
    let old = old_params.self_signed(&old_key).unwrap();
    let loaded = CertIssuer::from_pem(&old.pem(), &old_key.serialize_pem(), "localhost").unwrap();
    assert!(!loaded.is_constrained());
    // As does a CA constrained to another domain.
    let other = CertIssuer::generate("example.org").unwrap();
    let moved = CertIssuer::from_pem(other.ca_pem(), &other.key_pem(), "localhost").unwrap();
    assert!(!moved.is_constrained());
}

#[test]
fn a_stored_ca_issues_certificates_that_chain_to_it() {
    let issuer = CertIssuer::generate("localhost").unwrap();
    let again = CertIssuer::from_pem(issuer.ca_pem(), &issuer.key_pem(), "localhost").unwrap();
    let leaf = again.issue("demo.localhost").unwrap();
    let ca = CertificateDer::from_pem_slice(issuer.ca_pem().as_bytes()).unwrap();
    let anchor = webpki::anchor_from_trusted_cert(&ca).unwrap();
    let leaf_der = CertificateDer::from(leaf.leaf_der().to_vec());
    let end_entity = webpki::EndEntityCert::try_from(&leaf_der).unwrap();
    end_entity
        .verify_for_usage(
            rustls::crypto::ring::default_provider()
                .signature_verification_algorithms
                .all,
            &[anchor],
            &[],
            rustls_pki_types::UnixTime::now(),
            webpki::KeyUsage::server_auth(),
            None,
            None,
        )
        .unwrap();
}

/// A leaf for `ip` (an IP address SAN) signed by the CA's own key, whatever the address.
fn sign_ip(issuer: &CertIssuer, ip: std::net::IpAddr) -> rcgen::Certificate {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["x.localhost".to_owned()]).unwrap();
    params.subject_alt_names.push(rcgen::SanType::IpAddress(ip));
    params.signed_by(&key, &issuer.ca, &issuer.ca_key).unwrap()
}

fn listener_names() -> ListenerNames {
    ListenerNames::parse([
        "localhost",
        "127.0.0.1",
        "[::1]",
        "PaaS.Example.com.",
        "192.0.2.10",
        "127.0.0.1",
    ])
    .unwrap()
}

#[test]
fn the_ca_vouches_for_the_listeners_names_and_addresses_and_nothing_else() {
    let issuer = CertIssuer::generate_with("localhost", &listener_names()).unwrap();
    assert_eq!(
        issuer.listeners().hosts(),
        ["localhost", "paas.example.com"]
    );
    assert_eq!(issuer.listeners().ips().len(), 3);
    assert!(issuer.is_constrained());
    let ca = CertificateDer::from_pem_slice(issuer.ca_pem().as_bytes()).unwrap();
    for (name, expected) in [
        ("demo.localhost", true),
        ("localhost", true),
        ("paas.example.com", true),
        ("api.paas.example.com", true),
        ("example.com", false),
        ("evil.com", false),
        ("paas.example.com.evil.com", false),
        ("www.tls-example.test", false),
    ] {
        let (leaf, _) = issuer.sign(name).unwrap();
        assert_eq!(verifies(&ca, leaf.der(), name), expected, "{name}");
    }
    for (ip, expected) in [
        ("127.0.0.1", true),
        ("::1", true),
        ("192.0.2.10", true),
        ("127.0.0.2", false),
        ("192.0.2.11", false),
        ("10.0.0.1", false),
        ("::2", false),
        ("169.254.169.254", false),
    ] {
        let leaf = sign_ip(&issuer, ip.parse().unwrap());
        assert_eq!(verifies(&ca, leaf.der(), ip), expected, "{ip}");
    }
    // The router still issues only under the apps' domain.
    assert!(matches!(
        issuer.issue("paas.example.com"),
        Err(CertError::OutsideDomain { .. })
    ));
    // The listeners' certificate carries every name and address, and chains to the CA.
    let listeners = issuer.issue_for_listeners().unwrap();
    let leaf = CertificateDer::from(listeners.leaf_der().to_vec());
    for name in [
        "localhost",
        "paas.example.com",
        "127.0.0.1",
        "::1",
        "192.0.2.10",
    ] {
        assert!(verifies(&ca, &leaf, name), "{name}");
    }
    assert!(!verifies(&ca, &leaf, "127.0.0.2"));
}

#[test]
fn a_ca_for_the_apps_alone_still_refuses_every_ip_address() {
    let issuer = CertIssuer::generate("localhost").unwrap();
    let ca = CertificateDer::from_pem_slice(issuer.ca_pem().as_bytes()).unwrap();
    for ip in ["127.0.0.1", "::1", "10.0.0.1"] {
        let leaf = sign_ip(&issuer, ip.parse().unwrap());
        assert!(!verifies(&ca, leaf.der(), ip), "{ip}");
    }
    assert!(matches!(
        issuer.issue_for_listeners(),
        Err(CertError::NoHostnames)
    ));
}

#[test]
fn a_stored_ca_is_current_only_with_the_same_constraints() {
    let names = listener_names();
    let issuer = CertIssuer::generate_with("localhost", &names).unwrap();
    let key = issuer.key_pem();
    let check = |domain: &str, names: &ListenerNames, expected: bool| {
        let loaded = CertIssuer::from_pem_with(issuer.ca_pem(), &key, domain, names).unwrap();
        assert_eq!(loaded.is_current(), expected, "{domain} {names:?}");
    };
    check("localhost", &names, true);
    check("LOCALHOST.", &names, true);
    check("localhost", &ListenerNames::default(), false);
    check("apps.example.com", &names, false);
    let mut more = names.clone();
    more.add("192.0.2.11").unwrap();
    check("localhost", &more, false);
    let fewer = ListenerNames::parse(["localhost", "127.0.0.1"]).unwrap();
    check("localhost", &fewer, false);

    // Rebuilt from the same key with the new constraints: a new CA certificate that is
    // current, vouches for the new address, and signs with the same key.
    let rebuilt = CertIssuer::from_pem_with(issuer.ca_pem(), &key, "localhost", &more)
        .unwrap()
        .with_current_constraints();
    assert!(rebuilt.is_current());
    assert_ne!(rebuilt.ca_pem(), issuer.ca_pem());
    assert_eq!(rebuilt.key_pem(), key);
    let ca = CertificateDer::from_pem_slice(rebuilt.ca_pem().as_bytes()).unwrap();
    let leaf = sign_ip(&rebuilt, "192.0.2.11".parse().unwrap());
    assert!(verifies(&ca, leaf.der(), "192.0.2.11"));

    // A CA made by the previous version (domain only) is current for the domain alone.
    let old = CertIssuer::generate("localhost").unwrap();
    let reloaded = CertIssuer::from_pem(old.ca_pem(), &old.key_pem(), "localhost").unwrap();
    assert!(reloaded.is_current());
}

#[test]
fn listener_names_are_host_names_or_addresses() {
    for bad in ["*.example.com", "0.0.0.0", "::", "not a host", "", "a..b"] {
        assert!(
            matches!(
                ListenerNames::parse([bad]),
                Err(CertError::BadListenerName(_))
            ),
            "{bad:?}"
        );
    }
    let names = ListenerNames::parse(["[::1]", "::1", "Localhost"]).unwrap();
    assert_eq!(names.hosts(), ["localhost"]);
    assert_eq!(
        names.ips(),
        [std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST)]
    );
}
