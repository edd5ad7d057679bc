//! The `formation` resource: how many dynos of each process type run, and how big they are.
//! `GET /apps/{app}/formation[/{type}]`, `PATCH /apps/{app}/formation` (batch) and
//! `PATCH /apps/{app}/formation/{type}`.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::refs::ResourceRef;

/// One process type's formation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Formation {
    pub app: ResourceRef,
    pub command: String,
    pub created_at: DateTime<Utc>,
    pub dyno_size: ResourceRef,
    pub id: Uuid,
    pub quantity: i64,
    /// Deprecated duplicate of `dyno_size.name`, still read by the heroku CLI.
    pub size: String,
    #[serde(rename = "type")]
    pub process_type: String,
    pub updated_at: DateTime<Utc>,
}

/// Body of `PATCH /apps/{app}/formation/{type}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FormationUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<FormationQuantity>,
    /// Deprecated spelling of the size (`"Standard-2X"`); the heroku CLI still sends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dyno_size: Option<DynoSizeIdentity>,
}

impl FormationUpdate {
    /// The dyno size asked for, from `dyno_size.name`, `dyno_size.id` or `size`.
    pub fn requested_size(&self) -> Option<&str> {
        requested_size(self.dyno_size.as_ref(), self.size.as_deref())
    }
}

/// Body of `PATCH /apps/{app}/formation`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FormationBatchUpdate {
    pub updates: Vec<FormationUpdateItem>,
}

/// One element of a batch formation update; `type` names the process type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FormationUpdateItem {
    #[serde(rename = "type")]
    pub process_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<FormationQuantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dyno_size: Option<DynoSizeIdentity>,
}

impl FormationUpdateItem {
    /// The dyno size asked for, from `dyno_size.name`, `dyno_size.id` or `size`.
    pub fn requested_size(&self) -> Option<&str> {
        requested_size(self.dyno_size.as_ref(), self.size.as_deref())
    }
}

fn requested_size<'a>(
    dyno_size: Option<&'a DynoSizeIdentity>,
    size: Option<&'a str>,
) -> Option<&'a str> {
    dyno_size
        .and_then(|d| d.name.as_deref().or(d.id.as_deref()))
        .or(size)
}

/// A dyno size named by `{"id": ...}` or `{"name": ...}` in an update.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DynoSizeIdentity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The `quantity` of a formation update.
///
/// The schema says integer, but the heroku CLI sends strings, with a sign for relative
/// changes: `ps:scale web=2 worker+1` sends `"2"` and `"+1"`. So this deserializes from a
/// JSON integer or from a string `N`, `+N` or `-N`. `Absolute` serializes as an integer,
/// `Relative` as a signed string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FormationQuantity {
    /// Run exactly this many dynos.
    Absolute(i64),
    /// Add this many dynos (negative: remove) to the current quantity.
    Relative(i64),
}

impl FormationQuantity {
    /// The quantity after applying this change to `current`; never below zero.
    pub fn apply(self, current: i64) -> i64 {
        match self {
            FormationQuantity::Absolute(n) => n.max(0),
            FormationQuantity::Relative(delta) => current.saturating_add(delta).max(0),
        }
    }

    /// Parses `N`, `+N` or `-N` as the heroku CLI writes them.
    pub fn parse(text: &str) -> Result<FormationQuantity, QuantityParseError> {
        let invalid = || QuantityParseError {
            input: text.to_owned(),
        };
        let trimmed = text.trim();
        let (relative, digits) = match trimmed.as_bytes().first() {
            Some(b'+') | Some(b'-') => (true, &trimmed[1..]),
            _ => (false, trimmed),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let magnitude: i64 = digits.parse().map_err(|_| invalid())?;
        Ok(match (relative, trimmed.starts_with('-')) {
            (false, _) => FormationQuantity::Absolute(magnitude),
            (true, false) => FormationQuantity::Relative(magnitude),
            (true, true) => FormationQuantity::Relative(-magnitude),
        })
    }
}

impl fmt::Display for FormationQuantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormationQuantity::Absolute(n) => write!(f, "{n}"),
            FormationQuantity::Relative(delta) => write!(f, "{delta:+}"),
        }
    }
}

/// A quantity that is neither an integer nor a signed integer string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid dyno quantity {input:?}: expected a whole number like 2, +1 or -1")]
pub struct QuantityParseError {
    pub input: String,
}

/// The OpenAPI schema of a quantity: an integer, or a string such as `"2"`, `"+1"` or `"-1"`.
impl utoipa::PartialSchema for FormationQuantity {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Integer))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^[+-]?[0-9]+$")),
            )
            .into()
    }
}

impl utoipa::ToSchema for FormationQuantity {}

impl Serialize for FormationQuantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            FormationQuantity::Absolute(n) => serializer.serialize_i64(*n),
            FormationQuantity::Relative(_) => serializer.serialize_str(&self.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for FormationQuantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct QuantityVisitor;
        impl de::Visitor<'_> for QuantityVisitor {
            type Value = FormationQuantity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string like \"2\", \"+1\" or \"-1\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(FormationQuantity::Absolute(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i64::try_from(v)
                    .map(FormationQuantity::Absolute)
                    .map_err(|_| E::custom(format!("quantity {v} is too large")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                FormationQuantity::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(QuantityVisitor)
    }
}

#[cfg(test)]
mod tests;
