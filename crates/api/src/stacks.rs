//! Stacks: `GET /stacks`, `GET /stacks/{stack}` (name or the id of any build) and
//! `GET /apps/{app}/available-stacks` list `host` and every built stack (the core's
//! `stacks.rs`); `POST /slipway/stacks/{name}/builds` (administrators, Slipway's own: Heroku's
//! schema has no such endpoint) builds one with debootstrap and streams its progress as plain
//! text lines. A stack built on Slipway shows its current build's id; `host` a fixed one.

use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, Utc};
use slipway_api_types as wire;
use slipway_core::{StackOutput, StackView, HOST_STACK};

use crate::app_in_path::AppInPath;
use crate::auth::{require_admin, CurrentUser};
use crate::convert::catalog_id;
use crate::error::ApiError;
use crate::response::{line_stream, list_response};
use crate::state::ApiState;

type ApiResult<T> = Result<T, ApiError>;

/// The last line of a stack build's stream when it failed: `slipway stacks:build` exits
/// non-zero on it (the status line went out before the build started).
pub(crate) const FAILED_PREFIX: &str = " !     ";

/// When the host stack came to be: it has no build, so a fixed instant keeps answers stable.
fn host_epoch() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default()
}

pub(crate) fn stack_json(view: &StackView, default_stack: &str) -> wire::Stack {
    match view {
        StackView::Host => wire::Stack {
            default: default_stack == HOST_STACK,
            created_at: host_epoch(),
            id: catalog_id("stack", HOST_STACK),
            name: HOST_STACK.into(),
            state: "public".into(),
            updated_at: host_epoch(),
        },
        StackView::Built(built) => wire::Stack {
            default: default_stack == built.name,
            created_at: built.created_at,
            id: built.id,
            name: built.name.clone(),
            state: "public".into(),
            updated_at: built.created_at,
        },
    }
}

fn all(state: &ApiState) -> Vec<wire::Stack> {
    let default = &state.platform.config().stack;
    state
        .platform
        .stacks()
        .iter()
        .map(|view| stack_json(view, default))
        .collect()
}

/// `GET /stacks`.
pub(crate) async fn list_stacks(State(state): State<ApiState>) -> Response {
    list_response(all(&state))
}

/// `GET /stacks/{stack}` (name or id).
pub(crate) async fn get_stack(
    State(state): State<ApiState>,
    Path(stack): Path<String>,
) -> ApiResult<Json<wire::Stack>> {
    let catalog_host = catalog_id("stack", HOST_STACK).to_string();
    let wanted = if stack == catalog_host {
        HOST_STACK
    } else {
        &stack
    };
    state
        .platform
        .stack(wanted)
        .map(|view| Json(stack_json(&view, &state.platform.config().stack)))
        .ok_or_else(|| ApiError::not_found("Couldn't find that stack."))
}

/// `GET /apps/{app}/available-stacks`.
pub(crate) async fn available_stacks(
    State(state): State<ApiState>,
    AppInPath { .. }: AppInPath,
) -> Response {
    list_response(all(&state))
}

/// `POST /slipway/stacks/{name}/builds`: the refusals an administrator can get before
/// anything starts are JSON errors; once the build starts, a 200 streams its progress, and a
/// failure ends the stream with a line starting [`FAILED_PREFIX`].
pub(crate) async fn build(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    require_admin(&user, "build stacks")?;
    if name == HOST_STACK {
        return Err(ApiError::invalid_params(
            "The host stack is the server's own system directories: there is nothing to build.",
        ));
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let output: StackOutput = {
        let tx = tx.clone();
        std::sync::Arc::new(move |line: &str| {
            let _ = tx.send(format!("{line}\n"));
        })
    };
    // The build runs to its end even if the administrator's connection drops: a half-built
    // stack is never used, but a finished one should not be thrown away.
    tokio::spawn(async move {
        if let Err(error) = state.platform.build_stack(&user, &name, output).await {
            let _ = tx.send(format!("{FAILED_PREFIX}{error}\n"));
        }
    });
    let stream = tokio_stream_lines(rx);
    Ok(line_stream(false, stream))
}

fn tokio_stream_lines(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<String>,
) -> impl futures::Stream<Item = Result<bytes::Bytes, Infallible>> + Send + 'static {
    futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|line| line.map(|l| Ok(bytes::Bytes::from(l))))
    })
}
