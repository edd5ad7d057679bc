//! `/apps/{app}/collaborators`: who besides the owner may use an app (`heroku access`,
//! `access:add`, `access:remove`, `slipway access:update`). Changes are parsed into
//! [`Command`]s by pure `parse_*` functions (tested in `collaborators/tests.rs`) and need the
//! `manage` permission, which only the owner and administrators hold; listing needs `view`.
//!
//! The list shows the owner first, with role `owner`, as Heroku does.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use slipway_api_types as wire;
use slipway_core::{Command, Member, Outcome, Permission};
use uuid::Uuid;

use crate::app_in_path::{AppInPath, OnApp};
use crate::error::ApiError;
use crate::request::{parse_app, parse_body_like};
use crate::response::list_response;
use crate::state::ApiState;

/// A collaborator in Heroku's shape.
#[derive(Debug, Serialize)]
pub(crate) struct CollaboratorJson {
    pub(crate) id: Uuid,
    pub(crate) app: wire::ResourceRef,
    pub(crate) user: CollaboratorUser,
    pub(crate) role: &'static str,
    pub(crate) permissions: Vec<PermissionJson>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
pub(crate) struct CollaboratorUser {
    pub(crate) id: Uuid,
    pub(crate) email: String,
    pub(crate) federated: bool,
}

/// Heroku's team-app permission shape: `{name, description}`.
#[derive(Debug, Serialize)]
pub(crate) struct PermissionJson {
    pub(crate) name: &'static str,
    pub(crate) description: &'static str,
}

fn describe(permission: Permission) -> &'static str {
    match permission {
        Permission::View => "Can view the app's config, releases, dynos, logs and add-ons.",
        Permission::Deploy => "Can push code, create builds, release slugs, roll back and set config vars.",
        Permission::Operate => "Can scale, restart and run dynos, and change domains, drains, certificates and add-ons.",
        Permission::Manage => "Can delete, rename and transfer the app and manage its collaborators.",
    }
}

pub(crate) fn collaborator_json(member: &Member) -> CollaboratorJson {
    CollaboratorJson {
        id: member.id,
        app: wire::ResourceRef {
            id: member.app_id,
            name: member.app_name.clone(),
        },
        user: CollaboratorUser {
            id: member.user_id,
            email: member.email.clone(),
            federated: false,
        },
        role: member.role.as_str(),
        permissions: member
            .permissions
            .iter()
            .map(|p| PermissionJson {
                name: p.as_str(),
                description: describe(*p),
            })
            .collect(),
        created_at: member.created_at,
        updated_at: member.updated_at,
    }
}

/// `user` as Heroku's account identity: an email (or id), or `{"email": ...}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum UserIdentity {
    Email(String),
    Object { email: String },
}

/// The body of `POST /apps/{app}/collaborators`. Heroku's `silent` ("don't email the
/// collaborator") is accepted and ignored: Slipway sends no email either way.
#[derive(Deserialize)]
struct CreateBody {
    user: UserIdentity,
    #[serde(default)]
    permissions: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct UpdateBody {
    permissions: Vec<String>,
}

/// Permission names as sent (`["view", "deploy"]`), each one known.
fn parse_permissions(names: Vec<String>) -> Result<BTreeSet<Permission>, ApiError> {
    names
        .iter()
        .map(|name| {
            Permission::parse(name).ok_or_else(|| {
                ApiError::invalid_params(format!(
                    "Unknown permission {:?}: use view, deploy or operate.",
                    name.chars().take(40).collect::<String>()
                ))
            })
        })
        .collect()
}

/// `POST /apps/{app}/collaborators {"user": EMAIL, "silent": bool}`.
pub(crate) fn parse_create(app: String, body: &[u8]) -> Result<Command, ApiError> {
    let app = parse_app(app)?;
    let request: CreateBody = parse_body_like(body, r#"{"user": "user@example.com"}"#)?;
    let email = match request.user {
        UserIdentity::Email(email) | UserIdentity::Object { email } => email,
    };
    Ok(Command::AddCollaborator {
        app,
        email,
        permissions: request.permissions.map(parse_permissions).transpose()?,
    })
}

/// `PATCH /apps/{app}/collaborators/{collaborator} {"permissions": [...]}`.
pub(crate) fn parse_update(
    app: String,
    collaborator: String,
    body: &[u8],
) -> Result<Command, ApiError> {
    let app = parse_app(app)?;
    let request: UpdateBody = parse_body_like(body, r#"{"permissions": ["view", "deploy"]}"#)?;
    Ok(Command::UpdateCollaborator {
        app,
        collaborator,
        permissions: parse_permissions(request.permissions)?,
    })
}

/// `DELETE /apps/{app}/collaborators/{collaborator}` (email or id).
pub(crate) fn parse_delete(app: String, collaborator: String) -> Result<Command, ApiError> {
    Ok(Command::RemoveCollaborator {
        app: parse_app(app)?,
        collaborator,
    })
}

/// Executes a collaborator command and takes the member it changed.
async fn execute(
    state: &ApiState,
    user: &slipway_core::model::User,
    command: Result<Command, ApiError>,
) -> Result<Json<CollaboratorJson>, ApiError> {
    match state.platform.execute(user, command?).await? {
        Outcome::Collaborator(member) => Ok(Json(collaborator_json(&member))),
        _ => Err(ApiError::unexpected_outcome()),
    }
}

pub(crate) async fn list(
    State(state): State<ApiState>,
    AppInPath { app, .. }: AppInPath,
) -> Result<Response, ApiError> {
    let members = state.platform.members(&app).await?;
    Ok(list_response(
        members.iter().map(collaborator_json).collect(),
    ))
}

pub(crate) async fn get(
    State(state): State<ApiState>,
    AppInPath { app, .. }: AppInPath,
    Path((_, collaborator)): Path<(String, String)>,
) -> Result<Json<CollaboratorJson>, ApiError> {
    let member = state.platform.member(&app, &collaborator).await?;
    Ok(Json(collaborator_json(&member)))
}

pub(crate) async fn create(
    State(state): State<ApiState>,
    AppInPath { user, app }: AppInPath,
    body: bytes::Bytes,
) -> Result<(StatusCode, Json<CollaboratorJson>), ApiError> {
    let created = execute(&state, &user, parse_create(app.name, &body)).await?;
    Ok((StatusCode::CREATED, created))
}

pub(crate) async fn update(
    State(state): State<ApiState>,
    AppInPath { user, app }: AppInPath,
    Path((_, collaborator)): Path<(String, String)>,
    body: bytes::Bytes,
) -> Result<Json<CollaboratorJson>, ApiError> {
    execute(&state, &user, parse_update(app.name, collaborator, &body)).await
}

pub(crate) async fn delete(
    call: OnApp,
    Path((_, collaborator)): Path<(String, String)>,
) -> Result<Json<CollaboratorJson>, ApiError> {
    execute(
        &call.state,
        &call.user,
        parse_delete(call.app, collaborator),
    )
    .await
}

#[cfg(test)]
mod tests;
