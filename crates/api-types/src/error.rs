//! The error body every non-2xx API response carries: `{"id", "message", "url"}`.

use serde::{Deserialize, Serialize};

/// An API error. `id` is a machine-readable code such as `not_found`, `invalid_params`,
/// `unauthorized`; `message` is what clients show the user (the heroku CLI dumps raw HTTP
/// when it is missing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub id: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl ErrorBody {
    /// An error without a documentation link.
    pub fn new(id: impl Into<String>, message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            id: id.into(),
            message: message.into(),
            url: None,
        }
    }
}
