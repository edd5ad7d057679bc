//! Dyno sizes and their limits: memory, processes, disk.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

/// A dyno size Heroku offers (dyno types, June 2024). Ordered from smallest to largest.
///
/// Its canonical spelling ([`DynoSize::as_str`], `Display`, serde) is lowercase, `standard-1x`;
/// [`DynoSize::display_name`] is how Heroku shows it, `Standard-1X`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DynoSize {
    Eco,
    Basic,
    Standard1X,
    Standard2X,
    PerformanceM,
    PerformanceL,
}

/// A size that is not one of [`DynoSize::ALL`]: refused rather than run as some default.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "Unknown dyno size {size}. Use one of: eco, basic, standard-1x, standard-2x, performance-m, performance-l."
)]
pub struct DynoSizeError {
    pub size: String,
}

const MIB: u64 = 1024 * 1024;

impl DynoSize {
    /// Every size, smallest first.
    pub const ALL: [DynoSize; 6] = [
        DynoSize::Eco,
        DynoSize::Basic,
        DynoSize::Standard1X,
        DynoSize::Standard2X,
        DynoSize::PerformanceM,
        DynoSize::PerformanceL,
    ];

    /// The canonical, lowercase spelling: `standard-1x`.
    pub fn as_str(self) -> &'static str {
        match self {
            DynoSize::Eco => "eco",
            DynoSize::Basic => "basic",
            DynoSize::Standard1X => "standard-1x",
            DynoSize::Standard2X => "standard-2x",
            DynoSize::PerformanceM => "performance-m",
            DynoSize::PerformanceL => "performance-l",
        }
    }

    /// The size as Heroku writes it in the API and the CLI: `Standard-1X`, `Eco`.
    pub fn display_name(self) -> &'static str {
        match self {
            DynoSize::Eco => "Eco",
            DynoSize::Basic => "Basic",
            DynoSize::Standard1X => "Standard-1X",
            DynoSize::Standard2X => "Standard-2X",
            DynoSize::PerformanceM => "Performance-M",
            DynoSize::PerformanceL => "Performance-L",
        }
    }

    /// The memory quota in MB: R14 past it, R15 (killed) at twice it.
    pub fn memory_mb(self) -> u64 {
        match self {
            DynoSize::Eco | DynoSize::Basic | DynoSize::Standard1X => 512,
            DynoSize::Standard2X => 1024,
            DynoSize::PerformanceM => 2560,
            DynoSize::PerformanceL => 14336,
        }
    }

    /// The memory quota in bytes.
    pub fn memory_bytes(self) -> u64 {
        self.memory_mb() * MIB
    }

    /// The most processes and threads a dyno may run (Heroku's process limits).
    pub fn pids(self) -> i64 {
        match self {
            DynoSize::Eco | DynoSize::Basic | DynoSize::Standard1X => 256,
            DynoSize::Standard2X => 512,
            DynoSize::PerformanceM => 16384,
            DynoSize::PerformanceL => 32768,
        }
    }

    /// How many times the base disk quota the size gets: the small sizes 1, standard-2x 2,
    /// performance-m 4, performance-l 8 (so 2, 4, 8 and 16 GiB with the default 2 GiB base).
    pub fn disk_factor(self) -> u64 {
        match self {
            DynoSize::Eco | DynoSize::Basic | DynoSize::Standard1X => 1,
            DynoSize::Standard2X => 2,
            DynoSize::PerformanceM => 4,
            DynoSize::PerformanceL => 8,
        }
    }
}

impl FromStr for DynoSize {
    type Err = DynoSizeError;

    /// Any case of a canonical name (`standard-1x`, `Standard-1X`), and `1X`/`2X`, the names
    /// Heroku gave standard-1x and standard-2x in 2014.
    fn from_str(size: &str) -> Result<DynoSize, DynoSizeError> {
        let lower = size.to_ascii_lowercase();
        let alias = match lower.as_str() {
            "1x" => Some(DynoSize::Standard1X),
            "2x" => Some(DynoSize::Standard2X),
            _ => None,
        };
        alias
            .or_else(|| DynoSize::ALL.into_iter().find(|s| s.as_str() == lower))
            .ok_or_else(|| DynoSizeError {
                size: size.to_owned(),
            })
    }
}

string_conversions!(DynoSize, DynoSizeError);

impl AsRef<str> for DynoSize {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for DynoSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
