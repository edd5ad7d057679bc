//! Builds: `DELETE /apps/{app}/build-cache` empties the app's build cache. `POST /apps/{app}/builds {source_blob: {url, checksum, version}, buildpacks}` fetches
//! the tarball over HTTP(S) and deploys it as a push would, in the background; `GET
//! /apps/{app}/builds[/{id}]` shows how it went; the build's `output_stream_url`
//! (`/build-outputs/{secret}`, authenticated by its secret like a log session's URL, and only
//! while the build's user may still see the app) streams its output from the start, following
//! it until the build ends, as plain text or as Server-Sent Events when asked for
//! `text/event-stream`.
//!
//! The request is parsed into a [`Command`] by [`parse_create`] (tested in `builds/tests.rs`);
//! the core fetches the source through the `SourceFetcher` it was given, whose real one goes
//! through the platform's outbound policy: a URL whose host is (or resolves to) a loopback,
//! private, link-local or this host's own address is refused with 422 before anything starts,
//! every redirect hop is checked again (at most five), and the connection goes to the addresses
//! that were checked. Every failure to fetch gives the tenant one message
//! ([`slipway_core::source_blob_unreachable`]); the reason is in the server's log.

use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use slipway_api_types as wire;
use slipway_core::model;
use slipway_core::{Command, SourceBlob};

use crate::app_in_path::{AppInPath, OnApp};
use crate::auth::CurrentUser;
use crate::convert::catalog_id;
use crate::error::ApiError;
use crate::request::{last_event_id, parse_app, parse_body, wants_event_stream};
use crate::response::{line_stream, list_response};
use crate::state::ApiState;

type ApiResult<T> = Result<T, ApiError>;

pub(crate) fn build_json(
    state: &ApiState,
    app: &model::App,
    user: &model::User,
    build: &model::Build,
) -> wire::Build {
    wire::Build {
        app: wire::IdRef { id: app.id },
        buildpacks: Some(
            build
                .buildpacks
                .iter()
                .map(|name| {
                    // Built-ins are kept by their short name, URLs as given.
                    let shown = if name.contains("://") {
                        name.clone()
                    } else {
                        format!("heroku/{name}")
                    };
                    wire::Buildpack {
                        url: shown.clone(),
                        name: Some(shown),
                    }
                })
                .collect(),
        ),
        created_at: build.created_at,
        generation: "cedar".to_owned(),
        id: build.id,
        output_stream_url: format!(
            "{}/build-outputs/{}",
            state.platform.config().api_url.trim_end_matches('/'),
            build.output_secret
        ),
        source_blob: wire::SourceBlob {
            checksum: build.source_checksum.clone(),
            url: build.source_url.clone(),
            version: build.source_version.clone(),
            version_description: None,
        },
        release: build.release_id.map(|id| wire::IdRef { id }),
        slug: build.slug_id.map(|id| wire::IdRef { id }),
        stack: build.stack.clone(),
        status: build.status,
        updated_at: build.updated_at,
        user: wire::UserRef {
            id: if build.user_email == user.email {
                user.id
            } else {
                catalog_id("user", &build.user_email)
            },
            email: build.user_email.clone(),
        },
    }
}

/// `POST /apps/{app}/builds {source_blob: {url, checksum, version}, buildpacks}`.
pub(crate) fn parse_create(app: String, body: &[u8]) -> ApiResult<Command> {
    let app = parse_app(app)?;
    let request: wire::BuildCreate = parse_body(body)?;
    let is_http = reqwest::Url::parse(&request.source_blob.url)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https"));
    if !is_http {
        return Err(ApiError::invalid_params(format!(
            "source_blob.url {:?} is not an http:// or https:// URL. Point it at a tarball of the app's source.",
            request.source_blob.url
        )));
    }
    let buildpacks = request
        .buildpacks
        .unwrap_or_default()
        .into_iter()
        .map(|b| b.name.filter(|n| !n.is_empty()).unwrap_or(b.url))
        .collect();
    Ok(Command::CreateBuild {
        app,
        source: SourceBlob {
            url: request.source_blob.url,
            checksum: request.source_blob.checksum,
            version: request.source_blob.version,
        },
        buildpacks,
    })
}

/// Records the build and starts it; the core fetches the source through the outbound policy.
pub(crate) async fn create(
    call: OnApp,
    body: bytes::Bytes,
) -> ApiResult<(StatusCode, Json<wire::Build>)> {
    let (found, build) = call.execute(|app| parse_create(app, &body)).await?;
    let build = build_json(&call.state, &found, &call.user, &build);
    Ok((StatusCode::CREATED, Json(build)))
}

pub(crate) async fn list(
    State(state): State<ApiState>,
    AppInPath { user, app }: AppInPath,
) -> ApiResult<Response> {
    let builds = state.platform.builds(&app).await?;
    Ok(list_response(
        builds
            .iter()
            .map(|build| build_json(&state, &app, &user, build))
            .collect(),
    ))
}

pub(crate) async fn get(
    State(state): State<ApiState>,
    AppInPath { user, app }: AppInPath,
    Path((_, build)): Path<(String, String)>,
) -> ApiResult<Json<wire::Build>> {
    let build = state.platform.build(&app, &build).await?;
    Ok(Json(build_json(&state, &app, &user, &build)))
}

/// `DELETE /apps/{app}/build-cache`: empties the app's build cache (Heroku's "Delete cache"
/// link, which the `builds:cache:purge` plugin calls); answers `{}`.
pub(crate) async fn purge_cache(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(app): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let app = parse_app(app)?;
    match state
        .platform
        .execute(&user, Command::PurgeBuildCache { app })
        .await?
    {
        slipway_core::Outcome::BuildCachePurged => Ok(Json(serde_json::json!({}))),
        _ => Err(ApiError::unexpected_outcome()),
    }
}

/// `GET /build-outputs/{secret}`: the build's output from its start (or after
/// `Last-Event-ID`), following it until the build ends.
pub(crate) async fn output(
    State(state): State<ApiState>,
    Path(secret): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some((buffer, holder)) = state.platform.build_output(&secret) else {
        return (
            StatusCode::NOT_FOUND,
            "This build output does not exist or is no longer kept (outputs live in the server's memory); see the app's log (`slipway logs`) for the build's lines.\n",
        )
            .into_response();
    };
    // The URL works only as long as the access it was issued under.
    if !crate::logs::may_still_see(&state, &holder.user_email, &holder.app_id.to_string()).await {
        return (
            StatusCode::FORBIDDEN,
            "You no longer have access to this app, so its build outputs are closed to you.\n",
        )
            .into_response();
    }
    let sse = wants_event_stream(&headers);
    let from = last_event_id(&headers).map_or(0, |last| last + 1);
    let stream = buffer.follow(from).map(move |(number, line)| {
        let text = if sse {
            format!("id: {number}\ndata: {line}\n\n")
        } else {
            format!("{line}\n")
        };
        Ok::<_, Infallible>(bytes::Bytes::from(text))
    });
    line_stream(sse, stream)
}

#[cfg(test)]
mod tests;
