//! How authorizations are shown.

use chrono::{TimeZone, Utc};
use slipway_api_types::{AccessToken, AuthorizationUser, OAuthAuthorization};
use uuid::Uuid;

use super::*;

fn authorization(description: &str, token: Option<&str>) -> OAuthAuthorization {
    let at = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    OAuthAuthorization {
        access_token: Some(AccessToken {
            expires_in: None,
            id: Uuid::nil(),
            token: token.map(str::to_owned),
        }),
        client: None,
        created_at: at,
        description: description.into(),
        grant: None,
        id: Uuid::nil(),
        refresh_token: None,
        scope: vec!["global".into()],
        session: None,
        updated_at: at,
        user: AuthorizationUser {
            email: "dev@example.com".into(),
            full_name: None,
            id: Uuid::nil(),
        },
    }
}

#[test]
fn lists_description_id_and_scope() {
    let table = authorizations_table(&[authorization("API key", None)]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0],
        " Description ID                                   Scope"
    );
    assert_eq!(
        lines[2],
        " API key     00000000-0000-0000-0000-000000000000 global"
    );
}

#[test]
fn shows_the_token_only_when_the_server_gave_it() {
    let shown = authorization_details(&authorization("ci", Some("tok-123")));
    assert!(shown.contains("Token:       tok-123\n"), "{shown}");
    let hidden = authorization_details(&authorization("ci", None));
    assert!(!hidden.contains("Token:"), "{hidden}");
}
