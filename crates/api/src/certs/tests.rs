//! Table tests of the SNI endpoint parsers. The private key is carried to the core but never
//! shown in a command's debug output.

use axum::http::StatusCode;
use slipway_core::{Certificate, Command};

use super::*;
use crate::testing::check;

const BODY: &[u8] = br#"{"certificate_chain": "CHAIN", "private_key": "SECRET-KEY"}"#;

fn certificate() -> Certificate {
    Certificate {
        chain: "CHAIN".into(),
        private_key: "SECRET-KEY".into(),
    }
}

#[test]
fn certificate_commands() {
    check(
        parse_create("demo".into(), BODY),
        Ok(Command::AddCertificate {
            app: "demo".into(),
            certificate: certificate(),
        }),
    );
    check(
        parse_update("demo".into(), "sni-1234".into(), BODY),
        Ok(Command::UpdateCertificate {
            app: "demo".into(),
            endpoint: "sni-1234".into(),
            certificate: certificate(),
        }),
    );
    check(
        parse_delete("demo".into(), "sni-1234".into()),
        Ok(Command::RemoveCertificate {
            app: "demo".into(),
            endpoint: "sni-1234".into(),
        }),
    );
    check(
        parse_create("demo".into(), br#"{"certificate_chain": "CHAIN"}"#),
        Err((
            StatusCode::BAD_REQUEST,
            "Expected a body like {\"certificate_chain\"",
        )),
    );
    check(
        parse_update("x".into(), "sni-1234".into(), BODY),
        Err((StatusCode::NOT_FOUND, "Couldn't find that app.")),
    );
}

#[test]
fn private_keys_stay_out_of_debug_output() {
    let command = parse_create("demo".into(), BODY).unwrap();
    let shown = format!("{command:?}");
    assert!(shown.contains("CHAIN"), "{shown}");
    assert!(!shown.contains("SECRET-KEY"), "{shown}");
}
