//! `builds`, `builds:info`, `builds:output` and `builds:cache:purge`, worded like the heroku
//! CLI's builds plugin: an app's builds newest first (`GET /apps/{app}/builds`), one build
//! (`GET /apps/{app}/builds/{id}`, the latest when no id is given), its output streamed from
//! its `output_stream_url` (the URL is the capability: no credentials are sent), and
//! `DELETE /apps/{app}/build-cache`.

use std::io::Write;

use slipway_api_types::Build;

use crate::action::action_done;
use crate::client::Client;

/// How many builds `builds` lists by default (the plugin's `-n` default).
pub(crate) const DEFAULT_LIST: usize = 15;

/// The build's status as the API spells it (`pending`, `succeeded`, `failed`).
fn status_text(build: &Build) -> String {
    match serde_json::to_value(build.status) {
        Ok(serde_json::Value::String(text)) => text,
        _ => "unknown".to_owned(),
    }
}

/// `=== APP Builds` and one line per build, newest first:
/// `ID  CREATED  STATUS  USER  VERSION`.
pub(crate) fn format_list(app: &str, builds: &[Build]) -> String {
    if builds.is_empty() {
        return format!("{app} has no builds.\n");
    }
    let mut out = format!("=== {app} Builds\n\n");
    for build in builds {
        out.push_str(&format!(
            "{}  {}  {}  {}  {}\n",
            build.id,
            build.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
            status_text(build),
            build.user.email,
            build.source_blob.version.as_deref().unwrap_or("-"),
        ));
    }
    out
}

/// `=== Build ID` and its fields, one per line.
pub(crate) fn format_info(app: &str, build: &Build) -> String {
    let buildpacks = build
        .buildpacks
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|b| b.name.clone().unwrap_or_else(|| b.url.clone()))
        .collect::<Vec<_>>();
    let rows = [
        ("App", app.to_owned()),
        ("Status", status_text(build)),
        (
            "Created At",
            build.created_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        ),
        ("User", build.user.email.clone()),
        (
            "Source Version",
            build
                .source_blob
                .version
                .clone()
                .unwrap_or_else(|| "-".to_owned()),
        ),
        ("Stack", build.stack.clone()),
        (
            "Buildpacks",
            if buildpacks.is_empty() {
                "(detected)".to_owned()
            } else {
                buildpacks.join(", ")
            },
        ),
        (
            "Release",
            build
                .release
                .as_ref()
                .map_or_else(|| "-".to_owned(), |r| r.id.to_string()),
        ),
        (
            "Slug",
            build
                .slug
                .as_ref()
                .map_or_else(|| "-".to_owned(), |s| s.id.to_string()),
        ),
    ];
    let mut out = format!("=== Build {}\n\n", build.id);
    for (label, value) in rows {
        out.push_str(&format!("{:<15} {value}\n", format!("{label}:")));
    }
    out
}

/// The app's builds, newest first.
async fn newest(client: &Client, app: &str) -> anyhow::Result<Vec<Build>> {
    let mut builds: Vec<Build> = client.get(&["apps", app, "builds"], None).await?;
    builds.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    Ok(builds)
}

pub(crate) async fn list(
    client: &Client,
    app: &str,
    num: Option<usize>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut builds = newest(client, app).await?;
    builds.truncate(num.unwrap_or(DEFAULT_LIST));
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&builds)?)?;
    } else {
        out.write_all(format_list(app, &builds).as_bytes())?;
    }
    Ok(())
}

/// The build `id` names, or the app's latest.
async fn one(client: &Client, app: &str, id: Option<&str>) -> anyhow::Result<Build> {
    match id {
        Some(id) => Ok(client.get(&["apps", app, "builds", id], None).await?),
        None => newest(client, app)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("{app} has no builds.")),
    }
}

pub(crate) async fn info(
    client: &Client,
    app: &str,
    id: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let build = one(client, app, id).await?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&build)?)?;
    } else {
        out.write_all(format_info(app, &build).as_bytes())?;
    }
    Ok(())
}

/// Streams the build's output from its start, following it until the build ends.
pub(crate) async fn output(
    client: &Client,
    app: &str,
    id: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let build = one(client, app, id).await?;
    crate::logs::stream_logs(client.http(), &build.output_stream_url, false, out)
        .await
        .map_err(|error| match error {
            crate::logs::LogStreamError::Status { status, .. }
                if status == reqwest::StatusCode::NOT_FOUND =>
            {
                anyhow::anyhow!(
                    "The output of build {} is no longer kept (outputs live in the server's memory); see `slipway logs -a {app}` for its lines.",
                    build.id
                )
            }
            other => other.into(),
        })?;
    Ok(())
}

/// `builds:cache:purge`: the app's name must be repeated with `--confirm`.
pub(crate) async fn purge_cache(
    client: &Client,
    app: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let label = format!("Purging build cache for {app}");
    let _: serde_json::Value =
        action_done(out, &label, client.delete(&["apps", app, "build-cache"])).await?;
    Ok(())
}

#[cfg(test)]
mod tests;
