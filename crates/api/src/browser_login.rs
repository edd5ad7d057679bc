//! The browser login of plain `heroku login`, which asks the host `HEROKU_LOGIN_HOST` names
//! (the CLI does not check it, so it can be Slipway's API):
//!
//! 1. `POST /auth {description}` (no credentials) starts a login and answers
//!    `{browser_url, cli_url, token}`; the CLI opens `<host><browser_url>` in a browser.
//! 2. `GET /auth/browser/{id}` is a login page; `POST` the same path with the account's email
//!    and password (form-encoded). Right, it creates an API key (an authorization described as
//!    the CLI asked, expiring in 30 days like the CLI's `login -i` ones) for the waiting CLI.
//! 3. `GET /auth/cli/{id}` with `Authorization: Bearer <token>` waits until the browser is
//!    done and answers `{access_token}` (or `{error}`), once; the CLI then writes its netrc.
//!
//! Hostile input: at most [`MAX_PENDING`] logins wait at once, each for at most
//! [`LOGIN_LIFETIME`]; the CLI's token is compared in constant time; passwords go through the
//! same throttled argon2 check as `POST /oauth/authorizations`; the page escapes what it
//! echoes and forbids framing and scripts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Form, Json};
use serde::Deserialize;
use slipway_core::{secrets_match, CoreError, NewAuthorization, GLOBAL_SCOPE};

use crate::auth::bearer_token;
use crate::error::ApiError;
use crate::state::ApiState;

/// How long a started login waits for the browser: the CLI gives up after 10 minutes too.
pub(crate) const LOGIN_LIFETIME: Duration = Duration::from_secs(600);
/// Logins waiting at once, at most; past it, new ones are refused until some end.
pub(crate) const MAX_PENDING: usize = 1000;
/// How long the key a browser login creates lasts: 30 days, as the CLI's own `login -i` asks.
const KEY_LIFETIME_SECONDS: i64 = 30 * 24 * 3600;
/// The longest description kept (the core refuses longer ones).
const MAX_DESCRIPTION: usize = 200;

/// The logins started and not yet collected, by id.
#[derive(Default)]
pub(crate) struct BrowserLogins {
    pending: Mutex<HashMap<uuid::Uuid, Pending>>,
}

struct Pending {
    /// The CLI's secret for `cli_url`.
    token: String,
    description: String,
    started: Instant,
    /// The API key the browser's login created, once it has.
    done: tokio::sync::watch::Sender<Option<String>>,
}

impl BrowserLogins {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<uuid::Uuid, Pending>> {
        // Each change is one map operation: a panic while the lock was held leaves it whole.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a login: its id and the CLI's token, or `None` when too many are waiting.
    fn start(&self, description: String, now: Instant) -> Option<(uuid::Uuid, String)> {
        let mut pending = self.lock();
        pending.retain(|_, login| now.saturating_duration_since(login.started) < LOGIN_LIFETIME);
        if pending.len() >= MAX_PENDING {
            return None;
        }
        let id = uuid::Uuid::new_v4();
        let token = String::from(slipway_model::SecretToken::generate());
        let (done, _) = tokio::sync::watch::channel(None);
        pending.insert(
            id,
            Pending {
                token: token.clone(),
                description,
                started: now,
                done,
            },
        );
        Some((id, token))
    }

    /// The description of a login still waiting for its browser.
    fn waiting(&self, id: uuid::Uuid, now: Instant) -> Option<String> {
        self.lock()
            .get(&id)
            .filter(|login| now.saturating_duration_since(login.started) < LOGIN_LIFETIME)
            .filter(|login| login.done.borrow().is_none())
            .map(|login| login.description.clone())
    }

    fn finish(&self, id: uuid::Uuid, key: String) {
        if let Some(login) = self.lock().get(&id) {
            login.done.send_replace(Some(key));
        }
    }

    /// What the CLI waits on, if `token` is this login's.
    fn watch(
        &self,
        id: uuid::Uuid,
        token: &str,
    ) -> Option<(tokio::sync::watch::Receiver<Option<String>>, Instant)> {
        self.lock()
            .get(&id)
            .filter(|login| secrets_match(token, &login.token))
            .map(|login| (login.done.subscribe(), login.started))
    }

