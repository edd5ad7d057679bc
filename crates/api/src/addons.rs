//! Add-ons: `/apps/{app}/addons`, `/addons`, `/addon-attachments`, the catalog
//! (`/addon-services`, their plans) and the CLI's resolve actions. Every change is parsed
//! into a [`Command`] by a pure `parse_*` function (tested in `addons/tests.rs`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use slipway_addons::{Plan, Service};
use slipway_api_types as wire;
use slipway_core::{addon_web_url, AddonAttachment, AddonView, Command, Outcome, PlatformConfig};

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::request::{parse_app, parse_body, parse_body_like};
use crate::response::list_response;
use crate::state::ApiState;

/// The catalog's fixed timestamps (the schema wants them; the catalog never changes).
fn catalog_time() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap_or_default()
}

fn uuid(s: &str) -> uuid::Uuid {
    s.parse().unwrap_or_default()
}

fn price(plan: Option<&Plan>) -> wire::Price {
    wire::Price {
        cents: plan.map_or(0, |p| u64::from(p.price_cents)),
        unit: "month".into(),
        contract: false,
    }
}

pub(crate) fn addon_json(config: &PlatformConfig, view: &AddonView) -> wire::Addon {
    let addon = &view.addon;
    let plan = addon.plan();
    let service = Service::parse(&addon.service);
    let app = wire::ResourceRef {
        id: addon.app_id,
        name: addon.app_name.clone(),
    };
    // A third-party add-on's service id, price and message are its registration's.
    let partner = addon.partner.as_ref();
    let billed = match partner {
        Some(partner) => wire::Price {
            cents: partner.price_cents,
            unit: "month".into(),
            contract: false,
        },
        None => price(plan),
    };
    wire::Addon {
        actions: Vec::new(),
        addon_service: wire::ResourceRef {
            id: partner.map_or_else(
                || service.map(|s| uuid(s.id())).unwrap_or_default(),
                |p| p.service_id,
            ),
            name: addon.service.clone(),
        },
        app: app.clone(),
        billed_price: billed.clone(),
        billing_entity: wire::BillingEntity {
            id: app.id,
            name: app.name,
            kind: "app".into(),
        },
        config_vars: view.config_vars(),
        created_at: addon.created_at,
        id: addon.id,
        name: addon.name.clone(),
        plan: wire::PlanRef {
            id: plan.map(|p| uuid(p.id)).unwrap_or_default(),
            name: format!("{}:{}", addon.service, addon.plan),
            price: billed,
        },
        provider_id: addon.resource.clone(),
        provision_message: partner.and_then(|p| p.message.clone()),
        state: addon.state().into(),
        updated_at: addon.updated_at,
        web_url: Some(addon_web_url(config, addon.app_id, addon.id)),
    }
}

fn attachment_json(
    config: &PlatformConfig,
    view: Option<&AddonView>,
    a: &AddonAttachment,
) -> wire::AddonAttachment {
    let owner = view.map_or(
        wire::ResourceRef {
            id: a.app_id,
            name: a.app_name.clone(),
        },
        |v| wire::ResourceRef {
            id: v.addon.app_id,
            name: v.addon.app_name.clone(),
        },
    );
    wire::AddonAttachment {
        addon: wire::AttachedAddon {
            id: a.addon_id,
            name: a.addon_name.clone(),
            app: owner,
        },
        app: wire::ResourceRef {
            id: a.app_id,
            name: a.app_name.clone(),
        },
        created_at: a.created_at,
        id: a.id,
        name: a.name.clone(),
        namespace: None,
        updated_at: a.updated_at,
        // The add-on's page in the attached app's context, as the schema describes it.
        web_url: Some(addon_web_url(config, a.app_id, a.addon_id)),
        log_input_url: None,
    }
}

pub(crate) fn service_json(service: Service) -> wire::AddonService {
    wire::AddonService {
        cli_plugin_name: None,
        created_at: catalog_time(),
        human_name: service.human_name().into(),
        id: uuid(service.id()),
        name: service.name().into(),
        state: "ga".into(),
        supports_multiple_installations: true,
        supports_sharing: true,
        updated_at: catalog_time(),
    }
}

pub(crate) fn plan_json(plan: &Plan) -> wire::Plan {
    wire::Plan {
        addon_service: wire::ResourceRef {
            id: uuid(plan.service.id()),
            name: plan.service.name().into(),
        },
        created_at: catalog_time(),
        default: plan.service.default_plan() == plan,
        description: format!("{} {}", plan.service.human_name(), plan.human_name()),
        human_name: plan.human_name(),
        id: uuid(plan.id),
        name: plan.full_name(),
        price: price(Some(plan)),
        state: "public".into(),
        updated_at: catalog_time(),
        visible: true,
    }
}

