//! Logging in and managing API keys and accounts: `login`, `logout`, `auth:token`,
//! `auth:whoami`, `authorizations*`, `users*`, `passwd`, and `tunnel` (which needs no key).
//!
//! A login is kept in `~/.netrc` under the API's `host:port`, exactly where the heroku CLI
//! keeps its own, so `slipway login` logs the heroku CLI in too and the other way round.

use std::io::{BufRead, Write};

use anyhow::Context as _;
use reqwest::header::ACCEPT;
use reqwest::{Method, Url};
use slipway_api_types::{
    Account, OAuthAuthorization, OAuthAuthorizationCreate, SlipwayUser, SlipwayUserCreate,
    SlipwayUserUpdate, ACCEPT_V3,
};

use crate::client::{api_url_from_env, root_cause, ApiError, Client};
use crate::netrc::{self, Netrc};

#[cfg(test)]
mod tests;

/// How long a `slipway login` lasts unless `--expires-in` says otherwise: thirty days, as
/// for `heroku login -i`.
const LOGIN_EXPIRES_IN: i64 = 30 * 24 * 3600;

/// Account and access commands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AccountCommand {
    /// Log in with your email and password (or an API key); saves the key in ~/.netrc, where
    /// the heroku CLI finds it too.
    #[command(name = "login", visible_alias = "auth:login")]
    Login {
        /// Email of the account (prompted for when omitted).
        #[arg(short = 'e', long)]
        email: Option<String>,
        /// Read the password from the first line of stdin instead of prompting.
        #[arg(long)]
        password_stdin: bool,
        /// Log in with an API key read from stdin (or SLIPWAY_API_KEY) instead of a password.
        #[arg(long, conflicts_with = "password_stdin")]
        api_key: bool,
        /// Seconds until the login's key expires (default 30 days).
        #[arg(long)]
        expires_in: Option<i64>,
    },
    /// Clear your login from ~/.netrc and revoke its key.
    #[command(name = "logout", visible_alias = "auth:logout")]
    Logout,
    /// Print the API key the CLI uses.
    #[command(name = "auth:token")]
    AuthToken,
    /// Print the email of the account you are logged in as.
    #[command(name = "auth:whoami", visible_alias = "whoami")]
    Whoami,
    /// List your API keys (OAuth authorizations).
    #[command(name = "authorizations", visible_alias = "authorizations:list")]
    Authorizations {
        #[arg(short = 'j', long)]
        json: bool,
    },
    /// Create a new API key; prints it once.
    #[command(name = "authorizations:create")]
    AuthorizationsCreate {
        /// What the key is for.
        #[arg(short = 'd', long)]
        description: Option<String>,
        /// Seconds until the key expires (default: never).
        #[arg(short = 'e', long)]
        expires_in: Option<i64>,
        /// Only print the key.
        #[arg(short = 'S', long)]
        short: bool,
        #[arg(short = 'j', long)]
        json: bool,
    },
    /// Revoke an API key: it stops working at once.
    #[command(
        name = "authorizations:revoke",
        visible_alias = "authorizations:destroy"
    )]
    AuthorizationsRevoke { id: String },
    /// Give an API key a new token; the old one stops working at once.
    #[command(name = "authorizations:rotate")]
    AuthorizationsRotate { id: String },
    /// List the accounts (admin only).
    #[command(name = "users", visible_alias = "users:list")]
    Users,
    /// Create an account (admin only); prints its API key once.
    #[command(name = "users:add")]
    UsersAdd {
        email: String,
        /// Set the account's password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
        /// Create no API key: the user logs in with the password.
        #[arg(long, requires = "password_stdin")]
        no_key: bool,
    },
    /// Remove an account and revoke its keys (admin only; refused while it owns apps).
    #[command(name = "users:remove")]
    UsersRemove {
        email: String,
        /// The email again, to confirm.
        #[arg(long)]
        confirm: Option<String>,
    },
    /// Set your password (from stdin with --password-stdin, else prompted twice).
    #[command(name = "passwd", visible_alias = "account:password")]
    Passwd {
        #[arg(long)]
        password_stdin: bool,
    },
    /// Forward 127.0.0.1:PORT to a remote Slipway API over TLS, so the heroku CLI (which only
    /// sends its key to localhost) can drive it: HEROKU_HOST=http://127.0.0.1:PORT.
    #[command(name = "tunnel")]
    Tunnel(crate::tunnel::TunnelArgs),
}

