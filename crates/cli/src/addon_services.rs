//! `addons:services`, `addons:services:add MANIFEST` and `addons:services:remove NAME`: the
//! catalog's services, and registering third-party providers by their Heroku add-on manifest
//! (administrators only).

use std::io::{Read, Write};
use std::path::Path;

use anyhow::Context;
use reqwest::Method;
use serde_json::{json, Value};
use slipway_api_types::{AddonService, AddonServiceRegister, RegisteredAddonService};

use crate::action::action_done;
use crate::client::Client;

/// The largest manifest file read (the server refuses more than 64 kB too).
const MAX_MANIFEST_FILE: u64 = 64 * 1024;

/// `Slug  Name  State`, as `heroku addons:services` prints it.
pub(crate) fn format_services(services: &[AddonService]) -> String {
    // Each column is as wide as its widest cell, and at least as its four-letter header.
    let width = |cell: fn(&AddonService) -> &str| {
        services
            .iter()
            .map(|s| cell(s).chars().count())
            .chain([4])
            .max()
            .unwrap_or(4)
    };
    let slug = width(|s| &s.name);
    let name = width(|s| &s.human_name);
    let mut out = format!(" {:slug$}  {:name$}  State\n", "Slug", "Name");
    out.push_str(&format!(
        " {}  {}  ─────\n",
        "─".repeat(slug),
        "─".repeat(name)
    ));
    for service in services {
        out.push_str(&format!(
            " {:slug$}  {:name$}  {}\n",
            service.name, service.human_name, service.state
        ));
    }
    out.push_str("\nSee plans with heroku addons:plans SERVICE\n");
    out
}

pub(crate) async fn list(client: &Client, out: &mut dyn Write) -> anyhow::Result<()> {
    let services: Vec<AddonService> = client.get(&["addon-services"], None).await?;
    out.write_all(format_services(&services).as_bytes())?;
    Ok(())
}

/// Reads a manifest file, capped; `plans` (from `--plan`) replace the manifest's own.
pub(crate) fn read_manifest(path: &Path, plans: &[String]) -> anyhow::Result<Value> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_MANIFEST_FILE + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > MAX_MANIFEST_FILE {
        anyhow::bail!(
            "{} is larger than {MAX_MANIFEST_FILE} bytes: that is no add-on manifest.",
            path.display()
        );
    }
    let mut manifest: Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    if !plans.is_empty() {
        let Some(object) = manifest.as_object_mut() else {
            anyhow::bail!("{} is not a JSON object", path.display());
        };
        object.insert(
            "plans".into(),
            Value::Array(plans.iter().map(|p| json!({ "id": p })).collect()),
        );
    }
    Ok(manifest)
}

pub(crate) async fn add(
    client: &Client,
    path: &Path,
    plans: &[String],
    timeout_secs: Option<f64>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let manifest = read_manifest(path, plans)?;
    let id = manifest
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("the service")
        .to_owned();
    let body = AddonServiceRegister {
        manifest,
        timeout_ms: timeout_secs.map(|s| (s * 1000.0).round().max(0.0) as u64),
    };
    let service: RegisteredAddonService = action_done(
        out,
        &format!("Registering {id}"),
        client.send(Method::POST, &["slipway", "addon-services"], Some(&body)),
    )
    .await?;
    writeln!(
        out,
        "{} ({}) provisions at {}",
        service.name, service.human_name, service.base_url
    )?;
    writeln!(out, "Plans: {}", service.plans.join(", "))?;
    writeln!(out, "Config vars: {}", service.config_vars.join(", "))?;
    Ok(())
}

pub(crate) async fn remove(client: &Client, name: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    let _: RegisteredAddonService = action_done(
        out,
        &format!("Removing {name}"),
        client.delete(&["slipway", "addon-services", name]),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests;
