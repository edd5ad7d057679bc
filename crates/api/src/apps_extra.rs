//! The app endpoints the real heroku CLI calls beyond the app itself: the user's apps,
//! buildpack installations, stacks, regions, app features, teams and `domains:update`.
//!
//! Slipway is one place: `/regions` lists exactly that (the region named by `slipway server
//! --region`; the stacks are `stacks.rs`'s), and the app features are the platform's own
//! (`preboot`, set for the whole platform). Changes are parsed by pure `parse_*` functions
//! (tested as tables in `apps_extra/tests.rs`) and executed by the core.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use slipway_api_types as wire;
use slipway_core::Command;

use crate::app_in_path::{AppInPath, OnApp};
use crate::auth::CurrentUser;
use crate::convert::catalog_id;
use crate::domains::domain_json;
use crate::error::ApiError;
use crate::request::{find_named, parse_app, parse_body_like};
use crate::response::list_response;
use crate::state::ApiState;

type ApiResult<T> = Result<T, ApiError>;

/// When the fixed catalog entries (stack, region, features) came to be: Slipway has no
/// record of them, so a fixed instant keeps the answers stable.
fn catalog_epoch() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

fn installations(buildpacks: &[String]) -> Vec<wire::BuildpackInstallation> {
    buildpacks
        .iter()
        .zip(0u32..)
        .map(|(name, ordinal)| wire::BuildpackInstallation {
            ordinal,
            buildpack: wire::BuildpackRef {
                name: name.clone(),
                url: name.clone(),
            },
        })
        .collect()
}

/// `GET /apps/{app}/buildpack-installations`.
pub(crate) async fn list_buildpacks(
    State(state): State<ApiState>,
    AppInPath { app, .. }: AppInPath,
) -> ApiResult<Response> {
    let buildpacks = state.platform.buildpacks(&app).await?;
    Ok(list_response(installations(&buildpacks)))
}

/// `PUT /apps/{app}/buildpack-installations {"updates":[{"buildpack":"X"}, ...]}`.
pub(crate) fn parse_set_buildpacks(app: String, body: &[u8]) -> ApiResult<Command> {
    let app = parse_app(app)?;
    let request: wire::BuildpackInstallationsUpdate =
        parse_body_like(body, r#"{"updates": [{"buildpack": "heroku/python"}]}"#)?;
    let buildpacks: Vec<String> = request.updates.into_iter().map(|u| u.buildpack).collect();
    // Checked here too, so a bad name is answered before the app is touched.
    slipway_core::canonical_buildpacks(&buildpacks)
        .map_err(|error| ApiError::invalid_params(error.to_string()))?;
    Ok(Command::SetBuildpacks { app, buildpacks })
}

pub(crate) async fn set_buildpacks(call: OnApp, body: bytes::Bytes) -> ApiResult<Response> {
    let (_, buildpacks): (_, Vec<String>) =
        call.execute(|app| parse_set_buildpacks(app, &body)).await?;
    Ok(list_response(installations(&buildpacks)))
}

/// `GET /buildpacks/{namespace/name}`: the buildpack registry the heroku CLI asks (at
/// `HEROKU_BUILDPACK_REGISTRY_URL`) before `buildpacks:set/add heroku/python`. It answers with
/// the name itself as `blob_url`, which the CLI then installs: the installation is where a
/// name is checked, and refused with the built-ins listed. (The CLI reads no status here: a
/// 404 would make it send an empty update.) Public, as Heroku's registry is (the CLI sends no
/// credentials); it reveals nothing.
pub(crate) async fn registry_buildpack(Path(slug): Path<String>) -> Json<serde_json::Value> {
    // Echoed back only as far as a registry name goes: namespace/name in a few characters.
    let name: String = slug
        .chars()
        .take(100)
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_'))
        .collect();
    Json(serde_json::json!({"name": name, "blob_url": name}))
}

/// What `heroku buildpacks:search TERM` asks the registry: `in[namespace][]`, `in[name][]`
/// (each a list) and `like[description]`, all optional and combined with "and".
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct RegistrySearch {
    namespaces: Vec<String>,
    names: Vec<String>,
    description: Option<String>,
}

/// Parses a registry search's query string (percent-decoded; unknown keys are ignored, as a
/// registry does).
pub(crate) fn parse_registry_search(query: &str) -> RegistrySearch {
    let mut search = RegistrySearch::default();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let value = value.trim().to_ascii_lowercase();
        match key.as_ref() {
            "in[namespace][]" | "in[namespace]" => search.namespaces.push(value),
            "in[name][]" | "in[name]" => search.names.push(value),
            "like[description]" => search.description = Some(value),
            _ => {}
        }
    }
    search
}

/// The built-in buildpacks a registry search finds, as the registry lists them.
pub(crate) fn registry_search(search: &RegistrySearch) -> Vec<serde_json::Value> {
    slipway_core::builtin_buildpack_names()
        .into_iter()
        .filter_map(|full| {
            let (namespace, name) = full.split_once('/')?;
            let description = format!("{name} (built into Slipway)");
            let wanted = (search.namespaces.is_empty()
                || search.namespaces.iter().any(|n| n == namespace))
                && (search.names.is_empty() || search.names.iter().any(|n| n == name))
                && search
                    .description
                    .as_ref()
                    .is_none_or(|d| description.to_ascii_lowercase().contains(d.as_str()));
            wanted.then(|| {
                serde_json::json!({
                    "namespace": namespace,
                    "name": name,
                    "category": "languages",
                    "description": description,
                    "blob_url": full,
                })
            })
        })
        .collect()
}

