//! The app's `project.toml` (the CNB project descriptor): the buildpack group
//! (`[[io.buildpacks.group]]` in schema 0.2, `[[build.buildpacks]]` in 0.1) and build-time
//! environment (`[[io.buildpacks.build.env]]`, `[[build.env]]`).
//!
//! A buildpack is referenced by `uri`; Slipway takes a path relative to the app's root (a
//! directory committed with the app), since its builds fetch nothing on a tenant's behalf
//! here. Anything else is refused with a message saying what to do.

use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
struct ProjectToml {
    #[serde(default)]
    io: Io,
    #[serde(default)]
    build: LegacyBuild,
}

#[derive(Debug, Default, Deserialize)]
struct Io {
    #[serde(default)]
    buildpacks: IoBuildpacks,
}

#[derive(Debug, Default, Deserialize)]
struct IoBuildpacks {
    #[serde(default)]
    group: Vec<GroupEntry>,
    #[serde(default)]
    build: LegacyBuild,
}

/// Schema 0.1's `[build]`, also the shape of 0.2's `[io.buildpacks.build]`.
#[derive(Debug, Default, Deserialize)]
struct LegacyBuild {
    #[serde(default)]
    buildpacks: Vec<GroupEntry>,
    #[serde(default)]
    env: Vec<EnvEntry>,
}

#[derive(Debug, Clone, Deserialize)]
struct GroupEntry {
    id: Option<String>,
    uri: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct EnvEntry {
    name: String,
    value: String,
}

/// What `project.toml` says about the build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Project {
    /// The group, in order: each buildpack's directory relative to the app's root.
    pub(crate) group: Vec<PathBuf>,
    /// Build-time environment, under the app's config vars.
    pub(crate) env: Vec<(String, String)>,
}

/// Parses `project.toml`. `Ok` with an empty group when it names no buildpacks (the app is
/// then built with classic buildpacks); `Err` is the sentence for the user.
pub(crate) fn parse(text: &str) -> Result<Project, String> {
    let parsed: ProjectToml = toml::from_str(text).map_err(|e| {
        format!(
            "project.toml is not valid TOML ({})",
            e.message().trim_end_matches('.')
        )
    })?;
    let mut entries = parsed.io.buildpacks.group;
    entries.extend(parsed.build.buildpacks);
    entries.extend(parsed.io.buildpacks.build.buildpacks);
    let mut env = parsed.build.env;
    env.extend(parsed.io.buildpacks.build.env);
    let group = entries
        .iter()
        .map(relative_uri)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Project {
        group,
        env: env.into_iter().map(|e| (e.name, e.value)).collect(),
    })
}

fn relative_uri(entry: &GroupEntry) -> Result<PathBuf, String> {
    let named = entry.id.as_deref().unwrap_or("(no id)");
    let Some(uri) = entry.uri.as_deref() else {
        return Err(format!(
            "project.toml names buildpack {named} without a uri: Slipway runs Cloud Native \
             Buildpacks from directories committed with the app. Add `uri = \"<path>\"` with the \
             buildpack's directory, relative to the app's root."
        ));
    };
    let path = uri.strip_prefix("file://").unwrap_or(uri);
    let refused = |why: &str| {
        format!(
            "project.toml: buildpack uri {uri:?} {why}. Use a directory committed with the app, \
             as a path relative to the app's root (e.g. `uri = \"buildpacks/hello\"`)."
        )
    };
    if path.contains("://") || path.starts_with("urn:") || path.starts_with("docker:") {
        return Err(refused("is not a path inside the app"));
    }
    let relative = Path::new(path);
    if relative.is_absolute() {
        return Err(refused("is an absolute path"));
    }
    let mut clean = PathBuf::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            _ => return Err(refused("leaves the app's directory")),
        }
    }
    if clean.as_os_str().is_empty() {
        return Err(refused("is the app's own directory"));
    }
    Ok(clean)
}
