//! Slugs: `POST /apps/{app}/slugs {process_types, commit, checksum, stack}` declares a slug and
//! answers its `blob: {method: "PUT", url}`, an unguessable upload URL on this server
//! (`/slug-uploads/{token}`, authenticated by its token, as S3's presigned URLs are); a `PUT`
//! of the tar.gz there stores it once it unpacks and matches the declared checksum (422 and
//! nothing stored otherwise). `POST /apps/{app}/releases {slug}` then releases it.
//! `GET /apps/{app}/slugs/{id}` shows a slug, uploaded or still waiting for its upload.
//! Declaring one is parsed into a [`Command`] by [`parse_create`] (tested in `slugs/tests.rs`).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use futures::{StreamExt, TryStreamExt};
use slipway_api_types as wire;
use slipway_core::model;
use slipway_core::{Command, NewSlug, SlugDeclaration};

use crate::app_in_path::AppInPath;
use crate::auth::CurrentUser;
use crate::convert::catalog_id;
use crate::error::ApiError;
use crate::outcome::execute_on_app;
use crate::request::{parse_app, parse_body};
use crate::state::ApiState;

type ApiResult<T> = Result<T, ApiError>;

fn stack_ref(name: &str) -> wire::ResourceRef {
    wire::ResourceRef {
        id: catalog_id("stack", name),
        name: name.to_owned(),
    }
}

fn upload_url(state: &ApiState, token: &str) -> String {
    format!(
        "{}/slug-uploads/{token}",
        state.platform.config().api_url.trim_end_matches('/')
    )
}

fn declared_json(state: &ApiState, declaration: &SlugDeclaration) -> wire::Slug {
    wire::Slug {
        blob: wire::SlugBlob {
            method: "PUT".to_owned(),
            url: upload_url(state, &declaration.upload_token),
        },
        buildpack_provided_description: declaration.buildpack_description.clone(),
        checksum: declaration.checksum.clone(),
        commit: declaration.commit.clone(),
        commit_description: None,
        created_at: declaration.created_at,
        deleted_at: None,
        id: declaration.id,
        process_types: declaration.process_types.clone(),
        size: None,
        stack: stack_ref(&declaration.stack),
        updated_at: declaration.created_at,
    }
}

/// An uploaded slug. Its blob is not downloadable from Slipway: the URL names it in the slug
/// store, for reference.
fn slug_json(state: &ApiState, slug: &model::Slug) -> wire::Slug {
    wire::Slug {
        blob: wire::SlugBlob {
            method: "GET".to_owned(),
            url: format!(
                "{}/slugs/{}.tgz",
                state.platform.config().api_url.trim_end_matches('/'),
                slug.digest()
            ),
        },
        buildpack_provided_description: Some(slug.buildpack_description.clone())
            .filter(|d| !d.is_empty()),
        checksum: Some(slug.checksum.clone()),
        commit: slug.commit.clone(),
        commit_description: None,
        created_at: slug.created_at,
        deleted_at: None,
        id: slug.id,
        process_types: slug.process_types.clone(),
        size: Some(slug.size as i64),
        // The stack build the slug was built on, when it has one (a release keeps its stack).
        stack: match slug.stack_id {
            Some(id) => wire::ResourceRef {
                id,
                name: slug.stack.clone(),
            },
            None => stack_ref(&slug.stack),
        },
        updated_at: slug.created_at,
    }
}

/// `POST /apps/{app}/slugs {process_types, commit, checksum, stack}`.
pub(crate) fn parse_create(app: String, body: &[u8]) -> ApiResult<Command> {
    let app = parse_app(app)?;
    let request: wire::SlugCreate = parse_body(body)?;
    Ok(Command::DeclareSlug {
        app,
        slug: NewSlug {
            process_types: request.process_types,
            commit: request.commit,
            checksum: request.checksum,
            stack: request.stack,
            buildpack_description: request.buildpack_provided_description,
        },
    })
}

pub(crate) async fn create(
    State(state): State<ApiState>,
    CurrentUser(user): CurrentUser,
    Path(app): Path<String>,
    body: bytes::Bytes,
) -> ApiResult<(StatusCode, Json<wire::Slug>)> {
    let (_, declaration): (_, SlugDeclaration) =
        execute_on_app(&state, &user, app, |app| parse_create(app, &body)).await?;
    Ok((
        StatusCode::CREATED,
        Json(declared_json(&state, &declaration)),
    ))
}

pub(crate) async fn get(
    State(state): State<ApiState>,
    AppInPath { app, .. }: AppInPath,
    Path((_, slug)): Path<(String, String)>,
) -> ApiResult<Json<wire::Slug>> {
    let slug_id: uuid::Uuid = slug
        .parse()
        .map_err(|_| ApiError::not_found("Couldn't find that slug."))?;
    if let Some(declaration) = state.platform.declared_slug(&app, slug_id) {
        return Ok(Json(declared_json(&state, &declaration)));
    }
    let slug = state.platform.slug(&app, slug_id).await?;
    Ok(Json(slug_json(&state, &slug)))
}

/// `PUT /slug-uploads/{token}`: the slug's tarball.
pub(crate) async fn upload(
    State(state): State<ApiState>,
    Path(token): Path<String>,
    body: Body,
) -> ApiResult<StatusCode> {
    // Heroku's cap on slugs (500 MB compressed, `--max-slug-size-mb`): the body is counted as
    // it streams and cut off past the cap, so an oversized upload never lands on disk whole.
    let max = state.platform.config().build.max_slug_bytes;
    let over = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut received: u64 = 0;
    let flag = over.clone();
    let capped = body
        .into_data_stream()
        .map_err(std::io::Error::other)
        .map(move |chunk| {
            let chunk = chunk?;
            received += chunk.len() as u64;
            if received > max {
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
                return Err(std::io::Error::new(
                    std::io::ErrorKind::FileTooLarge,
                    "the slug is over the size cap",
                ));
            }
            Ok(chunk)
        });
    let reader = tokio_util::io::StreamReader::new(capped);
    let result = state.platform.upload_slug(&token, reader).await;
    if over.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "Slug size is too large (max is {}M). Upload a smaller slug.",
                max / (1024 * 1024)
            ),
        ));
    }
    match result {
        Ok(_) => Ok(StatusCode::OK),
        Err(slipway_core::CoreError::NotFound { .. }) => Err(ApiError::not_found(
            "This upload URL does not exist or has expired (they last an hour); create the slug again with POST /apps/{app}/slugs.",
        )),
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests;
