//! The API's routes: every handler mounted on its path, behind the API's conventions
//! (`conventions`: the version gate, request ids, pagination, ETags, the rate limit).
//!
//! Above every handler module: it imports them and the shared state, nothing imports it but
//! the crate root's re-export.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::Router;
use slipway_core::Platform;

use crate::collaborators;
use crate::error::ApiError;
use crate::integrations;
use crate::stacks;
use crate::state::{ApiConfig, ApiState, GitState, LogSessions};
use crate::{
    account, addon_services, addons, addons_backups, addons_sso, app_transfers, apps_extra,
    browser_login, builds, certs, cluster_routes, conventions, domains, drains, dynos, git, logs,
    resources, slugs,
};

/// The API's routes.
pub fn router(platform: Arc<Platform>, config: ApiConfig) -> Router {
    let agents = config.agents.clone();
    let state = ApiState {
        git: Arc::new(GitState::new(&config, platform.git_repos().clone())),
        log_sessions: Arc::new(LogSessions::default()),
        login_throttle: Arc::default(),
        cluster: config.cluster.clone().map(Arc::new),
        platform,
    };
    let platform_api = Router::new()
        .route(
            "/account",
            get(account::account).patch(account::update_account),
        )
        .route("/account/keys", get(account::keys))
        .route("/account/features", get(account::features))
        .route(
            "/oauth/authorizations",
            get(account::list).post(account::create),
        )
        .route(
            "/oauth/authorizations/{id}",
            get(account::get)
                .patch(account::update)
                .delete(account::delete),
        )
        .route(
            "/oauth/authorizations/{id}/actions/regenerate-tokens",
            post(account::regenerate),
        )
        .route(
            "/oauth/sessions/~",
            axum::routing::delete(account::delete_session),
        )
        .route(
            "/slipway/users",
            get(account::list_users).post(account::create_user),
        )
        .route(
            "/slipway/users/{email}",
            axum::routing::patch(account::update_user).delete(account::delete_user),
        )
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
            "/apps/{app}/addons/{addon}/backup-schedule",
            put(addons_backups::schedule).delete(addons_backups::unschedule),
        )
        .route(
            "/apps/{app}/backup-schedules",
            get(addons_backups::schedules),
        )
        .route(
            "/apps/{app}/addons/{addon}/redis-info",
            get(addons_backups::redis_info),
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
        .route("/apps/{app}/addons/{addon}/sso", get(addons::sso))
        .route(
            "/addon-attachments",
            get(addons::list_attachments).post(addons::attach),
        )
        .route(
            "/addon-attachments/{attachment}",
            get(addons::get_attachment).delete(addons::detach),
        )
        .route("/addon-services", get(addon_services::services))
        .route("/addon-services/{service}", get(addon_services::service))
        .route(
            "/addon-services/{service}/plans",
            get(addon_services::plans),
        )
        .route(
            "/addon-services/{service}/plans/{plan}",
            get(addon_services::plan),
        )
        .route(
            "/slipway/addon-services",
            get(addon_services::admin_list).post(addon_services::register),
        )
        .route(
            "/slipway/addon-services/{name}",
            axum::routing::delete(addon_services::remove),
        )
        .route(
            "/addons/{addon}/config",
            get(addon_services::get_config).patch(addon_services::update_config),
        )
        .route(
            "/addons/{addon}/actions/provision",
            post(addon_services::provisioned),
        )
        .route("/actions/addons/resolve", post(addons::resolve))
        .route(
            "/actions/addon-attachments/resolve",
            post(addons::resolve_attachment),
        )
        .route("/apps/{app}/builds", get(builds::list).post(builds::create))
        .route("/apps/{app}/builds/{build}", get(builds::get))
        .route(
            "/apps/{app}/build-cache",
            axum::routing::delete(builds::purge_cache),
        )
        .route("/apps/{app}/slugs", post(slugs::create))
        .route("/apps/{app}/slugs/{slug}", get(slugs::get))
        // The app endpoints of `apps_extra.rs`.
        .route("/users/{user}/apps", get(resources::list_user_apps))
        .route(
            "/apps/{app}/buildpack-installations",
            get(apps_extra::list_buildpacks).put(apps_extra::set_buildpacks),
        )
        .route("/stacks", get(stacks::list_stacks))
        .route("/stacks/{stack}", get(stacks::get_stack))
        .route("/slipway/stacks/{stack}/builds", post(stacks::build))
        .route(
            "/apps/{app}/available-stacks",
            get(stacks::available_stacks),
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
        .route(
            "/apps/{app}/collaborators",
            get(collaborators::list).post(collaborators::create),
        )
        .route(
            "/apps/{app}/collaborators/{collaborator}",
            get(collaborators::get)
                .patch(collaborators::update)
                .delete(collaborators::delete),
        )
        // Heroku features Slipway answers as absent, and Heroku Data's transfers (`integrations.rs`).
        .route("/pipelines", get(integrations::list_pipelines))
        .route("/spaces", get(integrations::list_spaces))
        .route("/account/app-transfers", post(app_transfers::create))
        .route("/apps/{app}/webhooks", get(integrations::list_webhooks))
        .route(
            "/client/v11/apps/{app}/transfers",
            get(integrations::list_transfers),
        )
        // The conventions' own routes.
        .route(conventions::RATE_LIMITS_PATH, get(conventions::rate_limits))
        .route("/openapi.json", get(crate::openapi::serve));
    let platform_api = conventions::layer_platform_api(platform_api, config.max_page_size);
    let limiter = conventions::RateLimiter::new(config.rate_limit_per_hour)
        .with_accounts_of(state.platform.clone());
    // Plain `heroku login` (`HEROKU_LOGIN_HOST` pointed here), with the logins it waits on.
    let browser_login = Router::new()
        .route("/auth", post(browser_login::start))
        .route(
            "/auth/browser/{id}",
            get(browser_login::browser_page).post(browser_login::browser_submit),
        )
        .route("/auth/cli/{id}", get(browser_login::cli_poll))
        .layer(axum::Extension(Arc::new(
            browser_login::BrowserLogins::default(),
        )));
    let all = Router::new()
        .merge(platform_api)
        .merge(browser_login)
        // Add-ons' `web_url` (`heroku addons:open`), a browser page with its own login.
        .route(
            "/addons-sso/apps/{app}/addons/{addon}",
            get(addons_sso::login).post(addons_sso::open),
        )
        .route("/log-sessions/{id}", get(logs::stream_session))
        .route("/build-outputs/{secret}", get(builds::output))
        .route("/slug-uploads/{token}", axum::routing::put(slugs::upload))
        .route("/{repo}/info/refs", get(git::info_refs))
        .route("/{repo}/git-receive-pack", post(git::receive_pack))
        .route("/{repo}/git-upload-pack", post(git::upload_pack))
        .route("/internal/git-hook/{app}", post(git::hook))
        .route("/slipway/ca.pem", get(crate::platform::ca_pem))
        // Standalone routers (`cluster_routes.rs`), with the cluster token.
        .route("/slipway/cluster/routes", get(cluster_routes::routes))
        .route("/slipway/cluster/certs", get(cluster_routes::certs))
        .route(
            "/slipway/cluster/router-events",
            post(cluster_routes::router_events),
        )
        .route("/buildpacks/{slug}", get(apps_extra::registry_buildpack))
        .route("/buildpacks", get(apps_extra::search_registry))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    let api = conventions::layer_all(all, limiter).with_state(state);
    // Host agents sync every second: their routes are outside the per-account rate limit.
    match agents {
        Some(cluster) => crate::agents::router(cluster).merge(api),
        None => api,
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found(
        "The requested API endpoint was not found. Are you using the right HTTP verb?",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::for_status(StatusCode::METHOD_NOT_ALLOWED)
}
