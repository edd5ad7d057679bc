//! `drains`, `drains:add URL` and `drains:remove URL|TOKEN`, worded like the heroku CLI.

use std::io::Write;

use reqwest::Method;
use slipway_api_types::{LogDrain, LogDrainCreate};

use crate::client::Client;

/// `=== Drains` and one `URL (TOKEN)` line per drain.
pub(crate) fn format_drains(drains: &[LogDrain]) -> String {
    if drains.is_empty() {
        return "No drains for this app\n".to_owned();
    }
    let mut out = String::from("=== Drains\n\n");
    for drain in drains {
        out.push_str(&format!("{} ({})\n", drain.url, drain.token));
    }
    out
}

pub(crate) async fn list(client: &Client, app: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    let drains: Vec<LogDrain> = client.get(&["apps", app, "log-drains"], None).await?;
    out.write_all(format_drains(&drains).as_bytes())?;
    Ok(())
}

pub(crate) async fn add(
    client: &Client,
    app: &str,
    url: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let body = LogDrainCreate {
        url: url.to_owned(),
    };
    let drain: LogDrain = client
        .send(Method::POST, &["apps", app, "log-drains"], Some(&body))
        .await?;
    writeln!(out, "Successfully added drain {}", drain.url)?;
    Ok(())
}

pub(crate) async fn remove(
    client: &Client,
    app: &str,
    url_or_token: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let drain: LogDrain = client
        .delete(&["apps", app, "log-drains", url_or_token])
        .await?;
    writeln!(out, "Successfully removed drain {}", drain.url)?;
    Ok(())
}

#[cfg(test)]
mod tests;
