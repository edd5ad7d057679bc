//! The add-on catalog with registered third-party services, and the Partner API's side of
//! the platform:
//! - `/addon-services`, `/addon-services/{service}`, `/addon-services/{service}/plans[/{plan}]`
//!   list the built-in services and every registered one;
//! - `POST /slipway/addon-services {manifest, timeout_ms?}`, `GET /slipway/addon-services`
//!   and `DELETE /slipway/addon-services/{name}` register, show (password redacted) and
//!   remove services: administrators only, and Slipway's own (Heroku's schema has no such
//!   endpoint);
//! - `GET|PATCH /addons/{id}/config` and `POST /addons/{id}/actions/provision` are the
//!   provider's callbacks, authenticated by the add-on's own token (`oauth_grant.code` of the
//!   provision request) as `Authorization: Bearer`, never by a user's key.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use slipway_addons::partner::{PartnerPlan, MAX_MANIFEST_BYTES};
use slipway_addons::Service;
use slipway_api_types as wire;
use slipway_core::{AddonServiceRecord, Command, Outcome};

use crate::addons::{addon_json, plan_json, service_json};
use crate::auth::{api_key, CurrentUser};
use crate::error::ApiError;
use crate::request::parse_body_like;
use crate::response::list_response;
use crate::state::ApiState;

fn registered_json(record: &AddonServiceRecord) -> wire::AddonService {
    wire::AddonService {
        cli_plugin_name: None,
        created_at: record.created_at,
        human_name: record.service.human_name.clone(),
        id: record.id,
        name: record.service.name.clone(),
        state: "ga".into(),
        supports_multiple_installations: true,
        supports_sharing: true,
        updated_at: record.updated_at,
    }
}

fn registered_plan_json(
    record: &AddonServiceRecord,
    plan: &PartnerPlan,
    default: bool,
) -> wire::Plan {
    wire::Plan {
        addon_service: wire::ResourceRef {
            id: record.id,
            name: record.service.name.clone(),
        },
        created_at: record.created_at,
        default,
        description: format!("{} {}", record.service.human_name, plan.human_name),
        human_name: plan.human_name.clone(),
        id: plan_id(record, plan),
        name: format!("{}:{}", record.service.name, plan.name),
        price: wire::Price {
            cents: plan.price_cents,
            unit: "month".into(),
            contract: false,
        },
        state: "public".into(),
        updated_at: record.updated_at,
        visible: true,
    }
}

/// A stable id for a registered plan (the schema wants UUIDs): derived from the service's id
/// and the plan's name, so it stays the same across requests.
fn plan_id(record: &AddonServiceRecord, plan: &PartnerPlan) -> uuid::Uuid {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{}:{}", record.id, plan.name).as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

fn admin_json(record: &AddonServiceRecord) -> wire::RegisteredAddonService {
    let service = &record.service;
    wire::RegisteredAddonService {
        id: record.id,
        name: service.name.clone(),
        human_name: service.human_name.clone(),
        config_vars_prefix: service.prefix.clone(),
        config_vars: service.config_vars.clone(),
        password: "[REDACTED]".into(),
        base_url: service.base_url.clone(),
        sso_url: service.sso_url.clone(),
        plans: service.plans.iter().map(|p| p.name.clone()).collect(),
        timeout_ms: service.timeout_ms,
        created_at: record.created_at,
    }
}

/// A built-in service, or a registered one.
enum Found {
    BuiltIn(Service),
    Registered(Box<AddonServiceRecord>),
}

async fn find(state: &ApiState, service: &str) -> Result<Found, ApiError> {
    if let Some(found) = Service::ALL
        .into_iter()
        .find(|s| s.id() == service)
        .or_else(|| Service::parse(service))
    {
        return Ok(Found::BuiltIn(found));
    }
    state
        .platform
        .addon_service_record(service)
        .await?
        .map(|r| Found::Registered(Box::new(r)))
        .ok_or_else(|| ApiError::not_found("Couldn't find that add-on service."))
}

pub(crate) async fn services(
    State(state): State<ApiState>,
    CurrentUser(_user): CurrentUser,
) -> Result<Response, ApiError> {
    let mut out: Vec<wire::AddonService> = Service::ALL.into_iter().map(service_json).collect();
    out.extend(
        state
            .platform
            .addon_service_records()
            .await?
            .iter()
            .map(registered_json),
    );
    Ok(list_response(out))
}

pub(crate) async fn service(
    State(state): State<ApiState>,
    Path(service): Path<String>,
) -> Result<Json<wire::AddonService>, ApiError> {
    Ok(Json(match find(&state, &service).await? {
        Found::BuiltIn(service) => service_json(service),
        Found::Registered(record) => registered_json(&record),
    }))
}

fn plans_of(found: &Found) -> Vec<wire::Plan> {
    match found {
        Found::BuiltIn(service) => service.plans().iter().map(plan_json).collect(),
        Found::Registered(record) => record
            .service
            .plans
            .iter()
            .enumerate()
            .map(|(i, plan)| registered_plan_json(record, plan, i == 0))
            .collect(),
    }
}

pub(crate) async fn plans(
    State(state): State<ApiState>,
    CurrentUser(_user): CurrentUser,
    Path(service): Path<String>,
) -> Result<Response, ApiError> {
    Ok(list_response(plans_of(&find(&state, &service).await?)))
}

pub(crate) async fn plan(
    State(state): State<ApiState>,
    CurrentUser(_user): CurrentUser,
    Path((service, plan)): Path<(String, String)>,
) -> Result<Json<wire::Plan>, ApiError> {
    let short = plan.rsplit(':').next().unwrap_or(&plan).to_owned();
    plans_of(&find(&state, &service).await?)
        .into_iter()
        .find(|p| {
            p.id.to_string() == plan || p.name == plan || p.name.ends_with(&format!(":{short}"))
        })
        .map(Json)
        .ok_or_else(|| ApiError::not_found("Couldn't find that plan."))
}

fn forbidden_unless_admin(user: &slipway_core::model::User) -> Result<(), ApiError> {
    if user.admin {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Only an administrator can manage add-on services.",
        ))
    }
}

