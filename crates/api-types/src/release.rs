//! The `release` resource: `GET /apps/{app}/releases[/{id_or_version}]`, `POST` to create
//! or roll back.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::refs::{IdRef, ResourceRef, UserRef};

/// A release: a slug plus config vars, numbered `v1`, `v2`, ... per app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Release {
    pub addon_plan_names: Vec<String>,
    #[serde(default)]
    pub artifacts: Vec<ReleaseArtifact>,
    pub app: ResourceRef,
    pub created_at: DateTime<Utc>,
    pub description: String,
    pub id: Uuid,
    pub updated_at: DateTime<Utc>,
    pub slug: Option<IdRef>,
    pub status: ReleaseStatus,
    pub user: UserRef,
    pub version: i64,
    pub current: bool,
    pub output_stream_url: Option<String>,
    pub eligible_for_rollback: bool,
}

/// A build artifact of a release (`{"type": "slug", "id": ...}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReleaseArtifact {
    #[serde(rename = "type")]
    pub artifact_type: String,
    pub id: Uuid,
}

/// Lifecycle of a release. `pending` while its release phase runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReleaseStatus {
    Failed,
    Pending,
    Succeeded,
    Expired,
}

impl ReleaseStatus {
    /// The wire spelling (`"succeeded"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseStatus::Failed => "failed",
            ReleaseStatus::Pending => "pending",
            ReleaseStatus::Succeeded => "succeeded",
            ReleaseStatus::Expired => "expired",
        }
    }
}

/// Body of `POST /apps/{app}/releases`. Either `slug` (create a release from a slug, with an
/// optional `description`) or `release` (roll back to that release id or version).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReleaseCreate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci_image: Option<String>,
}
