//! The `slipway` command-line client, as a library the `slipway` binary calls.
//!
//! Commands follow the heroku CLI's grammar and output (`apps:create`, `config:set`,
//! `ps:scale web=2`, `logs --tail`, ...) and talk to Slipway's Heroku-compatible Platform
//! API through a thin [`Client`]. Argument parsing ([`args`]) and output formatting
//! ([`format`]) are pure functions with their own tests; HTTP calls stay thin.

mod access;
mod action;
mod addon_services;
mod addons;
mod addons_backups;
mod apps;
mod args;
mod auth;
mod buildpacks;
mod builds;
mod ca;
mod certs;
mod client;
mod commands;
mod domains;
mod drains;
mod format;
mod logs;
mod netrc;
mod ps_type;
mod redis;
mod run;
mod stacks;
mod tunnel;

use std::io::Write;
use std::process::ExitCode;

pub use apps::closest_command;
pub use args::ArgError;
pub use auth::AccountCommand;
pub use client::{default_data_dir, ApiError, Client, ClientConfigError, DEFAULT_API_URL};
pub use commands::{run, run_with_client, AppArg, Command, CommandError, DynoTargetArgs};
pub use logs::LogStreamError;
pub use run::{DetachedArgs, DynoArgs, RemoteExit, RunArgs};
pub use tunnel::TunnelArgs;

/// Writes `error` the way the heroku CLI does: every line of the message prefixed with
/// ` ▸    `.
pub fn report_error(error: &anyhow::Error, err: &mut dyn Write) {
    let _ = err.write_all(format_error(error).as_bytes());
}

/// ` ▸    <message>` lines for an error (its top-level message only; causes are already
/// folded into the messages users should see).
pub fn format_error(error: &anyhow::Error) -> String {
    error
        .to_string()
        .lines()
        .map(|line| format!(" ▸    {line}\n"))
        .collect()
}

/// Runs `command` with the environment's API configuration, printing output to stdout and
/// errors Heroku-style to stderr; returns the process exit code.
pub async fn main_entry(command: Command) -> ExitCode {
    let mut stdout = std::io::stdout();
    match run(command, &mut stdout).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let _ = stdout.flush();
            // `slipway run` exits with the remote process's status, as ssh does.
            if let Some(exit) = error.downcast_ref::<RemoteExit>() {
                if exit.report {
                    report_error(&error, &mut std::io::stderr());
                }
                return ExitCode::from(u8::try_from(exit.code).unwrap_or(1));
            }
            report_error(&error, &mut std::io::stderr());
            ExitCode::FAILURE
        }
    }
}
