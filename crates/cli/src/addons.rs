//! `addons`, `addons:create`, `addons:info`, `addons:attach`, `addons:detach`,
//! `addons:destroy`, `addons:upgrade`, `pg:info`, `pg:credentials:rotate`, `pg:psql`,
//! `redis:cli`, worded like the heroku CLI.

use std::io::Write;

use reqwest::Method;
use serde_json::{json, Value};
use slipway_api_types::{Addon, AddonAttachment};

use crate::action::{action, action_done};
use crate::client::Client;

/// The add-ons table: `Add-on  Plan  Price  State` with each attachment below its add-on.
pub(crate) fn format_addons(addons: &[Addon], attachments: &[AddonAttachment]) -> String {
    if addons.is_empty() {
        return "No add-ons for this app.\n".to_owned();
    }
    let mut out = String::new();
    for addon in addons {
        let plan = addon
            .plan
            .name
            .split_once(':')
            .map_or(addon.plan.name.as_str(), |(_, p)| p);
        out.push_str(&format!(
            "{} ({})  {}  ${:.2}/month  {}\n",
            addon.addon_service.name,
            addon.name,
            plan,
            addon.billed_price.cents as f64 / 100.0,
            addon.state
        ));
        for attachment in attachments.iter().filter(|a| a.addon.id == addon.id) {
            out.push_str(&format!(
                " └─ as {} on {}\n",
                attachment.name, attachment.app.name
            ));
        }
        out.push('\n');
    }
    out
}

pub(crate) async fn list(client: &Client, app: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    let addons: Vec<Addon> = client.get(&["apps", app, "addons"], None).await?;
    let attachments: Vec<AddonAttachment> = client.get(&["addon-attachments"], None).await?;
    out.write_all(format_addons(&addons, &attachments).as_bytes())?;
    Ok(())
}

/// `addons:create ... -- --key value --flag --k=v`: the provider's options, read as the heroku
/// CLI reads them (a flag followed by another flag, or by nothing, is `true`).
pub(crate) fn parse_options(
    args: &[String],
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let mut options = serde_json::Map::new();
    let mut args = args.iter().peekable();
    while let Some(arg) = args.next() {
        let Some(key) = arg.strip_prefix("--") else {
            anyhow::bail!("Unexpected argument {arg}: options after `--` are `--name value`.");
        };
        if let Some((key, value)) = key.split_once('=') {
            let value = if value == "true" {
                json!(true)
            } else {
                json!(value)
            };
            options.insert(key.to_owned(), value);
            continue;
        }
        match args.next_if(|next| !next.starts_with("--")) {
            Some(value) if !value.is_empty() => options.insert(key.to_owned(), json!(value)),
            _ => options.insert(key.to_owned(), json!(true)),
        };
    }
    Ok(options)
}

pub(crate) async fn create(
    client: &Client,
    app: &str,
    plan: &str,
    attach_as: Option<&str>,
    name: Option<&str>,
    options: serde_json::Map<String, serde_json::Value>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut body = json!({ "plan": { "name": plan } });
    if !options.is_empty() {
        body["config"] = serde_json::Value::Object(options);
    }
    if let Some(attach_as) = attach_as {
        body["attachment"] = json!({ "name": attach_as });
    }
    if let Some(name) = name {
        body["name"] = json!(name);
    }
    let label = format!("Creating {plan} on ⬢ {app}");
    let addon: Addon = action(
        out,
        &label,
        client.send(Method::POST, &["apps", app, "addons"], Some(&body)),
    )
    .await?;
    writeln!(out, "${:.2}/month", addon.billed_price.cents as f64 / 100.0)?;
    if let Some(message) = &addon.provision_message {
        writeln!(out, "{message}")?;
    }
    // A third-party provider may finish later (its 202): say so as Heroku does.
    if addon.state == "provisioning" {
        writeln!(
            out,
            "{} is being created in the background. The app will restart when complete...",
            addon.name
        )?;
        writeln!(
            out,
            "Use heroku addons:info {} to check creation progress",
            addon.name
        )?;
        return Ok(());
    }
    writeln!(out, "{} is being created and is available.", addon.name)?;
    writeln!(
        out,
        "Created {} as {}",
        addon.name,
        addon.config_vars.join(", ")
    )?;
    Ok(())
}

