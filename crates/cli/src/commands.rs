//! The `slipway` client commands in Heroku's colon grammar (`apps:create`, `ps:scale`, ...)
//! and their execution: one thin sequence of API calls per command, output formatted by
//! [`crate::format`].

use std::io::Write;

use anyhow::Context as _;
use chrono::Utc;
use reqwest::Method;
use slipway_api_types::{
    App, AppCreate, ConfigVars, ConfigVarsUpdate, Dyno, Formation, FormationBatchUpdate,
    LogSession, LogSessionCreate, Release, ReleaseCreate,
};

use crate::action::action;
use crate::args::{
    app_from_git_url, parse_config_keys, parse_config_pairs, parse_release_version,
    parse_scale_args,
};
use slipway_model::{AppName, DynoName, DynoNameError, ProcessType, ProcessTypeError};

use crate::client::Client;
use crate::format::{self, APP_MARK};
use crate::logs::stream_logs;

#[cfg(test)]
mod tests;

/// Which app a command acts on: `-a/--app`, `$SLIPWAY_APP`, or the app of a git remote.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AppArg {
    /// App to run the command against.
    #[arg(short = 'a', long = "app", env = "SLIPWAY_APP")]
    pub app: Option<String>,
    /// Git remote of the app to use (default: `heroku`, then `slipway`).
    #[arg(short = 'r', long = "remote")]
    pub remote: Option<String>,
}

