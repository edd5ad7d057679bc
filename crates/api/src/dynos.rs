//! Handlers for dynos: listing, restarting (`DELETE`) and stopping (`actions/stop`) them.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use slipway_api_types as wire;

use crate::auth::CurrentUser;
use crate::convert;
use crate::error::ApiError;
use crate::resources::list_response;
use crate::ApiState;

type ApiResult<T> = Result<T, ApiError>;

pub(crate) async fn list_dynos(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(app): Path<String>,
) -> ApiResult<Response> {
    let app = state.platform.app(&user, &app).await?;
    let dynos: Vec<wire::Dyno> = state
        .platform
        .dynos(&app)
        .await?
        .iter()
        .map(|dyno| convert::dyno(&app, dyno))
        .collect();
    Ok(list_response(dynos))
}

pub(crate) async fn get_dyno(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path((app, dyno)): Path<(String, String)>,
) -> ApiResult<Json<wire::Dyno>> {
    let app = state.platform.app(&user, &app).await?;
    state
        .platform
        .dynos(&app)
        .await?
        .iter()
        .find(|d| d.name == dyno || d.id.to_string() == dyno)
        .map(|d| Json(convert::dyno(&app, d)))
        .ok_or_else(|| ApiError::not_found("Couldn't find that dyno."))
}

/// Heroku answers restarts and stops with `202 Accepted` and an empty object.
fn accepted() -> Response {
    axum::response::IntoResponse::into_response((
        axum::http::StatusCode::ACCEPTED,
        Json(serde_json::json!({})),
    ))
}

/// `DELETE /apps/{app}/dynos`: restarts every dyno (web dynos with preboot).
pub(crate) async fn restart_all(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(app): Path<String>,
) -> ApiResult<Response> {
    let app = state.platform.app(&user, &app).await?;
    state.platform.restart_dynos(&app, None, false).await?;
    Ok(accepted())
}

/// `DELETE /apps/{app}/dynos/{dyno}` (a dyno) and `DELETE /apps/{app}/formations/{type}`.
pub(crate) async fn restart(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path((app, target)): Path<(String, String)>,
) -> ApiResult<Response> {
    let app = state.platform.app(&user, &app).await?;
    state
        .platform
        .restart_dynos(&app, Some(&target), false)
        .await?;
    Ok(accepted())
}

/// `POST /apps/{app}/dynos/{dyno}/actions/stop` and `.../formations/{type}/actions/stop`:
/// stops the dynos; the formation then starts them again, as on Heroku's Common Runtime.
pub(crate) async fn stop(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path((app, target)): Path<(String, String)>,
) -> ApiResult<Response> {
    let app = state.platform.app(&user, &app).await?;
    state
        .platform
        .restart_dynos(&app, Some(&target), true)
        .await?;
    Ok(accepted())
}
