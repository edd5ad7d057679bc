//! Dyno names: a process type and a number, `web.1`, `run.3`, `release.1`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{ProcessType, ProcessTypeError};

#[cfg(test)]
mod tests;

/// One dyno: `<process type>.<number>`, e.g. `web.1`. Ordered by process type, then by
/// number, so `web.2` comes before `web.10`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DynoName {
    pub process_type: ProcessType,
    pub number: u32,
}

/// Why a string is not a dyno name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DynoNameError {
    #[error("{name:?} is not a dyno name: use <process type>.<number>, e.g. web.1.")]
    MissingNumber { name: String },
    #[error(
        "{name:?} is not a dyno name: the number after the dot must be a whole number without leading zeros, e.g. web.1."
    )]
    InvalidNumber { name: String },
    #[error("{name:?} is not a dyno name: {source}")]
    InvalidProcessType {
        name: String,
        source: ProcessTypeError,
    },
}

impl DynoName {
    /// The dyno numbered `number` of `process_type`.
    pub fn new(process_type: ProcessType, number: u32) -> DynoName {
        DynoName {
            process_type,
            number,
        }
    }
}

impl FromStr for DynoName {
    type Err = DynoNameError;

    fn from_str(name: &str) -> Result<DynoName, DynoNameError> {
        // Process types have no dots, so the last dot is the only one a valid name has.
        let Some((process_type, number)) = name.rsplit_once('.') else {
            return Err(DynoNameError::MissingNumber {
                name: name.to_owned(),
            });
        };
        let process_type =
            process_type
                .parse()
                .map_err(|source| DynoNameError::InvalidProcessType {
                    name: name.to_owned(),
                    source,
                })?;
        // `u32::from_str` also takes `+1`; only the canonical decimal spelling round-trips.
        let canonical = !number.is_empty()
            && number.bytes().all(|b| b.is_ascii_digit())
            && (number == "0" || !number.starts_with('0'));
        let number = number.parse().ok().filter(|_| canonical).ok_or_else(|| {
            DynoNameError::InvalidNumber {
                name: name.to_owned(),
            }
        })?;
        Ok(DynoName {
            process_type,
            number,
        })
    }
}

string_conversions!(DynoName, DynoNameError);

impl fmt::Display for DynoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.process_type, self.number)
    }
}
