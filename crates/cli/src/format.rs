//! Pure functions that turn API values into the text the heroku CLI would print.
//!
//! Everything here is deterministic (the current time is a parameter), so the output is
//! covered by snapshot tests in `format/tests.rs`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use slipway_api_types::{App, ConfigVars, Dyno, Formation, Release, ReleaseStatus};

#[cfg(test)]
mod tests;

/// The hexagon heroku puts in front of app names.
pub(crate) const APP_MARK: &str = "⬢";

/// `2026/11/26 12:00:00 +0000`, the heroku CLI's timestamp format (always UTC here).
pub(crate) fn format_time(time: DateTime<Utc>) -> String {
    time.format("%Y/%m/%d %H:%M:%S %z").to_string()
}

/// A timestamp with its age, as `ps` prints it: `... (~ 5s ago)`; older than 25 hours
/// prints only the timestamp.
pub(crate) fn format_ago(time: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let stamp = format_time(time);
    let elapsed = (now - time).num_seconds().max(0);
    if elapsed <= 60 {
        format!("{stamp} (~ {elapsed}s ago)")
    } else if elapsed <= 60 * 60 {
        format!("{stamp} (~ {}m ago)", elapsed / 60)
    } else if elapsed <= 60 * 60 * 25 {
        format!("{stamp} (~ {}h ago)", elapsed / 3600)
    } else {
        stamp
    }
}

/// `=== <title>` followed by a blank line.
fn header(out: &mut String, title: &str) {
    let _ = writeln!(out, "=== {title}\n");
}

/// `Key: value` lines with the values aligned, in the given order.
fn aligned_pairs<'a>(out: &mut String, pairs: impl IntoIterator<Item = (&'a str, String)>) {
    let pairs: Vec<(&str, String)> = pairs.into_iter().collect();
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0)
        + 1;
    for (key, value) in pairs {
        let label = format!("{key}:");
        let _ = if value.is_empty() {
            writeln!(out, "{label}")
        } else {
            writeln!(out, "{label:<width$} {value}")
        };
    }
}

/// Columns separated by two spaces, each padded to its widest cell; no trailing spaces.
fn table(out: &mut String, rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|row| row.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            let _ = write!(line, "{cell:<width$}", width = widths[c]);
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// `apps:create`: the URLs line printed after `Creating ⬢ demo... done`.
pub(crate) fn format_app_created(app: &App) -> String {
    let web_url = app.web_url.as_deref().unwrap_or("");
    format!("{web_url} | {}\n", app.git_url)
}

/// `apps`: the app names, under the account's email when known.
pub(crate) fn format_apps(email: Option<&str>, apps: &[App]) -> String {
    if apps.is_empty() {
        return "You have no apps.\n".to_owned();
    }
    let mut out = String::new();
    match email {
        Some(email) => header(&mut out, &format!("{email} Apps")),
        None => header(&mut out, "Apps"),
    }
    let mut names: Vec<&App> = apps.iter().collect();
    names.sort_by(|a, b| a.name.cmp(&b.name));
    for app in names {
        let _ = match app.region.name.as_str() {
            "us" => writeln!(out, "{}", app.name),
            region => writeln!(out, "{} ({region})", app.name),
        };
    }
    out
}

/// `apps:info`: the app's attributes, with a count of dynos per process type.
pub(crate) fn format_app_info(app: &App, dynos: &[Dyno]) -> String {
    let mut out = String::new();
    header(&mut out, &app.name);
    let mut dyno_counts: BTreeMap<&str, usize> = BTreeMap::new();
    for dyno in dynos {
        *dyno_counts.entry(dyno.process_type.as_str()).or_default() += 1;
    }
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if !dyno_counts.is_empty() {
        let counts: Vec<String> = dyno_counts
            .iter()
            .map(|(process_type, count)| format!("{process_type}: {count}"))
            .collect();
        pairs.push(("Dynos", counts.join(", ")));
    }
    pairs.push(("Git URL", app.git_url.clone()));
    if app.maintenance {
        pairs.push(("Maintenance", "on".to_owned()));
    }
    pairs.push(("Owner", app.owner.email.clone()));
    pairs.push(("Region", app.region.name.clone()));
    if let Some(released_at) = app.released_at {
        pairs.push(("Released At", format_time(released_at)));
    }
    pairs.push(("Repo Size", format_size(app.repo_size)));
    pairs.push(("Slug Size", format_size(app.slug_size)));
    let stack = if app.build_stack.name != app.stack.name {
        format!(
            "{} (next build will use {})",
            app.stack.name, app.build_stack.name
        )
    } else {
        app.stack.name.clone()
    };
    pairs.push(("Stack", stack));
    pairs.push(("Web URL", app.web_url.clone().unwrap_or_default()));
    aligned_pairs(&mut out, pairs);
    out
}

/// Bytes as `0 B`, `512 B`, `1.5 KB`, `12 MB` (binary units, like the heroku CLI).
pub(crate) fn format_size(bytes: Option<i64>) -> String {
    let Some(bytes) = bytes else {
        return "0 B".to_owned();
    };
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    let rounded = (value * 10.0).round() / 10.0;
    if rounded.fract() == 0.0 {
        format!("{rounded:.0} {}", UNITS[unit])
    } else {
        format!("{rounded:.1} {}", UNITS[unit])
    }
}

/// The decoration the heroku CLI appends to a release's description for its status.
fn release_status_suffix(status: ReleaseStatus) -> &'static str {
    match status {
        ReleaseStatus::Succeeded => "",
        ReleaseStatus::Pending => " release command executing",
        ReleaseStatus::Failed => " release command failed",
        ReleaseStatus::Expired => " expired",
    }
}

