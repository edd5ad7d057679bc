//! An app's buildpack installations (`heroku buildpacks:set/add/remove/clear`): the ordered
//! list a `git push` builds with, stored at `buildpacks/<app id>` (keyed by id, so a rename
//! leaves it in place), and what a buildpack reference may be ([`BuildpackRef`]): a built-in
//! (`heroku/python`), the `http(s)` URL of a git repository with an optional `#ref`, or the URL
//! of a `.tgz`/`.tar.gz`. `fetch.rs` turns URLs into cached directories at build time, through
//! the platform's outbound policy.

use slipway_build::BUILTIN_BUILDPACKS;
use slipway_store::json::get_json;
use slipway_store::{Compare, Op, Txn};
use url::Url;
use uuid::Uuid;

use crate::error::CoreError;
use crate::model::{keys, App};
use crate::output::DeployOutput;
use crate::platform::Platform;

/// The most buildpacks an app may have installed (Heroku's limit is 6 for most apps).
pub(crate) const MAX_BUILDPACKS: usize = 6;

/// Where an app's buildpack list lives.
pub(crate) fn buildpacks_key(app: Uuid) -> String {
    format!("buildpacks/{app}")
}

/// The built-in buildpacks by their Heroku names (`heroku/python, ...`), for messages.
pub fn builtin_buildpack_names() -> Vec<String> {
    BUILTIN_BUILDPACKS
        .iter()
        .map(|name| format!("heroku/{name}"))
        .collect()
}

/// The longest buildpack reference accepted.
pub(crate) const MAX_BUILDPACK_REF_LEN: usize = 2048;

/// What a buildpack reference names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BuildpackRef {
    /// A built-in buildpack by its short name (`python`).
    Builtin(String),
    /// A git repository over `http(s)`, at `reference` (a branch, a tag or a commit) or its
    /// default branch.
    Git { url: Url, reference: Option<String> },
    /// A gzip'd tarball of a buildpack over `http(s)`.
    Tarball { url: Url },
}

/// Parses a buildpack reference: a built-in's name in any spelling (`python`,
/// `heroku/python`, Heroku's GitHub URL), or an `http(s)` URL: a `.tgz`/`.tar.gz` path is a
/// tarball, anything else a git repository whose `#fragment` is the ref. The error is a
/// sentence for the tenant (it never quotes credentials of the URL).
pub(crate) fn parse_buildpack_ref(given: &str) -> Result<BuildpackRef, String> {
    let trimmed = given.trim();
    let refused = || {
        // The name is the tenant's: shown only when short and printable, as a hint.
        let shown: String = display_buildpack(trimmed)
            .chars()
            .take(100)
            .filter(|c| !c.is_control())
            .collect();
        format!(
            "Buildpack {shown:?} is not available on Slipway. Use one of the built-in buildpacks ({}), or the https URL of a buildpack's git repository (with an optional #branch, #tag or #commit) or of its .tgz.",
            builtin_buildpack_names().join(", ")
        )
    };
    if let Some(name) = builtin_name(trimmed) {
        return Ok(BuildpackRef::Builtin(name.to_owned()));
    }
    if trimmed.len() > MAX_BUILDPACK_REF_LEN
        || trimmed.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(refused());
    }
    let Ok(mut url) = Url::parse(trimmed) else {
        return Err(refused());
    };
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(refused());
    }
    let reference = url
        .fragment()
        .filter(|fragment| !fragment.is_empty())
        .map(str::to_owned);
    url.set_fragment(None);
    let path = url.path().to_ascii_lowercase();
    if path.ends_with(".tgz") || path.ends_with(".tar.gz") {
        if reference.is_some() {
            return Err(format!(
                "{} A .tgz buildpack takes no #ref: the URL names one version.",
                refused()
            ));
        }
        return Ok(BuildpackRef::Tarball { url });
    }
    if let Some(reference) = &reference {
        let valid = reference.len() <= 255
            && !reference.starts_with('-')
            && !reference.contains("..")
            && reference
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
        if !valid {
            return Err(format!(
                "{} The #ref must be a branch, tag or commit name (letters, digits, . _ - /).",
                refused()
            ));
        }
    }
    Ok(BuildpackRef::Git { url, reference })
}

/// The built-in a reference names in any of its spellings: `python`, `heroku/python`,
/// `https://github.com/heroku/heroku-buildpack-python(.git)(#ref)`, and the CNB repository
/// names (`heroku/buildpacks-nodejs`).
fn builtin_name(given: &str) -> Option<&'static str> {
    let url = given
        .split('#')
        .next()
        .unwrap_or(given)
        .trim_end_matches('/');
    let url = url.strip_suffix(".git").unwrap_or(url);
    let name = url
        .strip_prefix("heroku/")
        .or_else(|| url.strip_prefix("heroku-community/"))
        .or_else(|| url.strip_prefix("https://github.com/heroku/heroku-buildpack-"))
        .or_else(|| url.strip_prefix("https://github.com/heroku/buildpacks-"))
        .unwrap_or(url);
    let name = match name {
        "node" => "nodejs",
        "procfile-cnb" => "procfile",
        other => other,
    };
    BUILTIN_BUILDPACKS.iter().copied().find(|b| *b == name)
}

