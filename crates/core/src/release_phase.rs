//! The release phase: a slug's `release:` process runs in a one-off dyno (`release.1`) with
//! the new release's slug and config vars before that release exists.
//!
//! Choice: a gated release is written only once its phase has finished, with its final status
//! (`succeeded` on exit 0, which lets the dyno manager switch the dynos; `failed` on a
//! non-zero exit, a crash, a start failure or the timeout, one hour by default, and the
//! previous release keeps running). The ledger is append-only, so writing `pending` first
//! would need a second record per release; writing once keeps every reader simple and means a
//! crash during the phase leaves no release at all, never a half-made or forever-pending one.
//! The price: while the phase runs, the API does not list the release yet (Heroku shows it as
//! `pending`).
//!
//! Releases of one app that need a phase are serialised by a per-app lock, so a phase never
//! runs against config vars that another release is changing. The phase's output streams to
//! whoever created the release (the `git push`) and into the app's log as `app[release.1]`.
//! It runs in its own task, so a caller that goes away (an HTTP client hanging up) does not
//! abandon the container half-way.
//!
//! The same machinery runs an app.json's `scripts.postdeploy` (one-off dyno `postdeploy.1`)
//! after the app's first deploy, with the new release's slug and config vars.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use slipway_logplex::{split_long_line, LogHub, LogLine};
use slipway_model::DynoSize;
use slipway_runtime::{ContainerSpec, ExitStatus, Runtime, Stream};
use uuid::Uuid;

use crate::config::PlatformConfig;
use crate::error::CoreError;
use crate::model::{App, ConfigVars, Release, Slug};
use crate::output::DeployOutput;
use crate::platform::Platform;
use crate::releases::release_command;
use crate::telemetry::PlatformEvent;

/// A deploy step that runs in a one-off dyno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The slug's `release:` process, before the release exists.
    Release,
    /// An app.json's postdeploy script, after the app's first deploy.
    Postdeploy,
}

impl Step {
    /// The one-off dyno's name, as Heroku shows it in logs.
    fn dyno(self) -> &'static str {
        match self {
            Step::Release => "release.1",
            Step::Postdeploy => "postdeploy.1",
        }
    }

    /// What messages call the step.
    fn what(self) -> &'static str {
        match self {
            Step::Release => "release command",
            Step::Postdeploy => "postdeploy script",
        }
    }
}

/// Everything the phase needs, owned, so it can run in a task of its own.
struct Phase {
    runtime: Arc<dyn Runtime>,
    logs: LogHub,
    config: PlatformConfig,
    app: App,
    config_vars: ConfigVars,
    slug: Slug,
    command: String,
    output: DeployOutput,
    step: Step,
    /// The app's own uid, also its gid (`uids.rs`).
    uid: u32,
    /// The add-on servers it may reach (`addons_reach.rs`).
    addon_ports: Vec<u16>,
}

/// One lock per app, held while a gated release runs its phase and is written.
fn app_lock(app: Uuid) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<std::sync::Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>> =
        OnceLock::new();
    let mut locks = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    locks.entry(app).or_default().clone()
}

impl Platform {
    /// Takes the app's release lock if `slug` has a release phase.
    pub(crate) async fn lock_release_phase(
        &self,
        app: &App,
        slug: Option<&Slug>,
    ) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        slug.and_then(release_command)?;
        Some(app_lock(app.id).lock_owned().await)
    }

    /// Runs the release phase of a release-to-be of `slug` with `config_vars`, if the slug
    /// has one. `Ok(None)`: no phase, or it succeeded; `Ok(Some(reason))`: it failed.
    pub(crate) async fn run_release_phase(
        &self,
        app: &App,
        slug: Option<&Slug>,
        config_vars: &ConfigVars,
        output: DeployOutput,
    ) -> Result<Option<String>, CoreError> {
        let Some(slug) = slug else { return Ok(None) };
        let Some(command) = release_command(slug) else {
            return Ok(None);
        };
        self.run_step(Step::Release, app, slug, config_vars, command, output)
            .await
    }

    /// Runs `command` as `step` in a one-off dyno of `slug` (with `config_vars`, those of the
    /// release being made or just made) in its own task, so a client that hangs up does not
    /// abandon the container. `Ok(None)`: it succeeded; `Ok(Some(reason))`: it failed (for a
    /// postdeploy script, the release stands).
    pub(crate) async fn run_step(
        &self,
        step: Step,
        app: &App,
        slug: &Slug,
        config_vars: &ConfigVars,
        command: &str,
        output: DeployOutput,
    ) -> Result<Option<String>, CoreError> {
        let uid = self.app_uid(app).await?;
        let addon_ports =
            crate::addons_reach::addon_ports(self.store().as_ref(), self.config(), app.id).await?;
        let phase = Phase {
            uid,
            addon_ports,
            runtime: self.runtime().clone(),
            logs: self.logs().clone(),
            config: self.config().clone(),
            app: app.clone(),
            config_vars: config_vars.clone(),
            slug: slug.clone(),
            command: command.to_owned(),
            output,
            step,
        };
        tokio::spawn(phase.run())
            .await
            .map_err(|join| CoreError::Io {
                app: app.id,
                action: "run a one-off dyno",
                source: std::io::Error::other(join),
            })
    }

    /// After a gated release was written: logs its outcome, and turns a failure into an error
    /// that says the previous release keeps running.
    pub(crate) fn release_phase_outcome(
        &self,
        app: &App,
        release: Release,
        failure: Option<String>,
        output: &DeployOutput,
    ) -> Result<Release, CoreError> {
        let Some(reason) = failure else {
            return Ok(release);
        };
        let line = format!("Release v{} failed: {reason}", release.version);
        self.logs()
            .publish(&app.name, LogLine::app("api", line.clone()));
        output(&format!("       {line}"));
        Err(CoreError::invalid(format!(
            "{line}. The previous release keeps running; fix the release command (its output is in `slipway logs`, as app[release.1]) and release again."
        )))
    }
}

