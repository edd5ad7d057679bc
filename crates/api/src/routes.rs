//! The API's routes: every handler mounted on its path, behind the version gate and the
//! request id.
//!
//! Above every handler module: it imports them and the shared state, nothing imports it but
//! the crate root's re-export.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use slipway_core::Platform;

use crate::error::ApiError;
use crate::state::{ApiConfig, ApiState, GitState, LogSessions};
use crate::{
    addons, addons_backups, apps_extra, builds, certs, domains, drains, dynos, git, logs,
    resources, slugs,
};

/// The API's routes.
pub fn router(platform: Arc<Platform>, config: ApiConfig) -> Router {
    let state = ApiState {
        git: Arc::new(GitState::new(&config, platform.git_repos().clone())),
        log_sessions: Arc::new(LogSessions::default()),
        platform,
    };
    let platform_api = Router::new()
        .route("/account", get(resources::account))
        .route(
            "/apps",
            get(resources::list_apps).post(resources::create_app),
        )
        .route(
            "/apps/{app}",
            get(resources::get_app)
                .delete(resources::delete_app)
                .patch(domains::update_app),
        )
        .route(
            "/apps/{app}/releases",
            get(resources::list_releases).post(resources::create_release),
        )
        .route(
            "/apps/{app}/releases/{release}",
            get(resources::get_release),
        )
        .route(
            "/apps/{app}/releases/{release}/config-vars",
            get(resources::release_config_vars),
        )
        .route(
            "/apps/{app}/config-vars",
            get(resources::get_config_vars).patch(resources::update_config_vars),
        )
        .route(
            "/apps/{app}/formation",
            get(resources::list_formation).patch(resources::batch_update_formation),
        )
        .route(
            "/apps/{app}/formation/{type}",
            get(resources::get_formation).patch(resources::update_formation),
        )
        .route(
            "/apps/{app}/dynos",
            get(dynos::list_dynos)
                .post(dynos::create)
                .delete(dynos::restart_all),
        )
        .route(
            "/apps/{app}/dynos/{dyno}",
            get(dynos::get_dyno).delete(dynos::restart),
        )
        .route("/apps/{app}/dynos/{dyno}/actions/stop", post(dynos::stop))
        .route(
            "/apps/{app}/formations/{type}",
            axum::routing::delete(dynos::restart),
        )
        .route(
            "/apps/{app}/formations/{type}/actions/stop",
            post(dynos::stop),
        )
        .route(
            "/apps/{app}/domains",
            get(domains::list).post(domains::create),
        )
        .route(
            "/apps/{app}/domains/{domain}",
            get(domains::get)
                .delete(domains::delete)
                .patch(apps_extra::update_domain),
        )
        .route(
            "/apps/{app}/sni-endpoints",
            get(certs::list).post(certs::create),
        )
        .route(
            "/apps/{app}/sni-endpoints/{endpoint}",
            get(certs::get).patch(certs::update).delete(certs::delete),
        )
        .route("/apps/{app}/log-sessions", post(logs::create_session))
        .route(
            "/apps/{app}/log-drains",
            get(drains::list).post(drains::create),
        )
        .route(
            "/apps/{app}/log-drains/{drain}",
            get(drains::get).delete(drains::delete),
        )
        .route(
            "/apps/{app}/addons",
            get(addons::list_app).post(addons::create),
        )
        .route(
            "/apps/{app}/addons/{addon}",
            get(addons::get_for_app)
                .patch(addons::update_for_app)
                .delete(addons::delete_for_app),
        )
        .route(
            "/apps/{app}/addons/{addon}/backups",
            get(addons_backups::list).post(addons_backups::capture),
        )
        .route(
            "/apps/{app}/addons/{addon}/backups/{backup}",
            get(addons_backups::get).delete(addons_backups::delete),
        )
        .route(
            "/apps/{app}/addons/{addon}/backups/{backup}/dump",
            get(addons_backups::dump),
        )
        .route(
            "/apps/{app}/addons/{addon}/actions/restore",
            post(addons_backups::restore),
        )
        .route(
            "/apps/{app}/addon-attachments",
            get(addons::list_app_attachments),
        )
        .route("/addons", get(addons::list_all))
        .route(
            "/addons/{addon}",
            get(addons::get)
                .patch(addons::update)
                .delete(addons::delete),
        )
        .route(
            "/addons/{addon}/addon-attachments",
            get(addons::addon_attachments),
        )
        .route(
            "/addons/{addon}/actions/rotate-credentials",
            post(addons::rotate),
        )
        .route("/addons/{addon}/stats", get(addons::stats))
        .route(
            "/addon-attachments",
            get(addons::list_attachments).post(addons::attach),
        )
        .route(
            "/addon-attachments/{attachment}",
            get(addons::get_attachment).delete(addons::detach),
        )
        .route("/addon-services", get(addons::services))
        .route("/addon-services/{service}", get(addons::service))
        .route("/addon-services/{service}/plans", get(addons::plans))
        .route("/addon-services/{service}/plans/{plan}", get(addons::plan))
        .route("/actions/addons/resolve", post(addons::resolve))
        .route(
            "/actions/addon-attachments/resolve",
            post(addons::resolve_attachment),
        )
        .route("/apps/{app}/builds", get(builds::list).post(builds::create))
        .route("/apps/{app}/builds/{build}", get(builds::get))
        .route("/apps/{app}/slugs", post(slugs::create))
        .route("/apps/{app}/slugs/{slug}", get(slugs::get))
        // The app endpoints of `apps_extra.rs`.
        .route("/users/{user}/apps", get(resources::list_user_apps))
        .route(
            "/apps/{app}/buildpack-installations",
            get(apps_extra::list_buildpacks).put(apps_extra::set_buildpacks),
        )
        .route("/stacks", get(apps_extra::list_stacks))
        .route("/stacks/{stack}", get(apps_extra::get_stack))
        .route(
            "/apps/{app}/available-stacks",
            get(apps_extra::available_stacks),
        )
        .route("/regions", get(apps_extra::list_regions))
        .route("/regions/{region}", get(apps_extra::get_region))
        .route("/apps/{app}/features", get(apps_extra::list_features))
        .route(
            "/apps/{app}/features/{feature}",
            get(apps_extra::get_feature).patch(apps_extra::update_feature),
        )
        .route("/teams", get(apps_extra::list_teams))
        .route(
            "/apps/{app}/pipeline-couplings",
            get(apps_extra::pipeline_couplings),
        )
        .layer(axum::middleware::from_fn(require_v3));
    Router::new()
        .merge(platform_api)
        .route("/log-sessions/{id}", get(logs::stream_session))
        .route("/build-outputs/{secret}", get(builds::output))
        .route("/slug-uploads/{token}", axum::routing::put(slugs::upload))
        .route("/{repo}/info/refs", get(git::info_refs))
        .route("/{repo}/git-receive-pack", post(git::receive_pack))
        .route("/{repo}/git-upload-pack", post(git::upload_pack))
        .route("/internal/git-hook/{app}", post(git::hook))
        .route("/slipway/ca.pem", get(crate::platform::ca_pem))
        .route("/buildpacks/{slug}", get(apps_extra::registry_buildpack))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(fill_empty_errors))
        .layer(axum::middleware::from_fn(request_id))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found(
        "The requested API endpoint was not found. Are you using the right HTTP verb?",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::for_status(StatusCode::METHOD_NOT_ALLOWED)
}

