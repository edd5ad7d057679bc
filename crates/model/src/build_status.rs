//! Where a build stands: one enum for the core's records and the Platform API's `status`, which
//! spell it the same way (`pending`, `succeeded`, `failed`).

use serde::{Deserialize, Serialize};

/// Lifecycle of a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildStatus {
    Pending,
    Succeeded,
    Failed,
}
