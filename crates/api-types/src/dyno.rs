//! The `dyno` resource: running processes. `GET /apps/{app}/dynos[/{name}]`,
//! `POST /apps/{app}/dynos` (one-off), `DELETE` (restart) and `.../actions/stop`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::refs::{ReleaseRef, ResourceRef};

/// A dyno, named `<type>.<n>` (`web.1`, `run.1234`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Dyno {
    pub app: ResourceRef,
    pub attach_url: Option<String>,
    pub command: String,
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
    pub name: String,
    pub release: ReleaseRef,
    pub size: String,
    pub state: DynoState,
    #[serde(rename = "type")]
    pub process_type: String,
    pub updated_at: DateTime<Utc>,
}

/// The dyno states Heroku reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DynoState {
    /// A one-off dyno whose process has exited.
    Complete,
    Crashed,
    Down,
    Idle,
    Starting,
    Up,
}

impl DynoState {
    /// The wire spelling (`"up"`, ...), also what `ps` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            DynoState::Complete => "complete",
            DynoState::Crashed => "crashed",
            DynoState::Down => "down",
            DynoState::Idle => "idle",
            DynoState::Starting => "starting",
            DynoState::Up => "up",
        }
    }
}

/// Body of `POST /apps/{app}/dynos` (a one-off dyno, as sent by `heroku run`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DynoCreate {
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach: Option<bool>,
    /// The real CLI sends `COLUMNS` and `LINES` as numbers: numbers and booleans are read as
    /// their JSON spelling.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "env_values"
    )]
    pub env: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_no_tty: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub process_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_live: Option<i64>,
}

/// Reads `env`'s values: strings, or numbers and booleans as their JSON spelling.
fn env_values<'de, D>(deserializer: D) -> Result<Option<BTreeMap<String, String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Value {
        String(String),
        Number(serde_json::Number),
        Bool(bool),
    }
    let map = Option::<BTreeMap<String, Value>>::deserialize(deserializer)?;
    Ok(map.map(|map| {
        map.into_iter()
            .map(|(key, value)| {
                let value = match value {
                    Value::String(value) => value,
                    Value::Number(number) => number.to_string(),
                    Value::Bool(value) => value.to_string(),
                };
                (key, value)
            })
            .collect()
    }))
}

#[cfg(test)]
mod tests;
