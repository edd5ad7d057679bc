//! The collaborator routes' parsers as tables: what each body becomes, and what is refused.

use super::*;

#[test]
fn create_bodies() {
    let add = |email: &str, permissions: Option<&[Permission]>| Command::AddCollaborator {
        app: "demo".into(),
        email: email.into(),
        permissions: permissions.map(|p| p.iter().copied().collect()),
    };
    let cases: [(&str, Option<Command>); 6] = [
        (
            r#"{"user":"a@example.com"}"#,
            Some(add("a@example.com", None)),
        ),
        (
            r#"{"user":"a@example.com","silent":true}"#,
            Some(add("a@example.com", None)),
        ),
        (
            r#"{"user":{"email":"a@example.com"}}"#,
            Some(add("a@example.com", None)),
        ),
        (
            r#"{"user":"a@example.com","permissions":["deploy"]}"#,
            Some(add("a@example.com", Some(&[Permission::Deploy]))),
        ),
        (r#"{"user":"a@example.com","permissions":["root"]}"#, None),
        (r#"{"email":"a@example.com"}"#, None),
    ];
    for (body, expected) in cases {
        assert_eq!(
            parse_create("demo".into(), body.as_bytes()).ok(),
            expected,
            "{body}"
        );
    }
    assert!(parse_create("../etc".into(), br#"{"user":"a@example.com"}"#).is_err());
}

#[test]
fn update_and_delete() {
    assert_eq!(
        parse_update(
            "demo".into(),
            "a@example.com".into(),
            br#"{"permissions":["view","operate"]}"#
        )
        .ok(),
        Some(Command::UpdateCollaborator {
            app: "demo".into(),
            collaborator: "a@example.com".into(),
            permissions: [Permission::View, Permission::Operate]
                .into_iter()
                .collect(),
        })
    );
    assert!(parse_update("demo".into(), "a".into(), b"{}").is_err());
    assert_eq!(
        parse_delete("demo".into(), "a@example.com".into()).ok(),
        Some(Command::RemoveCollaborator {
            app: "demo".into(),
            collaborator: "a@example.com".into(),
        })
    );
}
