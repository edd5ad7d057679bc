//! `domains`, `domains:add HOSTNAME`, `domains:remove HOSTNAME` and `maintenance`,
//! `maintenance:on`, `maintenance:off`, worded like the heroku CLI.

use std::io::Write;

use reqwest::Method;
use slipway_api_types::{App, AppUpdate, Domain, DomainCreate, DomainKind};

use crate::client::Client;
use crate::format::APP_MARK;

/// The default hostname, then a table of custom domains with their DNS target.
pub(crate) fn format_domains(app: &str, domains: &[Domain]) -> String {
    let mut out = format!("=== {app} Heroku Domain\n\n");
    for domain in domains.iter().filter(|d| d.kind == DomainKind::Heroku) {
        out.push_str(&domain.hostname);
        out.push('\n');
    }
    let custom: Vec<&Domain> = domains
        .iter()
        .filter(|d| d.kind == DomainKind::Custom)
        .collect();
    if custom.is_empty() {
        return out;
    }
    out.push_str(&format!("\n=== {app} Custom Domains\n\n"));
    let width = custom
        .iter()
        .map(|d| d.hostname.len())
        .max()
        .unwrap_or(0)
        .max("Domain Name".len());
    out.push_str(&format!(
        "{:<width$}  DNS Record Type  DNS Target\n",
        "Domain Name"
    ));
    for domain in custom {
        out.push_str(&format!(
            "{:<width$}  CNAME            {}\n",
            domain.hostname,
            domain.cname.as_deref().unwrap_or("")
        ));
    }
    out
}

pub(crate) async fn list(client: &Client, app: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    let domains: Vec<Domain> = client.get(&["apps", app, "domains"], None).await?;
    out.write_all(format_domains(app, &domains).as_bytes())?;
    Ok(())
}

pub(crate) async fn add(
    client: &Client,
    app: &str,
    hostname: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let body = DomainCreate {
        hostname: hostname.to_owned(),
        sni_endpoint: None,
    };
    let domain: Domain = client
        .send(Method::POST, &["apps", app, "domains"], Some(&body))
        .await?;
    writeln!(
        out,
        "Adding {} to {APP_MARK} {app}... done",
        domain.hostname
    )?;
    if let Some(target) = &domain.cname {
        writeln!(
            out,
            "Configure your app's DNS provider to point to the DNS Target {target}"
        )?;
    }
    Ok(())
}

pub(crate) async fn remove(
    client: &Client,
    app: &str,
    hostname: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let domain: Domain = client.delete(&["apps", app, "domains", hostname]).await?;
    writeln!(
        out,
        "Removing {} from {APP_MARK} {app}... done",
        domain.hostname
    )?;
    Ok(())
}

/// `maintenance` (prints on/off) or `maintenance:on|off` (`set`).
pub(crate) async fn maintenance(
    client: &Client,
    app: &str,
    set: Option<bool>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match set {
        None => {
            let current: App = client.get(&["apps", app], None).await?;
            writeln!(out, "{}", if current.maintenance { "on" } else { "off" })?;
        }
        Some(on) => {
            let body = AppUpdate {
                maintenance: Some(on),
                ..AppUpdate::default()
            };
            let _: App = client
                .send(Method::PATCH, &["apps", app], Some(&body))
                .await?;
            let verb = if on { "Enabling" } else { "Disabling" };
            writeln!(out, "{verb} maintenance mode for {APP_MARK} {app}... done")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
