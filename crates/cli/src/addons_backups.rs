//! `pg:backups`, `pg:backups:capture`, `pg:backups:restore`, `pg:backups:download`,
//! `pg:backups:delete`, `pg:backups:schedule`, `pg:backups:schedules` and
//! `pg:backups:unschedule`, on the API's `/apps/{app}/addons/{addon}/backups` and
//! `backup-schedule` routes. Restore and delete send `--confirm` on: the API checks it too.

use std::io::Write;

use anyhow::{bail, Context};
use reqwest::Method;
use serde_json::{json, Value};

use crate::client::Client;

#[cfg(test)]
mod tests;

/// `2026-11-29 05:00:00 +0000`, as `heroku pg:backups` prints times; the API's own text when
/// it is not a timestamp.
fn time(value: &Value) -> String {
    let text = value.as_str().unwrap_or_default();
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S %z")
                .to_string()
        })
        .unwrap_or_else(|_| text.to_owned())
}

/// The Status column: `Completed <finished>`, `Failed <finished>`, `Running`.
fn status(backup: &Value) -> String {
    let status = backup["status"].as_str().unwrap_or_default();
    let mut word = status.to_owned();
    if let Some(first) = word.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    match backup["finished_at"].as_str() {
        Some(_) => format!("{word} {}", time(&backup["finished_at"])),
        None => word,
    }
}

/// `pg:backups`: Heroku's three sections, the backups as a table (ID, Created at, Status,
/// Size, Database). Slipway keeps no history of restores (each `pg:backups:restore` reports
/// its own end) and has no `pg:copy`; the sections say so rather than pretend.
pub(crate) fn render(app: &str, backups: &[Value]) -> String {
    let mut out = String::from("=== Backups\n\n");
    if backups.is_empty() {
        out.push_str(&format!(
            "No backups. Capture one with: slipway pg:backups:capture -a {app}\n"
        ));
    } else {
        let mut rows = vec![[
            "ID".to_owned(),
            "Created at".to_owned(),
            "Status".to_owned(),
            "Size".to_owned(),
            "Database".to_owned(),
        ]];
        for backup in backups {
            rows.push([
                backup["name"].as_str().unwrap_or_default().to_owned(),
                time(&backup["created_at"]),
                status(backup),
                crate::format::format_size(backup["size"].as_i64()),
                backup["addon"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            ]);
        }
        let widths: Vec<usize> = (0..5)
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
        rows.insert(1, [0, 1, 2, 3, 4].map(|c| rule[c].clone()));
        for row in rows {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
    }
    out.push_str(
        "\n=== Restores\n\nSlipway keeps no history of restores: each pg:backups:restore reports its own end.\n",
    );
    out.push_str("\n=== Copies\n\nNo copies found. Slipway has no pg:copy.\n");
    out
}

pub(crate) async fn list(
    client: &Client,
    app: &str,
    database: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let backups: Vec<Value> = client
        .get(&["apps", app, "addons", database, "backups"], None)
        .await?;
    write!(out, "{}", render(app, &backups))?;
    Ok(())
}

pub(crate) async fn capture(
    client: &Client,
    app: &str,
    database: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    writeln!(out, "Starting backup of {database} on {app}... ")?;
    let backup: Value = client
        .send(
            Method::POST,
            &["apps", app, "addons", database, "backups"],
            Some(&json!({})),
        )
        .await?;
    writeln!(
        out,
        "Backing up {database} to {}... done ({} bytes)",
        backup["name"].as_str().unwrap_or_default(),
        backup["size"]
    )?;
    Ok(())
}

pub(crate) async fn restore(
    client: &Client,
    app: &str,
    backup: Option<&str>,
    database: &str,
    confirm: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if confirm != Some(app) {
        bail!(
            "This command will overwrite the data of {database} on {app}. To proceed, run the command again with --confirm {app}"
        );
    }
    // `other-app::b001` or `postgresql-x-123::b001` restores another add-on's backup.
    let (from, name) = match backup.and_then(|b| b.split_once("::")) {
        Some((from, name)) => (Some(from), Some(name)),
        None => (None, backup),
    };
    let mut body = json!({ "confirm": app });
    if let Some(name) = name {
        body["backup"] = json!(name);
    }
    if let Some(from) = from {
        body["from"] = json!(from);
    }
    let restored: Value = client
        .send(
            Method::POST,
            &["apps", app, "addons", database, "actions", "restore"],
            Some(&body),
        )
        .await?;
    writeln!(
        out,
        "Restoring {} into {database} on {app}... done",
        restored["name"].as_str().unwrap_or_default()
    )?;
    Ok(())
}

pub(crate) async fn download(
    client: &Client,
    app: &str,
    backup: Option<&str>,
    database: &str,
    output: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let name = backup.unwrap_or("latest");
    let bytes = client
        .get_bytes(&["apps", app, "addons", database, "backups", name, "dump"])
        .await?;
    let path = output.unwrap_or("latest.dump");
    std::fs::write(path, &bytes).with_context(|| format!("cannot write {path}"))?;
    writeln!(
        out,
        "Getting backup {name} of {app}... done, {} bytes written to {path}",
        bytes.len()
    )?;
    Ok(())
}

pub(crate) async fn delete(
    client: &Client,
    app: &str,
    backup: &str,
    database: &str,
    confirm: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if confirm != Some(app) {
        bail!("This command will delete backup {backup} of {app}. To proceed, run the command again with --confirm {app}");
    }
    let _: Value = client
        .send(
            Method::DELETE,
            &["apps", app, "addons", database, "backups", backup],
            Some(&json!({ "confirm": app })),
        )
        .await?;
    writeln!(out, "Deleting backup {backup} of {app}... done")?;
    Ok(())
}

/// `daily at 2:00 (America/New_York)`, as Heroku shows a schedule.
fn schedule_line(schedule: &Value) -> String {
    format!(
        "{}: daily at {}:00 ({})",
        schedule["name"].as_str().unwrap_or_default(),
        schedule["hour"],
        schedule["timezone"].as_str().unwrap_or_default(),
    )
}

pub(crate) async fn schedule(
    client: &Client,
    app: &str,
    database: &str,
    at: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let schedule: Value = client
        .send(
            Method::PUT,
            &["apps", app, "addons", database, "backup-schedule"],
            Some(&json!({ "at": at })),
        )
        .await?;
    writeln!(
        out,
        "Scheduling automatic daily backups of {} at {:02}:00 {}... done",
        schedule["addon"]["name"].as_str().unwrap_or_default(),
        schedule["hour"].as_u64().unwrap_or_default(),
        schedule["timezone"].as_str().unwrap_or_default(),
    )?;
    Ok(())
}

pub(crate) async fn schedules(
    client: &Client,
    app: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let schedules: Vec<Value> = client.get(&["apps", app, "backup-schedules"], None).await?;
    if schedules.is_empty() {
        writeln!(
            out,
            "No backup schedules found on {app}\nUse slipway pg:backups:schedule to set one up"
        )?;
        return Ok(());
    }
    writeln!(out, "=== Backup Schedules")?;
    for schedule in &schedules {
        writeln!(out, "{}", schedule_line(schedule))?;
    }
    Ok(())
}

pub(crate) async fn unschedule(
    client: &Client,
    app: &str,
    database: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let schedule: Value = client
        .delete(&["apps", app, "addons", database, "backup-schedule"])
        .await?;
    writeln!(
        out,
        "Unscheduling {} daily backups... done",
        schedule["name"].as_str().unwrap_or_default()
    )?;
    Ok(())
}
