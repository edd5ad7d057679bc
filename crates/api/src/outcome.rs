//! Executing a parsed command and taking the outcome the handler expects: one place for the
//! "look the app up, execute, take the variant or answer 500" every changing handler does.
//!
//! It imports only `state` and `error`, so every handler module can use it.

use slipway_core::model::{
    App, Build, ConfigVars, Domain, Drain, Formation, Release, SniEndpoint, User,
};
use slipway_core::{Command, Outcome, SlugDeclaration};

use crate::error::ApiError;
use crate::state::ApiState;

/// A value one variant of [`Outcome`] carries.
pub(crate) trait FromOutcome: Sized {
    /// The value, or `None` when the core answered with another variant.
    fn from_outcome(outcome: Outcome) -> Option<Self>;
}

/// Implements [`FromOutcome`] for the value of each named single-value variant.
macro_rules! from_outcome {
    ($($variant:ident => $value:ty),* $(,)?) => {
        $(
            impl FromOutcome for $value {
                fn from_outcome(outcome: Outcome) -> Option<Self> {
                    match outcome {
                        Outcome::$variant(value) => Some(value),
                        _ => None,
                    }
                }
            }
        )*
    };
}

from_outcome! {
    App => App,
    Formation => Vec<Formation>,
    Release => Release,
    Domain => Domain,
    Drain => Drain,
    Certificate => SniEndpoint,
    Build => Build,
    SlugDeclared => SlugDeclaration,
    Buildpacks => Vec<String>,
}

/// Any outcome, for a handler that answers the same whatever the core did (a restart) or takes
/// a variant apart itself.
impl FromOutcome for Outcome {
    fn from_outcome(outcome: Outcome) -> Option<Self> {
        Some(outcome)
    }
}

impl FromOutcome for (ConfigVars, Release) {
    fn from_outcome(outcome: Outcome) -> Option<Self> {
        match outcome {
            Outcome::Config(config, release) => Some((config, release)),
            _ => None,
        }
    }
}

/// Executes `command` for `user` and takes the outcome `T`. Another outcome is a bug in the
/// core, answered with 500 (and logged).
pub(crate) async fn execute<T: FromOutcome>(
    state: &ApiState,
    user: &User,
    command: Command,
) -> Result<T, ApiError> {
    T::from_outcome(state.platform.execute(user, command).await?)
        .ok_or_else(ApiError::unexpected_outcome)
}

/// Looks the app named in the path up for `user`, then executes the command `parse` makes of
/// the path's app and takes the outcome `T`. The lookup comes first so that an app that does
/// not exist (404), or that the user may not see (403), answers before a bad body answers 400;
/// the command's own permission is checked by `Platform::execute`.
pub(crate) async fn execute_on_app<T: FromOutcome>(
    state: &ApiState,
    user: &User,
    app: String,
    parse: impl FnOnce(String) -> Result<Command, ApiError>,
) -> Result<(App, T), ApiError> {
    let found = state.platform.app(user, &app).await?;
    let value = execute(state, user, parse(app)?).await?;
    Ok((found, value))
}
