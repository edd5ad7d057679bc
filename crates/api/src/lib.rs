//! Slipway's HTTP API: the Heroku Platform API v3 subset the CLIs use, git's smart-HTTP
//! endpoints, and the log-session streams.
//!
//! Handlers only parse: each change is a pure `parse_*` function from the request's path,
//! headers and body to a [`slipway_core::Command`] (tested as tables, without a server),
//! executed by [`slipway_core::Platform::execute`], where the caller is authorized; reads call
//! the platform's narrow query methods. Results become Heroku's JSON shapes
//! (`slipway-api-types`).
//!
//! Architecture Invariant: every route authenticates its caller — with an API key (Bearer or
//! Basic), with the one-time token of a git push (the hook endpoint), with the secret in a
//! log session's URL, or (standalone routers, `cluster_routes`) with the cluster token. None is open but `GET /slipway/ca.pem`, the platform CA's public
//! certificate.
//!
//! Architecture Invariant: the modules form a DAG. `state` (the shared state) and `error` import
//! no other module; `request` and `response` (what handlers parse and answer alike) import only
//! `error`; `outcome` (executing a command and taking its outcome) imports only `state` and
//! `error`; the handler modules import those, `auth` and `convert`; `conventions` (the
//! middleware every route sits behind) imports only `error` and `auth`, and `openapi` (the
//! document of every route) only `auth` and `conventions`; `routes` mounts the handlers behind
//! the conventions; the crate root only declares modules and re-exports.
//!
//! Architecture Invariant: every response follows the Platform API's conventions
//! (`conventions`): a `Request-Id`, `RateLimit-Remaining`, `{"id", "message"}` on errors, and
//! on the Platform API's routes the `Accept` gate, ETags and `Range` pagination.

mod account;
mod addon_services;
mod addons;
mod addons_backups;
mod addons_sso;
mod agents;
mod app_in_path;
mod app_transfers;
mod apps_extra;
mod auth;
mod browser_login;
mod builds;
mod certs;
mod cluster_routes;
mod collaborators;
mod conventions;
mod convert;
mod domains;
mod drains;
mod dynos;
mod error;
mod git;
mod integrations;
mod logs;
mod openapi;
mod outcome;
mod platform;
mod request;
mod resources;
mod response;
mod routes;
mod slugs;
mod stacks;
mod state;
#[cfg(test)]
mod testing;

pub use routes::router;
pub use state::{ApiConfig, ClusterApi};
