//! Who may do what to an app, decided in one place: [`Platform::access`] gives a caller's
//! [`Access`] to an app (its role and [`Permission`]s), [`Platform::app_for`] refuses what the
//! access does not allow, and the collaborator records that grant access live here.
//!
//! The matrix (Heroku's personal-app collaborators):
//! - `view`: read the app and everything under it (config, releases, formation, dynos, logs,
//!   domains, drains, certificates, add-ons, builds, slugs) and fetch its git repository.
//! - `deploy`: push with git, create builds, declare and release slugs, roll back, set config.
//! - `operate`: scale, restart and stop dynos, run one-off dynos, maintenance mode, domains,
//!   drains, certificates, add-ons and their backups.
//! - `manage`: delete the app, rename or transfer it, and manage its collaborators.
//!
//! The owner and administrators hold all four; a collaborator holds `view` and, by default,
//! `deploy` and `operate` (`access:update` narrows them), never `manage`. A user with no
//! access at all is told the app is not theirs (403 `forbidden`, as Heroku answers); a
//! collaborator refused a permission gets 403 naming the permission.
//!
//! Records: `collaborators/<app id>/<email>` → [`Collaborator`], written only through
//! `Platform::execute`, deleted with the app in the same transaction.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use slipway_store::json::{apply_if, get_json, get_json_versioned, range_json};
use slipway_store::{Compare, Op, Revision, Txn};
use uuid::Uuid;

use crate::error::CoreError;
use crate::model::{keys, App, User};
use crate::platform::Platform;

/// What a caller may do to an app; see the module documentation for the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    View,
    Deploy,
    Operate,
    Manage,
}

impl Permission {
    /// Every permission, in Heroku's order.
    pub const ALL: [Permission; 4] = [
        Permission::View,
        Permission::Deploy,
        Permission::Operate,
        Permission::Manage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::View => "view",
            Permission::Deploy => "deploy",
            Permission::Operate => "operate",
            Permission::Manage => "manage",
        }
    }

    pub fn parse(name: &str) -> Option<Permission> {
        Permission::ALL
            .into_iter()
            .find(|permission| permission.as_str() == name.trim())
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The permissions a collaborator gets unless `access:update` says otherwise.
pub const COLLABORATOR_DEFAULT: [Permission; 3] =
    [Permission::View, Permission::Deploy, Permission::Operate];

/// Why a caller has access to an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Owner,
    /// A platform administrator who is neither owner nor collaborator.
    Admin,
    Collaborator,
}

impl Role {
    /// The role's name in Heroku's collaborator shape (`owner`, `admin`, `collaborator`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Collaborator => "collaborator",
        }
    }
}

/// A caller's access to one app: proof the lookup went through the check.
#[derive(Debug, Clone)]
pub struct Access {
    pub app: App,
    pub role: Role,
    pub permissions: BTreeSet<Permission>,
}

impl Access {
    pub fn allows(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }
}

/// A user given access to an app they do not own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collaborator {
    pub id: Uuid,
    pub app_id: Uuid,
    pub email: String,
    pub user_id: Uuid,
    pub permissions: BTreeSet<Permission>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A member of an app as the API lists it: the owner (role `owner`) or a collaborator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: Uuid,
    pub email: String,
    pub user_id: Uuid,
    pub role: Role,
    pub permissions: BTreeSet<Permission>,
    pub app_id: Uuid,
    pub app_name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLLABORATORS: &str = "collaborators/";

fn collaborators_key(app: Uuid) -> String {
    format!("{COLLABORATORS}{app}/")
}

fn collaborator_key(app: Uuid, email: &str) -> String {
    format!("{COLLABORATORS}{app}/{email}")
}

/// The ops that delete every collaborator record of `app`: part of the app's deletion.
pub(crate) fn delete_collaborators(app: Uuid) -> Op {
    Op::delete_prefix(collaborators_key(app))
}

