//! What can go wrong provisioning add-ons. Messages name the add-on and the server, never a
//! password or a connection URL.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AddonsError {
    #[error("The PostgreSQL server for add-ons is not available ({detail}). Try again in a moment; if it persists, the platform's operator must check the server.")]
    PostgresUnavailable { detail: String },
    #[error("The Redis server of add-on {resource} did not start ({detail}).")]
    RedisUnavailable { resource: String, detail: String },
    #[error("Cannot read the state of Redis add-on {resource}: {detail}")]
    RedisInfo { resource: String, detail: String },
    #[error("Provisioning {resource} on PostgreSQL failed while trying to {action}: {detail}")]
    Sql {
        resource: String,
        action: &'static str,
        detail: String,
    },
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run {program}: {source}. Install it (Debian: postgresql, redis-server).")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("No free port is left for another Redis add-on ({first}-{last} are all taken).")]
    NoPortLeft { first: u16, last: u16 },
    #[error("invalid add-on resource name {0:?}: lowercase letters, digits and '_', starting with a letter, at most 63")]
    BadResource(String),
    #[error("Redis add-on {resource} on the platform's Redis server: cannot {action} ({detail}). Try again in a moment; if it persists, the platform's operator must check the server.")]
    SharedRedis {
        resource: String,
        action: &'static str,
        detail: String,
    },
    #[error("{detail}")]
    Backup { detail: String },
    #[error("the add-on admin URL is invalid: {0}")]
    BadAdminUrl(String),
}

pub(crate) fn io(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> AddonsError {
    let path = path.into();
    move |source| AddonsError::Io {
        action,
        path,
        source,
    }
}
