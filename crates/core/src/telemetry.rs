//! Every line the platform itself writes into an app's log, declared once so its wording
//! (Heroku's, so Heroku users feel at home) is defined and tested in one place.

use slipway_logplex::LogLine;

use crate::model::DynoState;

/// `heroku[<dyno>]` lifecycle lines and `app[api]` platform events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformEvent<'a> {
    Starting {
        dyno: &'a str,
        command: &'a str,
    },
    StateChanged {
        dyno: &'a str,
        from: DynoState,
        to: DynoState,
    },
    Exited {
        dyno: &'a str,
        status: String,
    },
    StoppingSigterm {
        dyno: &'a str,
    },
    StoppingSigkill {
        dyno: &'a str,
    },
    BootTimeout {
        dyno: &'a str,
        seconds: u64,
    },
    ExitTimeout {
        dyno: &'a str,
    },
    StartFailed {
        dyno: &'a str,
        reason: String,
    },
    Deploy {
        commit: &'a str,
        user: &'a str,
    },
    ReleaseCreated {
        version: u32,
        user: &'a str,
    },
    /// What a release changed, for releases other than deploys: `Set FOO config vars by …`,
    /// `Rollback to v3 by …`.
    Changed {
        description: &'a str,
        user: &'a str,
    },
    Scaled {
        formation: String,
        user: &'a str,
    },
    Build {
        line: &'a str,
    },
    Restarting {
        dyno: &'a str,
    },
    Cycling {
        dyno: &'a str,
    },
    Idling {
        dyno: &'a str,
    },
    Unidling {
        dyno: &'a str,
    },
    /// Memory in MB and as a percentage of the quota, logged before R14 and R15.
    ProcessMemory {
        dyno: &'a str,
        mb: u64,
        /// Thousandths of the quota: 1033 is 103.3%.
        per_mille: u64,
    },
    /// R14: over the quota; the dyno keeps running.
    MemoryQuotaExceeded {
        dyno: &'a str,
    },
    /// R15: over twice the quota; the dyno is killed and restarted.
    MemoryQuotaVastlyExceeded {
        dyno: &'a str,
    },
    /// A PostgreSQL add-on past its storage limit: its writes are revoked.
    DatabaseOverLimit {
        addon: &'a str,
        size_bytes: u64,
        limit_bytes: u64,
    },
    /// Back under its limit: its writes are restored.
    DatabaseUnderLimit {
        addon: &'a str,
        size_bytes: u64,
        limit_bytes: u64,
    },
}

impl PlatformEvent<'_> {
    pub fn to_line(&self) -> LogLine {
        match self {
            PlatformEvent::Starting { dyno, command } => {
                LogLine::heroku(*dyno, format!("Starting process with command `{command}`"))
            }
            PlatformEvent::StateChanged { dyno, from, to } => LogLine::heroku(
                *dyno,
                format!("State changed from {} to {}", from.as_str(), to.as_str()),
            ),
            PlatformEvent::Exited { dyno, status } => {
                LogLine::heroku(*dyno, format!("Process exited with status {status}"))
            }
            PlatformEvent::StoppingSigterm { dyno } => {
                LogLine::heroku(*dyno, "Stopping all processes with SIGTERM")
            }
            PlatformEvent::StoppingSigkill { dyno } => {
                LogLine::heroku(*dyno, "Stopping process with SIGKILL")
            }
            PlatformEvent::BootTimeout { dyno, seconds } => LogLine::heroku(
                *dyno,
                format!(
                    "Error R10 (Boot timeout) -> Web process failed to bind to $PORT within {seconds} seconds of launch"
                ),
            ),
            PlatformEvent::ExitTimeout { dyno } => LogLine::heroku(
                *dyno,
                "Error R12 (Exit timeout) -> At least one process failed to exit within 30 seconds of SIGTERM",
            ),
            PlatformEvent::StartFailed { dyno, reason } => {
                LogLine::heroku(*dyno, format!("Failed to start process: {reason}"))
            }
            PlatformEvent::Deploy { commit, user } => {
                LogLine::app("api", format!("Deploy {commit} by {user}"))
            }
            PlatformEvent::ReleaseCreated { version, user } => {
                LogLine::app("api", format!("Release v{version} created by {user}"))
            }
            PlatformEvent::Changed { description, user } => {
                LogLine::app("api", format!("{description} by {user}"))
            }
            PlatformEvent::Scaled { formation, user } => {
                LogLine::app("api", format!("Scaled to {formation} by {user}"))
            }
            PlatformEvent::Build { line } => LogLine::app("build", *line),
            PlatformEvent::Restarting { dyno } => LogLine::heroku(*dyno, "Restarting"),
            PlatformEvent::Cycling { dyno } => LogLine::heroku(*dyno, "Cycling"),
            PlatformEvent::Idling { dyno } => LogLine::heroku(*dyno, "Idling"),
            PlatformEvent::Unidling { dyno } => LogLine::heroku(*dyno, "Unidling"),
            PlatformEvent::ProcessMemory {
                dyno,
                mb,
                per_mille,
            } => LogLine::heroku(
                *dyno,
                format!(
                    "Process running mem={mb}MB({}.{}%)",
                    per_mille / 10,
                    per_mille % 10
                ),
            ),
            PlatformEvent::MemoryQuotaExceeded { dyno } => {
                LogLine::heroku(*dyno, "Error R14 (Memory quota exceeded)")
            }
            PlatformEvent::MemoryQuotaVastlyExceeded { dyno } => {
                LogLine::heroku(*dyno, "Error R15 (Memory quota vastly exceeded)")
            }
            PlatformEvent::DatabaseOverLimit {
                addon,
                size_bytes,
                limit_bytes,
            } => database_size_line(
                addon,
                *size_bytes,
                *limit_bytes,
                "Database is over its storage limit: INSERT, UPDATE and CREATE privileges are revoked until it is under the limit again",
            ),
            PlatformEvent::DatabaseUnderLimit {
                addon,
                size_bytes,
                limit_bytes,
            } => database_size_line(
                addon,
                *size_bytes,
                *limit_bytes,
                "Database is under its storage limit again: INSERT, UPDATE and CREATE privileges are restored",
            ),
        }
    }
}

/// Heroku Postgres's size sample for `addon`, with `message` saying what changed.
fn database_size_line(addon: &str, size_bytes: u64, limit_bytes: u64, message: &str) -> LogLine {
    LogLine::app(
        "heroku-postgres",
        format!(
            "source={addon} sample#db_size={size_bytes}bytes sample#db_size_limit={limit_bytes}bytes message=\"{message}\""
        ),
    )
}

#[cfg(test)]
mod tests;