/// Why an account command could not run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuthError {
    #[error(
        "Cannot log in with SLIPWAY_API_KEY set: unset it, or keep using it instead of a login."
    )]
    ApiKeySet,
    #[error("No email given.")]
    NoEmail,
    #[error("No password given.")]
    NoPassword,
    #[error("No API key given on stdin.")]
    NoApiKey,
    #[error("The passwords do not match.")]
    PasswordsDiffer,
    #[error("Not logged in to {machine}: no login in {}.", path.display())]
    NotLoggedIn {
        machine: String,
        path: std::path::PathBuf,
    },
    #[error("The API URL {0} has no host to log in to.")]
    NoHost(Url),
    #[error("This will remove the account {email} and revoke its keys.\nTo proceed, re-run this command with --confirm {email}")]
    ConfirmationRequired { email: String },
}

/// Runs a command that may need no API key (`login`, `logout`, `tunnel`) or finds its own.
pub(crate) async fn run(command: AccountCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match run_without_key(command, out).await? {
        Some(other) => run_with_client(&Client::from_env()?, other, out).await,
        None => Ok(()),
    }
}

/// Runs `login`, `logout` and `tunnel`, which need no API key; gives any other command back.
async fn run_without_key(
    command: AccountCommand,
    out: &mut dyn Write,
) -> anyhow::Result<Option<AccountCommand>> {
    match command {
        AccountCommand::Login {
            email,
            password_stdin,
            api_key,
            expires_in,
        } => login(email, password_stdin, api_key, expires_in, out).await?,
        AccountCommand::Logout => logout(out).await?,
        AccountCommand::Tunnel(args) => crate::tunnel::run(args, out).await?,
        other => return Ok(Some(other)),
    }
    Ok(None)
}

/// Runs a command against `client`.
pub(crate) async fn run_with_client(
    client: &Client,
    command: AccountCommand,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let Some(command) = run_without_key(command, out).await? else {
        return Ok(());
    };
    match command {
        // `run_without_key` ran them.
        AccountCommand::Login { .. } | AccountCommand::Logout | AccountCommand::Tunnel(_) => {}
        AccountCommand::AuthToken => writeln!(out, "{}", client.api_key())?,
        AccountCommand::Whoami => {
            let account: Account = client.get(&["account"], None).await?;
            writeln!(out, "{}", account.email)?;
        }
        AccountCommand::Authorizations { json } => {
            let mut list: Vec<OAuthAuthorization> =
                client.get(&["oauth", "authorizations"], None).await?;
            list.sort_by(|a, b| a.description.cmp(&b.description));
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
            } else if list.is_empty() {
                writeln!(out, "No OAuth authorizations.")?;
            } else {
                write!(out, "{}", authorizations_table(&list))?;
            }
        }
        AccountCommand::AuthorizationsCreate {
            description,
            expires_in,
            short,
            json,
        } => {
            let body = OAuthAuthorizationCreate {
                description,
                expires_in: expires_in.map(serde_json::Value::from),
                scope: Some(vec!["global".into()]),
            };
            let created: OAuthAuthorization = client
                .send(Method::POST, &["oauth", "authorizations"], Some(&body))
                .await?;
            if short {
                writeln!(out, "{}", token_of(&created))?;
            } else if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&created)?)?;
            } else {
                write!(out, "{}", authorization_details(&created))?;
            }
        }
        AccountCommand::AuthorizationsRevoke { id } => {
            let revoked: OAuthAuthorization =
                client.delete(&["oauth", "authorizations", &id]).await?;
            writeln!(
                out,
                "Revoking OAuth Authorization... done, revoked authorization from {}",
                revoked.description
            )?;
        }
        AccountCommand::AuthorizationsRotate { id } => {
            let rotated: OAuthAuthorization = client
                .send(
                    Method::POST,
                    &[
                        "oauth",
                        "authorizations",
                        &id,
                        "actions",
                        "regenerate-tokens",
                    ],
                    None::<&()>,
                )
                .await?;
            write!(out, "{}", authorization_details(&rotated))?;
        }
        AccountCommand::Users => {
            let users: Vec<SlipwayUser> = client.get(&["slipway", "users"], None).await?;
            for user in users {
                let role = if user.admin { "admin" } else { "user" };
                writeln!(
                    out,
                    "{}  {role}  {}",
                    user.email,
                    user.created_at.to_rfc3339()
                )?;
            }
        }
        AccountCommand::UsersAdd {
            email,
            password_stdin,
            no_key,
        } => {
            let password = if password_stdin {
                Some(read_stdin_line()?.ok_or(AuthError::NoPassword)?)
            } else {
                None
            };
            let body = SlipwayUserCreate {
                email,
                password,
                api_key: Some(!no_key),
            };
            let user: SlipwayUser = client
                .send(Method::POST, &["slipway", "users"], Some(&body))
                .await?;
            writeln!(out, "Created account {}", user.email)?;
            if let Some(key) = user.api_key {
                writeln!(out, "API key (shown once): {key}")?;
            }
        }
        AccountCommand::UsersRemove { email, confirm } => {
            if confirm.as_deref() != Some(email.as_str()) {
                return Err(AuthError::ConfirmationRequired { email }.into());
            }
            let removed: SlipwayUser = client.delete(&["slipway", "users", &email]).await?;
            writeln!(out, "Removed account {}", removed.email)?;
        }
        AccountCommand::Passwd { password_stdin } => {
            let password = if password_stdin {
                read_stdin_line()?.ok_or(AuthError::NoPassword)?
            } else {
                let first = prompt_hidden("New password: ")?;
                if prompt_hidden("Again: ")? != first {
                    return Err(AuthError::PasswordsDiffer.into());
                }
                first
            };
            let _: SlipwayUser = client
                .send(
                    Method::PATCH,
                    &["slipway", "users", "~"],
                    Some(&SlipwayUserUpdate { password }),
                )
                .await?;
            writeln!(out, "Password changed.")?;
        }
    }
    Ok(())
}

