//! Heroku's `app.json` manifest at the root of the pushed source: what Slipway honours of it
//! and how it is checked.
//!
//! Honoured keys:
//! - `formation`: `{"web": {"quantity": 2, "size": "standard-2x"}}`, the initial quantity and
//!   size of process types, applied when their formation entries are first created (later
//!   deploys never rescale what `ps:scale` set);
//! - `env`: defaults for config vars not already set. An entry is a string (the value) or
//!   `{"description", "value", "required", "generator"}`; `required` defaults to `true`, as on
//!   Heroku, so an entry with neither a value nor a generator must already be set or the push
//!   is rejected; `"generator": "secret"` sets a random 64-hex-character value, once;
//! - `scripts.postdeploy`: a command (or `{"command"}`) run once, after the app's first
//!   successful deploy, in a one-off dyno of the new release;
//! - `buildpacks`: `[{"url": "heroku/python"}]`, mapped to the built-in buildpacks;
//! - `addons`: `["heroku-postgresql:essential-0", {"plan": "heroku-redis", "as": "CACHE"}]`,
//!   provisioned and attached on the app's first deploy, before its release phase (see
//!   `deploy.rs`). A service an administrator registered (`addons:services:add`, a third-party
//!   provider) is named the same way (`"acme-db:basic"`); since which services are registered
//!   is the platform's state, not the file's, such an entry is only checked for its shape here
//!   and against the registered services when a first deploy starts (before the build). An
//!   unknown service or plan or a bad attachment name rejects the push. `options` go to a
//!   third-party provider as the provision's `options` (bounded like `addons:create`'s); the
//!   built-in plans take none, so for them they are ignored.
//!
//! Every other key (`name`, `description`, `stack`, ...) is ignored, as Heroku ignores
//! keys it does not know. A manifest that is not JSON, or whose honoured keys have the wrong
//! types, rejects the push before anything is built, with serde_json's line and column.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use slipway_model::{ConfigKey, DynoSize};

use crate::model::ConfigVars;

/// The file's name at the root of the source.
pub(crate) const FILE: &str = "app.json";

/// The parts of an `app.json` Slipway honours, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AppJson {
    pub(crate) env: BTreeMap<String, EnvVar>,
    pub(crate) formation: BTreeMap<String, InitialFormation>,
    pub(crate) postdeploy: Option<String>,
    /// Built-in buildpack names (`python`, `nodejs`, `procfile`), in order.
    pub(crate) buildpacks: Vec<String>,
    /// Add-ons to provision on the first deploy, in order.
    pub(crate) addons: Vec<ManifestAddon>,
}

/// One `addons` entry: a built-in plan checked against the catalog, or a plan of a service
/// that is not built in, checked for its shape only (see [`unknown_addon`] for the rest).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ManifestAddon {
    /// A built-in's `service:plan`, both canonical (`heroku-postgresql:essential-0`); any
    /// other service's `service[:plan]` as written (`acme-db:basic`).
    pub(crate) plan: String,
    /// The attachment name (`as`), if one is asked for.
    pub(crate) attachment: Option<String>,
    /// The provider's options (`options`), passed to a third-party provider.
    pub(crate) options: serde_json::Map<String, serde_json::Value>,
}

/// Most `options` one app.json add-on may pass to a provider, and the longest option name and
/// string value in bytes: the same bounds as `addons:create ... -- --key value`.
const MAX_OPTIONS: usize = 32;
const MAX_OPTION_NAME: usize = 64;
const MAX_OPTION_VALUE: usize = 1024;

