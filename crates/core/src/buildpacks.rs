//! An app's buildpack installations (`heroku buildpacks:set/add/remove/clear`): the ordered
//! list a `git push` builds with, stored at `buildpacks/<app id>` (keyed by id, so a rename
//! leaves it in place). Only the built-in buildpacks can be installed: fetching buildpacks
//! from URLs is issue 15's.

use slipway_build::BUILTIN_BUILDPACKS;
use slipway_store::json::get_json;
use slipway_store::{Compare, Op, Txn};
use uuid::Uuid;

use crate::error::CoreError;
use crate::model::{keys, App};
use crate::platform::Platform;

/// The most buildpacks an app may have installed (Heroku's limit is 6 for most apps; the
/// built-ins are 3, so any longer list repeats one).
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

/// A buildpack a tenant names, as it is stored and shown: `heroku/<name>` for a built-in
/// (given as `python`, `heroku/python` or Heroku's buildpack URL). Anything else is refused
/// with the list of the built-ins: Slipway fetches no buildpack from elsewhere.
pub fn canonical_buildpack(given: &str) -> Result<String, CoreError> {
    let trimmed = given.trim();
    let short = trimmed
        .strip_prefix("heroku/")
        .or_else(|| {
            trimmed
                .strip_prefix("https://github.com/heroku/heroku-buildpack-")
                .map(|rest| rest.trim_end_matches('/').trim_end_matches(".git"))
        })
        .unwrap_or(trimmed);
    match BUILTIN_BUILDPACKS.iter().find(|name| **name == short) {
        Some(name) => Ok(format!("heroku/{name}")),
        None => {
            // The name is the tenant's: shown only when short and printable, as a hint.
            let shown: String = given
                .chars()
                .take(100)
                .filter(|c| !c.is_control())
                .collect();
            Err(CoreError::invalid(format!(
                "Buildpack {shown:?} is not available on Slipway. Use one of the built-in buildpacks: {}.",
                builtin_buildpack_names().join(", ")
            )))
        }
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
}

#[cfg(test)]
mod tests;
