//! The page every add-on's `web_url` points to (`/addons-sso/apps/{app}/addons/{addon}`,
//! Slipway's `addons-sso.heroku.com`), which plain `heroku addons:open NAME` opens in a
//! browser:
//!
//! 1. `GET` is a login page: the browser has no API key, so its user signs in with their
//!    Slipway email and password (the same throttled check as `heroku login`'s page);
//! 2. `POST` (email and password, form-encoded) checks them and that the user may see the
//!    app, then answers, for a third-party add-on, the page that posts Heroku's SSO form
//!    (`Platform::addon_sso`: `id`, `token`, `timestamp`, `email`, `nav-data`...) to the
//!    provider's `sso_url`, so the user lands signed in on the provider's dashboard; for a
//!    built-in PostgreSQL or Redis add-on, a page of what it is (plan, limits, attachments and
//!    the commands that work with it): Slipway has no database dashboard, and says so rather
//!    than pretending.
//!
//! Hostile input: the path's names are only echoed escaped, and nothing about an add-on is
//! shown before the password is right; the pages forbid framing and run no script but the
//! one whose hash the SSO page's policy names (the form's auto-submit, with a button for a
//! browser without scripts).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use slipway_core::{AddonSso, AddonView};

use crate::browser_login::{check_password, escape_html, page, Credentials};
use crate::state::ApiState;

/// The only script a page here runs: it submits the SSO form at once.
const SUBMIT_SCRIPT: &str = "document.forms[0].submit();";

fn login_form(email: &str, problem: Option<&str>) -> String {
    let problem = problem
        .map(|p| format!("<p role=\"alert\" id=\"problem\">{}</p>", escape_html(p)))
        .unwrap_or_default();
    // An empty action posts back to this very URL.
    format!(
        "<p>Log in to Slipway to open this add-on.</p>{problem}\
         <form method=\"post\" action=\"\">\
         <label for=\"email\">Email</label><input id=\"email\" name=\"email\" type=\"email\" value=\"{email}\" required autofocus>\
         <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" required>\
         <button id=\"login\" type=\"submit\">Log in</button></form>",
        email = escape_html(email),
    )
}

/// `GET`: the login page. It says nothing of the add-on, which the visitor may not see.
pub(crate) async fn login() -> Response {
    page(StatusCode::OK, "Open add-on", &login_form("", None), None)
}

/// `POST`: signs the user in and opens the add-on.
pub(crate) async fn open(
    State(state): State<ApiState>,
    Path((app, addon)): Path<(String, String)>,
    Form(credentials): Form<Credentials>,
) -> Response {
    let email = credentials.email.trim().to_owned();
    let retry = |status: StatusCode, problem: &str| {
        page(
            status,
            "Open add-on",
            &login_form(&email, Some(problem)),
            None,
        )
    };
    let user =
        match check_password(&state, &email, &credentials.password, "add-on page login").await {
            Ok(user) => user,
            Err((status, problem)) => return retry(status, &problem),
        };
    let not_found = || {
        page(
            StatusCode::NOT_FOUND,
            "Add-on not found",
            "<p>Couldn't find that add-on, or you may not see its app.</p>",
            None,
        )
    };
    let Ok(views) = state.platform.app_addons(&user, &app).await else {
        return not_found();
    };
    let Some(view) = views
        .into_iter()
        .find(|v| v.addon.id.to_string() == addon || v.addon.name == addon)
    else {
        return not_found();
    };
    if view.addon.partner.is_none() {
        return built_in(&view);
    }
    match state.platform.addon_sso(&user, &app, &addon).await {
        Ok(form) => sso_page(&view, &form),
        Err(error) => page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Cannot open add-on",
            &format!("<p id=\"problem\">{}</p>", escape_html(&error.to_string())),
            None,
        ),
    }
}

/// The page that posts the SSO form to the provider.
fn sso_page(view: &AddonView, form: &AddonSso) -> Response {
    use base64::Engine;
    use sha2::Digest;
    let inputs: String = form
        .params
        .iter()
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape_html(name),
                escape_html(value)
            )
        })
        .collect();
    let body = format!(
        "<p>Opening {addon}'s dashboard at {service}...</p>\
         <form id=\"sso\" method=\"{method}\" action=\"{action}\">{inputs}\
         <button id=\"continue\" type=\"submit\">Continue to {service}</button></form>\
         <script>{SUBMIT_SCRIPT}</script>",
        addon = escape_html(&view.addon.name),
        service = escape_html(&view.addon.service),
        method = escape_html(form.method),
        action = escape_html(&form.action),
    );
    let hash = format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(SUBMIT_SCRIPT))
    );
    page(StatusCode::OK, "Opening add-on", &body, Some(&hash))
}

/// What a built-in add-on is, and how to work with it.
fn built_in(view: &AddonView) -> Response {
    let addon = &view.addon;
    let plan = addon.plan();
    let limits = plan
        .map(|p| {
            format!(
                "<p id=\"limits\">Up to {} connections and {} MB.</p>",
                p.connections,
                p.max_bytes / (1024 * 1024)
            )
        })
        .unwrap_or_default();
    let attachments: String = view
        .attachments
        .iter()
        .map(|a| {
            format!(
                "<li>{} on {}</li>",
                escape_html(&a.config_var()),
                escape_html(&a.app_name)
            )
        })
        .collect();
    let commands = if addon.service == slipway_addons::Service::Redis.name() {
        "redis:info, redis:cli"
    } else {
        "pg:info, pg:psql, pg:backups"
    };
    let body = format!(
        "<p id=\"plan\">{name} is a {service}:{plan} add-on on a server Slipway runs; it has no web dashboard.</p>\
         {limits}<p>Attached as:</p><ul id=\"attachments\">{attachments}</ul>\
         <p>Work with it from the CLI: <code>heroku {commands} -a {app}</code>.</p>",
        name = escape_html(&addon.name),
        service = escape_html(&addon.service),
        plan = escape_html(&addon.plan),
        app = escape_html(&addon.app_name),
    );
    page(StatusCode::OK, &addon.name, &body, None)
}

#[cfg(test)]
mod tests;
