//! Where the output of a build, a deploy or a release phase goes: to a watching `git push`
//! or API client, or nowhere for releases nobody watches live (the app's log still gets every
//! line).

use std::sync::Arc;

/// Receives each line of build output as it is produced.
pub type DeployOutput = Arc<dyn Fn(&str) + Send + Sync>;

/// Output for releases nobody watches live (the log still gets every line).
pub(crate) fn quiet() -> DeployOutput {
    Arc::new(|_: &str| {})
}
