//! Build and slug resources: `POST/GET /apps/{app}/builds[/{id}]`,
//! `POST/GET /apps/{app}/slugs[/{id}]`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::refs::{IdRef, ResourceRef, UserRef};

/// A build: source tarball in, slug (and release) out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Build {
    pub app: IdRef,
    pub buildpacks: Option<Vec<Buildpack>>,
    pub created_at: DateTime<Utc>,
    /// `"cedar"` on Slipway.
    pub generation: String,
    pub id: Uuid,
    /// Plain-text (or SSE) stream of the build output; resumable.
    pub output_stream_url: String,
    pub source_blob: SourceBlob,
    pub release: Option<IdRef>,
    pub slug: Option<IdRef>,
    pub stack: String,
    #[schema(value_type = String)]
    pub status: BuildStatus,
    pub updated_at: DateTime<Utc>,
    pub user: UserRef,
}

/// Lifecycle of a build: the model's, which the core records in the same spelling.
pub use slipway_model::BuildStatus;

/// A buildpack to run, by URL and/or registry name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Buildpack {
    pub url: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// Where a build's gzipped source tarball came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SourceBlob {
    pub checksum: Option<String>,
    pub url: String,
    pub version: Option<String>,
    #[serde(default)]
    pub version_description: Option<String>,
}

/// Body of `POST /apps/{app}/builds`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BuildCreate {
    pub source_blob: SourceBlob,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildpacks: Option<Vec<Buildpack>>,
}

/// A slug: the compiled, runnable app archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Slug {
    pub blob: SlugBlob,
    pub buildpack_provided_description: Option<String>,
    pub checksum: Option<String>,
    pub commit: Option<String>,
    pub commit_description: Option<String>,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub deleted_at: Option<DateTime<Utc>>,
    pub id: Uuid,
    /// Process type name to command, from the Procfile or the buildpack's defaults.
    pub process_types: BTreeMap<String, String>,
    pub size: Option<i64>,
    pub stack: ResourceRef,
    pub updated_at: DateTime<Utc>,
}

/// Where a slug archive can be fetched from (`method` is `GET` or `PUT`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SlugBlob {
    pub method: String,
    pub url: String,
}

/// Body of `POST /apps/{app}/slugs`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SlugCreate {
    pub process_types: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buildpack_provided_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
}
