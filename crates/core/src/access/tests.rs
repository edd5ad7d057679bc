//! The permission matrix as tables (who holds what, what each command needs), and the
//! collaborator records against the real SQLite store: adding, narrowing, removing, listing
//! and their deletion with the app.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::Utc;
use uuid::Uuid;

use super::*;
use crate::command::{AppChanges, Command, Outcome, RestartTarget};
use crate::execute::required_permission;
use crate::PlatformConfig;

async fn platform(dir: &std::path::Path) -> Arc<Platform> {
    let store = slipway_store::SqliteStore::open(&dir.join("db"), Default::default()).unwrap();
    Platform::open(
        PlatformConfig::new(dir.join("data")),
        store,
        Arc::new(slipway_runtime::ProcessRuntime::new()),
        slipway_logplex::LogHub::default(),
    )
    .await
    .unwrap()
}

fn app(owner: &str) -> App {
    App {
        id: Uuid::new_v4(),
        name: "demo".into(),
        owner_email: owner.into(),
        stack: "heroku-24".into(),
        maintenance: false,
        created_at: Utc::now(),
        updated_at: Utc::now(),
        uid: None,
    }
}

fn user(email: &str, admin: bool) -> User {
    User {
        id: Uuid::new_v4(),
        email: email.into(),
        created_at: Utc::now(),
        admin,
    }
}

fn record(app: &App, email: &str, permissions: &[Permission]) -> Collaborator {
    Collaborator {
        id: Uuid::new_v4(),
        app_id: app.id,
        email: email.into(),
        user_id: Uuid::new_v4(),
        permissions: permissions.iter().copied().collect(),
        created_at: Utc::now(),
        updated_at: Utc::now(),
    }
}

fn set(permissions: &[Permission]) -> BTreeSet<Permission> {
    permissions.iter().copied().collect()
}

/// A caller, their collaborator record if any, and the role and permissions they should get.
type Case<'a> = (
    User,
    Option<&'a Collaborator>,
    Option<(Role, &'a [Permission])>,
);

#[test]
fn who_holds_what() {
    use Permission::*;
    let demo = app("owner@example.com");
    let other = app("owner@example.com");
    let full = record(&demo, "c@example.com", &[View, Deploy, Operate]);
    let narrow = record(&demo, "c@example.com", &[Deploy]);
    let forged = record(&demo, "c@example.com", &[Manage]);
    let elsewhere = record(&other, "c@example.com", &[View, Deploy, Operate]);
    let cases: [Case; 8] = [
        (
            user("owner@example.com", false),
            None,
            Some((Role::Owner, &Permission::ALL)),
        ),
        (
            user("admin@example.com", true),
            None,
            Some((Role::Admin, &Permission::ALL)),
        ),
        (
            user("c@example.com", true),
            Some(&narrow),
            Some((Role::Admin, &Permission::ALL)),
        ),
        (
            user("c@example.com", false),
            Some(&full),
            Some((Role::Collaborator, &[View, Deploy, Operate])),
        ),
        (
            user("c@example.com", false),
            Some(&narrow),
            Some((Role::Collaborator, &[View, Deploy])),
        ),
        (
            user("c@example.com", false),
            Some(&forged),
            Some((Role::Collaborator, &[View])),
        ),
        (user("c@example.com", false), Some(&elsewhere), None),
        (user("stranger@example.com", false), Some(&full), None),
    ];
    for (who, record, expected) in cases {
        let access = access_of(&who, demo.clone(), record);
        let got = access.as_ref().map(|a| (a.role, a.permissions.clone()));
        let expected = expected.map(|(role, permissions)| (role, set(permissions)));
        assert_eq!(got, expected, "{} with {record:?}", who.email);
    }
}

#[test]
fn what_each_command_needs() {
    use Permission::*;
    let app = || "demo".to_owned();
    let maintenance = AppChanges {
        maintenance: Some(true),
        ..AppChanges::default()
    };
    let rename = AppChanges {
        name: Some("other".into()),
        ..AppChanges::default()
    };
    let cases = [
        (Command::CreateApp { name: None }, View),
        (Command::DeleteApp { app: app() }, Manage),
        (
            Command::UpdateApp {
                app: app(),
                changes: rename,
            },
            Manage,
        ),
        (
            Command::UpdateApp {
                app: app(),
                changes: maintenance,
            },
            Operate,
        ),
        (
            Command::SetConfig {
                app: app(),
                changes: Default::default(),
            },
            Deploy,
        ),
        (
            Command::Rollback {
                app: app(),
                release: "1".into(),
            },
            Deploy,
        ),
        (
            Command::Scale {
                app: app(),
                changes: vec![],
            },
            Operate,
        ),
        (
            Command::Restart {
                app: app(),
                target: RestartTarget::App,
            },
            Operate,
        ),
        (
            Command::Stop {
                app: app(),
                target: RestartTarget::App,
            },
            Operate,
        ),
        (
            Command::AddDomain {
                app: app(),
                hostname: "a.example.com".into(),
            },
            Operate,
        ),
        (
            Command::AddDrain {
                app: app(),
                url: "syslog://x".into(),
            },
            Operate,
        ),
        (Command::DestroyAddon { addon: "db".into() }, Operate),
        (
            Command::AddCollaborator {
                app: app(),
                email: "c@example.com".into(),
                permissions: None,
            },
            Manage,
        ),
        (
            Command::UpdateCollaborator {
                app: app(),
                collaborator: "c@example.com".into(),
                permissions: set(&[View]),
            },
            Manage,
        ),
        (
            Command::RemoveCollaborator {
                app: app(),
                collaborator: "c@example.com".into(),
            },
            Manage,
        ),
        (
            Command::TransferApp {
                app: app(),
                recipient: "c@example.com".into(),
            },
            Manage,
        ),
    ];
    for (command, expected) in cases {
        assert_eq!(required_permission(&command), expected, "{command:?}");
    }
}