/// What `user` may do to `app`, given `app`'s collaborator record for `user` if any.
pub(crate) fn access_of(user: &User, app: App, record: Option<&Collaborator>) -> Option<Access> {
    let (role, permissions) = if app.owner_email == user.email {
        (Role::Owner, Permission::ALL.into_iter().collect())
    } else if let Some(record) = record.filter(|r| r.app_id == app.id && r.email == user.email) {
        let mut permissions = record.permissions.clone();
        // `manage` is never a collaborator's, whatever a record says, and `view` always is.
        permissions.remove(&Permission::Manage);
        permissions.insert(Permission::View);
        // An administrator who also collaborates keeps every permission.
        if user.admin {
            (Role::Admin, Permission::ALL.into_iter().collect())
        } else {
            (Role::Collaborator, permissions)
        }
    } else if user.admin {
        (Role::Admin, Permission::ALL.into_iter().collect())
    } else {
        return None;
    };
    Some(Access {
        app,
        role,
        permissions,
    })
}

impl Platform {
    /// The stored record of `app` and its revision, for a compare-and-set: 404 when the app
    /// is gone, or when another app of the same name (deleted and created again) stands in
    /// its place, which is not the one the caller was authorized for.
    pub(crate) async fn app_record(&self, app: &App) -> Result<(App, Revision), CoreError> {
        match get_json_versioned::<App, _>(self.store().as_ref(), &keys::app(&app.name)).await? {
            Some((current, revision)) if current.id == app.id => Ok((current, revision)),
            _ => Err(CoreError::not_found("app", app.name.clone())),
        }
    }

    /// The caller's access to the app named by name or id: 404 if there is no such app, 403
    /// if the caller has no access to it.
    pub async fn access(&self, user: &User, name_or_id: &str) -> Result<Access, CoreError> {
        let app = self.find_app(name_or_id).await?;
        let record = if app.owner_email == user.email {
            None
        } else {
            get_json::<Collaborator, _>(
                self.store().as_ref(),
                &collaborator_key(app.id, &user.email),
            )
            .await?
        };
        let name = app.name.clone();
        access_of(user, app, record.as_ref()).ok_or(CoreError::Forbidden { app: name })
    }

    /// The app named by name or id, if the caller holds `permission` on it.
    pub async fn app_for(
        &self,
        user: &User,
        name_or_id: &str,
        permission: Permission,
    ) -> Result<App, CoreError> {
        let access = self.access(user, name_or_id).await?;
        if !access.allows(permission) {
            return Err(CoreError::PermissionDenied {
                app: access.app.name,
                permission: permission.as_str(),
            });
        }
        Ok(access.app)
    }

    /// The ids of the apps `user` collaborates on.
    pub(crate) async fn collaborations(&self, user: &User) -> Result<BTreeSet<Uuid>, CoreError> {
        let (records, _) =
            range_json::<Collaborator, _>(self.store().as_ref(), COLLABORATORS).await?;
        Ok(records
            .into_iter()
            .filter(|(_, record)| record.email == user.email)
            .map(|(_, record)| record.app_id)
            .collect())
    }

    /// The account that owns `app` (what the app's `owner` shows to every member).
    pub async fn owner(&self, app: &App) -> Result<User, CoreError> {
        get_json::<User, _>(self.store().as_ref(), &keys::user(&app.owner_email))
            .await?
            .ok_or_else(|| CoreError::not_found("user", app.owner_email.clone()))
    }

    /// The owner (first, role `owner`) and the collaborators of `app`, by email.
    pub async fn members(&self, app: &App) -> Result<Vec<Member>, CoreError> {
        let owner = get_json::<User, _>(self.store().as_ref(), &keys::user(&app.owner_email))
            .await?
            .map(|user| user.id)
            .unwrap_or(app.id);
        let mut members = vec![Member {
            id: owner,
            email: app.owner_email.clone(),
            user_id: owner,
            role: Role::Owner,
            permissions: Permission::ALL.into_iter().collect(),
            app_id: app.id,
            app_name: app.name.clone(),
            created_at: app.created_at,
            updated_at: app.updated_at,
        }];
        let (records, _) =
            range_json::<Collaborator, _>(self.store().as_ref(), &collaborators_key(app.id))
                .await?;
        members.extend(records.into_iter().map(|(_, record)| member(app, record)));
        Ok(members)
    }

