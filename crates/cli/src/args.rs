//! Pure parsers for command arguments: `KEY=value` pairs, `ps:scale` specs, release
//! versions, and app names inferred from git remote URLs.

use slipway_api_types::{FormationQuantity, FormationUpdateItem};
use slipway_model::{AppName, ConfigKey, ConfigKeyError, DynoSize, DynoSizeError, ProcessType};

#[cfg(test)]
mod tests;

/// An argument the user typed that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    #[error("{arg} is invalid. Must be in the format FOO=bar.")]
    ConfigPairWithoutEquals { arg: String },
    /// The server's own message, so a key is refused the same way locally and remotely.
    #[error(transparent)]
    InvalidConfigKey(#[from] ConfigKeyError),
    #[error(
        "No config vars given. Usage: slipway config:set KEY1=VALUE1 [KEY2=VALUE2 ...] -a APP"
    )]
    NoConfigPairs,
    #[error("No config var names given. Usage: slipway config:unset KEY1 [KEY2 ...] -a APP")]
    NoConfigKeys,
    #[error(
        "{arg:?} is not a valid scale argument: use TYPE=N, TYPE+N or TYPE-N, optionally with :SIZE (e.g. web=2, worker+1, web=1:Standard-2X)"
    )]
    InvalidScaleArg { arg: String },
    #[error("Invalid dyno quantity in {arg:?}: {quantity:?} is not a whole number")]
    InvalidScaleQuantity { arg: String, quantity: String },
    #[error(transparent)]
    UnknownDynoSize(#[from] DynoSizeError),
    #[error("{arg:?} is not a release version: use vN or N, e.g. v3")]
    InvalidReleaseVersion { arg: String },
}

/// Parses `config:set` arguments: each must be `KEY=value` (the value may be empty and may
/// contain `=`). Later duplicates win, like the heroku CLI.
pub(crate) fn parse_config_pairs(args: &[String]) -> Result<Vec<(ConfigKey, String)>, ArgError> {
    if args.is_empty() {
        return Err(ArgError::NoConfigPairs);
    }
    let mut pairs: Vec<(ConfigKey, String)> = Vec::with_capacity(args.len());
    for arg in args {
        let (key, value) = arg
            .split_once('=')
            .ok_or_else(|| ArgError::ConfigPairWithoutEquals { arg: arg.clone() })?;
        let key: ConfigKey = key.parse()?;
        pairs.retain(|(existing, _)| *existing != key);
        pairs.push((key, value.to_owned()));
    }
    Ok(pairs)
}

/// Parses `config:unset` arguments: config var names.
pub(crate) fn parse_config_keys(args: &[String]) -> Result<Vec<ConfigKey>, ArgError> {
    if args.is_empty() {
        return Err(ArgError::NoConfigKeys);
    }
    args.iter()
        .map(|key| Ok(key.parse::<ConfigKey>()?))
        .collect()
}

/// Parses `ps:scale` arguments: `web=2`, `worker+1`, `web-1`, `web=2:Standard-2X`.
pub(crate) fn parse_scale_args(args: &[String]) -> Result<Vec<FormationUpdateItem>, ArgError> {
    args.iter().map(|arg| parse_scale_arg(arg)).collect()
}

fn parse_scale_arg(arg: &str) -> Result<FormationUpdateItem, ArgError> {
    let invalid = || ArgError::InvalidScaleArg {
        arg: arg.to_owned(),
    };
    let (spec, size) = match arg.split_once(':') {
        Some((spec, size)) if !size.is_empty() => (spec, Some(size.parse::<DynoSize>()?)),
        Some(_) => return Err(invalid()),
        None => (arg, None),
    };
    // Process types may contain dashes, so an `=` wins; otherwise the last sign starts a
    // relative quantity.
    let split_at = match spec.find('=') {
        Some(index) => index,
        None => spec.rfind(['+', '-']).ok_or_else(invalid)?,
    };
    let (process_type, rest) = spec.split_at(split_at);
    let process_type: ProcessType = process_type.parse().map_err(|_| invalid())?;
    let quantity_text = rest.strip_prefix('=').unwrap_or(rest);
    if quantity_text.is_empty() {
        return Err(invalid());
    }
    let quantity =
        FormationQuantity::parse(quantity_text).map_err(|_| ArgError::InvalidScaleQuantity {
            arg: arg.to_owned(),
            quantity: quantity_text.to_owned(),
        })?;
    Ok(FormationUpdateItem {
        process_type: process_type.into(),
        quantity: Some(quantity),
        // Heroku's spelling of the deprecated `size` field, whichever alias was typed.
        size: size.map(|size| size.display_name().to_owned()),
        dyno_size: None,
    })
}

/// Parses a release version as typed by the user: `v3` or `3`.
pub(crate) fn parse_release_version(arg: &str) -> Result<i64, ArgError> {
    let digits = arg.strip_prefix('v').unwrap_or(arg);
    match digits.parse::<i64>() {
        Ok(version) if version > 0 && digits.bytes().all(|b| b.is_ascii_digit()) => Ok(version),
        _ => Err(ArgError::InvalidReleaseVersion {
            arg: arg.to_owned(),
        }),
    }
}

/// The app a git remote URL points at: `https://host/<app>.git`, `http://host/<app>.git`,
/// `git@host:<app>.git` or `ssh://git@host/<app>.git`.
pub(crate) fn app_from_git_url(url: &str) -> Option<String> {
    let path = url.trim().strip_suffix(".git")?;
    let name = path.rsplit(['/', ':']).next()?;
    name.parse::<AppName>().ok().map(String::from)
}