/// `releases`: newest first, as the API returned them.
pub(crate) fn format_releases(app: &str, releases: &[Release]) -> String {
    let mut out = String::new();
    if releases.is_empty() {
        let _ = writeln!(out, "{app} has no releases.");
        return out;
    }
    match releases.iter().find(|r| r.current) {
        Some(current) => header(
            &mut out,
            &format!("{app} Releases - Current: v{}", current.version),
        ),
        None => header(&mut out, &format!("{app} Releases")),
    }
    let rows: Vec<Vec<String>> = releases
        .iter()
        .map(|release| {
            vec![
                format!("v{}", release.version),
                format!(
                    "{}{}",
                    release.description,
                    release_status_suffix(release.status)
                ),
                release.user.email.clone(),
                format_time(release.created_at),
            ]
        })
        .collect();
    table(&mut out, &rows);
    out
}

/// `releases:info`: one release, then its config vars when they could be fetched.
pub(crate) fn format_release_info(release: &Release, config: Option<&ConfigVars>) -> String {
    let mut out = String::new();
    header(&mut out, &format!("Release v{}", release.version));
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if !release.addon_plan_names.is_empty() {
        pairs.push(("Add-ons", release.addon_plan_names.join(", ")));
    }
    pairs.push(("By", release.user.email.clone()));
    pairs.push((
        "Change",
        format!(
            "{}{}",
            release.description,
            release_status_suffix(release.status)
        ),
    ));
    pairs.push((
        "Eligible for Rollback?",
        if release.eligible_for_rollback {
            "Yes"
        } else {
            "No"
        }
        .to_owned(),
    ));
    pairs.push(("When", format_time(release.created_at)));
    aligned_pairs(&mut out, pairs);
    if let Some(config) = config {
        out.push('\n');
        header(&mut out, &format!("v{} Config vars", release.version));
        if config.is_empty() {
            out.push_str("No config vars.\n");
        } else {
            aligned_pairs(
                &mut out,
                config.iter().map(|(k, v)| (k.as_str(), v.clone())),
            );
        }
    }
    out
}

/// `config`: `=== demo Config Vars` and aligned `KEY: value` lines.
pub(crate) fn format_config(app: &str, vars: &ConfigVars) -> String {
    if vars.is_empty() {
        return format!("{app} has no config vars.\n");
    }
    let mut out = String::new();
    header(&mut out, &format!("{app} Config Vars"));
    aligned_pairs(&mut out, vars.iter().map(|(k, v)| (k.as_str(), v.clone())));
    out
}

/// `config --shell`: `KEY=value` lines a POSIX shell can `eval`.
pub(crate) fn format_config_shell(vars: &ConfigVars) -> String {
    let mut out = String::new();
    for (key, value) in vars {
        let _ = writeln!(out, "{key}={}", shell_quote(value));
    }
    out
}