    /// One member of `app`, by collaborator id, user id or email.
    pub async fn member(&self, app: &App, id_or_email: &str) -> Result<Member, CoreError> {
        let id = id_or_email.parse::<Uuid>().ok();
        self.members(app)
            .await?
            .into_iter()
            .find(|m| m.email == id_or_email || Some(m.id) == id || Some(m.user_id) == id)
            .ok_or_else(|| CoreError::not_found("collaborator", id_or_email))
    }

    /// `access:add`: gives an existing user access to `app` (written only while the app
    /// exists and the user is not yet a collaborator; a record left by a deletion racing this
    /// one names the deleted app's id, which no app has again).
    pub(crate) async fn add_collaborator(
        &self,
        app: &App,
        email: &str,
        permissions: Option<BTreeSet<Permission>>,
    ) -> Result<Member, CoreError> {
        let email = email.trim();
        if email.is_empty() || email.len() > 254 || email.contains(['/', '\0']) {
            return Err(CoreError::invalid(
                "Give the collaborator's email address, e.g. `access:add user@example.com`.",
            ));
        }
        let Some(user) = get_json::<User, _>(self.store().as_ref(), &keys::user(email)).await?
        else {
            return Err(CoreError::not_found("user", email));
        };
        if user.email == app.owner_email {
            return Err(CoreError::invalid(format!(
                "{email} owns {} already; owners have every permission.",
                app.name
            )));
        }
        let now = Utc::now();
        let record = Collaborator {
            id: Uuid::new_v4(),
            app_id: app.id,
            email: user.email.clone(),
            user_id: user.id,
            permissions: collaborator_permissions(permissions)?,
            created_at: now,
            updated_at: now,
        };
        let key = collaborator_key(app.id, &user.email);
        let response = self
            .store()
            .txn(
                Txn::new()
                    .when(Compare::exists(keys::app(&app.name)))
                    .when(Compare::absent(key.clone()))
                    .then(Op::put_json(key.clone(), &record)?),
            )
            .await?;
        if !response.succeeded {
            if get_json::<Collaborator, _>(self.store().as_ref(), &key)
                .await?
                .is_some()
            {
                return Err(CoreError::Conflict {
                    message: format!("{email} is already a collaborator on {}.", app.name),
                });
            }
            return Err(CoreError::Conflict {
                message: format!("{} changed while adding {email}; try again.", app.name),
            });
        }
        Ok(member(app, record))
    }

    /// `access:update`: sets a collaborator's permissions.
    pub(crate) async fn update_collaborator(
        &self,
        app: &App,
        id_or_email: &str,
        permissions: BTreeSet<Permission>,
    ) -> Result<Member, CoreError> {
        let (key, revision, mut record) = self.collaborator_record(app, id_or_email).await?;
        record.permissions = collaborator_permissions(Some(permissions))?;
        record.updated_at = Utc::now();
        // Compare-and-set on the record read: a concurrent removal or change is not undone.
        let applied = apply_if(
            self.store().as_ref(),
            Compare::mod_revision(key.clone(), revision),
            Op::put_json(key, &record)?,
        )
        .await?;
        if !applied {
            return Err(CoreError::Conflict {
                message: format!(
                    "{id_or_email}'s access to {} changed meanwhile; try again.",
                    app.name
                ),
            });
        }
        Ok(member(app, record))
    }

    /// `access:remove`: takes a collaborator's access away.
    pub(crate) async fn remove_collaborator(
        &self,
        app: &App,
        id_or_email: &str,
    ) -> Result<Member, CoreError> {
        let (key, _, record) = self.collaborator_record(app, id_or_email).await?;
        let applied = apply_if(
            self.store().as_ref(),
            Compare::exists(key.clone()),
            Op::delete(key),
        )
        .await?;
        if !applied {
            return Err(CoreError::not_found("collaborator", id_or_email));
        }
        Ok(member(app, record))
    }

