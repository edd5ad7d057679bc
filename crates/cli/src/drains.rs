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
mod tests {
    use super::*;

    #[test]
    fn lists_drains_like_heroku() {
        let drain: LogDrain = serde_json::from_value(serde_json::json!({
            "addon": null, "app": null, "created_at": "2026-11-26T12:00:00Z",
            "id": "01234567-89ab-cdef-0123-456789abcdef", "token": "d.01234567-89ab-cdef-0123-456789abcdef",
            "updated_at": "2026-11-26T12:00:00Z", "url": "syslog+tls://logs.example.com:6514"
        }))
        .unwrap();
        assert_eq!(
            format_drains(&[drain]),
            "=== Drains\n\nsyslog+tls://logs.example.com:6514 (d.01234567-89ab-cdef-0123-456789abcdef)\n"
        );
        assert_eq!(format_drains(&[]), "No drains for this app\n");
    }
}
