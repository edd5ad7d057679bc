//! `buildpacks`, `buildpacks:set`, `buildpacks:add`, `buildpacks:remove` and
//! `buildpacks:clear`, worded like the heroku CLI: each reads the app's list, edits it here
//! and writes it back whole (`PUT /apps/{app}/buildpack-installations`), as Heroku's does.

use std::io::Write;

use reqwest::Method;
use slipway_api_types::{BuildpackInstallation, BuildpackInstallationsUpdate, BuildpackUpdate};

use crate::client::Client;

/// How the list changes; `index` is 1-based, as `-i` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Edit {
    /// Replace the buildpack at `index` (default 1) or, past the end, append it.
    Set {
        buildpack: String,
        index: Option<usize>,
    },
    /// Insert at `index` (default: last).
    Add {
        buildpack: String,
        index: Option<usize>,
    },
    /// Remove the one named, or the one at `index`.
    Remove {
        buildpack: Option<String>,
        index: Option<usize>,
    },
    Clear,
}

/// The list after `edit`, or what is wrong with it, in the heroku CLI's words.
pub(crate) fn apply(mut list: Vec<String>, edit: &Edit) -> Result<Vec<String>, String> {
    let position = |index: Option<usize>, len: usize| -> Result<usize, String> {
        match index {
            Some(0) => Err("Invalid index. Must be greater than 0.".to_owned()),
            Some(index) => Ok((index - 1).min(len)),
            None => Ok(len),
        }
    };
    match edit {
        Edit::Set { buildpack, index } => {
            let at = position(Some(index.unwrap_or(1)), list.len())?;
            if list
                .iter()
                .enumerate()
                .any(|(i, b)| b == buildpack && i != at)
            {
                return Err(format!(
                    "The buildpack {buildpack} is already set on your app."
                ));
            }
            if at < list.len() {
                list[at] = buildpack.clone();
            } else {
                list.push(buildpack.clone());
            }
        }
        Edit::Add { buildpack, index } => {
            if list.contains(buildpack) {
                return Err(format!(
                    "The buildpack {buildpack} is already set on your app."
                ));
            }
            let at = position(*index, list.len())?;
            list.insert(at, buildpack.clone());
        }
        Edit::Remove { buildpack, index } => match (buildpack, index) {
            (Some(buildpack), None) => {
                let before = list.len();
                list.retain(|b| b != buildpack);
                if list.len() == before {
                    return Err(format!("Buildpack {buildpack} not found."));
                }
            }
            (None, Some(index)) => {
                if *index == 0 || *index > list.len() {
                    return Err(format!(
                        "Invalid index. Only valid values are 1 to {}.",
                        list.len()
                    ));
                }
                list.remove(index - 1);
            }
            _ => return Err("Please choose either index or Buildpack, but not both.".to_owned()),
        },
        Edit::Clear => list.clear(),
    }
    Ok(list)
}

/// `=== APP Buildpack URL(s)` and the list, numbered when there are several.
pub(crate) fn format_list(app: &str, list: &[String]) -> String {
    match list {
        [] => format!("{app} has no Buildpacks.\n"),
        [one] => format!("=== {app} Buildpack URL\n\n{one}\n"),
        many => {
            let mut out = format!("=== {app} Buildpack URLs\n\n");
            for (i, b) in many.iter().enumerate() {
                out.push_str(&format!("{}. {b}\n", i + 1));
            }
            out
        }
    }
}

async fn fetch(client: &Client, app: &str) -> anyhow::Result<Vec<String>> {
    let list: Vec<BuildpackInstallation> = client
        .get(&["apps", app, "buildpack-installations"], None)
        .await?;
    Ok(list.into_iter().map(|b| b.buildpack.name).collect())
}

pub(crate) async fn list(client: &Client, app: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    out.write_all(format_list(app, &fetch(client, app).await?).as_bytes())?;
    Ok(())
}

/// Writes `list` as the app's buildpacks; returns them as the server stored them.
pub(crate) async fn put(
    client: &Client,
    app: &str,
    list: &[String],
) -> anyhow::Result<Vec<String>> {
    let body = BuildpackInstallationsUpdate {
        updates: list
            .iter()
            .map(|b| BuildpackUpdate {
                buildpack: b.clone(),
            })
            .collect(),
    };
    let stored: Vec<BuildpackInstallation> = client
        .send(
            Method::PUT,
            &["apps", app, "buildpack-installations"],
            Some(&body),
        )
        .await?;
    Ok(stored.into_iter().map(|b| b.buildpack.name).collect())
}

pub(crate) async fn edit(
    client: &Client,
    app: &str,
    edit: Edit,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let list = apply(fetch(client, app).await?, &edit).map_err(anyhow::Error::msg)?;
    let stored = put(client, app, &list).await?;
    let verb = match edit {
        Edit::Set { .. } => "set",
        Edit::Add { .. } => "added",
        Edit::Remove { .. } => "removed",
        Edit::Clear => {
            writeln!(
                out,
                "Buildpacks cleared. Next release on {app} will detect buildpacks normally."
            )?;
            return Ok(());
        }
    };
    match stored.as_slice() {
        [] => writeln!(out, "Buildpack {verb}. {app} has no Buildpacks.")?,
        [one] => writeln!(
            out,
            "Buildpack {verb}. Next release on {app} will use {one}."
        )?,
        many => {
            writeln!(out, "Buildpack {verb}. Next release on {app} will use:")?;
            for (i, b) in many.iter().enumerate() {
                writeln!(out, "  {}. {b}", i + 1)?;
            }
        }
    }
    if !stored.is_empty() {
        writeln!(
            out,
            "Run git push slipway main to create a new release using these buildpacks."
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
