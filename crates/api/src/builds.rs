//! Builds: `POST /apps/{app}/builds {source_blob: {url, checksum, version}, buildpacks}` fetches
//! the tarball over HTTP(S) and deploys it as a push would, in the background; `GET
//! /apps/{app}/builds[/{id}]` shows how it went; the build's `output_stream_url`
//! (`/build-outputs/{secret}`, authenticated by its secret like a log session's URL) streams
//! its output from the start, following it until the build ends, as plain text or as
//! Server-Sent Events when asked for `text/event-stream`.
//!
//! The fetch goes through the platform's [`OutboundPolicy`]: a URL whose host is (or resolves
//! to) a loopback, private, link-local or this host's own address is refused with 422 before
//! anything starts, every redirect hop is checked again (at most five), and the connection goes
//! to the addresses that were checked. Every failure to fetch gives the tenant one message
//! ([`slipway_core::source_blob_unreachable`]); the reason is in the server's log.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::{StreamExt, TryStreamExt};
use slipway_api_types as wire;
use slipway_core::model;
use slipway_core::{source_blob_unreachable, SourceBlob, SourceBody, SourceFetch};
use slipway_outbound::OutboundPolicy;

use crate::auth::CurrentUser;
use crate::convert::catalog_id;
use crate::error::ApiError;
use crate::resources::{list_response, parse_body};
use crate::ApiState;

type ApiResult<T> = Result<T, ApiError>;

/// How long connecting to a source blob's server may take.
const FETCH_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a source blob's server may stay silent mid-transfer.
const FETCH_READ_TIMEOUT: Duration = Duration::from_secs(60);

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
                .map(|name| wire::Buildpack {
                    url: format!("heroku/{name}"),
                    name: Some(format!("heroku/{name}")),
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
        status: match build.status {
            model::BuildStatus::Pending => wire::BuildStatus::Pending,
            model::BuildStatus::Succeeded => wire::BuildStatus::Succeeded,
            model::BuildStatus::Failed => wire::BuildStatus::Failed,
        },
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

/// The future that fetches `url`'s body, run inside the build's task. Its error is the whole
/// sentence the tenant sees.
fn fetch(policy: OutboundPolicy, url: reqwest::Url, max_bytes: u64) -> SourceFetch {
    Box::pin(async move {
        let host = url.host_str().unwrap_or("that URL").to_owned();
        let unreachable = |detail: &dyn std::fmt::Display| {
            tracing::warn!(host, %detail, "could not fetch a source blob");
            source_blob_unreachable(&host)
        };
        let client = policy
            .http_client(
                reqwest::Client::builder()
                    .connect_timeout(FETCH_CONNECT_TIMEOUT)
                    .read_timeout(FETCH_READ_TIMEOUT),
            )
            .build()
            .map_err(|error| unreachable(&error))?;
        let response = match policy.get(&client, url).await {
            Ok(response) => response,
            // A refusal says nothing about what listens there: say why.
            Err(error) if error.is_refused() => {
                return Err(format!(
                    "Could not fetch the source blob from {host}: {error}"
                ))
            }
            Err(error) => return Err(unreachable(&error)),
        };
        let status = response.status();
        if !status.is_success() {
            return Err(unreachable(&format!("answered {status}")));
        }
        if let Some(length) = response.content_length().filter(|l| *l > max_bytes) {
            return Err(format!(
                "The source blob from {host} is {length} bytes, more than the limit of {} MB; make the tarball smaller (leave out dependencies and build output)",
                max_bytes / (1024 * 1024)
            ));
        }
        let stream = response.bytes_stream().map_err(std::io::Error::other);
        Ok(Box::new(tokio_util::io::StreamReader::new(stream)) as SourceBody)
    })
}

pub(crate) async fn create(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(app): Path<String>,
    body: bytes::Bytes,
) -> ApiResult<(StatusCode, Json<wire::Build>)> {
    let app = state.platform.app(&user, &app).await?;
    let request: wire::BuildCreate = parse_body(&body)?;
    let url = reqwest::Url::parse(&request.source_blob.url)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https"))
        .ok_or_else(|| {
            ApiError::invalid_params(format!(
                "source_blob.url {:?} is not an http:// or https:// URL. Point it at a tarball of the app's source.",
                request.source_blob.url
            ))
        })?;
    let config = state.platform.config();
    if let Err(error) = config.outbound.check_url(&url).await {
        return Err(ApiError::invalid_params(format!(
            "source_blob.url is refused: {error}. Point it at a tarball on a public server."
        )));
    }
    let (policy, max_bytes) = (config.outbound.clone(), config.max_source_blob_bytes);
    let blob = SourceBlob {
        url: request.source_blob.url.clone(),
        checksum: request.source_blob.checksum.clone(),
        version: request.source_blob.version.clone(),
    };
    let buildpacks = request
        .buildpacks
        .unwrap_or_default()
        .into_iter()
        .map(|b| b.name.filter(|n| !n.is_empty()).unwrap_or(b.url))
        .collect();
    let build = state
        .platform
        .create_build(&user, &app, blob, buildpacks, fetch(policy, url, max_bytes))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(build_json(&state, &app, &user, &build)),
    ))
}

pub(crate) async fn list(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(app): Path<String>,
) -> ApiResult<Response> {
    let app = state.platform.app(&user, &app).await?;
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
    CurrentUser(user): CurrentUser,
    Path((app, build)): Path<(String, String)>,
) -> ApiResult<Json<wire::Build>> {
    let app = state.platform.app(&user, &app).await?;
    let build = state.platform.build(&app, &build).await?;
    Ok(Json(build_json(&state, &app, &user, &build)))
}

/// `GET /build-outputs/{secret}`: the build's output from its start (or after
/// `Last-Event-ID`), following it until the build ends.
pub(crate) async fn output(
    State(state): State<ApiState>,
    Path(secret): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(buffer) = state.platform.build_output(&secret) else {
        return (
            StatusCode::NOT_FOUND,
            "This build output does not exist or is no longer kept (outputs live in the server's memory); see the app's log (`slipway logs`) for the build's lines.\n",
        )
            .into_response();
    };
    let sse = crate::logs::wants_event_stream(&headers);
    let from = crate::logs::last_event_id(&headers).map_or(0, |last| last + 1);
    let stream = buffer.follow(from).map(move |(number, line)| {
        let text = if sse {
            format!("id: {number}\ndata: {line}\n\n")
        } else {
            format!("{line}\n")
        };
        Ok::<_, Infallible>(bytes::Bytes::from(text))
    });
    let content_type = if sse {
        "text/event-stream; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}
