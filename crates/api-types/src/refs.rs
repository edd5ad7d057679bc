//! Small nested reference objects (`{id, name}`, `{id, email}`, ...) embedded in resources.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A reference to a named resource: an app, region, stack, team, dyno size or generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResourceRef {
    pub id: Uuid,
    pub name: String,
}

/// A reference to a user account (`owner`, `user`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserRef {
    pub id: Uuid,
    pub email: String,
}

/// A reference by id only (`slug`, a build's `release` and `app`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IdRef {
    pub id: Uuid,
}

/// The release a dyno runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReleaseRef {
    pub id: Uuid,
    pub version: i64,
}

/// The private space an app lives in (always `null` on Slipway, kept for schema fidelity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SpaceRef {
    pub id: Uuid,
    pub name: String,
    pub shield: bool,
}
