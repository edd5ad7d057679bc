//! The platform core: composes the store, the runtime, the builder, the router's route table
//! and the log hub into Slipway's operations (apps, deploys, releases, config, formation) and
//! runs the dyno manager.
//!
//! The API crate parses HTTP requests into [`Command`]s and hands them to
//! [`Platform::execute`], the one entry for every change (reads are narrow query methods);
//! everything that happens to an app goes through here. State lives in the store ([`model`]
//! documents the key layout); the dyno manager and the route publisher react to watches on
//! it, never to direct calls.
//!
//! Architecture Invariant: nothing here serves HTTP or knows the Heroku JSON shapes; the only
//! HTTP it speaks is as a client, fetching source blobs through the outbound policy
//! (`source_fetcher.rs`).//!
//! Architecture Invariant: this file only declares modules and re-exports, and the modules
//! form a DAG (the tidy test `no_import_cycles_inside_a_crate` checks it). [`Platform`] lives
//! in `platform.rs`, which imports none of the `impl Platform` blocks (one module per concern)
//! that depend on it; `execute.rs` sits above them all.

mod access;
mod addon_redis;
mod addons;
mod addons_reach;
mod addons_size;
mod app_json;
mod apps;
mod attach;
mod authorizations;
mod backup_schedule;
mod backups;
mod build_output;
mod buildpacks;
mod builds;
mod certs;
pub mod cluster;
mod command;
mod config;
mod deploy;
mod domains;
mod drains;
mod dyno_manager;
mod dyno_spec;
mod error;
mod execute;
mod formation;
mod idling;
pub mod leader;
pub mod model;
mod oneoff;
mod oneoff_registry;
mod output;
mod platform;
mod queries;
mod release_phase;
mod releases;
mod rename;
mod routes;
mod slug_store;
mod source_fetcher;
mod stacks;
pub mod telemetry;
mod uids;
mod users;

pub use access::{Access, Collaborator, Member, Permission, Role, COLLABORATOR_DEFAULT};
pub use addons::{
    addon_web_url, Addon, AddonAttachment, AddonServiceRecord, AddonSso, AddonView, PartnerAddon,
    PartnerState, ADDON_WEB_PATH,
};
pub use addons_size::ADDON_SIZE_CHECK_SECS;
pub use authorizations::{secrets_match, Authorization, NewAuthorization, GLOBAL_SCOPE};
pub use backup_schedule::BackupSchedule;
pub use backups::Backup;
pub use build_output::{OutputBuffer, OutputHolder, SlugDeclaration};
pub use buildpacks::{builtin_buildpack_names, canonical_buildpack, canonical_buildpacks};
pub use certs::{
    load_or_create_ca, spawn_cert_publisher, spawn_uploaded_cert_publisher, CaError, UploadedCert,
};
pub use command::{
    AppChanges, Certificate, Command, FormationChange, NewSlug, Outcome, PushedSource, Quantity,
    RestartTarget,
};
pub use config::{BuildBudget, DynoManagerConfig, PlatformConfig, ONE_OFF_MAX_TIME_TO_LIVE};
pub use domains::normalize_hostname;
pub use error::CoreError;
pub use model::{Domain, DomainKind, Drain, SniEndpoint};
pub use output::DeployOutput;
pub use platform::Platform;
pub use routes::spawn_route_publisher;
pub use slipway_build::BUILD_DISK_BYTES;
pub use slipway_slugstore::SlugStore;
pub use source_fetcher::{
    source_blob_unreachable, SourceBlob, SourceBody, SourceFetch, SourceFetcher,
};
pub use stacks::{BuiltStack, StackOutput, StackView, StacksConfig, HOST_STACK};
pub use uids::parse_uid_range;
pub use users::{AccountProfile, LoginThrottle, MIN_PASSWORD_LEN};