/// The client commands (everything except `server`).
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// List your apps.
    #[command(name = "apps", visible_alias = "apps:list")]
    Apps,
    /// Accounts, logins and API keys (`login`, `authorizations*`, `users*`, `tunnel`).
    #[command(flatten)]
    Accounts(crate::auth::AccountCommand),
    /// Create a new app.
    #[command(name = "apps:create", visible_alias = "create")]
    AppsCreate {
        /// Name of the app (generated when omitted).
        name: Option<String>,
        /// Region to create the app in.
        #[arg(long)]
        region: Option<String>,
        /// Stack to build the app on.
        #[arg(long)]
        stack: Option<String>,
        /// Buildpack to build the app with (heroku/python, heroku/nodejs, heroku/ruby, ..., or a URL).
        #[arg(short = 'b', long)]
        buildpack: Option<String>,
        /// Do not add a `slipway` git remote in a git repository.
        #[arg(long)]
        no_remote: bool,
    },
    /// Show detailed app information.
    #[command(name = "apps:info", visible_alias = "info")]
    AppsInfo {
        #[command(flatten)]
        app: AppArg,
        /// Print the app as JSON.
        #[arg(short = 'j', long)]
        json: bool,
    },
    /// Permanently destroy an app.
    #[command(name = "apps:destroy", visible_alias = "destroy")]
    AppsDestroy {
        /// Name of the app to destroy (as `-a`).
        #[arg(value_name = "APP")]
        name: Option<String>,
        #[command(flatten)]
        app: AppArg,
        /// Repeat the app name to confirm.
        #[arg(short = 'c', long)]
        confirm: Option<String>,
    },
    /// Rename an app; the local git remotes of the old name follow.
    #[command(name = "apps:rename", visible_alias = "rename")]
    AppsRename {
        /// The new name.
        newname: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Transfer an app to another user, who owns it from then on; you stay on as a
    /// collaborator.
    #[command(name = "apps:transfer")]
    AppsTransfer {
        /// The new owner's email address.
        recipient: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Show the stacks the app can build on, its own marked `*`.
    #[command(name = "stack", visible_alias = "stack:list")]
    Stack {
        #[command(flatten)]
        app: AppArg,
    },
    /// Set the stack the app's next build uses (`host` or a built stack).
    #[command(name = "stack:set")]
    StackSet {
        stack: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Build a stack from its manifest with debootstrap on the server (administrators).
    #[command(name = "stacks:build")]
    StacksBuild { name: String },
    /// List the app's buildpacks.
    Buildpacks {
        #[command(flatten)]
        app: AppArg,
    },
    /// Set the app's buildpack (the first, or the one at -i).
    #[command(name = "buildpacks:set")]
    BuildpacksSet {
        buildpack: String,
        /// 1-based position to set.
        #[arg(short = 'i', long)]
        index: Option<usize>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Add a buildpack (last, or at -i).
    #[command(name = "buildpacks:add")]
    BuildpacksAdd {
        buildpack: String,
        /// 1-based position to insert at.
        #[arg(short = 'i', long)]
        index: Option<usize>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Remove a buildpack, by name or -i position.
    #[command(name = "buildpacks:remove")]
    BuildpacksRemove {
        buildpack: Option<String>,
        /// 1-based position to remove.
        #[arg(short = 'i', long)]
        index: Option<usize>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Clear the app's buildpacks: the next build detects them.
    #[command(name = "buildpacks:clear")]
    BuildpacksClear {
        #[command(flatten)]
        app: AppArg,
    },
    /// List the app's builds, newest first.
    #[command(name = "builds")]
    Builds {
        #[command(flatten)]
        app: AppArg,
        /// Number of builds to show.
        #[arg(short = 'n', long = "num")]
        num: Option<usize>,
        /// Print the builds as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a build (the latest when no id is given).
    #[command(name = "builds:info")]
    BuildsInfo {
        /// The build's id.
        id: Option<String>,
        #[command(flatten)]
        app: AppArg,
        /// Print the build as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stream a build's output (the latest build when no id is given).
    #[command(name = "builds:output")]
    BuildsOutput {
        /// The build's id.
        id: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Empty the app's build cache: the next build starts cold.
    #[command(name = "builds:cache:purge")]
    BuildsCachePurge {
        #[command(flatten)]
        app: AppArg,
        /// The app's name, to confirm.
        #[arg(short = 'c', long)]
        confirm: Option<String>,
    },
    /// List releases, newest first.
    #[command(name = "releases")]
    Releases {
        #[command(flatten)]
        app: AppArg,
        /// Number of releases to show.
        #[arg(short = 'n', long = "num", default_value_t = 15)]
        num: usize,
        /// Print the releases as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a release (the current one when no version is given).
    #[command(name = "releases:info")]
    ReleasesInfo {
        /// Release version, e.g. v3.
        release: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Roll back to a release (the previous one when no version is given).
    #[command(name = "releases:rollback", visible_alias = "rollback")]
    ReleasesRollback {
        /// Release version to roll back to, e.g. v3.
        release: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Show config vars.
    #[command(name = "config")]
    Config {
        #[command(flatten)]
        app: AppArg,
        /// Print the config vars as a JSON object.
        #[arg(short = 'j', long, conflicts_with = "shell")]
        json: bool,
        /// Print the config vars as KEY=value lines for a shell.
        #[arg(short = 's', long)]
        shell: bool,
    },
    /// Set config vars and restart the app.
    #[command(name = "config:set", visible_alias = "config:add")]
    ConfigSet {
        /// KEY=value pairs.
        #[arg(value_name = "KEY=VALUE")]
        pairs: Vec<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Remove config vars and restart the app.
    #[command(name = "config:unset", visible_alias = "config:remove")]
    ConfigUnset {
        /// Names of the config vars to remove.
        #[arg(value_name = "KEY")]
        keys: Vec<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Print one config var's value.
    #[command(name = "config:get")]
    ConfigGet {
        /// Name of the config var.
        key: String,
        #[command(flatten)]
        app: AppArg,
        /// Print KEY=value for a shell.
        #[arg(short = 's', long)]
        shell: bool,
    },
    /// List the app's dynos.
    #[command(name = "ps")]
    Ps {
        #[command(flatten)]
        app: AppArg,
        /// Print the dynos as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Scale dynos: `web=2 worker+1 clock=1:Standard-2X`; no arguments shows the formation.
    #[command(name = "ps:scale", visible_alias = "scale")]
    PsScale {
        /// TYPE=N, TYPE+N or TYPE-N, optionally with :SIZE.
        #[arg(value_name = "TYPE=N")]
        changes: Vec<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Show the dyno size of each process type, or change it: `web=standard-2x worker=eco`.
    #[command(name = "ps:type", visible_alias = "ps:resize")]
    PsType {
        #[arg(value_name = "TYPE=SIZE")]
        changes: Vec<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Restart all dynos, one process type (`web`) or one dyno (`web.1`).
    #[command(name = "ps:restart", visible_alias = "restart")]
    PsRestart {
        #[command(flatten)]
        target: DynoTargetArgs,
        #[command(flatten)]
        app: AppArg,
    },
    /// Stop one dyno (`web.1`) or all dynos of a process type (`web`).
    #[command(name = "ps:stop", visible_alias = "stop")]
    #[command(group(
        clap::ArgGroup::new("stop_target")
            .required(true)
            .args(["target", "dyno", "process_type"])
    ))]
    PsStop {
        #[command(flatten)]
        target: DynoTargetArgs,
        #[command(flatten)]
        app: AppArg,
    },
    /// List the app's add-ons and their attachments.
    #[command(name = "addons")]
    Addons {
        #[command(flatten)]
        app: AppArg,
    },
    /// Create an add-on: SERVICE[:PLAN] (heroku-postgresql, heroku-redis).
    #[command(name = "addons:create")]
    AddonsCreate {
        plan: String,
        /// The attachment name (the config var prefix, e.g. ANALYTICS_DB).
        #[arg(long = "as")]
        attach_as: Option<String>,
        /// The add-on's global name.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        app: AppArg,
        /// Options for the add-on's provider, after `--`: `-- --key value --flag`.
        #[arg(last = true)]
        options: Vec<String>,
    },
    /// Show an add-on.
    #[command(name = "addons:info")]
    AddonsInfo {
        addon: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Destroy an add-on and its data.
    #[command(name = "addons:destroy")]
    AddonsDestroy {
        addon: String,
        /// The owning app's name, to confirm.
        #[arg(long)]
        confirm: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Attach an existing add-on to the app.
    #[command(name = "addons:attach")]
    AddonsAttach {
        addon: String,
        #[arg(long = "as")]
        attach_as: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Detach an add-on attachment from the app.
    #[command(name = "addons:detach")]
    AddonsDetach {
        attachment: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// List the add-on services: built-in and registered third-party ones.
    #[command(name = "addons:services")]
    AddonsServices,
    /// Register a third-party add-on service by its Heroku add-on manifest (administrators).
    #[command(name = "addons:services:add")]
    AddonsServicesAdd {
        /// The manifest file (addon-manifest.json).
        manifest: std::path::PathBuf,
        /// A plan name; repeat for several. Replaces the manifest's `plans`.
        #[arg(long = "plan")]
        plans: Vec<String>,
        /// Seconds the provider may take to answer (default 10, at most 25).
        #[arg(long)]
        timeout: Option<f64>,
    },
    /// Remove a registered add-on service that has no add-ons (administrators).
    #[command(name = "addons:services:remove")]
    AddonsServicesRemove { name: String },
    /// Change an add-on's plan.
    #[command(name = "addons:upgrade")]
    AddonsUpgrade {
        addon: String,
        plan: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Show a PostgreSQL add-on's plan, size and connections.
    #[command(name = "pg:info")]
    PgInfo {
        #[arg(default_value = "DATABASE")]
        database: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Give a PostgreSQL add-on new credentials (its apps restart onto them).
    #[command(name = "pg:credentials:rotate")]
    PgCredentialsRotate {
        #[arg(default_value = "DATABASE")]
        database: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// List a PostgreSQL add-on's backups.
    #[command(name = "pg:backups")]
    PgBackups {
        #[arg(default_value = "DATABASE")]
        database: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Capture a backup of a PostgreSQL add-on now.
    #[command(name = "pg:backups:capture")]
    PgBackupsCapture {
        #[arg(default_value = "DATABASE")]
        database: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Restore a backup (b001, or OTHER-ADDON::b001; default the latest) into a database.
    #[command(name = "pg:backups:restore")]
    PgBackupsRestore {
        backup: Option<String>,
        #[arg(default_value = "DATABASE")]
        database: String,
        /// The app's name, to confirm.
        #[arg(long)]
        confirm: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Download a backup's dump (default the latest) to latest.dump.
    #[command(name = "pg:backups:download")]
    PgBackupsDownload {
        backup: Option<String>,
        #[arg(long, default_value = "DATABASE")]
        database: String,
        /// Where to write the dump.
        #[arg(long, short = 'o')]
        output: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Delete a backup and its dump.
    #[command(name = "pg:backups:delete")]
    PgBackupsDelete {
        backup: String,
        #[arg(long, default_value = "DATABASE")]
        database: String,
        /// The app's name, to confirm.
        #[arg(long)]
        confirm: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Open the local psql on a PostgreSQL add-on.
    #[command(name = "pg:psql")]
    PgPsql {
        #[arg(default_value = "DATABASE")]
        database: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Back a PostgreSQL add-on up daily at an hour: --at '02:00 America/New_York'.
    #[command(name = "pg:backups:schedule")]
    PgBackupsSchedule {
        #[arg(default_value = "DATABASE")]
        database: String,
        /// A whole (24h) hour in a time zone (default UTC): --at '[HOUR]:00 [TIMEZONE]'.
        #[arg(long)]
        at: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// List the app's daily backup schedules.
    #[command(name = "pg:backups:schedules")]
    PgBackupsSchedules {
        #[command(flatten)]
        app: AppArg,
    },
    /// Stop a PostgreSQL add-on's daily backups.
    #[command(name = "pg:backups:unschedule")]
    PgBackupsUnschedule {
        #[arg(default_value = "DATABASE")]
        database: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Show a Redis add-on's plan, version, memory, clients and keys.
    #[command(name = "redis:info")]
    RedisInfo {
        #[arg(default_value = "REDIS")]
        database: String,
        /// Print the API's JSON.
        #[arg(long, short = 'j')]
        json: bool,
        #[command(flatten)]
        app: AppArg,
    },
    /// Open the local redis-cli on a Redis add-on.
    #[command(name = "redis:cli")]
    RedisCli {
        #[arg(default_value = "REDIS")]
        database: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// List the app's log drains.
    #[command(name = "drains")]
    Drains {
        #[command(flatten)]
        app: AppArg,
    },
    /// Add a log drain: syslog://, syslog+tls://, http:// or https://.
    #[command(name = "drains:add")]
    DrainsAdd {
        url: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Remove a log drain by URL or token.
    #[command(name = "drains:remove")]
    DrainsRemove {
        url_or_token: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// List the app's owner and collaborators.
    #[command(name = "access")]
    Access {
        #[command(flatten)]
        app: AppArg,
    },
    /// Give an existing user access to the app.
    #[command(name = "access:add")]
    AccessAdd {
        email: String,
        /// Comma-separated: view, deploy, operate (default: all three).
        #[arg(long)]
        permissions: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Take a collaborator's access to the app away.
    #[command(name = "access:remove")]
    AccessRemove {
        email: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Set a collaborator's permissions (view is always kept).
    #[command(name = "access:update")]
    AccessUpdate {
        email: String,
        /// Comma-separated: view, deploy, operate.
        #[arg(long)]
        permissions: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Run a one-off process inside a dyno, attached to this terminal.
    #[command(name = "run")]
    Run {
        #[command(flatten)]
        app: AppArg,
        #[command(flatten)]
        args: crate::run::RunArgs,
    },
    /// Run a detached dyno, whose output goes to the app's logs.
    #[command(name = "run:detached")]
    RunDetached {
        #[command(flatten)]
        app: AppArg,
        #[command(flatten)]
        args: crate::run::DetachedArgs,
    },
    /// List the app's domains: the default one and custom domains.
    #[command(name = "domains")]
    Domains {
        #[command(flatten)]
        app: AppArg,
    },
    /// Add a custom domain; the router then serves the app at that hostname too.
    #[command(name = "domains:add")]
    DomainsAdd {
        hostname: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Remove a custom domain.
    #[command(name = "domains:remove")]
    DomainsRemove {
        hostname: String,
        #[command(flatten)]
        app: AppArg,
    },
    /// Print the platform CA's certificate (PEM), for NODE_EXTRA_CA_CERTS, GIT_SSL_CAINFO
    /// and curl --cacert.
    #[command(name = "ca")]
    Ca {
        /// Read it from the server's data directory on this host instead of asking the API.
        #[arg(long)]
        data_dir: Option<std::path::PathBuf>,
    },
    /// List the app's SSL certificates (SNI endpoints).
    #[command(name = "certs")]
    Certs {
        #[command(flatten)]
        app: AppArg,
    },
    /// Add an SSL certificate (PEM chain, leaf first) and its private key for the app's custom
    /// domains.
    #[command(name = "certs:add")]
    CertsAdd {
        cert: std::path::PathBuf,
        key: std::path::PathBuf,
        #[command(flatten)]
        app: AppArg,
    },
    /// Remove an SSL certificate (the app's only one, or the one named with --name).
    #[command(name = "certs:remove")]
    CertsRemove {
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        app: AppArg,
    },
    /// Display whether maintenance mode is on or off.
    #[command(name = "maintenance")]
    Maintenance {
        #[command(flatten)]
        app: AppArg,
    },
    /// Put the app into maintenance mode: the router answers 503 with H80.
    #[command(name = "maintenance:on")]
    MaintenanceOn {
        #[command(flatten)]
        app: AppArg,
    },
    /// Take the app out of maintenance mode.
    #[command(name = "maintenance:off")]
    MaintenanceOff {
        #[command(flatten)]
        app: AppArg,
    },
    /// Display recent log output, or follow it with --tail.
    #[command(name = "logs")]
    Logs {
        #[command(flatten)]
        app: AppArg,
        /// Number of lines to show.
        #[arg(short = 'n', long = "num", default_value_t = 100)]
        num: i64,
        /// Keep streaming new lines until interrupted.
        #[arg(short = 't', long)]
        tail: bool,
        /// Only show lines from this source (`app` or `heroku`).
        #[arg(short = 's', long)]
        source: Option<String>,
        /// Only show lines from this process type (`web`) or dyno (`web.1`).
        #[arg(short = 'p', long = "ps", visible_alias = "process-type")]
        ps: Option<String>,
        /// Only show lines from this dyno (`web.1`).
        #[arg(short = 'd', long)]
        dyno: Option<String>,
    },
}

/// Why a command could not run, before or besides any API error.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(
        "No app specified.\nUse -a APP, set SLIPWAY_APP, or run this inside a git repository with a heroku remote."
    )]
    NoApp,
    #[error(
        "This command will destroy {APP_MARK} {app} and all its add-ons.\nTo proceed, re-run this command with --confirm {app}"
    )]
    ConfirmationRequired { app: String },
    #[error("Confirmation {given} did not match {app}. Aborted.")]
    ConfirmationMismatch { app: String, given: String },
    #[error("No process types on {APP_MARK} {app}.\nUpload a Procfile to add process types.")]
    NoProcessTypes { app: String },
    #[error("No previous release of {APP_MARK} {app} to roll back to.")]
    NothingToRollBack { app: String },
    #[error("{APP_MARK} {app} has no releases yet.")]
    NoReleases { app: String },
}

/// Runs `command` against the API configured in the environment ([`Client::from_env`]),
/// writing its output to `out`.
pub async fn run(command: Command, out: &mut dyn Write) -> anyhow::Result<()> {
    // The CA certificate is public: printing it needs no API key.
    if let Command::Ca { data_dir } = command {
        return crate::ca::run(data_dir.as_deref(), out).await;
    }
    // Logging in, out and tunnelling need no API key; the rest find their own.
    if let Command::Accounts(command) = command {
        return crate::auth::run(command, out).await;
    }
    let client = Client::from_env()?;
    run_with_client(&client, command, out).await
}

/// Runs `command` against `client`, writing its output to `out`.
pub async fn run_with_client(
    client: &Client,
    command: Command,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match command {
        Command::Apps => {
            let apps: Vec<App> = client.get(&["apps"], None).await?;
            // The account is only decoration for the header; older servers may lack it.
            let email = client
                .get::<serde_json::Value>(&["account"], None)
                .await
                .ok()
                .and_then(|account| account.get("email")?.as_str().map(str::to_owned));
            out.write_all(format::format_apps(email.as_deref(), &apps).as_bytes())?;
        }
        Command::AppsCreate {
            name,
            region,
            stack,
            buildpack,
            no_remote,
        } => {
            // Refused here with the server's own message, before any request.
            let name = name.map(|name| name.parse::<AppName>()).transpose()?;
            let label = match &name {
                Some(name) => format!("Creating {APP_MARK} {name}"),
                None => "Creating app".to_owned(),
            };
            let body = AppCreate {
                name: name.clone().map(String::from),
                region,
                stack,
                feature_flags: None,
            };
            let app: App = action(
                out,
                &label,
                client.send(Method::POST, &["apps"], Some(&body)),
            )
            .await?;
            match name {
                Some(_) => writeln!(out, "done")?,
                None => writeln!(out, "done, {APP_MARK} {}", app.name)?,
            }
            out.write_all(format::format_app_created(&app).as_bytes())?;
            if let Some(buildpack) = buildpack {
                crate::buildpacks::put(client, &app.name, &[buildpack]).await?;
            }
            if !no_remote {
                crate::apps::add_remote(&app, out)?;
            }
        }
        Command::AppsRename { newname, app } => {
            let app = resolve_app(&app)?;
            crate::apps::rename(client, &app, &newname, out).await?;
        }
        Command::AppsTransfer { recipient, app } => {
            let app = resolve_app(&app)?;
            crate::apps::transfer(client, &app, &recipient, out).await?;
        }
        Command::Stack { app } => crate::stacks::list(client, &resolve_app(&app)?, out).await?,
        Command::StackSet { stack, app } => {
            crate::stacks::set(client, &resolve_app(&app)?, &stack, out).await?
        }
        Command::StacksBuild { name } => crate::stacks::build(client, &name, out).await?,
        Command::Buildpacks { app } => {
            crate::buildpacks::list(client, &resolve_app(&app)?, out).await?;
        }
        Command::BuildpacksSet {
            buildpack,
            index,
            app,
        } => {
            let edit = crate::buildpacks::Edit::Set { buildpack, index };
            crate::buildpacks::edit(client, &resolve_app(&app)?, edit, out).await?;
        }
        Command::BuildpacksAdd {
            buildpack,
            index,
            app,
        } => {
            let edit = crate::buildpacks::Edit::Add { buildpack, index };
            crate::buildpacks::edit(client, &resolve_app(&app)?, edit, out).await?;
        }
        Command::BuildpacksRemove {
            buildpack,
            index,
            app,
        } => {
            let edit = crate::buildpacks::Edit::Remove { buildpack, index };
            crate::buildpacks::edit(client, &resolve_app(&app)?, edit, out).await?;
        }
        Command::BuildpacksClear { app } => {
            let edit = crate::buildpacks::Edit::Clear;
            crate::buildpacks::edit(client, &resolve_app(&app)?, edit, out).await?;
        }
        Command::AppsInfo { app, json } => {
            let app = resolve_app(&app)?;
            let info: serde_json::Value = client.get(&["apps", &app], None).await?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&info)?)?;
            } else {
                let info: App = serde_json::from_value(info)
                    .with_context(|| format!("unexpected app JSON for {app}"))?;
                let dynos: Vec<Dyno> = client
                    .get(&["apps", &app, "dynos"], None)
                    .await
                    .unwrap_or_default();
                out.write_all(format::format_app_info(&info, &dynos).as_bytes())?;
            }
        }
        Command::AppsDestroy { name, app, confirm } => {
            // `apps:destroy NAME` as on Heroku; `-a` and the git remote otherwise.
            let app = match name {
                Some(name) => name,
                None => resolve_app(&app)?,
            };
            match confirm {
                None => return Err(CommandError::ConfirmationRequired { app }.into()),
                Some(given) if given != app => {
                    return Err(CommandError::ConfirmationMismatch { app, given }.into())
                }
                Some(_) => {}
            }
            action(
                out,
                &format!("Destroying {APP_MARK} {app} (including all add-ons)"),
                client.send_ignoring_body(Method::DELETE, &["apps", &app]),
            )
            .await?;
            writeln!(out, "done")?;
        }
        Command::Builds { app, num, json } => {
            crate::builds::list(client, &resolve_app(&app)?, num, json, out).await?;
        }
        Command::BuildsInfo { id, app, json } => {
            crate::builds::info(client, &resolve_app(&app)?, id.as_deref(), json, out).await?;
        }
        Command::BuildsOutput { id, app } => {
            crate::builds::output(client, &resolve_app(&app)?, id.as_deref(), out).await?;
        }
        Command::BuildsCachePurge { app, confirm } => {
            let app = resolve_app(&app)?;
            match confirm {
                None => return Err(CommandError::ConfirmationRequired { app }.into()),
                Some(given) if given != app => {
                    return Err(CommandError::ConfirmationMismatch { app, given }.into())
                }
                Some(_) => {}
            }
            crate::builds::purge_cache(client, &app, out).await?;
        }
        Command::Releases { app, num, json } => {
            let app = resolve_app(&app)?;
            let releases = newest_releases(client, &app, num).await?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&releases)?)?;
            } else {
                out.write_all(format::format_releases(&app, &releases).as_bytes())?;
            }
        }
        Command::ReleasesInfo { release, app } => {
            let app = resolve_app(&app)?;
            let release = match release {
                Some(version) => release_by_version(client, &app, &version).await?,
                None => newest_releases(client, &app, 1)
                    .await?
                    .into_iter()
                    .next()
                    .ok_or(CommandError::NoReleases { app: app.clone() })?,
            };
            let version = release.version.to_string();
            let config: Option<ConfigVars> = client
                .get(&["apps", &app, "releases", &version, "config-vars"], None)
                .await
                .ok();
            out.write_all(format::format_release_info(&release, config.as_ref()).as_bytes())?;
        }
        Command::ReleasesRollback { release, app } => {
            let app = resolve_app(&app)?;
            let target = match release {
                Some(version) => release_by_version(client, &app, &version).await?,
                None => previous_release(newest_releases(client, &app, 10).await?)
                    .ok_or(CommandError::NothingToRollBack { app: app.clone() })?,
            };
            let body = ReleaseCreate {
                release: Some(target.id.to_string()),
                ..ReleaseCreate::default()
            };
            let created: Release = action(
                out,
                &format!("Rolling back {APP_MARK} {app} to v{}", target.version),
                client.send(Method::POST, &["apps", &app, "releases"], Some(&body)),
            )
            .await?;
            writeln!(out, "done, v{}", created.version)?;
        }
        Command::Config { app, json, shell } => {
            let app = resolve_app(&app)?;
            let vars: ConfigVars = client.get(&["apps", &app, "config-vars"], None).await?;
            let text = if json {
                format::format_config_json(&vars)
            } else if shell {
                format::format_config_shell(&vars)
            } else {
                format::format_config(&app, &vars)
            };
            out.write_all(text.as_bytes())?;
        }
        Command::ConfigGet { key, app, shell } => {
            let app = resolve_app(&app)?;
            let vars: ConfigVars = client.get(&["apps", &app, "config-vars"], None).await?;
            let value = vars.get(&key).map(String::as_str).unwrap_or("");
            if shell {
                writeln!(out, "{key}={}", format::shell_quote(value))?;
            } else {
                writeln!(out, "{value}")?;
            }
        }
        Command::ConfigSet { pairs, app } => {
            let pairs = parse_config_pairs(&pairs)?;
            let app = resolve_app(&app)?;
            let keys: Vec<String> = pairs.iter().map(|(k, _)| k.to_string()).collect();
            let update: ConfigVarsUpdate = pairs
                .into_iter()
                .map(|(k, v)| (k.into(), Some(v)))
                .collect();
            let label = format!(
                "Setting {} and restarting {APP_MARK} {app}",
                format::join_names(&keys)
            );
            let vars = change_config(client, &app, &update, &label, out).await?;
            out.write_all(format::format_config_subset(&vars, &keys).as_bytes())?;
        }
        Command::ConfigUnset { keys, app } => {
            let keys: Vec<String> = parse_config_keys(&keys)?
                .into_iter()
                .map(String::from)
                .collect();
            let app = resolve_app(&app)?;
            let update: ConfigVarsUpdate = keys.iter().map(|k| (k.clone(), None)).collect();
            let label = format!(
                "Unsetting {} and restarting {APP_MARK} {app}",
                format::join_names(&keys)
            );
            change_config(client, &app, &update, &label, out).await?;
        }
        Command::Ps { app, json } => {
            let app = resolve_app(&app)?;
            let dynos: Vec<Dyno> = client.get(&["apps", &app, "dynos"], None).await?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&dynos)?)?;
            } else {
                out.write_all(format::format_ps(&app, &dynos, Utc::now()).as_bytes())?;
            }
        }
        Command::PsType { changes, app } => {
            crate::ps_type::run(client, &resolve_app(&app)?, &changes, out).await?
        }
        Command::PsScale { changes, app } => {
            let updates = parse_scale_args(&changes)?;
            let app = resolve_app(&app)?;
            if updates.is_empty() {
                let formation: Vec<Formation> =
                    client.get(&["apps", &app, "formation"], None).await?;
                if formation.is_empty() {
                    return Err(CommandError::NoProcessTypes { app }.into());
                }
                out.write_all(format::format_formation(&formation).as_bytes())?;
            } else {
                let body = FormationBatchUpdate { updates };
                let scaled: Result<Vec<Formation>, _> = action(
                    out,
                    "Scaling dynos",
                    client.send(Method::PATCH, &["apps", &app, "formation"], Some(&body)),
                )
                .await;
                let formation = match scaled {
                    Ok(formation) => formation,
                    // An unknown type: say which ones the app declares.
                    Err(error) if error.to_string().contains("process type") => {
                        let declared: Vec<Formation> = client
                            .get(&["apps", &app, "formation"], None)
                            .await
                            .unwrap_or_default();
                        return Err(crate::apps::with_declared_types(error, &declared));
                    }
                    Err(error) => return Err(error),
                };
                writeln!(
                    out,
                    "done, now running {}",
                    format::format_scaled(&formation)
                )?;
            }
        }
        Command::PsRestart { target, app } => {
            let app = resolve_app(&app)?;
            let request = DynoRequest::restart(&app, target.parse()?.as_ref());
            request.send(client, out).await?;
        }
        Command::Addons { app } => crate::addons::list(client, &resolve_app(&app)?, out).await?,
        Command::AddonsServices => crate::addon_services::list(client, out).await?,
        Command::AddonsServicesAdd {
            manifest,
            plans,
            timeout,
        } => crate::addon_services::add(client, &manifest, &plans, timeout, out).await?,
        Command::AddonsServicesRemove { name } => {
            crate::addon_services::remove(client, &name, out).await?
        }
        Command::AddonsCreate {
            plan,
            attach_as,
            name,
            app,
            options,
        } => {
            let app = resolve_app(&app)?;
            let options = crate::addons::parse_options(&options)?;
            crate::addons::create(
                client,
                &app,
                &plan,
                attach_as.as_deref(),
                name.as_deref(),
                options,
                out,
            )
            .await?
        }
        Command::AddonsInfo { addon, app: _ } => crate::addons::info(client, &addon, out).await?,
        Command::AddonsDestroy {
            addon,
            confirm,
            app: _,
        } => crate::addons::destroy(client, &addon, confirm.as_deref(), out).await?,
        Command::AddonsAttach {
            addon,
            attach_as,
            app,
        } => {
            let app = resolve_app(&app)?;
            crate::addons::attach(client, &app, &addon, attach_as.as_deref(), out).await?
        }
        Command::AddonsDetach { attachment, app } => {
            crate::addons::detach(client, &resolve_app(&app)?, &attachment, out).await?
        }
        Command::AddonsUpgrade {
            addon,
            plan,
            app: _,
        } => crate::addons::upgrade(client, &addon, &plan, out).await?,
        Command::PgInfo { database, app } => {
            crate::addons::pg_info(client, &resolve_app(&app)?, &database, out).await?
        }
        Command::PgCredentialsRotate { database, app } => {
            crate::addons::rotate(client, &resolve_app(&app)?, &database, out).await?
        }
        Command::PgBackups { database, app } => {
            crate::addons_backups::list(client, &resolve_app(&app)?, &database, out).await?
        }
        Command::PgBackupsCapture { database, app } => {
            crate::addons_backups::capture(client, &resolve_app(&app)?, &database, out).await?
        }
        Command::PgBackupsRestore {
            backup,
            database,
            confirm,
            app,
        } => {
            crate::addons_backups::restore(
                client,
                &resolve_app(&app)?,
                backup.as_deref(),
                &database,
                confirm.as_deref(),
                out,
            )
            .await?
        }
        Command::PgBackupsDownload {
            backup,
            database,
            output,
            app,
        } => {
            crate::addons_backups::download(
                client,
                &resolve_app(&app)?,
                backup.as_deref(),
                &database,
                output.as_deref(),
                out,
            )
            .await?
        }
        Command::PgBackupsDelete {
            backup,
            database,
            confirm,
            app,
        } => {
            crate::addons_backups::delete(
                client,
                &resolve_app(&app)?,
                &backup,
                &database,
                confirm.as_deref(),
                out,
            )
            .await?
        }
        Command::PgPsql { database, app } => {
            crate::addons::run_client(client, &resolve_app(&app)?, &database, "psql", None).await?
        }
        Command::PgBackupsSchedule { database, at, app } => {
            crate::addons_backups::schedule(client, &resolve_app(&app)?, &database, &at, out)
                .await?
        }
        Command::PgBackupsSchedules { app } => {
            crate::addons_backups::schedules(client, &resolve_app(&app)?, out).await?
        }
        Command::PgBackupsUnschedule { database, app } => {
            crate::addons_backups::unschedule(client, &resolve_app(&app)?, &database, out).await?
        }
        Command::RedisInfo {
            database,
            json,
            app,
        } => crate::redis::info(client, &resolve_app(&app)?, &database, json, out).await?,
        Command::RedisCli { database, app } => {
            crate::addons::run_client(
                client,
                &resolve_app(&app)?,
                &database,
                "redis-cli",
                Some("-u"),
            )
            .await?
        }
        Command::Drains { app } => crate::drains::list(client, &resolve_app(&app)?, out).await?,
        Command::Access { app } => crate::access::list(client, &resolve_app(&app)?, out).await?,
        Command::AccessAdd {
            email,
            permissions,
            app,
        } => {
            let app = resolve_app(&app)?;
            crate::access::add(client, &app, &email, permissions.as_deref(), out).await?
        }
        Command::AccessRemove { email, app } => {
            crate::access::remove(client, &resolve_app(&app)?, &email, out).await?
        }
        Command::AccessUpdate {
            email,
            permissions,
            app,
        } => {
            let app = resolve_app(&app)?;
            crate::access::update(client, &app, &email, &permissions, out).await?
        }
        Command::Run { app, args } => crate::run::run(client, &resolve_app(&app)?, args).await?,
        Command::RunDetached { app, args } => {
            crate::run::detached(client, &resolve_app(&app)?, args, out).await?
        }
        Command::Domains { app } => crate::domains::list(client, &resolve_app(&app)?, out).await?,
        Command::DomainsAdd { hostname, app } => {
            crate::domains::add(client, &resolve_app(&app)?, &hostname, out).await?
        }
        Command::DomainsRemove { hostname, app } => {
            crate::domains::remove(client, &resolve_app(&app)?, &hostname, out).await?
        }
        Command::Ca { data_dir } => crate::ca::run(data_dir.as_deref(), out).await?,
        Command::Accounts(command) => crate::auth::run_with_client(client, command, out).await?,
        Command::Certs { app } => crate::certs::list(client, &resolve_app(&app)?, out).await?,
        Command::CertsAdd { cert, key, app } => {
            crate::certs::add(client, &resolve_app(&app)?, &cert, &key, out).await?
        }
        Command::CertsRemove { name, app } => {
            crate::certs::remove(client, &resolve_app(&app)?, name.as_deref(), out).await?
        }
        Command::Maintenance { app } => {
            crate::domains::maintenance(client, &resolve_app(&app)?, None, out).await?
        }
        Command::MaintenanceOn { app } => {
            crate::domains::maintenance(client, &resolve_app(&app)?, Some(true), out).await?
        }
        Command::MaintenanceOff { app } => {
            crate::domains::maintenance(client, &resolve_app(&app)?, Some(false), out).await?
        }
        Command::DrainsAdd { url, app } => {
            crate::drains::add(client, &resolve_app(&app)?, &url, out).await?
        }
        Command::DrainsRemove { url_or_token, app } => {
            crate::drains::remove(client, &resolve_app(&app)?, &url_or_token, out).await?
        }
        Command::PsStop { target, app } => {
            let app = resolve_app(&app)?;
            let target = target
                .parse()?
                .context("ps:stop needs a dyno (web.1) or a process type (web).")?;
            DynoRequest::stop(&app, &target).send(client, out).await?;
        }
        Command::Logs {
            app,
            num,
            tail,
            source,
            ps,
            dyno,
        } => {
            let app = resolve_app(&app)?;
            // Like the heroku CLI, a process type from -p travels in the dyno filter too.
            let body = LogSessionCreate {
                dyno_name: dyno.or(ps),
                process_type: None,
                lines: Some(num),
                source,
                tail: Some(tail),
            };
            let session: LogSession = client
                .send(Method::POST, &["apps", &app, "log-sessions"], Some(&body))
                .await?;
            stream_logs(client.http(), &session.logplex_url, tail, out).await?;
        }
    }
    Ok(())
}

/// What `ps:restart` and `ps:stop` act on: a bare `web.1` (a dyno) or `web` (a process type),
/// or the same named by `-d`/`-p`. `ps:stop` requires one of them (a group on its command).
#[derive(Debug, Clone, clap::Args)]
pub struct DynoTargetArgs {
    /// Process type or dyno name.
    pub target: Option<String>,
    /// Dyno name (web.1).
    #[arg(short = 'd', long, conflicts_with_all = ["target", "process_type"])]
    pub dyno: Option<String>,
    /// Process type (web).
    #[arg(short = 'p', long = "process-type", conflicts_with = "target")]
    pub process_type: Option<String>,
}

impl DynoTargetArgs {
    /// The dyno or process type named, `None` when none is.
    fn parse(self) -> Result<Option<DynoTarget>, BadDynoTarget> {
        DynoTarget::from_flags(self.target, self.dyno, self.process_type)
    }
}

/// One `ps:restart` or `ps:stop` request and the line it is shown with, worded like the
/// heroku CLI's.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct DynoRequest {
    label: String,
    method: Method,
    segments: Vec<String>,
}

impl DynoRequest {
    /// `DELETE` of every dyno (`None`), of one dyno, or of a process type's formation.
    pub(crate) fn restart(app: &str, target: Option<&DynoTarget>) -> DynoRequest {
        DynoRequest::new("Restarting", Method::DELETE, app, target, &[])
    }

    /// `POST .../actions/stop` of one dyno or of a process type's formation.
    pub(crate) fn stop(app: &str, target: &DynoTarget) -> DynoRequest {
        DynoRequest::new(
            "Stopping",
            Method::POST,
            app,
            Some(target),
            &["actions", "stop"],
        )
    }

    fn new(
        verb: &str,
        method: Method,
        app: &str,
        target: Option<&DynoTarget>,
        suffix: &[&str],
    ) -> DynoRequest {
        let name = target.map(DynoTarget::to_string).unwrap_or_default();
        let (label, path) = match target {
            None => (
                format!("{verb} all dynos on {APP_MARK} {app}"),
                vec!["apps", app, "dynos"],
            ),
            Some(DynoTarget::Dyno(_)) => (
                format!("{verb} dyno {name} on {APP_MARK} {app}"),
                vec!["apps", app, "dynos", &name],
            ),
            Some(DynoTarget::ProcessType(_)) => (
                format!("{verb} {name} dynos on {APP_MARK} {app}"),
                vec!["apps", app, "formations", &name],
            ),
        };
        let segments = path.iter().chain(suffix).map(|s| (*s).to_owned()).collect();
        DynoRequest {
            label,
            method,
            segments,
        }
    }

    async fn send(self, client: &Client, out: &mut dyn Write) -> anyhow::Result<()> {
        let segments: Vec<&str> = self.segments.iter().map(String::as_str).collect();
        action(
            out,
            &self.label,
            client.send_ignoring_body(self.method, &segments),
        )
        .await?;
        writeln!(out, "done")?;
        Ok(())
    }
}

/// A dyno or a whole process type, chosen by `web.1` vs `web` or by `-d`/`-p`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DynoTarget {
    Dyno(DynoName),
    ProcessType(ProcessType),
}

/// A `ps:restart`/`ps:stop` target that names neither a dyno nor a process type.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BadDynoTarget {
    #[error(transparent)]
    Dyno(#[from] DynoNameError),
    #[error(transparent)]
    ProcessType(#[from] ProcessTypeError),
}

impl DynoTarget {
    /// `-d` names a dyno, `-p` a process type; a bare target is a dyno when it has a dot
    /// (process types cannot).
    pub(crate) fn from_flags(
        target: Option<String>,
        dyno: Option<String>,
        process_type: Option<String>,
    ) -> Result<Option<DynoTarget>, BadDynoTarget> {
        let target = match (dyno, process_type, target) {
            (Some(dyno), _, _) => DynoTarget::Dyno(dyno.parse()?),
            (None, Some(process_type), _) => DynoTarget::ProcessType(process_type.parse()?),
            (None, None, Some(target)) if target.contains('.') => DynoTarget::Dyno(target.parse()?),
            (None, None, Some(target)) => DynoTarget::ProcessType(target.parse()?),
            (None, None, None) => return Ok(None),
        };
        Ok(Some(target))
    }
}

impl std::fmt::Display for DynoTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DynoTarget::Dyno(name) => name.fmt(f),
            DynoTarget::ProcessType(process_type) => process_type.fmt(f),
        }
    }
}

/// PATCHes config vars, printing `label... done, vN` with the release it created.
async fn change_config(
    client: &Client,
    app: &str,
    update: &ConfigVarsUpdate,
    label: &str,
    out: &mut dyn Write,
) -> anyhow::Result<ConfigVars> {
    let vars: ConfigVars = action(
        out,
        label,
        client.send(Method::PATCH, &["apps", app, "config-vars"], Some(update)),
    )
    .await?;
    match newest_releases(client, app, 1)
        .await
        .ok()
        .and_then(|r| r.into_iter().next())
    {
        Some(release) => writeln!(out, "done, v{}", release.version)?,
        None => writeln!(out, "done")?,
    }
    Ok(vars)
}

/// The newest `max` releases, newest first (sorted here too, in case the server ignores
/// `order=desc`).
/// The release `version` (`v3` or `3`) names, checked before anything is asked.
async fn release_by_version(client: &Client, app: &str, version: &str) -> anyhow::Result<Release> {
    let version = parse_release_version(version)?.to_string();
    Ok(client
        .get(&["apps", app, "releases", &version], None)
        .await?)
}

async fn newest_releases(client: &Client, app: &str, max: usize) -> anyhow::Result<Vec<Release>> {
    let range = format!("version ..; max={max}, order=desc");
    let mut releases: Vec<Release> = client.get(&["apps", app, "releases"], Some(&range)).await?;
    releases.sort_by_key(|r| std::cmp::Reverse(r.version));
    releases.truncate(max);
    Ok(releases)
}

/// The release a bare `rollback` goes back to: the newest rollback-eligible release older
/// than the current one.
pub(crate) fn previous_release(newest_first: Vec<Release>) -> Option<Release> {
    let current_version = newest_first
        .iter()
        .find(|r| r.current)
        .or(newest_first.first())
        .map(|r| r.version)?;
    newest_first
        .into_iter()
        .find(|r| r.version < current_version && r.eligible_for_rollback)
}

/// The app from `-a`/`$SLIPWAY_APP`, else from the git remote (`-r`, `heroku`, `slipway`)
/// of the repository in the current directory.
fn resolve_app(arg: &AppArg) -> Result<String, CommandError> {
    if let Some(app) = arg.app.as_ref().filter(|a| !a.is_empty()) {
        return Ok(app.clone());
    }
    let remotes: Vec<&str> = match &arg.remote {
        Some(remote) => vec![remote.as_str()],
        None => vec!["heroku", "slipway"],
    };
    remotes
        .into_iter()
        .find_map(|remote| app_from_git_url(&git_remote_url(remote)?))
        .ok_or(CommandError::NoApp)
}

fn git_remote_url(remote: &str) -> Option<String> {
    crate::apps::git(&["config", "--get", &format!("remote.{remote}.url")])
}