/// `config --json`: the config vars as a pretty JSON object.
pub(crate) fn format_config_json(vars: &ConfigVars) -> String {
    let mut text = serde_json::to_string_pretty(vars).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}

/// `config:set`: the vars that were set, aligned, from the full config the API returned.
pub(crate) fn format_config_subset(vars: &ConfigVars, keys: &[String]) -> String {
    let mut out = String::new();
    aligned_pairs(
        &mut out,
        keys.iter()
            .map(|key| (key.as_str(), vars.get(key).cloned().unwrap_or_default())),
    );
    out
}

/// Quotes `value` for a POSIX shell, leaving simple values bare.
pub(crate) fn shell_quote(value: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_/.:@%+=,-".contains(c);
    if !value.is_empty() && value.chars().all(safe) {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', "'\\''"))
    }
}

/// `KEY1, KEY2 and KEY3`, as heroku lists config var names in progress messages.
pub(crate) fn join_names(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Splits `web.12` into `("web", 12)` for sorting; names without a number sort first.
fn dyno_sort_key(name: &str) -> (&str, u64) {
    match name.rsplit_once('.') {
        Some((process_type, n)) => (process_type, n.parse().unwrap_or(0)),
        None => (name, 0),
    }
}

/// `ps`: dynos grouped by process type and command, one-off dynos last.
pub(crate) fn format_ps(app: &str, dynos: &[Dyno], now: DateTime<Utc>) -> String {
    if dynos.is_empty() {
        return format!("No dynos on {APP_MARK} {app}\n");
    }
    let mut sorted: Vec<&Dyno> = dynos.iter().collect();
    sorted.sort_by(|a, b| dyno_sort_key(&a.name).cmp(&dyno_sort_key(&b.name)));
    let (one_off, process): (Vec<&Dyno>, Vec<&Dyno>) =
        sorted.into_iter().partition(|d| d.process_type == "run");

    let mut out = String::new();
    // Dynos grouped by (process type, size, command), in first-seen order.
    type GroupKey<'a> = (&'a str, &'a str, &'a str);
    let mut groups: Vec<(GroupKey, Vec<&Dyno>)> = Vec::new();
    for dyno in process {
        let key = (
            dyno.process_type.as_str(),
            dyno.size.as_str(),
            dyno.command.as_str(),
        );
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(dyno),
            None => groups.push((key, vec![dyno])),
        }
    }
    let mut first = true;
    for ((process_type, size, command), members) in groups {
        if !first {
            out.push('\n');
        }
        first = false;
        header(
            &mut out,
            &format!("{process_type} ({size}): {command} ({})", members.len()),
        );
        for dyno in members {
            let _ = writeln!(
                out,
                "{}: {} {}",
                dyno.name,
                dyno.state.as_str(),
                format_ago(dyno.updated_at, now)
            );
        }
    }
    if !one_off.is_empty() {
        if !first {
            out.push('\n');
        }
        header(
            &mut out,
            &format!("run: one-off processes ({})", one_off.len()),
        );
        for dyno in one_off {
            let _ = writeln!(
                out,
                "{} ({}): {} {}: {}",
                dyno.name,
                dyno.size,
                dyno.state.as_str(),
                format_ago(dyno.updated_at, now),
                dyno.command
            );
        }
    }
    out
}

/// `web=1:Standard-1X worker=0:Standard-1X`, the formation as `ps:scale` shows it.
pub(crate) fn format_formation(formations: &[Formation]) -> String {
    let mut sorted: Vec<&Formation> = formations.iter().collect();
    sorted.sort_by(|a, b| a.process_type.cmp(&b.process_type));
    let parts: Vec<String> = sorted
        .iter()
        .map(|f| format!("{}={}:{}", f.process_type, f.quantity, f.size))
        .collect();
    format!("{}\n", parts.join(" "))
}

/// `web at 2:Standard-1X, worker at 1:Standard-1X`, what `ps:scale` reports after scaling.
pub(crate) fn format_scaled(formations: &[Formation]) -> String {
    let parts: Vec<String> = formations
        .iter()
        .map(|f| format!("{} at {}:{}", f.process_type, f.quantity, f.size))
        .collect();
    parts.join(", ")
}
