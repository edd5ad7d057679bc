//! `redis:info`: a Redis add-on's plan, version, memory, clients and keys, from the API's
//! `/apps/{app}/addons/{addon}/redis-info`, in the shape of Heroku's `redis:info`.

use std::io::Write;

use serde_json::Value;

use crate::client::Client;
use crate::format::format_size;

/// `essential-0` → `Essential 0`; `heroku-redis:mini` → `Mini`.
fn plan_name(plan: &str) -> String {
    let plan = plan.rsplit(':').next().unwrap_or(plan);
    plan.split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn size(value: &Value) -> String {
    format_size(value.as_i64())
}

/// The lines `redis:info` prints for one answer of the API.
pub(crate) fn render(database: &str, info: &Value) -> String {
    let attachment = if database.ends_with("_URL") {
        database.to_owned()
    } else {
        format!("{database}_URL")
    };
    let rows = [
        (
            "Plan",
            plan_name(info["addon"]["plan"]["name"].as_str().unwrap_or_default()),
        ),
        ("Status", "available".to_owned()),
        (
            "Created",
            info["created_at"].as_str().unwrap_or_default().to_owned(),
        ),
        (
            "Version",
            info["version"].as_str().unwrap_or_default().to_owned(),
        ),
        (
            "Memory",
            format!(
                "{} used of {}",
                size(&info["used_memory"]),
                size(&info["max_memory"])
            ),
        ),
        (
            "Maxmemory",
            format!(
                "{} ({})",
                size(&info["max_memory"]),
                info["max_memory_policy"].as_str().unwrap_or_default()
            ),
        ),
        (
            "Clients",
            format!("{} of {}", info["clients"], info["max_clients"]),
        ),
        ("Keys", info["keys"].to_string()),
        ("Persistence", "AOF".to_owned()),
    ];
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    let mut out = format!(
        "=== {} ({attachment})\n",
        info["addon"]["name"].as_str().unwrap_or_default()
    );
    for (key, value) in rows {
        out.push_str(&format!("{:<width$} {value}\n", format!("{key}:")));
    }
    out
}

pub(crate) async fn info(
    client: &Client,
    app: &str,
    database: &str,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let info: Value = client
        .get(&["apps", app, "addons", database, "redis-info"], None)
        .await?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&info)?)?;
    } else {
        write!(out, "{}", render(database, &info))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