/// `POST /apps/{app}/addons {plan, name?, attachment{name}?}`.
pub(crate) fn parse_create(app: String, body: &[u8]) -> Result<Command, ApiError> {
    let app = parse_app(app)?;
    let request: wire::AddonCreate = parse_body(body)?;
    let plan = request
        .plan
        .as_ref()
        .and_then(wire::plan_name)
        .ok_or_else(|| {
            ApiError::bad_request(
                "Expected a body like {\"plan\": \"heroku-postgresql:essential-0\"}: plan is required.",
            )
        })?;
    Ok(Command::CreateAddon {
        app,
        plan,
        attachment: request.attachment.and_then(|a| a.name),
        name: request.name,
        options: parse_options(request.config)?,
    })
}

/// Most options one `addons:create` may pass to a provider.
const MAX_OPTIONS: usize = 32;
/// Longest option name, and longest value, in bytes.
const MAX_OPTION_NAME: usize = 64;
const MAX_OPTION_VALUE: usize = 1024;

/// The create body's `config` (`addons:create ... -- --key value --flag`): an object of
/// option names (`[A-Za-z0-9_.-]`) to strings or `true`, as the heroku CLI sends them, bounded
/// in count and size before a provider sees them; absent or `null`: none.
fn parse_options(
    config: Option<serde_json::Value>,
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    let bad = |why: String| {
        ApiError::invalid_params(format!(
            "Invalid add-on options: {why}. Pass them as `-- --name value` (at most {MAX_OPTIONS}; names of letters, digits, `_`, `.` and `-`; values of at most {MAX_OPTION_VALUE} bytes)."
        ))
    };
    let options = match config {
        None | Some(serde_json::Value::Null) => return Ok(serde_json::Map::new()),
        Some(serde_json::Value::Object(options)) => options,
        Some(_) => return Err(bad("config must be an object".into())),
    };
    if options.len() > MAX_OPTIONS {
        return Err(bad(format!("{} options given", options.len())));
    }
    for (name, value) in &options {
        let name_ok = !name.is_empty()
            && name.len() <= MAX_OPTION_NAME
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !name_ok {
            let shown: String = name.chars().take(MAX_OPTION_NAME).collect();
            return Err(bad(format!("the option name {shown:?} is not allowed")));
        }
        let value_ok = match value {
            serde_json::Value::Bool(true) => true,
            serde_json::Value::String(s) => {
                s.len() <= MAX_OPTION_VALUE && !s.chars().any(char::is_control)
            }
            _ => false,
        };
        if !value_ok {
            return Err(bad(format!(
                "the value of --{name} must be a string without control characters or true"
            )));
        }
    }
    Ok(options)
}

/// `PATCH /addons/{addon} {plan}`.
pub(crate) fn parse_update(addon: String, body: &[u8]) -> Result<Command, ApiError> {
    let request: wire::AddonUpdate = parse_body(body)?;
    let plan = request
        .plan
        .as_ref()
        .and_then(wire::plan_name)
        .ok_or_else(|| {
            ApiError::bad_request(
                "Expected a body like {\"plan\": \"heroku-postgresql:essential-1\"}: plan is required.",
            )
        })?;
    Ok(Command::ChangeAddonPlan { addon, plan })
}

/// `POST /addon-attachments {addon, app, name?}`.
pub(crate) fn parse_attach(body: &[u8]) -> Result<Command, ApiError> {
    let request: wire::AddonAttachmentCreate = parse_body_like(
        body,
        r#"{"addon": "postgresql-curved-12345", "app": "demo"}"#,
    )?;
    Ok(Command::AttachAddon {
        app: parse_app(request.app)?,
        addon: request.addon,
        name: request.name,
    })
}

pub(crate) async fn list_app(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(app): Path<String>,
) -> Result<Response, ApiError> {
    let views = state.platform.app_addons(&user, &app).await?;
    Ok(list_response(
        views
            .iter()
            .map(|v| addon_json(state.platform.config(), v))
            .collect::<Vec<_>>(),
    ))
}

pub(crate) async fn list_all(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
) -> Result<Response, ApiError> {
    let views = state.platform.addons(&user).await?;
    Ok(list_response(
        views
            .iter()
            .map(|v| addon_json(state.platform.config(), v))
            .collect::<Vec<_>>(),
    ))
}

