//! Heroku Platform API v3 wire shapes shared by Slipway's API server and its CLI.
//!
//! Every struct here mirrors one JSON object of the Heroku platform API hyper-schema
//! (`/work/shared/heroku-platform-api-schema.json`): field names are exactly the schema's,
//! nullable fields are `Option` and are serialized as `null` (never omitted) in responses,
//! and optional request fields are omitted when `None`. These are wire types only: the
//! domain model lives elsewhere and converts into these at the HTTP boundary.

mod account;
mod addon;
mod app;
mod authorization;
mod build;
/// The control plane's streams to and from standalone routers (`slipway router`).
pub mod cluster;
mod config_vars;
mod domain;
mod dyno;
mod error;
mod formation;
mod logs;
mod range;
mod refs;
mod release;
pub mod rendezvous;

pub use account::Account;
pub use addon::{
    plan_name, Addon, AddonAttachment, AddonAttachmentCreate, AddonAttachmentResolve,
    AddonConfigVar, AddonCreate, AddonResolve, AddonService, AddonServiceRegister, AddonUpdate,
    AttachedAddon, AttachmentName, BillingEntity, Plan, PlanRef, Price, RegisteredAddonService,
};
pub use app::{
    App, AppCreate, AppFeature, AppFeatureUpdate, AppUpdate, BuildpackInstallation,
    BuildpackInstallationsUpdate, BuildpackRef, BuildpackUpdate, DomainUpdate, Region,
    RegionProvider, Stack,
};
pub use authorization::{
    AccessToken, AccountUpdate, AuthorizationUser, OAuthAuthorization, OAuthAuthorizationCreate,
    OAuthAuthorizationUpdate, SlipwayUser, SlipwayUserCreate, SlipwayUserUpdate,
};
pub use build::{
    Build, BuildCreate, BuildStatus, Buildpack, Slug, SlugBlob, SlugCreate, SourceBlob,
};
pub use config_vars::{ConfigVars, ConfigVarsUpdate};
pub use domain::{Domain, DomainCreate, DomainKind};
pub use dyno::{Dyno, DynoCreate, DynoState};
pub use error::ErrorBody;
pub use formation::{
    DynoSizeIdentity, Formation, FormationBatchUpdate, FormationQuantity, FormationUpdate,
    FormationUpdateItem, QuantityParseError,
};
pub use logs::{LogDrain, LogDrainAddon, LogDrainCreate, LogSession, LogSessionCreate};
pub use range::{ListRange, RangeOrder, RangeParseError};
pub use refs::{IdRef, ReleaseRef, ResourceRef, SpaceRef, UserRef};
pub use release::{Release, ReleaseArtifact, ReleaseCreate, ReleaseStatus};

/// The `Accept` header every Platform API v3 request carries; without it Heroku answers
/// 406 `not_acceptable`.
pub const ACCEPT_V3: &str = "application/vnd.heroku+json; version=3";

/// The media-type prefix shared by every v3 variant (`version=3.sdk`,
/// `version=3.docker-releases`, ...), which a server should accept as v3.
pub const ACCEPT_V3_PREFIX: &str = "application/vnd.heroku+json; version=3";

/// Default page size of a list request without a `Range` header.
pub const DEFAULT_RANGE_MAX: usize = 200;

/// Largest page size a `Range` header may ask for.
pub const MAX_RANGE_MAX: usize = 1000;