/// A buildpack reference as messages show it: an URL without its credentials or query (a
/// private repository's token must not reach a build log), else as given.
pub(crate) fn display_buildpack(given: &str) -> String {
    match Url::parse(given.trim()) {
        Ok(mut url) if matches!(url.scheme(), "http" | "https") => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.to_string()
        }
        _ => given.trim().to_owned(),
    }
}

/// A buildpack a tenant names, as it is stored and shown: `heroku/<name>` for a built-in
/// (given as `python`, `heroku/python` or Heroku's buildpack URL), or the URL as given (see
/// [`parse_buildpack_ref`]). Anything else is refused with what is allowed.
pub fn canonical_buildpack(given: &str) -> Result<String, CoreError> {
    match parse_buildpack_ref(given).map_err(CoreError::invalid)? {
        BuildpackRef::Builtin(name) => Ok(format!("heroku/{name}")),
        BuildpackRef::Git { .. } | BuildpackRef::Tarball { .. } => Ok(given.trim().to_owned()),
    }
}

/// The list `given` asks for, validated: each a built-in, none twice, at most
/// [`MAX_BUILDPACKS`].
pub fn canonical_buildpacks(given: &[String]) -> Result<Vec<String>, CoreError> {
    if given.len() > MAX_BUILDPACKS {
        return Err(CoreError::invalid(format!(
            "An app can have at most {MAX_BUILDPACKS} buildpacks; {} were given.",
            given.len()
        )));
    }
    let mut list: Vec<String> = Vec::with_capacity(given.len());
    for name in given {
        let name = canonical_buildpack(name)?;
        if list.contains(&name) {
            return Err(CoreError::invalid(format!(
                "The buildpack {name} is already set on your app."
            )));
        }
        list.push(name);
    }
    Ok(list)
}

impl Platform {
    /// The app's buildpacks in the order a build runs them; empty: auto-detection.
    pub async fn buildpacks(&self, app: &App) -> Result<Vec<String>, CoreError> {
        Ok(
            get_json::<Vec<String>, _>(self.store().as_ref(), &buildpacks_key(app.id))
                .await?
                .unwrap_or_default(),
        )
    }

    /// Replaces the app's buildpack list (`PUT /apps/{app}/buildpack-installations`); an
    /// empty list clears it. Nothing is written unless every name is valid.
    pub(crate) async fn set_buildpacks(
        &self,
        app: &App,
        given: &[String],
    ) -> Result<Vec<String>, CoreError> {
        let list = canonical_buildpacks(given)?;
        let key = buildpacks_key(app.id);
        let write = if list.is_empty() {
            Op::delete(key)
        } else {
            Op::put_json(key, &list)?
        };
        let txn = Txn::new()
            .when(Compare::exists(keys::app(&app.name)))
            .then(write);
        if !self.store().txn(txn).await?.succeeded {
            return Err(CoreError::not_found("app", app.name.clone()));
        }
        Ok(list)
    }

    /// Turns a build's buildpack list (built-in names or URLs) into what the builder takes:
    /// built-ins by name, URLs fetched (or found in the cache) as directories. Each fetch is
    /// announced in the build output; a failure fails the build before anything runs.
    pub(crate) async fn resolve_build_buildpacks(
        &self,
        list: &[String],
        output: &DeployOutput,
    ) -> Result<Vec<String>, CoreError> {
        let fetcher = fetch::BuildpackFetcher {
            policy: self.config().outbound.clone(),
            cache_dir: self.config().data_dir.join("buildpack-cache"),
            timeout: fetch::FETCH_TIMEOUT,
        };
        let mut resolved = Vec::with_capacity(list.len());
        for given in list {
            let reference = parse_buildpack_ref(given)
                .map_err(|message| CoreError::invalid(format!("Push rejected: {message}")))?;
            match &reference {
                BuildpackRef::Builtin(name) => resolved.push(name.clone()),
                BuildpackRef::Git { .. } | BuildpackRef::Tarball { .. } => {
                    output(&format!(
                        "-----> Fetching buildpack {}",
                        display_buildpack(given)
                    ));
                    let dir = fetcher
                        .fetch(given, &reference)
                        .await
                        .map_err(|error| CoreError::invalid(format!("Push rejected: {error}.")))?;
                    resolved.push(dir.to_string_lossy().into_owned());
                }
            }
        }
        Ok(resolved)
    }
}

pub(crate) mod fetch;

#[cfg(test)]
mod tests;
