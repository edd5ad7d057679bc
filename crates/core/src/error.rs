//! The errors the platform's operations return. The API maps each to an HTTP status and a
//! Heroku error id; the message is what the user reads.

use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("Couldn't find that {resource}.")]
    NotFound { resource: &'static str, id: String },

    #[error("Name {name} is already taken. Choose another name for your app.")]
    NameTaken { name: String },

    #[error("{message}")]
    Invalid { message: String },

    #[error("{message}")]
    Conflict { message: String },

    #[error("Invalid credentials provided.")]
    Unauthorized,

    #[error("You do not have access to the app {app}.")]
    Forbidden { app: String },

    /// A collaborator asked for something their permissions on the app do not cover.
    #[error("You need the {permission} permission on {app} to do that; ask the app's owner.")]
    PermissionDenied {
        app: String,
        permission: &'static str,
    },

    #[error("the platform's store failed: {0}")]
    Store(#[from] slipway_store::StoreError),

    #[error("{0}")]
    Build(#[from] slipway_build::BuildError),

    #[error("the container runtime failed: {0}")]
    Runtime(#[from] slipway_runtime::RuntimeError),

    #[error("could not {action} of app {app}: {source}")]
    Git {
        app: String,
        action: &'static str,
        #[source]
        source: slipway_git::GitError,
    },

    #[error("could not keep the slug in the slug store: {0}")]
    SlugStore(#[from] slipway_slugstore::SlugStoreError),

    #[error("{action} for app {app}: {source}")]
    Io {
        app: Uuid,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl CoreError {
    pub(crate) fn not_found(resource: &'static str, id: impl Into<String>) -> CoreError {
        CoreError::NotFound {
            resource,
            id: id.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> CoreError {
        CoreError::Invalid {
            message: message.into(),
        }
    }

    /// A dyno size read from the store that is not one: refused with where it was found,
    /// never replaced by a default size.
    pub(crate) fn stored_dyno_size(
        app: &str,
        what: &str,
        error: &slipway_model::DynoSizeError,
    ) -> CoreError {
        CoreError::Invalid {
            message: format!("The stored dyno size of {what} of app {app} is not valid: {error}"),
        }
    }
}
