//! Heroku's progress line for one step that asks the API something: `Doing X... done`, or
//! `Doing X... !` when it failed (the error follows). One place, so every command prints it
//! the same way and flushes before it waits.

use std::future::Future;
use std::io::Write;

/// Prints `label... `, awaits `work`, and prints `!` if it failed; the caller prints
/// `done...` on success.
pub(crate) async fn action<T, E>(
    out: &mut dyn Write,
    label: &str,
    work: impl Future<Output = Result<T, E>>,
) -> anyhow::Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    write!(out, "{label}... ")?;
    out.flush()?;
    match work.await {
        Ok(value) => Ok(value),
        Err(error) => {
            writeln!(out, "!")?;
            Err(error.into())
        }
    }
}

/// [`action`], then `done`: for a step with nothing more to say about its result.
pub(crate) async fn action_done<T, E>(
    out: &mut dyn Write,
    label: &str,
    work: impl Future<Output = Result<T, E>>,
) -> anyhow::Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let value = action(out, label, work).await?;
    writeln!(out, "done")?;
    Ok(value)
}
