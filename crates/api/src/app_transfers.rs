//! `POST /account/app-transfers {app, recipient}`: what `heroku apps:transfer EMAIL -a APP`
//! sends for a personal app. Only the app's owner (or an administrator) may transfer it
//! (403 otherwise, checked by `Platform::execute`), and only to an existing user (404); the
//! old owner stays on as a collaborator. Heroku answers `state: pending` and mails the
//! recipient; Slipway has no mail, so the transfer is done at once and answered `accepted`
//! (the CLI then prints `done` instead of `email sent`).
//!
//! The request is parsed into a [`Command`] by [`parse_create`] (tested in
//! `app_transfers/tests.rs`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use slipway_core::model::App;
use slipway_core::Command;

use crate::auth::CurrentUser;
use crate::convert::catalog_id;
use crate::error::ApiError;
use crate::outcome::execute_on_app;
use crate::request::{parse_app, parse_body_like};
use crate::state::ApiState;

/// The body of `POST /account/app-transfers`: the app by name or id (or `{"name"}`/`{"id"}`),
/// the recipient by email (or `{"email"}`). Heroku's `silent` (send no email) is accepted
/// and ignored: there is never an email.
#[derive(Debug, Deserialize)]
struct TransferCreate {
    app: Identity,
    recipient: Identity,
}

/// A resource named by a string or by an object with one of `name`, `id` or `email`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Identity {
    Text(String),
    Object {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        email: Option<String>,
    },
}

impl Identity {
    fn into_text(self) -> Option<String> {
        match self {
            Identity::Text(text) => Some(text),
            Identity::Object { name, id, email } => email.or(name).or(id),
        }
    }
}

/// An app transfer as Heroku shows one.
#[derive(Debug, Serialize)]
pub(crate) struct AppTransfer {
    id: uuid::Uuid,
    app: Ref,
    owner: UserRef,
    recipient: UserRef,
    state: &'static str,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Debug, Serialize)]
struct Ref {
    id: uuid::Uuid,
    name: String,
}

#[derive(Debug, Serialize)]
struct UserRef {
    id: uuid::Uuid,
    email: String,
}

/// `POST /account/app-transfers {app, recipient}` → the app (checked for the caller by
/// `execute_on_app`) and the transfer command.
pub(crate) fn parse_create(body: &[u8]) -> Result<(String, Command), ApiError> {
    let request: TransferCreate = parse_body_like(
        body,
        r#"{"app": "my-app", "recipient": "new-owner@example.com"}"#,
    )?;
    let app = request
        .app
        .into_text()
        .ok_or_else(|| ApiError::invalid_params("Name the app to transfer in `app`."))?;
    let app = parse_app(app)?;
    let recipient = request
        .recipient
        .into_text()
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            ApiError::invalid_params("Name the new owner's email address in `recipient`.")
        })?;
    Ok((app.clone(), Command::TransferApp { app, recipient }))
}

/// Transfers the app at once (see the module documentation) and answers the transfer.
pub(crate) async fn create(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    body: bytes::Bytes,
) -> Result<(StatusCode, Json<AppTransfer>), ApiError> {
    let (app, command) = parse_create(&body)?;
    let (before, after): (App, App) = execute_on_app(&state, &user, app, |_| Ok(command)).await?;
    let user_ref = |email: &str| UserRef {
        id: catalog_id("user", email),
        email: email.to_owned(),
    };
    let now = chrono::Utc::now();
    Ok((
        StatusCode::CREATED,
        Json(AppTransfer {
            id: uuid::Uuid::new_v4(),
            app: Ref {
                id: after.id,
                name: after.name.clone(),
            },
            owner: user_ref(&before.owner_email),
            recipient: user_ref(&after.owner_email),
            state: "accepted",
            created_at: now,
            updated_at: now,
        }),
    ))
}

#[cfg(test)]
mod tests;