/// `[a-z][a-z0-9-]*`, not ending in `-`, at most `max` bytes: the shape of a registered
/// service's id and of its plans' ids.
fn is_slug(value: &str, max: usize) -> bool {
    !value.is_empty()
        && value.len() <= max
        && value.starts_with(|c: char| c.is_ascii_lowercase())
        && !value.ends_with('-')
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// True if `spec` could name a plan of a registered (not built-in) service: `service[:plan]`
/// with both parts shaped like a manifest's ids.
fn could_be_registered(spec: &str) -> bool {
    let (service, plan) = match spec.split_once(':') {
        Some((service, plan)) => (service, Some(plan)),
        None => (spec, None),
    };
    slipway_addons::Service::parse(service).is_none()
        && is_slug(service, 50)
        && plan.is_none_or(|plan| is_slug(plan, 50))
}

/// The refusal of app.json's `addons[index]`, `spec`, when neither a built-in nor a registered
/// service (`registered`, their names) provides it.
pub(crate) fn unknown_addon(index: usize, spec: &str, registered: &[String]) -> AppJsonError {
    let mut available: Vec<String> = slipway_addons::Service::ALL
        .iter()
        .map(|s| s.name().to_owned())
        .collect();
    available.extend(registered.iter().cloned());
    AppJsonError::Invalid(format!(
        "addons[{index}]: Couldn't find either the add-on service or the add-on plan of {spec:?}. Available services: {}",
        available.join(", ")
    ))
}

/// Checks an entry's `options` against the bounds of `addons:create`'s.
fn check_options(
    index: usize,
    options: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), AppJsonError> {
    let bad = |why: String| {
        AppJsonError::Invalid(format!(
            "addons[{index}].options: {why} (at most {MAX_OPTIONS} options; names of letters, digits, `_`, `.` and `-`; values strings of at most {MAX_OPTION_VALUE} bytes, numbers or booleans)"
        ))
    };
    if options.len() > MAX_OPTIONS {
        return Err(bad(format!("{} options given", options.len())));
    }
    for (name, value) in options {
        let name_ok = !name.is_empty()
            && name.len() <= MAX_OPTION_NAME
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !name_ok {
            let shown: String = name.chars().take(MAX_OPTION_NAME).collect();
            return Err(bad(format!("the option name {shown:?} is not allowed")));
        }
        let value_ok = match value {
            serde_json::Value::Bool(_) | serde_json::Value::Number(_) => true,
            serde_json::Value::String(s) => {
                s.len() <= MAX_OPTION_VALUE && !s.chars().any(char::is_control)
            }
            _ => false,
        };
        if !value_ok {
            return Err(bad(format!("the value of {name} is not allowed")));
        }
    }
    Ok(())
}

/// One `env` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EnvVar {
    pub(crate) value: Option<String>,
    pub(crate) required: bool,
    pub(crate) generate_secret: bool,
}

/// One `formation` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct InitialFormation {
    pub(crate) quantity: Option<u32>,
    /// A [`DynoSize`] in its canonical (lowercase) spelling.
    pub(crate) size: Option<String>,
}

/// An attachment name: `[A-Z][A-Z0-9_]*`, at most 60 characters (the config var adds
/// `_URL`). Here rather than in `addons.rs`, which uses it too, so that module depends on this
/// one and not the other way round.
pub(crate) fn valid_attachment_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 60
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Why an `app.json` was refused. Shown to the user who pushed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppJsonError {
    #[error("app.json is not valid: {0}. Fix app.json and push again.")]
    Syntax(#[from] serde_json::Error),
    #[error("app.json is not valid: {0}. Fix app.json and push again.")]
    Invalid(String),
}

/// Config var changes an `app.json`'s `env` asks for, given the app's current config vars.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EnvDefaults {
    /// Vars to add: defaults and generated secrets.
    pub(crate) set: ConfigVars,
    /// Required vars with neither a value in the app nor a default.
    pub(crate) missing: Vec<String>,
}