/// No error goes out with an empty body: whatever answered with one (an extractor's
/// rejection, a layer) gets Heroku's `{"id", "message"}` for its status instead.
async fn fill_empty_errors(request: Request, next: Next) -> Response {
    use axum::body::HttpBody;
    let response = next.run(request).await;
    let status = response.status();
    if (status.is_client_error() || status.is_server_error())
        && response.body().size_hint().exact() == Some(0)
    {
        let (parts, _) = response.into_parts();
        let mut filled = axum::response::IntoResponse::into_response(ApiError::for_status(status));
        for (name, value) in parts.headers.iter() {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                filled.headers_mut().insert(name.clone(), value.clone());
            }
        }
        return filled;
    }
    response
}

/// Whether a request asks for version 3 of the API (`version=3.sdk` and the like included).
fn accepts_v3(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/vnd.heroku+json; version=3"))
}

/// Heroku answers 406 unless the client asks for version 3 of the API.
async fn require_v3(request: Request, next: Next) -> Response {
    if !accepts_v3(request.headers()) {
        return axum::response::IntoResponse::into_response(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            "Please specify a version along with Heroku's API MIME type. For example, `Accept: application/vnd.heroku+json; version=3`.",
        ));
    }
    next.run(request).await
}

/// Every response carries a `Request-Id`.
async fn request_id(request: Request, next: Next) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("request-id", value);
    }
    response
}

#[cfg(test)]
mod tests;
