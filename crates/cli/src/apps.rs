//! `apps:rename` and the git remote a new user's `apps:create` adds (the parts of the app
//! commands that touch the local git repository), and `apps:transfer`.

use std::io::Write;

use reqwest::Method;
use slipway_api_types::{App, AppUpdate, Formation};

use crate::action::{action, action_done};
use crate::args::app_from_git_url;
use crate::client::Client;
use crate::format::format_app_created;

/// The remote `apps:create` adds and `apps:rename` updates, besides the heroku CLI's own.
pub(crate) const REMOTE: &str = "slipway";

/// Runs git with `args` in the current directory; `None` if it could not run or failed.
pub(crate) fn git(args: &[&str]) -> Option<String> {
    let output = std::process::Command::new("git")
        .args(args)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Whether the current directory is inside a git work tree.
fn in_git_repository() -> bool {
    git(&["rev-parse", "--is-inside-work-tree"]).as_deref() == Some("true")
}

/// After `apps:create` in a git repository: adds the `slipway` remote for the app (unless a
/// remote of that name exists) and says so.
pub(crate) fn add_remote(app: &App, out: &mut dyn Write) -> anyhow::Result<()> {
    if !in_git_repository() {
        return Ok(());
    }
    if git(&["remote", "get-url", REMOTE]).is_some() {
        writeln!(
            out,
            "Git remote {REMOTE} already exists; push to {} to deploy this app.",
            app.git_url
        )?;
        return Ok(());
    }
    if git(&["remote", "add", REMOTE, &app.git_url]).is_some() {
        writeln!(
            out,
            "Git remote {REMOTE} added: git push {REMOTE} main to deploy."
        )?;
    }
    Ok(())
}

/// `apps:rename NEW -a OLD`: renames the app, prints Heroku's lines and points the local
/// remotes that named the old app at the new one.
pub(crate) async fn rename(
    client: &Client,
    old: &str,
    new: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    // Refused here with the server's own message, before any request.
    let new = new.parse::<slipway_model::AppName>()?.to_string();
    let body = AppUpdate {
        name: Some(new.clone()),
        ..AppUpdate::default()
    };
    let label = format!("Renaming {old} to {new}");
    let app: App = action_done(
        out,
        &label,
        client.send(Method::PATCH, &["apps", old], Some(&body)),
    )
    .await?;
    out.write_all(format_app_created(&app).as_bytes())?;
    if !in_git_repository() {
        return Ok(());
    }
    for remote in ["heroku", REMOTE] {
        let Some(url) = git(&["remote", "get-url", remote]) else {
            continue;
        };
        if app_from_git_url(&url).as_deref() != Some(old) {
            continue;
        }
        let Some(base) = url.strip_suffix(&format!("{old}.git")) else {
            continue;
        };
        let updated = format!("{base}{new}.git");
        if git(&["remote", "set-url", remote, &updated]).is_some() {
            writeln!(out, "Git remote {remote} updated")?;
        }
    }
    Ok(())
}

/// `apps:transfer EMAIL -a APP`: the request `heroku apps:transfer` sends for a personal app,
/// with its lines (`Initiating transfer of APP to EMAIL... done`).
pub(crate) async fn transfer(
    client: &Client,
    app: &str,
    recipient: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let body = serde_json::json!({"app": app, "recipient": recipient});
    let label = format!("Initiating transfer of {app} to {recipient}");
    let answer: serde_json::Value = action(
        out,
        &label,
        client.send(Method::POST, &["account", "app-transfers"], Some(&body)),
    )
    .await?;
    if answer["state"] == "pending" {
        writeln!(out, "email sent")?;
    } else {
        writeln!(out, "done")?;
    }
    Ok(())
}

/// `ps:scale` of a type the app does not declare: the error, followed by the types it does.
pub(crate) fn with_declared_types(error: anyhow::Error, declared: &[Formation]) -> anyhow::Error {
    if declared.is_empty() {
        return error;
    }
    let types: Vec<&str> = declared.iter().map(|f| f.process_type.as_str()).collect();
    anyhow::anyhow!(
        "{error} This app's process types are: {}.",
        types.join(", ")
    )
}

/// The command closest to a mistyped one (`aps` → `apps`), by edit distance; ties go to a
/// command that starts like the typo, then to the shorter. `None` when nothing is close.
pub fn closest_command<'a>(
    given: &str,
    names: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let given = given.to_ascii_lowercase();
    let first = given.chars().next();
    names
        .into_iter()
        .map(|name| (edit_distance(&given, name), name))
        // Close means at most a third of the typo wrong (and at least one edit allowed).
        .filter(|(distance, _)| *distance <= (given.chars().count() / 3).max(1))
        .min_by_key(|(distance, name)| {
            (
                *distance,
                name.chars().next() != first,
                name.len(),
                name.to_string(),
            )
        })
        .map(|(_, name)| name.to_owned())
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests;
