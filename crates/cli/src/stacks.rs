//! `stack`, `stack:set STACK` and `stacks:build NAME`: the stacks an app can build on, the
//! app's own (marked `*`, as `heroku stack` prints them), and building a stack from its
//! manifest with debootstrap on the server (administrators), its progress streamed.

use std::io::Write;

use futures::StreamExt;
use reqwest::header::{ACCEPT, AUTHORIZATION};
use reqwest::Method;
use serde_json::json;
use slipway_api_types::{App, Stack};

use crate::client::{ApiError, Client};

/// The server's marker for a failed stack build's last line (`api/src/stacks.rs`).
const FAILED_PREFIX: &str = " !     ";

/// `=== ⬢ demo Available Stacks` then one stack a line, the app's marked with `*`.
pub(crate) fn format_stacks(app: &str, current: &str, stacks: &[Stack]) -> String {
    let mut out = format!("=== ⬢ {app} Available Stacks\n");
    for stack in stacks {
        let mark = if stack.name == current { "*" } else { " " };
        out.push_str(&format!("{mark} {}\n", stack.name));
    }
    out
}

/// `stack`.
pub(crate) async fn list(client: &Client, app: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    let found: App = client.get(&["apps", app], None).await?;
    let stacks: Vec<Stack> = client.get(&["apps", app, "available-stacks"], None).await?;
    out.write_all(format_stacks(app, &found.build_stack.name, &stacks).as_bytes())?;
    Ok(())
}

/// `stack:set STACK`.
pub(crate) async fn set(
    client: &Client,
    app: &str,
    stack: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let updated: App = client
        .send(
            Method::PATCH,
            &["apps", app],
            Some(&json!({ "build_stack": stack })),
        )
        .await?;
    writeln!(
        out,
        "Setting stack to {} for ⬢ {app}... done\nRun git push to build the app on the {} stack.",
        updated.build_stack.name, updated.build_stack.name
    )?;
    Ok(())
}

/// `stacks:build NAME`: streams the server's progress lines; fails when the last one says so.
pub(crate) async fn build(client: &Client, name: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    let url = client.url(&["slipway", "stacks", name, "builds"]);
    let unreachable = |e: reqwest::Error| ApiError::Unreachable {
        url: client.base().clone(),
        reason: crate::client::root_cause(&e),
    };
    let response = client
        .http()
        .post(url)
        .header(ACCEPT, slipway_api_types::ACCEPT_V3)
        .header(AUTHORIZATION, format!("Bearer {}", client.api_key()))
        .send()
        .await
        .map_err(unreachable)?;
    let status = response.status();
    if !status.is_success() {
        let bytes = response.bytes().await.map_err(unreachable)?;
        return Err(ApiError::from_answer(
            status,
            Method::POST,
            client.url(&["slipway", "stacks", name, "builds"]),
            &bytes,
        )
        .into());
    }
    let mut body = response.bytes_stream();
    let mut pending = Vec::new();
    let mut last = String::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(unreachable)?;
        out.write_all(&chunk)?;
        out.flush()?;
        pending.extend_from_slice(&chunk);
        // Only the last complete line matters: it says whether the build failed.
        if let Some(end) = pending.iter().rposition(|b| *b == b'\n') {
            let lines = String::from_utf8_lossy(&pending[..end]).into_owned();
            last = lines.rsplit('\n').next().unwrap_or("").to_string();
            pending.drain(..=end);
        }
    }
    if let Some(message) = last.strip_prefix(FAILED_PREFIX) {
        anyhow::bail!("{message}");
    }
    if !last.starts_with("-----> Built the") {
        anyhow::bail!(
            "The stack build's progress ended before it finished; see the server's log, and \
             run `slipway stacks:build {name}` again."
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
