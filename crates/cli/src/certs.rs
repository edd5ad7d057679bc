//! `certs`, `certs:add CRT KEY` and `certs:remove`: certificates for an app's custom domains
//! (Heroku's SNI endpoints), worded like the heroku CLI. Hostnames without an uploaded
//! certificate are served with one issued by the platform CA.

use std::io::Write;
use std::path::Path;

use anyhow::Context as _;
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::action::action_done;
use crate::client::Client;
use crate::format::APP_MARK;

/// The parts of an SNI endpoint the CLI shows.
#[derive(Debug, Deserialize)]
pub(crate) struct SniEndpoint {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) domains: Vec<serde_json::Value>,
    pub(crate) ssl_cert: SslCert,
}

#[derive(Debug, Deserialize)]
pub(crate) struct SslCert {
    #[serde(default)]
    pub(crate) cert_domains: Vec<String>,
    #[serde(rename = "ca_signed?", default)]
    pub(crate) ca_signed: bool,
}

#[derive(Debug, Serialize)]
struct SniEndpointBody<'a> {
    certificate_chain: &'a str,
    private_key: &'a str,
}

/// Heroku's `certs` table.
pub(crate) fn format_certs(endpoints: &[SniEndpoint]) -> String {
    let rows: Vec<[String; 5]> = endpoints
        .iter()
        .map(|e| {
            [
                e.name.clone(),
                e.ssl_cert.cert_domains.join(", "),
                if e.ssl_cert.ca_signed {
                    "True"
                } else {
                    "False"
                }
                .to_owned(),
                "SNI".to_owned(),
                e.domains.len().to_string(),
            ]
        })
        .collect();
    let headers = ["Name", "Common Name(s)", "Trusted", "Type", "Domains"];
    let mut widths = headers.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(&headers.map(str::to_owned));
    out.push_str(&line(&widths.map(|w| "─".repeat(w))));
    for row in &rows {
        out.push_str(&line(row));
    }
    out
}

pub(crate) async fn list(client: &Client, app: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    let endpoints: Vec<SniEndpoint> = client.get(&["apps", app, "sni-endpoints"], None).await?;
    if endpoints.is_empty() {
        writeln!(
            out,
            "{APP_MARK} {app} has no SSL certificates.\nUse slipway certs:add CRT KEY to add one; other hostnames get a certificate from the platform CA."
        )?;
        return Ok(());
    }
    out.write_all(format_certs(&endpoints).as_bytes())?;
    Ok(())
}

pub(crate) async fn add(
    client: &Client,
    app: &str,
    cert: &Path,
    key: &Path,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let certificate_chain = std::fs::read_to_string(cert)
        .with_context(|| format!("could not read the certificate {}", cert.display()))?;
    let private_key = std::fs::read_to_string(key)
        .with_context(|| format!("could not read the private key {}", key.display()))?;
    let body = SniEndpointBody {
        certificate_chain: &certificate_chain,
        private_key: &private_key,
    };
    let label = format!("Adding SSL certificate to {APP_MARK} {app}");
    let endpoint: SniEndpoint = action_done(
        out,
        &label,
        client.send(Method::POST, &["apps", app, "sni-endpoints"], Some(&body)),
    )
    .await?;
    writeln!(
        out,
        "{APP_MARK} {app} now has the SNI endpoint {} for {}",
        endpoint.name,
        endpoint.ssl_cert.cert_domains.join(", ")
    )?;
    if endpoint.domains.is_empty() {
        writeln!(
            out,
            "No custom domain of {app} matches it yet: add one with slipway domains:add HOSTNAME."
        )?;
    }
    Ok(())
}

/// Removes the named endpoint, or the app's only one.
pub(crate) async fn remove(
    client: &Client,
    app: &str,
    name: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let name = match name {
        Some(name) => name.to_owned(),
        None => {
            let endpoints: Vec<SniEndpoint> =
                client.get(&["apps", app, "sni-endpoints"], None).await?;
            match endpoints.as_slice() {
                [only] => only.name.clone(),
                [] => anyhow::bail!("{app} has no SSL certificates."),
                _ => anyhow::bail!(
                    "{app} has several SSL certificates: choose one with --name (see slipway certs)."
                ),
            }
        }
    };
    let label = format!("Removing SSL certificate {name} from {APP_MARK} {app}");
    action_done(
        out,
        &label,
        client.send_ignoring_body(Method::DELETE, &["apps", app, "sni-endpoints", &name]),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests;
