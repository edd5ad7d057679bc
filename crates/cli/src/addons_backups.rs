//! `pg:backups`, `pg:backups:capture`, `pg:backups:restore`, `pg:backups:download`,
//! `pg:backups:delete`, `pg:backups:schedule`, `pg:backups:schedules` and
//! `pg:backups:unschedule`, on the API's `/apps/{app}/addons/{addon}/backups` and
//! `backup-schedule` routes. Restore and delete send `--confirm` on: the API checks it too.

use std::io::Write;

use anyhow::{bail, Context};
use reqwest::Method;
use serde_json::{json, Value};

use crate::client::Client;

fn line(backup: &Value) -> String {
    format!(
        "{}  {}  {}  {} bytes  {}",
        backup["name"].as_str().unwrap_or_default(),
        backup["created_at"].as_str().unwrap_or_default(),
        backup["status"].as_str().unwrap_or_default(),
        backup["size"],
        backup["addon"]["name"].as_str().unwrap_or_default(),
    )
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
    writeln!(out, "=== Backups")?;
    if backups.is_empty() {
        writeln!(
            out,
            "No backups. Capture one with: slipway pg:backups:capture -a {app}"
        )?;
    }
    for backup in &backups {
        writeln!(out, "{}", line(backup))?;
    }
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