    fn forget(&self, id: uuid::Uuid) {
        self.lock().remove(&id);
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct StartRequest {
    #[serde(default)]
    description: Option<String>,
}

/// The description a login's key gets: the CLI's (`Heroku CLI login from <host>`), trimmed to
/// printable text and [`MAX_DESCRIPTION`] characters.
pub(crate) fn parse_start(body: &[u8]) -> Result<String, ApiError> {
    let request: StartRequest = if body.iter().all(u8::is_ascii_whitespace) {
        StartRequest::default()
    } else {
        serde_json::from_slice(body).map_err(|error| {
            ApiError::bad_request(format!(
                "Expected a body like {{\"description\": \"Heroku CLI login from my-laptop\"}}: {error}."
            ))
        })?
    };
    let description: String = request
        .description
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_DESCRIPTION)
        .collect();
    let description = description.trim();
    Ok(if description.is_empty() {
        "Browser login".to_owned()
    } else {
        description.to_owned()
    })
}

/// `POST /auth`: starts a login.
pub(crate) async fn start(
    Extension(logins): Extension<Arc<BrowserLogins>>,
    body: bytes::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let description = parse_start(&body)?;
    let (id, token) = logins.start(description, Instant::now()).ok_or_else(|| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit",
            "Too many logins are waiting for a browser. Try again in a few minutes, or use `heroku login -i`.",
        )
    })?;
    Ok(Json(serde_json::json!({
        "browser_url": format!("/auth/browser/{id}"),
        "cli_url": format!("/auth/cli/{id}"),
        "token": token,
    })))
}

/// Text made safe to put in HTML.
pub(crate) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A page of a browser login (`heroku login`, an add-on's `web_url`), with headers that keep
/// it out of frames; `script` is the hash source of the one script it may run, if any. A page
/// with no script posts its forms only here; one with a script (the add-on SSO page, whose
/// form goes to the provider and may be redirected anywhere on its side) sets no
/// `form-action`.
pub(crate) fn page(status: StatusCode, title: &str, body: &str, script: Option<&str>) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:sans-serif;max-width:32rem;margin:4rem auto}}\
         label,input,button{{display:block;width:100%;margin:.4rem 0}}</style></head>\
         <body><h1>{title}</h1>{body}</body></html>\n",
        title = escape_html(title)
    );
    let policy = match script {
        Some(hash) => format!(
            "default-src 'none'; style-src 'unsafe-inline'; script-src '{hash}'; frame-ancestors 'none'"
        ),
        None => "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'".to_owned(),
    };
    (
        status,
        [
            (header::CONTENT_SECURITY_POLICY, policy),
            (header::X_FRAME_OPTIONS, "DENY".to_owned()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (header::REFERRER_POLICY, "no-referrer".to_owned()),
        ],
        Html(html),
    )
        .into_response()
}

fn form(id: uuid::Uuid, description: &str, email: &str, problem: Option<&str>) -> String {
    let problem = problem
        .map(|p| format!("<p role=\"alert\" id=\"problem\">{}</p>", escape_html(p)))
        .unwrap_or_default();
    format!(
        "<p>{description}</p>{problem}\
         <form method=\"post\" action=\"/auth/browser/{id}\">\
         <label for=\"email\">Email</label><input id=\"email\" name=\"email\" type=\"email\" value=\"{email}\" required autofocus>\
         <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" required>\
         <button id=\"login\" type=\"submit\">Log in</button></form>",
        description = escape_html(description),
        email = escape_html(email),
    )
}

fn expired() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Login expired",
        "<p>This login does not exist, has expired or is done. Run <code>heroku login</code> again.</p>",
        None,
    )
}

/// The login `id` (from the path) and its description, while it waits for its user.
fn waiting_login(logins: &BrowserLogins, id: &str) -> Option<(uuid::Uuid, String)> {
    let id = id.parse::<uuid::Uuid>().ok()?;
    Some((id, logins.waiting(id, Instant::now())?))
}