#[tokio::test]
async fn collaborators_come_and_go_and_leave_with_the_app() {
    use Permission::*;
    let dir = tempfile::tempdir().unwrap();
    let platform = platform(dir.path()).await;
    let owner = platform
        .create_user("owner@example.com", "k1")
        .await
        .unwrap();
    let friend = platform
        .create_user("friend@example.com", "k2")
        .await
        .unwrap();
    let stranger = platform
        .create_user("stranger@example.com", "k3")
        .await
        .unwrap();
    let Outcome::App(demo) = platform
        .execute(
            &owner,
            Command::CreateApp {
                name: Some("demo".parse().unwrap()),
            },
        )
        .await
        .unwrap()
    else {
        panic!("an app");
    };
    let add = |actor: User, email: &str| {
        let platform = platform.clone();
        let command = Command::AddCollaborator {
            app: "demo".into(),
            email: email.into(),
            permissions: None,
        };
        async move { platform.execute(&actor, command).await }
    };

    // A stranger may not add themselves, and sees nothing.
    let error = add(stranger.clone(), "stranger@example.com")
        .await
        .unwrap_err();
    assert!(matches!(error, CoreError::Forbidden { .. }), "{error:?}");
    assert!(platform.apps(&stranger).await.unwrap().is_empty());
    // Unknown users and the owner are refused with a message.
    let error = add(owner.clone(), "nobody@example.com").await.unwrap_err();
    assert!(
        matches!(
            error,
            CoreError::NotFound {
                resource: "user",
                ..
            }
        ),
        "{error:?}"
    );
    let error = add(owner.clone(), "owner@example.com").await.unwrap_err();
    assert!(error.to_string().contains("owns demo"), "{error}");

    let Outcome::Collaborator(member) = add(owner.clone(), "friend@example.com").await.unwrap()
    else {
        panic!("a collaborator");
    };
    assert_eq!(member.permissions, set(&COLLABORATOR_DEFAULT));
    let error = add(owner.clone(), "friend@example.com").await.unwrap_err();
    assert!(
        error.to_string().contains("already a collaborator"),
        "{error}"
    );
    assert_eq!(platform.apps(&friend).await.unwrap(), vec![demo.clone()]);
    let members = platform.members(&demo).await.unwrap();
    let roles: Vec<_> = members.iter().map(|m| (m.email.as_str(), m.role)).collect();
    assert_eq!(
        roles,
        [
            ("owner@example.com", Role::Owner),
            ("friend@example.com", Role::Collaborator)
        ]
    );

    // The collaborator operates but does not manage.
    platform.app_for(&friend, "demo", Operate).await.unwrap();
    let error = add(friend.clone(), "stranger@example.com")
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            CoreError::PermissionDenied {
                permission: "manage",
                ..
            }
        ),
        "{error:?}"
    );
    let error = platform
        .execute(&friend, Command::DeleteApp { app: "demo".into() })
        .await
        .unwrap_err();
    assert!(
        matches!(error, CoreError::PermissionDenied { .. }),
        "{error:?}"
    );

    // Narrowed to view, they may no longer restart.
    platform
        .execute(
            &owner,
            Command::UpdateCollaborator {
                app: "demo".into(),
                collaborator: "friend@example.com".into(),
                permissions: set(&[]),
            },
        )
        .await
        .unwrap();
    let restart = Command::Restart {
        app: "demo".into(),
        target: RestartTarget::App,
    };
    let error = platform.execute(&friend, restart).await.unwrap_err();
    assert!(
        matches!(
            error,
            CoreError::PermissionDenied {
                permission: "operate",
                ..
            }
        ),
        "{error:?}"
    );
    let error = platform
        .execute(
            &owner,
            Command::UpdateCollaborator {
                app: "demo".into(),
                collaborator: member.id.to_string(),
                permissions: set(&[Manage]),
            },
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("manage"), "{error}");

    // Removed, they are a stranger again.
    platform
        .execute(
            &owner,
            Command::RemoveCollaborator {
                app: "demo".into(),
                collaborator: member.id.to_string(),
            },
        )
        .await
        .unwrap();
    let error = platform.app(&friend, "demo").await.unwrap_err();
    assert!(matches!(error, CoreError::Forbidden { .. }), "{error:?}");

    // Deleting the app deletes its collaborator records with it.
    add(owner.clone(), "friend@example.com").await.unwrap();
    platform
        .execute(&owner, Command::DeleteApp { app: "demo".into() })
        .await
        .unwrap();
    let (left, _) = platform.store().range(COLLABORATORS).await.unwrap();
    assert!(left.is_empty(), "{left:?}");
    assert!(platform.apps(&friend).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_admin_sees_every_app() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform(dir.path()).await;
    let owner = platform
        .create_user("owner@example.com", "k1")
        .await
        .unwrap();
    platform
        .execute(
            &owner,
            Command::CreateApp {
                name: Some("demo".parse().unwrap()),
            },
        )
        .await
        .unwrap();
    let admin = user("root@example.com", true);
    assert_eq!(platform.apps(&admin).await.unwrap().len(), 1);
    platform
        .app_for(&admin, "demo", Permission::Manage)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_transfer_changes_the_owner_and_keeps_the_old_one_as_a_collaborator() {
    use Permission::*;
    let dir = tempfile::tempdir().unwrap();
    let platform = platform(dir.path()).await;
    let owner = platform
        .create_user("owner@example.com", "k1")
        .await
        .unwrap();
    let friend = platform
        .create_user("friend@example.com", "k2")
        .await
        .unwrap();
    let stranger = platform
        .create_user("stranger@example.com", "k3")
        .await
        .unwrap();
    platform
        .execute(
            &owner,
            Command::CreateApp {
                name: Some("demo".parse().unwrap()),
            },
        )
        .await
        .unwrap();
    let transfer = |actor: User, recipient: &str| {
        let platform = platform.clone();
        let command = Command::TransferApp {
            app: "demo".into(),
            recipient: recipient.into(),
        };
        async move { platform.execute(&actor, command).await }
    };
    platform
        .execute(
            &owner,
            Command::AddCollaborator {
                app: "demo".into(),
                email: "friend@example.com".into(),
                permissions: None,
            },
        )
        .await
        .unwrap();

    // Neither a stranger nor a collaborator may transfer; unknown recipients and the owner
    // itself are refused; none of it changes the owner.
    let error = transfer(stranger.clone(), "stranger@example.com")
        .await
        .unwrap_err();
    assert!(matches!(error, CoreError::Forbidden { .. }), "{error:?}");
    let error = transfer(friend.clone(), "friend@example.com")
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            CoreError::PermissionDenied {
                permission: "manage",
                ..
            }
        ),
        "{error:?}"
    );
    let error = transfer(owner.clone(), "nobody@example.com")
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            CoreError::NotFound {
                resource: "user",
                ..
            }
        ),
        "{error:?}"
    );
    let error = transfer(owner.clone(), "owner@example.com")
        .await
        .unwrap_err();
    assert!(error.to_string().contains("owns demo already"), "{error}");
    let error = transfer(owner.clone(), "../x").await.unwrap_err();
    assert!(error.to_string().contains("email address"), "{error}");
    assert_eq!(
        platform.find_app("demo").await.unwrap().owner_email,
        "owner@example.com"
    );

    // The collaborator receives it: they own it, with every permission, and are no longer
    // listed as a collaborator; the old owner is one, without `manage`.
    let Outcome::App(moved) = transfer(owner.clone(), "friend@example.com").await.unwrap() else {
        panic!("an app");
    };
    assert_eq!(moved.owner_email, "friend@example.com");
    let members = platform.members(&moved).await.unwrap();
    let roles: Vec<_> = members.iter().map(|m| (m.email.as_str(), m.role)).collect();
    assert_eq!(
        roles,
        [
            ("friend@example.com", Role::Owner),
            ("owner@example.com", Role::Collaborator)
        ]
    );
    platform.app_for(&friend, "demo", Manage).await.unwrap();
    platform.app_for(&owner, "demo", Deploy).await.unwrap();
    let error = platform.app_for(&owner, "demo", Manage).await.unwrap_err();
    assert!(
        matches!(error, CoreError::PermissionDenied { .. }),
        "{error:?}"
    );
    // And the old owner can no longer give it away.
    let error = transfer(owner.clone(), "stranger@example.com")
        .await
        .unwrap_err();
    assert!(
        matches!(error, CoreError::PermissionDenied { .. }),
        "{error:?}"
    );
}