fn token_of(authorization: &OAuthAuthorization) -> &str {
    authorization
        .access_token
        .as_ref()
        .and_then(|t| t.token.as_deref())
        .unwrap_or_default()
}

/// The `authorizations` table: Description, ID and Scope columns, like the heroku CLI's.
pub(crate) fn authorizations_table(list: &[OAuthAuthorization]) -> String {
    let rows: Vec<[String; 3]> = list
        .iter()
        .map(|a| [a.description.clone(), a.id.to_string(), a.scope.join(",")])
        .collect();
    let headers = ["Description", "ID", "Scope"];
    let widths: Vec<usize> = (0..3)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([headers[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: [&str; 3]| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        format!(" {}\n", text.join(" ").trim_end())
    };
    let mut table = line(headers);
    table.push_str(&line([
        &"─".repeat(widths[0]),
        &"─".repeat(widths[1]),
        &"─".repeat(widths[2]),
    ]));
    for row in &rows {
        table.push_str(&line([&row[0], &row[1], &row[2]]));
    }
    table
}

/// One authorization as `authorizations:create`/`rotate` show it.
pub(crate) fn authorization_details(a: &OAuthAuthorization) -> String {
    let mut text = format!(
        "Client:      <none>\nID:          {}\nDescription: {}\nScope:       {}\n",
        a.id,
        a.description,
        a.scope.join(",")
    );
    if let Some(token) = a.access_token.as_ref() {
        if let Some(value) = token.token.as_deref() {
            text.push_str(&format!("Token:       {value}\n"));
        }
        if let Some(seconds) = token.expires_in {
            let at = chrono::Utc::now() + chrono::Duration::seconds(seconds);
            text.push_str(&format!("Expires at:  {}\n", at.to_rfc3339()));
        }
    }
    text.push_str(&format!("Updated at:  {}\n", a.updated_at.to_rfc3339()));
    text
}

/// The first line of stdin without its line ending; `None` when stdin is empty.
fn read_stdin_line() -> anyhow::Result<Option<String>> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading stdin")?;
    let line = line.trim_end_matches(['\n', '\r']).to_owned();
    Ok(Some(line).filter(|l| !l.is_empty()))
}

/// Prompts on stderr and reads a line from stdin.
fn prompt(label: &str) -> anyhow::Result<String> {
    let mut err = std::io::stderr();
    write!(err, "{label}")?;
    err.flush()?;
    Ok(read_stdin_line()?.unwrap_or_default())
}

/// Prompts on stderr and reads a line from stdin without echoing it when stdin is a
/// terminal.
fn prompt_hidden(label: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !rustix::termios::isatty(&stdin) {
        return prompt(label);
    }
    let saved = rustix::termios::tcgetattr(&stdin).context("reading the terminal's mode")?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
    rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet)
        .context("turning off the terminal's echo")?;
    let answer = prompt(label);
    let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &saved);
    eprintln!();
    answer
}