pub(crate) async fn info(client: &Client, addon: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    let addon: Addon = client.get(&["addons", addon], None).await?;
    let attachments: Vec<AddonAttachment> = client
        .get(&["addons", &addon.name, "addon-attachments"], None)
        .await?;
    writeln!(out, "=== {}", addon.name)?;
    writeln!(
        out,
        "Attachments:  {}",
        attachments
            .iter()
            .map(|a| format!("{}::{}", a.app.name, a.name))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    writeln!(out, "Installed at: {}", addon.created_at.to_rfc2822())?;
    writeln!(out, "Owning app:   {}", addon.app.name)?;
    writeln!(out, "Plan:         {}", addon.plan.name)?;
    writeln!(
        out,
        "Price:        ${:.2}/month",
        addon.billed_price.cents as f64 / 100.0
    )?;
    writeln!(out, "State:        {}", addon.state)?;
    Ok(())
}

pub(crate) async fn destroy(
    client: &Client,
    addon: &str,
    confirm: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let found: Addon = client.get(&["addons", addon], None).await?;
    if confirm != Some(found.app.name.as_str()) {
        anyhow::bail!(
            "Destroying {} on ⬢ {} deletes its data for good. To proceed, re-run with --confirm {}",
            found.name,
            found.app.name,
            found.app.name
        );
    }
    let label = format!("Destroying {} on ⬢ {}", found.name, found.app.name);
    let _: Addon = action_done(
        out,
        &label,
        client.send(Method::DELETE, &["addons", &found.name], None::<&()>),
    )
    .await?;
    Ok(())
}

pub(crate) async fn attach(
    client: &Client,
    app: &str,
    addon: &str,
    attach_as: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let mut body = json!({ "addon": addon, "app": app });
    if let Some(attach_as) = attach_as {
        body["name"] = json!(attach_as);
    }
    let label = format!("Attaching {addon} to ⬢ {app}");
    let attachment: AddonAttachment = action_done(
        out,
        &label,
        client.send(Method::POST, &["addon-attachments"], Some(&body)),
    )
    .await?;
    writeln!(
        out,
        "Setting {}_URL and restarting ⬢ {app}... done",
        attachment.name
    )?;
    Ok(())
}

pub(crate) async fn detach(
    client: &Client,
    app: &str,
    attachment: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let attachments: Vec<AddonAttachment> = client
        .get(&["apps", app, "addon-attachments"], None)
        .await?;
    let found = attachments
        .iter()
        .find(|a| {
            a.name == attachment || a.addon.name == attachment || a.id.to_string() == attachment
        })
        .ok_or_else(|| anyhow::anyhow!("Couldn't find an attachment {attachment} on {app}."))?;
    let label = format!(
        "Detaching {} to {} from ⬢ {app}",
        found.name, found.addon.name
    );
    let id = found.id.to_string();
    let _: AddonAttachment = action_done(
        out,
        &label,
        client.send(Method::DELETE, &["addon-attachments", &id], None::<&()>),
    )
    .await?;
    writeln!(
        out,
        "Unsetting {}_URL and restarting ⬢ {app}... done",
        found.name
    )?;
    Ok(())
}

pub(crate) async fn upgrade(
    client: &Client,
    addon: &str,
    plan: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let label = format!("Changing {addon} to {plan}");
    let body = json!({ "plan": { "name": plan } });
    let addon: Addon = action(
        out,
        &label,
        client.send(Method::PATCH, &["addons", addon], Some(&body)),
    )
    .await?;
    writeln!(
        out,
        "done, ${:.2}/month",
        addon.billed_price.cents as f64 / 100.0
    )?;
    Ok(())
}

/// The add-on an app's attachment names (`DATABASE` by default).
async fn attached(client: &Client, app: &str, name: &str) -> anyhow::Result<AddonAttachment> {
    let name = name.trim_end_matches("_URL");
    let attachments: Vec<AddonAttachment> = client
        .get(&["apps", app, "addon-attachments"], None)
        .await?;
    attachments
        .into_iter()
        .find(|a| a.name == name || a.addon.name == name)
        .ok_or_else(|| {
            anyhow::anyhow!("Couldn't find {name} on ⬢ {app}. See `slipway addons -a {app}`.")
        })
}

pub(crate) async fn pg_info(
    client: &Client,
    app: &str,
    database: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let attachment = attached(client, app, database).await?;
    let stats: Value = client
        .get(&["addons", &attachment.addon.name, "stats"], None)
        .await?;
    let mb = |v: &Value| {
        v.as_u64().map_or("unknown".to_owned(), |b| {
            format!("{:.1} MB", b as f64 / 1048576.0)
        })
    };
    writeln!(out, "=== {}_URL", attachment.name)?;
    writeln!(
        out,
        "Plan:        {}",
        stats["addon"]["plan"]["name"].as_str().unwrap_or_default()
    )?;
    writeln!(
        out,
        "Connections: {}/{}",
        stats["connections"], stats["connection_limit"]
    )?;
    writeln!(
        out,
        "Data Size:   {} / {}",
        mb(&stats["size_bytes"]),
        mb(&stats["size_limit_bytes"])
    )?;
    if stats["read_only"] == Value::Bool(true) {
        writeln!(
            out,
            "Status:      Read-only: over its storage limit (INSERT, UPDATE and CREATE revoked; delete data to get under it)"
        )?;
    } else {
        writeln!(out, "Status:      Available")?;
    }
    writeln!(out, "Add-on:      {}", attachment.addon.name)?;
    Ok(())
}

pub(crate) async fn rotate(
    client: &Client,
    app: &str,
    database: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let attachment = attached(client, app, database).await?;
    let name = &attachment.addon.name;
    let label = format!("Rotating {name} on ⬢ {app}");
    let path = ["addons", name, "actions", "rotate-credentials"];
    let _: Addon = action_done(out, &label, client.send(Method::POST, &path, None::<&()>)).await?;
    Ok(())
}

/// Runs the local `program` (`psql`, `redis-cli`) against the attachment's URL.
pub(crate) async fn run_client(
    client: &Client,
    app: &str,
    name: &str,
    program: &str,
    url_flag: Option<&str>,
) -> anyhow::Result<()> {
    let attachment = attached(client, app, name).await?;
    let config: std::collections::BTreeMap<String, String> =
        client.get(&["apps", app, "config-vars"], None).await?;
    let var = format!("{}_URL", attachment.name);
    let url = config
        .get(&var)
        .ok_or_else(|| anyhow::anyhow!("{var} is not set on ⬢ {app}."))?;
    eprintln!("--> Connecting to {}", attachment.addon.name);
    let mut command = tokio::process::Command::new(program);
    if let Some(flag) = url_flag {
        command.arg(flag);
    }
    let status = command
        .arg(url)
        .status()
        .await
        .map_err(|e| anyhow::anyhow!("cannot run {program}: {e}. Install it locally."))?;
    if !status.success() {
        anyhow::bail!("{program} exited with {status}");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