pub(crate) async fn create(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(app): Path<String>,
    body: bytes::Bytes,
) -> Result<(StatusCode, Json<wire::Addon>), ApiError> {
    let Outcome::Addon(view) = state
        .platform
        .execute(&user, parse_create(app, &body)?)
        .await?
    else {
        return Err(ApiError::unexpected_outcome());
    };
    Ok((
        StatusCode::CREATED,
        Json(addon_json(state.platform.config(), &view)),
    ))
}

pub(crate) async fn get(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(addon): Path<String>,
) -> Result<Json<wire::Addon>, ApiError> {
    let view = state.platform.addon(&user, &addon).await?;
    Ok(Json(addon_json(state.platform.config(), &view)))
}

/// `GET /apps/{app}/addons/{addon}/sso`: the form that signs the caller in at a third-party
/// add-on's dashboard, in the shape `heroku addons:open` (with `HEROKU_SUDO`) posts from a
/// page of its own: `{"action": sso_url, "method": "post", "params": {...}}`.
pub(crate) async fn sso(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path((app, addon)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let form = state.platform.addon_sso(&user, &app, &addon).await?;
    Ok(Json(serde_json::json!({
        "action": form.action,
        "method": form.method,
        "params": form.params,
    })))
}

pub(crate) async fn get_for_app(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path((app, addon)): Path<(String, String)>,
) -> Result<Json<wire::Addon>, ApiError> {
    state.platform.app(&user, &app).await?;
    get(State(state), CurrentUser(user), Path(addon)).await
}

pub(crate) async fn update(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(addon): Path<String>,
    body: bytes::Bytes,
) -> Result<Json<wire::Addon>, ApiError> {
    let Outcome::Addon(view) = state
        .platform
        .execute(&user, parse_update(addon, &body)?)
        .await?
    else {
        return Err(ApiError::unexpected_outcome());
    };
    Ok(Json(addon_json(state.platform.config(), &view)))
}

pub(crate) async fn update_for_app(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path((app, addon)): Path<(String, String)>,
    body: bytes::Bytes,
) -> Result<Json<wire::Addon>, ApiError> {
    // The app in the path must be one the caller sees, as for every app route.
    state.platform.app(&user, &app).await?;
    update(State(state), CurrentUser(user), Path(addon), body).await
}

pub(crate) async fn delete(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(addon): Path<String>,
) -> Result<Json<wire::Addon>, ApiError> {
    let Outcome::Addon(view) = state
        .platform
        .execute(&user, Command::DestroyAddon { addon })
        .await?
    else {
        return Err(ApiError::unexpected_outcome());
    };
    let mut json = addon_json(state.platform.config(), &view);
    json.state = "deprovisioned".into();
    Ok(Json(json))
}

pub(crate) async fn delete_for_app(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path((app, addon)): Path<(String, String)>,
) -> Result<Json<wire::Addon>, ApiError> {
    // The app in the path must be one the caller sees, as for every app route.
    state.platform.app(&user, &app).await?;
    delete(State(state), CurrentUser(user), Path(addon)).await
}

/// `POST /addons/{addon}/actions/rotate-credentials` (Slipway's `pg:credentials:rotate`).
pub(crate) async fn rotate(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(addon): Path<String>,
) -> Result<Json<wire::Addon>, ApiError> {
    let Outcome::Addon(view) = state
        .platform
        .execute(&user, Command::RotateAddonCredentials { addon })
        .await?
    else {
        return Err(ApiError::unexpected_outcome());
    };
    Ok(Json(addon_json(state.platform.config(), &view)))
}

/// `GET /addons/{addon}/stats`: Slipway's `pg:info` figures (size, connections, limits).
pub(crate) async fn stats(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(addon): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (view, stats) = state.platform.addon_stats(&user, &addon).await?;
    let plan = view.addon.plan();
    Ok(Json(serde_json::json!({
        "addon": addon_json(state.platform.config(), &view),
        "size_bytes": stats.map(|s| s.size_bytes),
        "connections": stats.map(|s| s.connections),
        "connection_limit": plan.map(|p| p.connections),
        "size_limit_bytes": stats.map(|s| s.size_limit_bytes).or(plan.map(|p| p.max_bytes)),
        "read_only": stats.map(|s| s.read_only),
    })))
}

pub(crate) async fn addon_attachments(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(addon): Path<String>,
) -> Result<Response, ApiError> {
    let view = state.platform.addon(&user, &addon).await?;
    Ok(list_response(
        view.attachments
            .iter()
            .map(|a| attachment_json(state.platform.config(), Some(&view), a))
            .collect::<Vec<_>>(),
    ))
}

async fn attachments_json(
    state: &ApiState,
    user: &slipway_core::model::User,
    app: Option<&str>,
) -> Result<Vec<wire::AddonAttachment>, ApiError> {
    let attachments = state.platform.addon_attachments(user, app).await?;
    let views = state.platform.addons(user).await?;
    Ok(attachments
        .iter()
        .map(|a| {
            attachment_json(
                state.platform.config(),
                views.iter().find(|v| v.addon.id == a.addon_id),
                a,
            )
        })
        .collect())
}

pub(crate) async fn list_attachments(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
) -> Result<Response, ApiError> {
    Ok(list_response(attachments_json(&state, &user, None).await?))
}

pub(crate) async fn list_app_attachments(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(app): Path<String>,
) -> Result<Response, ApiError> {
    Ok(list_response(
        attachments_json(&state, &user, Some(&app)).await?,
    ))
}

pub(crate) async fn attach(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    body: bytes::Bytes,
) -> Result<(StatusCode, Json<wire::AddonAttachment>), ApiError> {
    let Outcome::AddonAttachment(attachment) =
        state.platform.execute(&user, parse_attach(&body)?).await?
    else {
        return Err(ApiError::unexpected_outcome());
    };
    let view = state
        .platform
        .addon(&user, &attachment.addon_name)
        .await
        .ok();
    Ok((
        StatusCode::CREATED,
        Json(attachment_json(
            state.platform.config(),
            view.as_ref(),
            &attachment,
        )),
    ))
}

pub(crate) async fn detach(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(attachment): Path<String>,
) -> Result<Json<wire::AddonAttachment>, ApiError> {
    let Outcome::AddonAttachment(attachment) = state
        .platform
        .execute(
            &user,
            Command::DetachAddon {
                attachment,
                app: None,
            },
        )
        .await?
    else {
        return Err(ApiError::unexpected_outcome());
    };
    Ok(Json(attachment_json(
        state.platform.config(),
        None,
        &attachment,
    )))
}

pub(crate) async fn get_attachment(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(attachment): Path<String>,
) -> Result<Json<wire::AddonAttachment>, ApiError> {
    let attachment = state
        .platform
        .addon_attachment(&user, &attachment, None)
        .await?;
    Ok(Json(attachment_json(
        state.platform.config(),
        None,
        &attachment,
    )))
}

/// `POST /actions/addons/resolve {addon, app?}`: the add-ons the CLI's argument names.
pub(crate) async fn resolve(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    body: bytes::Bytes,
) -> Result<Json<Vec<wire::Addon>>, ApiError> {
    let request: wire::AddonResolve = parse_body_like(&body, r#"{"addon": "DATABASE"}"#)?;
    if let Ok(view) = state.platform.addon(&user, &request.addon).await {
        return Ok(Json(vec![addon_json(state.platform.config(), &view)]));
    }
    // Otherwise an attachment name on the app (`DATABASE`, `DATABASE_URL`).
    let name = request.addon.trim_end_matches("_URL");
    if let Some(app) = request.app.as_deref() {
        if let Ok(attachment) = state
            .platform
            .addon_attachment(&user, name, Some(app))
            .await
        {
            let view = state.platform.addon(&user, &attachment.addon_name).await?;
            return Ok(Json(vec![addon_json(state.platform.config(), &view)]));
        }
    }
    Err(ApiError::not_found("Couldn't find that add-on."))
}

/// `POST /actions/addon-attachments/resolve {addon_attachment, app?}`.
pub(crate) async fn resolve_attachment(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    body: bytes::Bytes,
) -> Result<Json<Vec<wire::AddonAttachment>>, ApiError> {
    let request: wire::AddonAttachmentResolve =
        parse_body_like(&body, r#"{"addon_attachment": "DATABASE", "app": "demo"}"#)?;
    let name = request.addon_attachment.trim_end_matches("_URL");
    let attachment = state
        .platform
        .addon_attachment(&user, name, request.app.as_deref())
        .await?;
    let view = state
        .platform
        .addon(&user, &attachment.addon_name)
        .await
        .ok();
    Ok(Json(vec![attachment_json(
        state.platform.config(),
        view.as_ref(),
        &attachment,
    )]))
}

#[cfg(test)]
mod tests;
