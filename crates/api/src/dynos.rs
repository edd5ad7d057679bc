//! Handlers for dynos: listing, and (later) restarting and stopping them.

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