/// `POST /slipway/addon-services`.
pub(crate) fn parse_register(body: &[u8]) -> Result<Command, ApiError> {
    // The manifest's own cap is checked on its bytes; this bounds the envelope around it.
    if body.len() > 2 * MAX_MANIFEST_BYTES {
        return Err(ApiError::invalid_params(format!(
            "Invalid add-on manifest: it is larger than {MAX_MANIFEST_BYTES} bytes."
        )));
    }
    let request: wire::AddonServiceRegister = parse_body_like(
        body,
        r#"{"manifest": {"id": "fast-db", "api": {...}}, "timeout_ms": 10000}"#,
    )?;
    let manifest = serde_json::to_vec(&request.manifest)
        .map_err(|_| ApiError::bad_request("The manifest could not be read."))?;
    Ok(Command::RegisterAddonService {
        manifest,
        timeout_ms: request.timeout_ms,
    })
}

pub(crate) async fn register(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    body: bytes::Bytes,
) -> Result<(StatusCode, Json<wire::RegisteredAddonService>), ApiError> {
    forbidden_unless_admin(&user)?;
    let Outcome::AddonService(record) = state
        .platform
        .execute(&user, parse_register(&body)?)
        .await?
    else {
        return Err(ApiError::unexpected_outcome());
    };
    Ok((StatusCode::CREATED, Json(admin_json(&record))))
}

pub(crate) async fn admin_list(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
) -> Result<Response, ApiError> {
    forbidden_unless_admin(&user)?;
    let records = state.platform.addon_service_records().await?;
    Ok(list_response(records.iter().map(admin_json).collect()))
}

pub(crate) async fn remove(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(name): Path<String>,
) -> Result<Json<wire::RegisteredAddonService>, ApiError> {
    forbidden_unless_admin(&user)?;
    let Outcome::AddonService(record) = state
        .platform
        .execute(&user, Command::RemoveAddonService { name })
        .await?
    else {
        return Err(ApiError::unexpected_outcome());
    };
    Ok(Json(admin_json(&record)))
}

fn config_json(config: BTreeMap<String, String>) -> Vec<wire::AddonConfigVar> {
    config
        .into_iter()
        .map(|(name, value)| wire::AddonConfigVar {
            name,
            value: Some(value),
        })
        .collect()
}

/// A provider's config update: `{"config": [{name, value}]}` or the list alone. A `null`
/// value is refused: Slipway does not let a provider unset a var its add-on set.
pub(crate) fn parse_config_update(body: &[u8]) -> Result<BTreeMap<String, String>, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Update {
        Wrapped { config: Vec<wire::AddonConfigVar> },
        Bare(Vec<wire::AddonConfigVar>),
    }
    let update: Update = parse_body_like(
        body,
        r#"{"config": [{"name": "FAST_DB_URL", "value": "..."}]}"#,
    )?;
    let vars = match update {
        Update::Wrapped { config } | Update::Bare(config) => config,
    };
    let mut out = BTreeMap::new();
    for var in vars {
        let value = var.value.ok_or_else(|| {
            ApiError::invalid_params(format!(
                "{} has no value: a provider can set config vars, not unset them.",
                slipway_addons::partner::clean_message(&var.name, 100)
            ))
        })?;
        out.insert(var.name, value);
    }
    Ok(out)
}

fn callback_token(headers: &HeaderMap) -> Result<String, ApiError> {
    api_key(headers).ok_or_else(ApiError::unauthorized)
}

pub(crate) async fn get_config(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(addon): Path<String>,
) -> Result<Json<Vec<wire::AddonConfigVar>>, ApiError> {
    let token = callback_token(&headers)?;
    let config = state.platform.partner_get_config(&addon, &token).await?;
    Ok(Json(config_json(config)))
}

pub(crate) async fn update_config(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(addon): Path<String>,
    body: bytes::Bytes,
) -> Result<Json<Vec<wire::AddonConfigVar>>, ApiError> {
    let token = callback_token(&headers)?;
    let vars = parse_config_update(&body)?;
    let config = state
        .platform
        .partner_set_config(&addon, &token, vars)
        .await?;
    Ok(Json(config_json(config)))
}

pub(crate) async fn provisioned(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(addon): Path<String>,
) -> Result<Json<wire::Addon>, ApiError> {
    let token = callback_token(&headers)?;
    let view = state.platform.partner_provisioned(&addon, &token).await?;
    Ok(Json(addon_json(state.platform.config(), &view)))
}

#[cfg(test)]
mod tests;