/// `GET /buildpacks?...`: the registry's search (`heroku buildpacks:search`), over Slipway's
/// built-in buildpacks, the only ones it runs. Public, as Heroku's registry is.
pub(crate) async fn search_registry(
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Json<Vec<serde_json::Value>> {
    Json(registry_search(&parse_registry_search(
        query.as_deref().unwrap_or(""),
    )))
}

pub(crate) fn region_json(name: &str) -> wire::Region {
    wire::Region {
        country: "Local".into(),
        created_at: catalog_epoch(),
        description: format!("Slipway ({name})"),
        id: catalog_id("region", name),
        locale: name.to_owned(),
        name: name.to_owned(),
        private_capable: false,
        provider: wire::RegionProvider {
            name: "slipway".into(),
            region: name.to_owned(),
        },
        updated_at: catalog_epoch(),
    }
}

/// `GET /regions`.
pub(crate) async fn list_regions(State(state): State<ApiState>) -> Response {
    list_response(vec![region_json(&state.platform.config().region)])
}

/// `GET /regions/{region}` (name or id).
pub(crate) async fn get_region(
    State(state): State<ApiState>,
    Path(region): Path<String>,
) -> ApiResult<Json<wire::Region>> {
    let found = region_json(&state.platform.config().region);
    if region == found.name || region == found.id.to_string() {
        Ok(Json(found))
    } else {
        Err(ApiError::not_found("Couldn't find that region."))
    }
}

/// The app features Slipway has: `preboot`, on or off for the whole platform.
fn features(state: &ApiState) -> Vec<wire::AppFeature> {
    let preboot = state.platform.config().dynos.preboot;
    vec![wire::AppFeature {
        created_at: catalog_epoch(),
        description: "Provide seamless web dyno deploys: new web dynos start and take traffic before the old ones stop. Set for the whole platform with `slipway server --preboot`.".into(),
        display_name: "Preboot".into(),
        doc_url: "https://devcenter.heroku.com/articles/preboot".into(),
        enabled: preboot,
        feedback_email: None,
        id: catalog_id("feature", "preboot"),
        name: "preboot".into(),
        state: "general".into(),
        updated_at: catalog_epoch(),
    }]
}

fn find_feature(state: &ApiState, feature: &str) -> ApiResult<wire::AppFeature> {
    find_named(features(state), "feature", |f| {
        f.name == feature || f.id.to_string() == feature
    })
}

/// `GET /apps/{app}/features`.
pub(crate) async fn list_features(
    State(state): State<ApiState>,
    AppInPath { .. }: AppInPath,
) -> Response {
    list_response(features(&state))
}

/// `GET /apps/{app}/features/{feature}`.
pub(crate) async fn get_feature(
    State(state): State<ApiState>,
    AppInPath { .. }: AppInPath,
    Path((_, feature)): Path<(String, String)>,
) -> ApiResult<Json<wire::AppFeature>> {
    Ok(Json(find_feature(&state, &feature)?))
}

/// `PATCH /apps/{app}/features/{feature} {"enabled"}`: asking for the state it has is
/// answered with it; changing it is refused, as it is the platform's, not the app's.
pub(crate) async fn update_feature(
    State(state): State<ApiState>,
    AppInPath { .. }: AppInPath,
    Path((_, feature)): Path<(String, String)>,
    body: bytes::Bytes,
) -> ApiResult<Json<wire::AppFeature>> {
    let request: wire::AppFeatureUpdate = parse_body_like(&body, r#"{"enabled": true}"#)?;
    let found = find_feature(&state, &feature)?;
    if request.enabled != found.enabled {
        return Err(ApiError::invalid_params(format!(
            "The {} feature is {} for every app on this Slipway; an administrator changes it with `slipway server --preboot {}`.",
            found.name,
            if found.enabled { "enabled" } else { "disabled" },
            request.enabled
        )));
    }
    Ok(Json(found))
}

/// `GET /teams`: Slipway has no teams.
pub(crate) async fn list_teams(CurrentUser(_): CurrentUser) -> Response {
    list_response(Vec::<serde_json::Value>::new())
}

/// `GET /apps/{app}/pipeline-couplings`: Slipway has no pipelines.
pub(crate) async fn pipeline_couplings(AppInPath { .. }: AppInPath) -> ApiError {
    ApiError::not_found("Couldn't find that pipeline coupling: Slipway has no pipelines.")
}

/// `PATCH /apps/{app}/domains/{domain} {"sni_endpoint"}` (`heroku domains:update --cert`).
/// Slipway's router picks the certificate that covers the hostname itself, so this checks the
/// endpoint exists and covers the domain, and answers with the domain served by it.
pub(crate) async fn update_domain(
    State(state): State<ApiState>,
    AppInPath { app, .. }: AppInPath,
    Path((_, domain)): Path<(String, String)>,
    body: bytes::Bytes,
) -> ApiResult<Json<wire::Domain>> {
    let request: wire::DomainUpdate =
        parse_body_like(&body, r#"{"sni_endpoint": "sni-1a2b3c4d"}"#)?;
    let domains = state.platform.domains(&app).await?;
    let found = find_named(domains, "domain", |d| {
        d.hostname == domain.to_ascii_lowercase() || d.id.to_string() == domain
    })?;
    let mut json = domain_json(&state, &app, &found);
    if let Some(endpoint) = request.sni_endpoint {
        let endpoint = state.platform.sni_endpoint(&app, &endpoint).await?;
        if !endpoint.covers(&found.hostname) {
            return Err(ApiError::invalid_params(format!(
                "The certificate {} does not cover {}; it covers {}.",
                endpoint.name,
                found.hostname,
                endpoint.cert_domains.join(", ")
            )));
        }
        json.sni_endpoint = Some(wire::ResourceRef {
            id: endpoint.id,
            name: endpoint.name,
        });
    }
    Ok(Json(json))
}

#[cfg(test)]
mod tests;