    /// `apps:transfer`: `recipient`, an existing user, becomes `app`'s owner, and the old
    /// owner one of its collaborators (with the default permissions), as Heroku does with a
    /// personal app; the recipient's collaborator record, if any, goes. One transaction,
    /// guarded by the app record's revision, does all three, so a concurrent rename,
    /// transfer or deletion wins whole and this one is refused.
    ///
    /// Heroku asks the recipient to accept by email; Slipway has no email, so a transfer is
    /// done at once, as a collaborator could already be given everything but `manage`.
    pub(crate) async fn transfer_app(&self, app: &App, recipient: &str) -> Result<App, CoreError> {
        let recipient = recipient.trim();
        if recipient.is_empty() || recipient.len() > 254 || recipient.contains(['/', '\0']) {
            return Err(CoreError::invalid(
                "Give the new owner's email address, e.g. `apps:transfer user@example.com`.",
            ));
        }
        let Some(new_owner) =
            get_json::<User, _>(self.store().as_ref(), &keys::user(recipient)).await?
        else {
            return Err(CoreError::not_found("user", recipient));
        };
        let app_key = keys::app(&app.name);
        let (mut current, revision) = self.app_record(app).await?;
        if current.owner_email == new_owner.email {
            return Err(CoreError::invalid(format!(
                "{} owns {} already.",
                new_owner.email, app.name
            )));
        }
        let old_owner =
            get_json::<User, _>(self.store().as_ref(), &keys::user(&current.owner_email)).await?;
        let now = Utc::now();
        let previous = current.owner_email.clone();
        current.owner_email = new_owner.email.clone();
        current.updated_at = now;
        let mut txn = Txn::new()
            .when(Compare::mod_revision(app_key.clone(), revision))
            .then(Op::put_json(app_key, &current)?)
            .then(Op::delete(collaborator_key(app.id, &new_owner.email)));
        // An owner whose account is gone has nobody to keep on as a collaborator.
        if let Some(old_owner) = old_owner {
            let record = Collaborator {
                id: Uuid::new_v4(),
                app_id: app.id,
                email: old_owner.email.clone(),
                user_id: old_owner.id,
                permissions: COLLABORATOR_DEFAULT.into_iter().collect(),
                created_at: now,
                updated_at: now,
            };
            txn = txn.then(Op::put_json(
                collaborator_key(app.id, &old_owner.email),
                &record,
            )?);
        }
        let response = self.store().txn(txn).await?;
        if !response.succeeded {
            return Err(CoreError::Conflict {
                message: format!(
                    "{} changed while transferring it to {}; try again.",
                    app.name, new_owner.email
                ),
            });
        }
        tracing::info!(app = %app.name, from = %previous, to = %new_owner.email, "app transferred");
        Ok(current)
    }

    async fn collaborator_record(
        &self,
        app: &App,
        id_or_email: &str,
    ) -> Result<(String, slipway_store::Revision, Collaborator), CoreError> {
        if id_or_email == app.owner_email {
            return Err(CoreError::invalid(format!(
                "{id_or_email} owns {}; the owner's access cannot be changed.",
                app.name
            )));
        }
        let id = id_or_email.parse::<Uuid>().ok();
        let (records, _) =
            range_json::<Collaborator, _>(self.store().as_ref(), &collaborators_key(app.id))
                .await?;
        records
            .into_iter()
            .find(|(_, r)| r.email == id_or_email || Some(r.id) == id || Some(r.user_id) == id)
            .map(|(kv, record)| (kv.key, kv.mod_revision, record))
            .ok_or_else(|| CoreError::not_found("collaborator", id_or_email))
    }
}

/// A collaborator's permissions as asked for: `view` always, `manage` never.
fn collaborator_permissions(
    asked: Option<BTreeSet<Permission>>,
) -> Result<BTreeSet<Permission>, CoreError> {
    let Some(mut permissions) = asked else {
        return Ok(COLLABORATOR_DEFAULT.into_iter().collect());
    };
    if permissions.contains(&Permission::Manage) {
        return Err(CoreError::invalid(
            "Collaborators cannot be given the manage permission: only the app's owner deletes, renames or transfers it and manages its collaborators.",
        ));
    }
    permissions.insert(Permission::View);
    Ok(permissions)
}

fn member(app: &App, record: Collaborator) -> Member {
    Member {
        id: record.id,
        email: record.email,
        user_id: record.user_id,
        role: Role::Collaborator,
        permissions: record.permissions,
        app_id: app.id,
        app_name: app.name.clone(),
        created_at: record.created_at,
        updated_at: record.updated_at,
    }
}

#[cfg(test)]
mod tests;
