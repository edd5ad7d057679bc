//! Add-on servers for Slipway: an embedded (or existing) PostgreSQL server on which each
//! add-on is a role and a database, and a Redis server process per add-on (or an ACL user confined
//! to its key prefix on an existing Redis server); provisioning,
//! deprovisioning, plan changes and credential rotation on them. The crate knows add-ons only
//! by their resource names: which app has which add-on, and the config vars and releases that
//! attach them, are the core's.

mod backup;
mod error;
mod manager;
pub mod partner;
mod plans;
mod postgres;
mod process;
mod redis;
mod resp;
mod secret;
mod shared_redis;

pub use error::AddonsError;
pub use manager::{check_resource, Addons, AddonsConfig, Provisioned};
pub use plans::{parse_plan, Plan, PlanError, Service};
pub use postgres::{PgStats, SizeCheck};
pub use redis::RedisInfo;