impl AppJson {
    /// Parses and checks a manifest's bytes.
    pub(crate) fn parse(bytes: &[u8]) -> Result<AppJson, AppJsonError> {
        // serde accepts a struct written as an array; a manifest is an object.
        let value: serde_json::Value = serde_json::from_slice(bytes)?;
        if !value.is_object() {
            return Err(AppJsonError::Invalid(
                "its top level must be a JSON object ({...})".to_owned(),
            ));
        }
        let raw: Raw = serde_json::from_slice(bytes)?;
        let mut env = BTreeMap::new();
        for (key, entry) in raw.env.unwrap_or_default() {
            if key.parse::<ConfigKey>().is_err() {
                return Err(AppJsonError::Invalid(format!(
                    "env key {key:?} is not a valid config var name (it must match ^[A-Za-z_][A-Za-z0-9_]*$)"
                )));
            }
            let var = match entry {
                RawEnv::Value(value) => EnvVar {
                    value: Some(value),
                    required: true,
                    generate_secret: false,
                },
                RawEnv::Spec(spec) => {
                    let generate_secret = match spec.generator.as_deref() {
                        None => false,
                        Some("secret") => true,
                        Some(other) => {
                            return Err(AppJsonError::Invalid(format!(
                                "env.{key}.generator is {other:?}; the only generator is \"secret\""
                            )))
                        }
                    };
                    EnvVar {
                        value: spec.value,
                        required: spec.required.unwrap_or(true),
                        generate_secret,
                    }
                }
            };
            env.insert(key, var);
        }
        let mut formation = BTreeMap::new();
        for (process_type, entry) in raw.formation.unwrap_or_default() {
            let size = match entry.size {
                None => None,
                Some(size) => match size.parse::<DynoSize>() {
                    Ok(parsed) => Some(parsed.as_str().to_owned()),
                    Err(_) => {
                        return Err(AppJsonError::Invalid(format!(
                            "formation.{process_type}.size {size:?} is not a dyno size; use one of: {}",
                            DynoSize::ALL.map(DynoSize::as_str).join(", ")
                        )));
                    }
                },
            };
            formation.insert(
                process_type,
                InitialFormation {
                    quantity: entry.quantity,
                    size,
                },
            );
        }
        let postdeploy = raw
            .scripts
            .and_then(|scripts| scripts.postdeploy)
            .map(|script| match script {
                RawScript::Command(command) => command,
                RawScript::Spec(spec) => spec.command,
            })
            .filter(|command| !command.trim().is_empty());
        let buildpacks = raw
            .buildpacks
            .unwrap_or_default()
            .iter()
            .map(|buildpack| {
                // A built-in by its short name, or a URL fetched at build time.
                if let Some(name) = builtin_buildpack(&buildpack.url) {
                    return Ok(name);
                }
                match crate::buildpacks::parse_buildpack_ref(&buildpack.url) {
                    Ok(crate::buildpacks::BuildpackRef::Builtin(name)) => Ok(name),
                    Ok(_) => Ok(buildpack.url.trim().to_owned()),
                    Err(_) => Err(AppJsonError::Invalid(format!(
                        "buildpack {:?} is not available on Slipway; use one of the built-in buildpacks ({}), or the https URL of a buildpack's git repository or .tgz",
                        crate::buildpacks::display_buildpack(&buildpack.url),
                        crate::buildpacks::builtin_buildpack_names().join(", ")
                    ))),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let addons = raw
            .addons
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(index, entry)| {
                let (spec, attachment, options) = match entry {
                    RawAddon::Plan(plan) => (plan, None, None),
                    RawAddon::Spec(spec) => (spec.plan, spec.attachment, spec.options),
                };
                let options = options.unwrap_or_default();
                check_options(index, &options)?;
                let plan = match slipway_addons::parse_plan(&spec) {
                    Ok(plan) => format!("{}:{}", plan.service.name(), plan.name),
                    // Checked against the registered services when a first deploy starts.
                    Err(_) if could_be_registered(spec.trim()) => spec.trim().to_owned(),
                    Err(error) => {
                        return Err(AppJsonError::Invalid(format!(
                            "addons[{index}]: {error}"
                        )))
                    }
                };
                if let Some(name) = &attachment {
                    if !valid_attachment_name(name) {
                        return Err(AppJsonError::Invalid(format!(
                            "addons[{index}].as {name:?} is not a valid attachment name: use uppercase letters, digits and underscores, starting with a letter (e.g. DATABASE)"
                        )));
                    }
                }
                Ok(ManifestAddon {
                    plan,
                    attachment,
                    options,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AppJson {
            env,
            formation,
            postdeploy,
            buildpacks,
            addons,
        })
    }

    /// What `env` adds to `current`, and which required vars are missing.
    pub(crate) fn env_defaults(&self, current: &ConfigVars) -> EnvDefaults {
        let mut defaults = EnvDefaults::default();
        for (key, var) in &self.env {
            if current.contains_key(key) {
                continue;
            }
            if var.generate_secret {
                defaults.set.insert(key.clone(), random_secret());
            } else if let Some(value) = &var.value {
                defaults.set.insert(key.clone(), value.clone());
            } else if var.required {
                defaults.missing.push(key.clone());
            }
        }
        defaults
    }
}

/// 32 random bytes as 64 lowercase hex characters.
fn random_secret() -> String {
    // One generator for every secret the platform hands out: slipway-model's (OS RNG, 32 bytes).
    String::from(slipway_model::SecretToken::generate())
}

/// The built-in buildpack a `buildpacks[].url` names, if any: `heroku/python`, `python` or the
/// buildpack's GitHub URL.
pub(crate) fn builtin_buildpack(url: &str) -> Option<String> {
    let url = url
        .split('#')
        .next()
        .unwrap_or(url)
        .trim()
        .trim_end_matches('/');
    let url = url.strip_suffix(".git").unwrap_or(url);
    let name = url
        .strip_prefix("heroku/")
        .or_else(|| url.strip_prefix("https://github.com/heroku/heroku-buildpack-"))
        .or_else(|| url.strip_prefix("https://github.com/heroku/buildpacks-"))
        .unwrap_or(url);
    let name = match name {
        "node" | "nodejs" => "nodejs",
        "python" => "python",
        "procfile" | "procfile-cnb" => "procfile",
        _ => return None,
    };
    Some(name.to_owned())
}

// ----- the raw shapes -------------------------------------------------------------------

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    env: Option<BTreeMap<String, RawEnv>>,
    #[serde(default)]
    formation: Option<BTreeMap<String, RawFormation>>,
    #[serde(default)]
    scripts: Option<RawScripts>,
    #[serde(default)]
    buildpacks: Option<Vec<RawBuildpack>>,
    #[serde(default)]
    addons: Option<Vec<RawAddon>>,
}

#[derive(Deserialize)]
struct RawAddonSpec {
    plan: String,
    #[serde(default, rename = "as")]
    attachment: Option<String>,
    /// Heroku passes these to the provider, and so does Slipway for a registered service's
    /// plan; the built-in plans take none.
    #[serde(default)]
    options: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct RawFormation {
    #[serde(default)]
    quantity: Option<u32>,
    #[serde(default)]
    size: Option<String>,
}

#[derive(Deserialize)]
struct RawScripts {
    #[serde(default)]
    postdeploy: Option<RawScript>,
}

#[derive(Deserialize)]
struct RawBuildpack {
    url: String,
}

#[derive(Deserialize)]
struct RawEnvSpec {
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    required: Option<bool>,
    #[serde(default)]
    generator: Option<String>,
}

#[derive(Deserialize)]
struct RawScriptSpec {
    command: String,
}

/// A string or an object; hand-written rather than `untagged` so a wrong type inside the
/// object keeps serde_json's precise message and position.
enum RawEnv {
    Value(String),
    Spec(RawEnvSpec),
}

enum RawScript {
    Command(String),
    Spec(RawScriptSpec),
}

enum RawAddon {
    Plan(String),
    Spec(RawAddonSpec),
}

macro_rules! string_or_object {
    ($ty:ident, $string:ident, $object:ident, $objty:ident, $expecting:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, value: &str) -> Result<$ty, E> {
                        Ok($ty::$string(value.to_owned()))
                    }
                    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<$ty, A::Error> {
                        $objty::deserialize(de::value::MapAccessDeserializer::new(map))
                            .map($ty::$object)
                    }
                }
                deserializer.deserialize_any(V)
            }
        }
    };
}

string_or_object!(
    RawEnv,
    Value,
    Spec,
    RawEnvSpec,
    "a string or an object with value, required and generator"
);
string_or_object!(
    RawScript,
    Command,
    Spec,
    RawScriptSpec,
    "a command string or an object with a command"
);
string_or_object!(
    RawAddon,
    Plan,
    Spec,
    RawAddonSpec,
    "an add-on plan string (heroku-postgresql:essential-0) or an object with plan, as and options"
);

#[cfg(test)]
mod tests;
