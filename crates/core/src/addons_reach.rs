//! Which add-on servers a dyno of an app may open a connection to: the ports of the built-in
//! servers (embedded PostgreSQL, a Redis add-on's own server) of the add-ons attached to the
//! app, handed to the runtime as [`slipway_runtime::ContainerSpec::allowed_host_ports`]. The
//! runtime's firewall opens those ports at the dyno network's gateway to that container only;
//! a dyno of an app without a PostgreSQL or Redis add-on cannot reach either server at all.
//!
//! The answer comes from the platform's own records (attachments and add-on records, whose
//! URL the platform wrote), never from config vars, which a tenant can set to anything. An
//! add-on on an operator's server (`--addon-postgres-admin-url`) is reached over NAT like any
//! outside address and needs no port here; a third-party add-on lives at its provider.
//!
//! app.json's add-ons are provisioned before the release phase of the first deploy, but their
//! records are written with that deploy's release, after the phase: while such a deploy runs,
//! [`PendingReach`] holds their ports for the app.
//!
//! This module sits below `platform.rs` (the dyno manager uses it), so it reads the records
//! through their key layout rather than `addons.rs`' types.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde::Deserialize;
use slipway_store::json::{get_json, range_json};
use slipway_store::{Store, StoreError};
use uuid::Uuid;

use crate::config::PlatformConfig;

/// Where add-on records live: `addons/<name>`.
pub(crate) const ADDONS: &str = "addons/";
/// Where attachment records live: `addon-attachments/<app id>/<name>`.
pub(crate) const ATTACHMENTS: &str = "addon-attachments/";

pub(crate) fn addon_key(name: &str) -> String {
    format!("{ADDONS}{name}")
}

pub(crate) fn attachment_key(app: Uuid, name: &str) -> String {
    format!("{ATTACHMENTS}{app}/{name}")
}

/// The fields of an attachment record this module reads.
#[derive(Deserialize)]
struct AttachmentRef {
    addon_name: String,
}

/// The fields of an add-on record this module reads.
#[derive(Deserialize)]
struct AddonRef {
    url: String,
    #[serde(default)]
    partner: Option<serde_json::Value>,
}

/// The add-on server ports the dynos of `app` may reach, sorted, each once: those of its
/// attached built-in add-ons, and those of app.json add-ons a deploy of it is provisioning.
pub(crate) async fn addon_ports(
    store: &dyn Store,
    config: &PlatformConfig,
    app: Uuid,
) -> Result<Vec<u16>, StoreError> {
    let Some(servers) = &config.addons else {
        return Ok(Vec::new());
    };
    let servers = servers.config();
    let (attachments, _) =
        range_json::<AttachmentRef, _>(store, &format!("{ATTACHMENTS}{app}/")).await?;
    let mut ports = pending_ports(app);
    for (_, attachment) in attachments {
        let addon = get_json::<AddonRef, _>(store, &addon_key(&attachment.addon_name)).await?;
        if let Some(addon) = addon.filter(|a| a.partner.is_none()) {
            ports.extend(server_port(&addon.url, servers));
        }
    }
    ports.sort_unstable();
    ports.dedup();
    Ok(ports)
}

/// The port of a built-in add-on's URL when it points at this platform's own servers (their
/// listen address, one of their ports); `None` for an operator's server or anything else.
pub(crate) fn server_port(url: &str, servers: &slipway_addons::AddonsConfig) -> Option<u16> {
    let url = url::Url::parse(url).ok()?;
    let host: std::net::Ipv4Addr = url.host_str()?.parse().ok()?;
    let port = url.port()?;
    (host == servers.listen && servers.ports().iter().any(|r| r.contains(&port))).then_some(port)
}

/// Ports held for an app by deploys in flight, each deploy's under its own number.
type Pending = HashMap<Uuid, Vec<(u64, Vec<u16>)>>;

fn pending() -> &'static Mutex<(u64, Pending)> {
    static PENDING: OnceLock<Mutex<(u64, Pending)>> = OnceLock::new();
    PENDING.get_or_init(Default::default)
}

fn pending_ports(app: Uuid) -> Vec<u16> {
    let pending = pending().lock().unwrap_or_else(|e| e.into_inner());
    pending
        .1
        .get(&app)
        .into_iter()
        .flatten()
        .flat_map(|(_, ports)| ports.iter().copied())
        .collect()
}

/// The reach of add-ons provisioned for a deploy whose release has not been written yet (so
/// its release phase reaches them); it ends when dropped, by which time the release carries
/// the attachments, or no release came of the deploy and the add-ons were dropped.
#[derive(Debug, Default)]
pub(crate) struct PendingReach {
    held: Option<(Uuid, u64)>,
}

impl PendingReach {
    /// Adds `port` to what `app`'s dynos may reach while this is held.
    pub(crate) fn add(&mut self, app: Uuid, port: u16) {
        let mut guard = pending().lock().unwrap_or_else(|e| e.into_inner());
        let (next, pending) = &mut *guard;
        let number = match self.held {
            Some((_, number)) => number,
            None => {
                *next += 1;
                self.held = Some((app, *next));
                *next
            }
        };
        let entries = pending.entry(app).or_default();
        match entries.iter_mut().find(|(n, _)| *n == number) {
            Some((_, ports)) => ports.push(port),
            None => entries.push((number, vec![port])),
        }
    }
}

impl Drop for PendingReach {
    fn drop(&mut self) {
        let Some((app, number)) = self.held else {
            return;
        };
        let mut guard = pending().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entries) = guard.1.get_mut(&app) {
            entries.retain(|(n, _)| *n != number);
            if entries.is_empty() {
                guard.1.remove(&app);
            }
        }
    }
}

#[cfg(test)]
mod tests;
