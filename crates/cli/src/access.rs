//! `access`, `access:add EMAIL`, `access:remove EMAIL` and `access:update EMAIL
//! --permissions view,deploy`: an app's owner and collaborators, worded like the heroku CLI.

use std::io::Write;

use reqwest::Method;
use serde::Deserialize;

use crate::client::Client;

/// A collaborator as the API shows one; only what the CLI prints.
#[derive(Debug, Deserialize)]
pub(crate) struct Collaborator {
    pub(crate) user: CollaboratorUser,
    pub(crate) role: Option<String>,
    #[serde(default)]
    pub(crate) permissions: Vec<PermissionName>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CollaboratorUser {
    pub(crate) email: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PermissionName {
    pub(crate) name: String,
}

/// `=== APP Access List` and one `EMAIL  ROLE  PERMISSIONS` line per member, in columns.
pub(crate) fn format_access(app: &str, members: &[Collaborator]) -> String {
    let mut out = format!("=== {app} Access List\n\n");
    let width = members
        .iter()
        .map(|m| m.user.email.len())
        .max()
        .unwrap_or(0);
    let role_width = members
        .iter()
        .map(|m| m.role.as_deref().unwrap_or("").len())
        .max()
        .unwrap_or(0);
    for member in members {
        let permissions: Vec<&str> = member.permissions.iter().map(|p| p.name.as_str()).collect();
        let line = format!(
            "{:width$}  {:role_width$}  {}",
            member.user.email,
            member.role.as_deref().unwrap_or(""),
            permissions.join(", "),
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub(crate) async fn list(client: &Client, app: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    let members: Vec<Collaborator> = client.get(&["apps", app, "collaborators"], None).await?;
    out.write_all(format_access(app, &members).as_bytes())?;
    Ok(())
}

/// `--permissions view,deploy` as the API's list of names.
fn permission_list(permissions: &str) -> Vec<String> {
    permissions
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(crate) async fn add(
    client: &Client,
    app: &str,
    email: &str,
    permissions: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut body = serde_json::json!({ "user": email, "silent": false });
    if let Some(permissions) = permissions {
        body["permissions"] = permission_list(permissions).into();
    }
    let _: serde_json::Value = client
        .send(Method::POST, &["apps", app, "collaborators"], Some(&body))
        .await?;
    writeln!(out, "Adding {email} access to the app {app}... done")?;
    Ok(())
}

pub(crate) async fn update(
    client: &Client,
    app: &str,
    email: &str,
    permissions: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let body = serde_json::json!({ "permissions": permission_list(permissions) });
    let updated: Collaborator = client
        .send(
            Method::PATCH,
            &["apps", app, "collaborators", email],
            Some(&body),
        )
        .await?;
    let names: Vec<&str> = updated
        .permissions
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    writeln!(
        out,
        "Updating {email} in application {app} with {} permissions... done",
        names.join(",")
    )?;
    Ok(())
}

pub(crate) async fn remove(
    client: &Client,
    app: &str,
    email: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let _: serde_json::Value = client
        .delete(&["apps", app, "collaborators", email])
        .await?;
    writeln!(out, "Removing {email} access from the app {app}... done")?;
    Ok(())
}

#[cfg(test)]
mod tests;