/// The machine name of the API in `~/.netrc`.
fn machine(base: &Url) -> Result<String, AuthError> {
    netrc::machine_for(base).ok_or_else(|| AuthError::NoHost(base.clone()))
}

async fn login(
    email: Option<String>,
    password_stdin: bool,
    api_key: bool,
    expires_in: Option<i64>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let base = api_url_from_env()?;
    let env_key = std::env::var("SLIPWAY_API_KEY")
        .ok()
        .filter(|k| !k.is_empty());
    let machine = machine(&base)?;
    let (email, token) = if api_key {
        let key = match env_key {
            Some(key) => key,
            None => read_stdin_line()?.ok_or(AuthError::NoApiKey)?,
        };
        let account: Account = Client::new(base.clone(), key.clone())
            .get(&["account"], None)
            .await?;
        (account.email, key)
    } else {
        if env_key.is_some() {
            return Err(AuthError::ApiKeySet.into());
        }
        let email = match email {
            Some(email) => email,
            None => {
                eprintln!("slipway: Enter your login credentials");
                prompt("Email: ")?
            }
        };
        let email = Some(email.trim().to_owned())
            .filter(|e| !e.is_empty())
            .ok_or(AuthError::NoEmail)?;
        let password = if password_stdin {
            read_stdin_line()?
        } else {
            Some(prompt_hidden("Password: ")?).filter(|p| !p.is_empty())
        }
        .ok_or(AuthError::NoPassword)?;
        let created = create_login_authorization(
            &base,
            &email,
            &password,
            expires_in.unwrap_or(LOGIN_EXPIRES_IN),
        )
        .await?;
        let token = token_of(&created).to_owned();
        (created.user.email, token)
    };
    let path = netrc::default_path();
    let mut file = Netrc::read(&path)?;
    file.set(&machine, &email, &token)?;
    file.write(&path)?;
    writeln!(out, "Logged in as {email}")?;
    Ok(())
}

/// `POST /oauth/authorizations` with HTTP Basic `email:password`, as `heroku login -i` does.
async fn create_login_authorization(
    base: &Url,
    email: &str,
    password: &str,
    expires_in: i64,
) -> Result<OAuthAuthorization, ApiError> {
    let host = gethostname();
    let body = OAuthAuthorizationCreate {
        description: Some(format!("Slipway CLI login from {host}")),
        expires_in: Some(expires_in.into()),
        scope: Some(vec!["global".into()]),
    };
    let client = Client::new(base.clone(), "");
    let url = client.url(&["oauth", "authorizations"]);
    let unreachable = |e: reqwest::Error| ApiError::Unreachable {
        url: base.clone(),
        reason: root_cause(&e),
    };
    let response = client
        .http()
        .post(url.clone())
        .header(ACCEPT, ACCEPT_V3)
        .basic_auth(email, Some(password))
        .json(&body)
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(unreachable)?;
    if !status.is_success() {
        return Err(ApiError::from_answer(status, Method::POST, url, &bytes));
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode {
        method: Method::POST,
        url,
        reason: e.to_string(),
    })
}

fn gethostname() -> String {
    // The kernel's copy of the host name; no extra dependency just for a description.
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

async fn logout(_out: &mut dyn Write) -> anyhow::Result<()> {
    let base = api_url_from_env()?;
    let machine = machine(&base)?;
    let path = netrc::default_path();
    let mut file = Netrc::read(&path)?;
    let entry = file.get(&machine).ok_or_else(|| AuthError::NotLoggedIn {
        machine: machine.clone(),
        path: path.clone(),
    })?;
    let mut err = std::io::stderr();
    write!(err, "Logging out... ")?;
    err.flush()?;
    if let Some(token) = entry.password.filter(|t| !t.is_empty()) {
        // Revoke the login's key; a key that no longer works is logged out already.
        let client = Client::new(base, token);
        match client
            .send_ignoring_body(Method::DELETE, &["oauth", "sessions", "~"])
            .await
        {
            Ok(()) => {}
            Err(ApiError::Api { status, .. } | ApiError::Http { status, .. })
                if status == reqwest::StatusCode::UNAUTHORIZED => {}
            Err(error) => {
                writeln!(err, "!")?;
                return Err(error.into());
            }
        }
    }
    file.remove(&machine);
    file.write(&path)?;
    // Like the heroku CLI, the progress goes to stderr and stdout stays empty.
    writeln!(err, "done")?;
    Ok(())
}