/// `GET /auth/browser/{id}`: the login page.
pub(crate) async fn browser_page(
    Extension(logins): Extension<Arc<BrowserLogins>>,
    Path(id): Path<String>,
) -> Response {
    let Some((id, description)) = waiting_login(&logins, &id) else {
        return expired();
    };
    page(
        StatusCode::OK,
        "Log in to Slipway",
        &form(id, &description, "", None),
        None,
    )
}

/// A login form's fields.
#[derive(Debug, Deserialize)]
pub(crate) struct Credentials {
    #[serde(default)]
    pub(crate) email: String,
    #[serde(default)]
    pub(crate) password: String,
}

/// The password check of every login page: the throttle first, then the password; a refusal
/// is the status and the sentence the page shows (`what` names the page in the server's log).
pub(crate) async fn check_password(
    state: &ApiState,
    email: &str,
    password: &str,
    what: &str,
) -> Result<slipway_core::model::User, (StatusCode, String)> {
    if let Some(wait) = state.login_throttle.wait(email) {
        return Err((
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many failed logins for this email. Wait {} seconds and try again.",
                wait.as_secs().max(1)
            ),
        ));
    }
    match state
        .platform
        .verify_password(email, password, &state.login_throttle)
        .await
    {
        Ok(user) => Ok(user),
        Err(CoreError::Unauthorized) => Err((
            StatusCode::UNAUTHORIZED,
            "The email or password is wrong. Try again.".to_owned(),
        )),
        Err(error) => {
            tracing::error!(%error, "{what} failed");
            Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                "The login failed on the server. Try again.".to_owned(),
            ))
        }
    }
}

/// `POST /auth/browser/{id}` (email and password, form-encoded): logs the waiting CLI in.
pub(crate) async fn browser_submit(
    State(state): State<ApiState>,
    Extension(logins): Extension<Arc<BrowserLogins>>,
    Path(id): Path<String>,
    Form(credentials): Form<Credentials>,
) -> Response {
    let Some((id, description)) = waiting_login(&logins, &id) else {
        return expired();
    };
    let email = credentials.email.trim().to_owned();
    let retry = |status: StatusCode, problem: &str| {
        page(
            status,
            "Log in to Slipway",
            &form(id, &description, &email, Some(problem)),
            None,
        )
    };
    let user = match check_password(&state, &email, &credentials.password, "browser login").await {
        Ok(user) => user,
        Err((status, problem)) => return retry(status, &problem),
    };
    let new = NewAuthorization {
        description: description.clone(),
        scope: vec![GLOBAL_SCOPE.to_owned()],
        expires_in: Some(KEY_LIFETIME_SECONDS),
        default: false,
    };
    match state.platform.create_authorization(&user, new).await {
        Ok((_, token)) => {
            logins.finish(id, token);
            page(
                StatusCode::OK,
                "Logged in",
                &format!(
                            "<p id=\"done\">Logged in as {}. You can close this window and go back to your terminal.</p>",
                            escape_html(&user.email)
                        ),
                None,
            )
        }
        Err(error) => retry(StatusCode::UNPROCESSABLE_ENTITY, &error.to_string()),
    }
}

/// `GET /auth/cli/{id}` with the login's token as Bearer: waits for the browser, then answers
/// the new key once.
pub(crate) async fn cli_poll(
    Extension(logins): Extension<Arc<BrowserLogins>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let unknown = || {
        ApiError::not_found("This login does not exist or has expired. Run `heroku login` again.")
    };
    let id = id.parse::<uuid::Uuid>().map_err(|_| unknown())?;
    let token = bearer_token(&headers).ok_or_else(unknown)?;
    let (mut done, started) = logins.watch(id, &token).ok_or_else(unknown)?;
    let deadline = tokio::time::Instant::from_std(started + LOGIN_LIFETIME);
    let outcome = tokio::time::timeout_at(deadline, done.wait_for(Option::is_some)).await;
    let answer = match outcome {
        Ok(Ok(done)) => done.clone(),
        _ => None,
    };
    logins.forget(id);
    match answer {
        Some(key) => Ok(Json(serde_json::json!({"access_token": key}))),
        None => Ok(Json(serde_json::json!({
            "error": "The login timed out before the browser finished it. Run `heroku login` again."
        }))),
    }
}

#[cfg(test)]
mod tests;