impl Phase {
    /// Runs the command; returns why it failed, if it did.
    async fn run(self) -> Option<String> {
        (self.output)(&format!("-----> Running {}...", self.step.what()));
        self.logs.publish(
            &self.app.name,
            PlatformEvent::Starting {
                dyno: self.step.dyno(),
                command: &self.command,
            }
            .to_line(),
        );
        match self.execute().await {
            Ok(status) if status.success() => {
                (self.output)(&format!("       The {} succeeded.", self.step.what()));
                None
            }
            Ok(status) => Some(format!(
                "the {} exited with status {status}",
                self.step.what()
            )),
            Err(reason) => Some(reason),
        }
    }

    /// Starts the one-off dyno and waits for it, killing it at the timeout.
    async fn execute(&self) -> Result<ExitStatus, String> {
        let (app_dir, private) = self.unpacked_slug().await?;
        let spec = self.container_spec(app_dir);
        let id = spec.id.clone();
        let sink = {
            let logs = self.logs.clone();
            let app = self.app.name.clone();
            let output = self.output.clone();
            let dyno = self.step.dyno();
            Arc::new(move |_stream: Stream, line: &str| {
                output(line);
                for part in split_long_line(line) {
                    logs.publish(&app, LogLine::app(dyno, part));
                }
            })
        };
        let result = match self.runtime.start(spec, sink).await {
            Err(error) => Err(format!(
                "the {} dyno could not start: {error}",
                self.step.dyno()
            )),
            Ok(running) => {
                let timeout = self.config.release_phase_timeout;
                let exited = running.exited;
                tokio::pin!(exited);
                match tokio::time::timeout(timeout, &mut exited).await {
                    Ok(Ok(status)) => Ok(status),
                    Ok(Err(_)) => Err(format!(
                        "the {} dyno's exit status was lost",
                        self.step.dyno()
                    )),
                    Err(_) => {
                        let _ = self.runtime.stop(&id, std::time::Duration::ZERO).await;
                        let _ = exited.await;
                        Err(format!(
                            "the {} timed out after {} seconds",
                            self.step.what(),
                            timeout.as_secs()
                        ))
                    }
                }
            }
        };
        if let Ok(status) = &result {
            self.logs.publish(
                &self.app.name,
                PlatformEvent::Exited {
                    dyno: self.step.dyno(),
                    status: status.to_string(),
                }
                .to_line(),
            );
        }
        if let Some(dir) = private {
            let _ = tokio::fs::remove_dir_all(dir).await;
        }
        result
    }

    /// The slug's unpacked tree: the dyno manager's shared copy if it is complete, else a
    /// private copy (returned second, to remove afterwards) so the two never race.
    async fn unpacked_slug(&self) -> Result<(PathBuf, Option<PathBuf>), String> {
        let digest = self.slug.digest().to_owned();
        let shared = self.config.unpacked_slug_dir(&digest, self.uid);
        if shared.join(".complete").exists() {
            return Ok((shared.join("app"), None));
        }
        let private = self
            .config
            .builds_dir()
            .join(format!("release-{}", Uuid::new_v4().simple()));
        let tarball = self.config.slugs_dir().join(format!("{digest}.tgz"));
        let (uid, gid) = (self.uid, self.uid);
        let app_dir = private.join("app");
        let target = app_dir.clone();
        tokio::task::spawn_blocking(move || {
            slipway_build::unpack_slug(&tarball, &target, uid, gid)
        })
        .await
        .map_err(|error| format!("unpacking the slug failed: {error}"))?
        .map_err(|error| format!("unpacking the slug failed: {error}"))?;
        Ok((app_dir, Some(private)))
    }

    fn container_spec(&self, app_dir: PathBuf) -> ContainerSpec {
        let container_id = format!(
            "slipway.{}.{}.{}",
            self.app.name,
            self.step.dyno().trim_end_matches(".1"),
            &Uuid::new_v4().simple().to_string()[..8]
        );
        crate::dyno_spec::container_spec(
            &self.config,
            crate::dyno_spec::DynoSpec {
                container_id,
                app_id: self.app.id,
                app_name: &self.app.name,
                dyno: self.step.dyno(),
                release_version: None,
                command: &self.command,
                size: DynoSize::Standard1X,
                port: 5000,
                config_vars: &self.config_vars,
                stack: &self.slug.stack,
                app_dir: Some(app_dir),
                stack_id: self.slug.stack_id,
                uid: self.uid,
                addon_ports: self.addon_ports.clone(),
            },
        )
    }
}
