//! Slipway's domain value types: app names, process types, dyno names, config var keys, dyno
//! sizes, hostnames, secret tokens, and a build's status.
//!
//! Every other crate parses tenant input into these types once, at its edge, so the CLI, the
//! API and the core agree on what is valid by construction: a value of one of these types has
//! already passed its rule. Each type parses with `FromStr` and `TryFrom<String>` into an error
//! that says what is wrong and what is allowed, displays as the string it came from (in its
//! canonical form), and travels through serde as that plain string, validated again on the way
//! in.
//!
//! The crate does no IO and depends on no other Slipway crate; `rand` is only for
//! [`SecretToken::generate`].

#[macro_use]
mod string_type;

mod app_name;
mod build_status;
mod config_key;
mod dyno_name;
mod dyno_size;
mod host_name;
mod hostname;
mod process_type;
mod secret_token;

pub use app_name::{AppName, AppNameError};
pub use build_status::BuildStatus;
pub use config_key::{ConfigKey, ConfigKeyError};
pub use dyno_name::{DynoName, DynoNameError};
pub use dyno_size::{DynoSize, DynoSizeError};
pub use host_name::{HostName, HostNameError};
pub use hostname::{Hostname, HostnameError};
pub use process_type::{ProcessType, ProcessTypeError};
pub use secret_token::{SecretToken, SecretTokenError};
