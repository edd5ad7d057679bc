//! `ps:type`: show or change the dyno size of process types (`ps:type web=standard-2x
//! worker=eco`), worded like the heroku CLI. Sizes are case-insensitive (`Standard-2X`).

use std::io::Write;

use reqwest::Method;
use slipway_api_types::{Formation, FormationBatchUpdate, FormationUpdateItem};
use slipway_model::{DynoSize, DynoSizeError, ProcessType};

use crate::action::action_done;
use crate::client::Client;
use crate::format::APP_MARK;

/// A `TYPE=SIZE` argument that is not one.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BadTypeArg {
    #[error("{arg:?} is not TYPE=SIZE: use e.g. web=standard-2x")]
    Malformed { arg: String },
    /// The server's own message for a size it does not offer.
    #[error(transparent)]
    UnknownSize(#[from] DynoSizeError),
}

/// Parses `TYPE=SIZE` arguments into formation updates that change only the size.
pub(crate) fn parse_type_args(args: &[String]) -> Result<Vec<FormationUpdateItem>, BadTypeArg> {
    args.iter()
        .map(|arg| {
            let malformed = || BadTypeArg::Malformed { arg: arg.clone() };
            let (process_type, size) = arg
                .split_once('=')
                .filter(|(_, s)| !s.is_empty() && !s.contains('='))
                .ok_or_else(malformed)?;
            let process_type: ProcessType = process_type.parse().map_err(|_| malformed())?;
            let size: DynoSize = size.parse()?;
            Ok(FormationUpdateItem {
                process_type: process_type.into(),
                quantity: None,
                // Heroku's spelling of the deprecated `size` field, whichever alias was typed.
                size: Some(size.display_name().to_owned()),
                dyno_size: None,
            })
        })
        .collect()
}

/// `ps:type [TYPE=SIZE ...]`.
pub(crate) async fn run(
    client: &Client,
    app: &str,
    changes: &[String],
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let updates = parse_type_args(changes)?;
    let formation: Vec<Formation> = if updates.is_empty() {
        client.get(&["apps", app, "formation"], None).await?
    } else {
        let body = FormationBatchUpdate { updates };
        let label = format!("Scaling dynos on {APP_MARK} {app}");
        action_done(
            out,
            &label,
            client.send(Method::PATCH, &["apps", app, "formation"], Some(&body)),
        )
        .await?
    };
    out.write_all(format_types(&formation).as_bytes())?;
    Ok(())
}

/// `=== Dyno Types` and a `type size qty` table, sorted by type.
fn format_types(formation: &[Formation]) -> String {
    let mut rows: Vec<[String; 3]> = formation
        .iter()
        .map(|f| {
            [
                f.process_type.clone(),
                f.size.clone(),
                f.quantity.to_string(),
            ]
        })
        .collect();
    rows.sort();
    let header = ["type".to_owned(), "size".to_owned(), "qty".to_owned()];
    let widths: Vec<usize> = (0..3)
        .map(|i| {
            rows.iter()
                .chain([&header])
                .map(|r| r[i].len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::from("=== Dyno Types\n");
    for row in [&header].into_iter().chain(rows.iter()) {
        let line = format!(
            "{:w0$}  {:w1$}  {}",
            row[0],
            row[1],
            row[2],
            w0 = widths[0],
            w1 = widths[1]
        );
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests;
