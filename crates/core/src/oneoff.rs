//! One-off dynos (`heroku run`, `heroku run:detached`): `run.N` dynos of the current release,
//! run once and never restarted.
//!
//! A one-off dyno is built exactly as a formation dyno (`dyno_spec.rs`: slug, config vars,
//! stack, isolation, the app's uid, its size's limits) plus the request's environment, and
//! runs its command in a shell with `.profile.d` sourced; a command whose first word is a
//! Procfile process type runs that type's command. Its record is in the store with the
//! formation's (`dynos/<app id>/run.N`, type `run`), so `ps` shows it, but it is not the dyno
//! manager's: the manager plans, counts and stops only the slots of the formation, so scaling,
//! releases and restarts of the app leave one-off dynos alone (`DELETE /apps/{app}/dynos`
//! restarts the formation only). `ps:stop run.N` (and `ps:restart run.N`) end one.
//!
//! Detached, the container starts during the request with its output in the app's log
//! stream. Attached, the request only records the dyno and hands out an `attach_url` with a
//! fresh secret (`oneoff_registry.rs`); the container starts when the client presents the
//! secret to the rendezvous listener (`attach.rs`), within the attach window, or the dyno is
//! removed. Either way a supervisor task watches it: its exit is logged and its record
//! removed; its time to live stops it; a client that hung up (SIGHUP) and a process still
//! running the hangup grace later gets R16 and is stopped.
//!
//! A server restart ends every one-off dyno: the dyno manager stops their containers and
//! removes their records when it starts (`dyno_manager.rs`), as their sessions are gone.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use slipway_logplex::{LogHub, LogLine};
use slipway_model::{ConfigKey, DynoSize, ProcessType, SecretToken};
use slipway_runtime::{
    Attach, AttachControl, AttachedIo, ContainerSpec, ExitStatus, RunningContainer, Runtime,
};
use slipway_store::Store;
use tokio::sync::{oneshot, Notify};
use uuid::Uuid;

use crate::config::PlatformConfig;
use crate::dyno_manager::{dyno_output, free_port, unpack};
use crate::dyno_spec::{container_spec, make_one_off, DynoSpec};
use crate::error::CoreError;
use crate::model::{keys, App, Dyno, DynoState, Slug};
use crate::oneoff_registry::{digest, CapReached, OneOffs, Pending, StopFound};
use crate::platform::Platform;
use crate::telemetry::PlatformEvent;

/// The longest command line a one-off dyno accepts (bytes).
const MAX_COMMAND_BYTES: usize = 32 * 1024;
/// The most environment (keys and values) a one-off request may add (bytes), as Heroku's
/// 32 KB for an app's config vars, doubled for the terminal's variables.
const MAX_ENV_BYTES: usize = 64 * 1024;
/// The size of a one-off dyno when neither the request nor a formation says one.
const DEFAULT_ONE_OFF_SIZE: DynoSize = DynoSize::Standard1X;
/// The window size of an attached terminal whose client sent no COLUMNS/LINES.
const DEFAULT_TTY: (u16, u16) = (80, 24);

/// A one-off dyno as asked for (the fields of `Command::RunDyno`).
#[derive(Debug)]
pub(crate) struct RunRequest {
    pub(crate) command: String,
    pub(crate) attach: bool,
    pub(crate) env: BTreeMap<ConfigKey, String>,
    pub(crate) size: Option<DynoSize>,
    pub(crate) process_type: Option<ProcessType>,
    pub(crate) time_to_live: Option<Duration>,
    pub(crate) force_no_tty: bool,
}

/// What a one-off dyno's tasks use of the platform: they outlive the request that made it.
#[derive(Clone)]
pub(crate) struct OneOffParts {
    store: Arc<dyn Store>,
    runtime: Arc<dyn Runtime>,
    logs: LogHub,
    config: PlatformConfig,
    registry: Arc<OneOffs>,
}

impl OneOffParts {
    fn event(&self, app: &str, event: PlatformEvent<'_>) {
        self.logs.publish(app, event.to_line());
    }

    async fn save(&self, record: &Dyno) {
        let key = keys::dyno(record.app_id, &record.name);
        if let Err(error) = slipway_store::json::put_json(self.store.as_ref(), &key, record).await {
            tracing::error!(%error, key, "could not record a one-off dyno's state");
        }
    }

    /// Removes a one-off dyno's record and forgets it.
    async fn forget(&self, record: &Dyno) {
        let key = keys::dyno(record.app_id, &record.name);
        if let Err(error) = self.store.delete(&key).await {
            tracing::error!(%error, key, "could not remove a one-off dyno's record");
        }
        self.registry.remove(record.app_id, &record.name);
    }
}

/// How a claimed or detached dyno is started.
enum How {
    Detached,
    Attached {
        attach: Attach,
        hung_up: Arc<Notify>,
    },
}

/// The command a one-off dyno runs: a Procfile process type named as the first word runs that
/// type's command (with the other words after it); anything else runs as given.
pub(crate) fn resolve_command(command: &str, process_types: &BTreeMap<String, String>) -> String {
    let command = command.trim();
    let (first, rest) = command
        .split_once(char::is_whitespace)
        .map_or((command, ""), |(first, rest)| (first, rest.trim_start()));
    match process_types.get(first) {
        Some(procfile) if rest.is_empty() => procfile.clone(),
        Some(procfile) => format!("{procfile} {rest}"),
        None => command.to_owned(),
    }
}

/// Checks what a request may not carry: an empty or oversized command, NUL bytes, too much
/// environment, a time to live out of range.
pub(crate) fn check_request(request: &RunRequest, max_ttl: Duration) -> Result<(), CoreError> {
    let command = request.command.trim();
    if command.is_empty() {
        return Err(CoreError::invalid(
            "Command can't be empty. Say what to run, e.g. `slipway run bash`.",
        ));
    }
    if command.len() > MAX_COMMAND_BYTES {
        return Err(CoreError::invalid(format!(
            "Command is too long: at most {MAX_COMMAND_BYTES} bytes."
        )));
    }
    if command.contains('\0') {
        return Err(CoreError::invalid("Command can't contain NUL bytes."));
    }
    let mut env_bytes = 0;
    for (key, value) in &request.env {
        if value.contains('\0') {
            return Err(CoreError::invalid(format!(
                "The value of {key} in env can't contain NUL bytes."
            )));
        }
        env_bytes += key.as_str().len() + value.len();
    }
    if env_bytes > MAX_ENV_BYTES {
        return Err(CoreError::invalid(format!(
            "env is too large: at most {MAX_ENV_BYTES} bytes of keys and values."
        )));
    }
    if let Some(ttl) = request.time_to_live {
        if ttl.is_zero() || ttl > max_ttl {
            return Err(CoreError::invalid(format!(
                "time_to_live must be between 1 and {} seconds.",
                max_ttl.as_secs()
            )));
        }
    }
    Ok(())
}

/// The terminal size an attached dyno starts with: the client's `COLUMNS` and `LINES`.
fn tty_size(env: &BTreeMap<ConfigKey, String>) -> (u16, u16) {
    let get = |name: &str| {
        env.iter()
            .find(|(key, _)| key.as_str() == name)
            .and_then(|(_, value)| value.trim().parse::<u16>().ok())
            .filter(|n| *n > 0)
    };
    (
        get("COLUMNS").unwrap_or(DEFAULT_TTY.0),
        get("LINES").unwrap_or(DEFAULT_TTY.1),
    )
}

impl Platform {
    pub(crate) fn one_off_parts(&self) -> OneOffParts {
        OneOffParts {
            store: self.store().clone(),
            runtime: self.runtime().clone(),
            logs: self.logs().clone(),
            config: self.config().clone(),
            registry: self.one_offs().clone(),
        }
    }

    /// Creates a one-off dyno of `app`'s current release (see the module doc). Returns its
    /// record and, attached, its `attach_url`. Refused requests leave nothing behind.
    pub(crate) async fn run_dyno(
        &self,
        app: &App,
        request: RunRequest,
    ) -> Result<(Dyno, Option<String>), CoreError> {
        let limits = &self.config().dynos;
        check_request(&request, limits.one_off_max_time_to_live)?;
        let no_release = || {
            CoreError::invalid(format!(
                "{} has no release yet. Deploy your code (git push) before running a one-off dyno.",
                app.name
            ))
        };
        let release = self.current_release(app).await?.ok_or_else(no_release)?;
        let slug_id = release.slug_id.ok_or_else(no_release)?;
        let slug = self.slug(app, slug_id).await?;
        if let Some(process_type) = &request.process_type {
            if !slug.process_types.contains_key(process_type.as_str()) {
                let known: Vec<&str> = slug.process_types.keys().map(String::as_str).collect();
                return Err(CoreError::invalid(format!(
                    "Unknown process type {process_type}: release v{} defines {}.",
                    release.version,
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                )));
            }
        }
        let size = match request.size {
            Some(size) => size,
            None => {
                let formation = self.formation(app).await?;
                let wanted = request
                    .process_type
                    .as_ref()
                    .map_or("web", ProcessType::as_str);
                match formation.iter().find(|f| f.process_type == wanted) {
                    Some(entry) => entry.size.parse::<DynoSize>().map_err(|error| {
                        CoreError::stored_dyno_size(
                            &app.name,
                            &format!("the {wanted} formation"),
                            &error,
                        )
                    })?,
                    None => DEFAULT_ONE_OFF_SIZE,
                }
            }
        };
        let uid = self.app_uid(app).await?;
        let port = free_port().map_err(|source| CoreError::Io {
            app: app.id,
            action: "find a port for a one-off dyno",
            source,
        })?;
        let taken: HashSet<String> = self.dynos(app).await?.into_iter().map(|d| d.name).collect();
        let now = Utc::now();
        let command = request.command.trim().to_owned();
        let record = self
            .one_offs()
            .reserve(
                app.id,
                limits.max_one_offs_per_app,
                &taken,
                || {
                    use rand::Rng;
                    rand::thread_rng().gen_range(1000..=9999)
                },
                |name| {
                    let short = &Uuid::new_v4().simple().to_string()[..8];
                    Dyno {
                        id: Uuid::new_v4(),
                        app_id: app.id,
                        app_name: app.name.clone(),
                        name: name.to_owned(),
                        process_type: "run".to_owned(),
                        command: command.clone(),
                        size: size.as_str().to_owned(),
                        state: DynoState::Starting,
                        release_id: release.id,
                        release_version: release.version,
                        // Not routed: a one-off dyno takes no web traffic.
                        port: None,
                        address: None,
                        container_id: format!("slipway.{}.{name}.{short}", app.name),
                        created_at: now,
                        updated_at: now,
                    }
                },
            )
            .map_err(|CapReached| {
                CoreError::invalid(format!(
                    "{} already runs {} one-off dynos, the most it may run at once. Stop one (`ps:stop run.N`) or wait for one to finish.",
                    app.name, limits.max_one_offs_per_app
                ))
            })?;
        let mut config_vars = release.config_vars.clone();
        for (key, value) in &request.env {
            config_vars.insert(key.to_string(), value.clone());
        }
        let resolved = resolve_command(&command, &slug.process_types);
        let addon_ports =
            match crate::addons_reach::addon_ports(self.store().as_ref(), self.config(), app.id)
                .await
            {
                Ok(ports) => ports,
                Err(error) => {
                    self.one_offs().remove(app.id, &record.name);
                    return Err(error.into());
                }
            };
        let mut spec = container_spec(
            self.config(),
            DynoSpec {
                container_id: record.container_id.clone(),
                app_id: app.id,
                app_name: &app.name,
                dyno: &record.name,
                release_version: Some(release.version),
                command: &resolved,
                size,
                port,
                config_vars: &config_vars,
                stack: &slug.stack,
                stack_id: slug.stack_id,
                app_dir: None,
                uid,
                addon_ports,
            },
        );
        make_one_off(&mut spec, request.attach);
        let parts = self.one_off_parts();
        if let Err(error) = slipway_store::json::put_json(
            self.store().as_ref(),
            &keys::dyno(app.id, &record.name),
            &record,
        )
        .await
        {
            self.one_offs().remove(app.id, &record.name);
            return Err(error.into());
        }
        let ttl = request
            .time_to_live
            .unwrap_or(limits.one_off_max_time_to_live);
        let deadline = Instant::now() + ttl;
        if !request.attach {
            return match start(
                &parts,
                record.clone(),
                spec,
                &slug,
                uid,
                How::Detached,
                deadline,
            )
            .await
            {
                Ok((record, _)) => Ok((record, None)),
                Err(message) => Err(CoreError::invalid(message)),
            };
        }
        let secret = SecretToken::generate();
        let digest = digest(secret.expose());
        let (cols, rows) = tty_size(&request.env);
        let attach = if request.force_no_tty {
            Attach::Pipes
        } else {
            Attach::Tty { cols, rows }
        };
        self.one_offs().wait_for_claim(
            app.id,
            &record.name,
            Pending {
                spec,
                slug,
                uid,
                attach,
                secret: digest,
                deadline,
            },
        );
        let window = limits.one_off_attach_window;
        let waiting = record.clone();
        tokio::spawn(async move {
            tokio::time::sleep(window).await;
            if let Some(record) =
                parts
                    .registry
                    .expire(waiting.app_id, &waiting.name, &digest, Instant::now())
            {
                parts.logs.publish(
                    &record.app_name,
                    LogLine::heroku(
                        record.name.clone(),
                        "Error R13 (Attach error) -> Failed to attach to process",
                    ),
                );
                parts.event(
                    &record.app_name,
                    PlatformEvent::StateChanged {
                        dyno: &record.name,
                        from: DynoState::Starting,
                        to: DynoState::Complete,
                    },
                );
                parts.forget(&record).await;
            }
        });
        let attach_url = format!(
            "{}/{}",
            self.config().rendezvous_url.trim_end_matches('/'),
            secret.expose()
        );
        Ok((record, Some(attach_url)))
    }

    /// Stops `app`'s one-off dyno `name`, if it has one (`false`: it does not).
    pub(crate) async fn stop_one_off(&self, app: &App, name: &str) -> bool {
        let parts = self.one_off_parts();
        match self.one_offs().stop(app.id, name, Instant::now()) {
            None => false,
            Some(StopFound::Unclaimed(record)) => {
                parts.event(
                    &app.name,
                    PlatformEvent::StateChanged {
                        dyno: name,
                        from: DynoState::Starting,
                        to: DynoState::Complete,
                    },
                );
                parts.forget(&record).await;
                true
            }
            Some(StopFound::Told | StopFound::Nothing) => true,
        }
    }

    /// Stops every one-off dyno of `app` (`ps:stop run`, the app's deletion).
    pub(crate) async fn stop_one_offs(&self, app: &App) {
        for name in self.one_offs().names(app.id) {
            self.stop_one_off(app, &name).await;
        }
    }
}

/// Starts a claimed attached dyno (see `attach.rs`): its streams, with a control that tells
/// the supervisor when the client hangs up, and its exit status.
pub(crate) async fn start_claimed(
    parts: &OneOffParts,
    record: Dyno,
    pending: Pending,
) -> Result<(AttachedIo, oneshot::Receiver<ExitStatus>), String> {
    let hung_up = Arc::new(Notify::new());
    let how = How::Attached {
        attach: pending.attach,
        hung_up: hung_up.clone(),
    };
    let (_, started) = start(
        parts,
        record,
        pending.spec,
        &pending.slug,
        pending.uid,
        how,
        pending.deadline,
    )
    .await?;
    let Some((io, exited)) = started else {
        return Err("the dyno started without its streams".to_owned());
    };
    let io = AttachedIo {
        control: Arc::new(HangupControl {
            inner: io.control,
            hung_up,
        }),
        ..io
    };
    Ok((io, exited))
}

/// Passes the client's terminal control on, and tells the dyno's supervisor of a hangup.
struct HangupControl {
    inner: Arc<dyn AttachControl>,
    hung_up: Arc<Notify>,
}

impl AttachControl for HangupControl {
    fn resize(&self, cols: u16, rows: u16) -> std::io::Result<()> {
        self.inner.resize(cols, rows)
    }

    fn hangup(&self) -> std::io::Result<()> {
        // The supervisor is told even if the signal could not be sent: the grace still runs.
        self.hung_up.notify_one();
        self.inner.hangup()
    }
}

type AttachedStart = Option<(AttachedIo, oneshot::Receiver<ExitStatus>)>;

/// Unpacks the slug and starts the dyno's container; on success the dyno is `up` and
/// supervised, on failure its record is gone and the reason returned.
async fn start(
    parts: &OneOffParts,
    mut record: Dyno,
    spec: ContainerSpec,
    slug: &Slug,
    uid: u32,
    how: How,
    deadline: Instant,
) -> Result<(Dyno, AttachedStart), String> {
    parts.event(
        &record.app_name,
        PlatformEvent::Starting {
            dyno: &record.name,
            command: &record.command,
        },
    );
    let started = async {
        let app_dir = unpack(&parts.config, slug, uid, &parts.registry.unpacked)
            .await
            .map_err(|error| error.to_string())?;
        let spec = ContainerSpec {
            app_dir: Some(app_dir),
            ..spec
        };
        match &how {
            How::Detached => {
                let output = dyno_output(&parts.logs, &record.app_name, &record.name);
                let running = parts
                    .runtime
                    .start(spec, output)
                    .await
                    .map_err(|error| error.to_string())?;
                Ok::<_, String>((running, None))
            }
            How::Attached { attach, .. } => {
                let (running, io) = parts
                    .runtime
                    .start_attached(spec, *attach)
                    .await
                    .map_err(|error| error.to_string())?;
                Ok((running, Some(io)))
            }
        }
    }
    .await;
    let (running, io) = match started {
        Ok(started) => started,
        Err(reason) => {
            parts.event(
                &record.app_name,
                PlatformEvent::StartFailed {
                    dyno: &record.name,
                    reason: reason.clone(),
                },
            );
            parts.forget(&record).await;
            return Err(format!("{} could not start: {reason}", record.name));
        }
    };
    record.state = DynoState::Up;
    record.updated_at = Utc::now();
    record.address = running.address;
    parts.save(&record).await;
    parts.event(
        &record.app_name,
        PlatformEvent::StateChanged {
            dyno: &record.name,
            from: DynoState::Starting,
            to: DynoState::Up,
        },
    );
    let stop = parts
        .registry
        .mark_up(record.app_id, &record)
        .unwrap_or_else(|| Arc::new(Notify::new()));
    let (forward, hung_up) = match (&how, io.is_some()) {
        (How::Attached { hung_up, .. }, true) => {
            let (sender, receiver) = oneshot::channel();
            (Some((sender, receiver)), Some(hung_up.clone()))
        }
        _ => (None, None),
    };
    let (sender, receiver) = match forward {
        Some((sender, receiver)) => (Some(sender), Some(receiver)),
        None => (None, None),
    };
    supervise(
        parts.clone(),
        record.clone(),
        running,
        sender,
        stop,
        hung_up,
        deadline,
    );
    let attached = io.zip(receiver);
    Ok((record, attached))
}

/// Watches a started one-off dyno until it exits: stops it at `ps:stop`, at its time to live
/// and after a hangup it outlives (R16); then logs the exit, removes its record and forwards
/// its status to the attached session.
fn supervise(
    parts: OneOffParts,
    mut record: Dyno,
    running: RunningContainer,
    forward: Option<oneshot::Sender<ExitStatus>>,
    stop: Arc<Notify>,
    hung_up: Option<Arc<Notify>>,
    deadline: Instant,
) {
    tokio::spawn(async move {
        let exited = running.exited;
        tokio::pin!(exited);
        let stop_now = |parts: &OneOffParts, record: &Dyno| {
            let parts = parts.clone();
            let record = record.clone();
            tokio::spawn(async move {
                parts.event(
                    &record.app_name,
                    PlatformEvent::StoppingSigterm { dyno: &record.name },
                );
                let grace = parts.config.dynos.stop_grace;
                if let Err(error) = parts.runtime.stop(&record.container_id, grace).await {
                    tracing::error!(%error, container = %record.container_id, "stopping a one-off dyno failed");
                }
            });
        };
        // Asked to stop while it was starting.
        if parts.registry.stop_asked(record.app_id, &record.name) {
            stop_now(&parts, &record);
        }
        let deadline = tokio::time::Instant::from_std(deadline);
        let mut ttl_over = false;
        let mut r16_at: Option<tokio::time::Instant> = None;
        let mut r16_done = false;
        let status = loop {
            let hangup = async {
                match &hung_up {
                    Some(hung_up) => hung_up.notified().await,
                    None => std::future::pending().await,
                }
            };
            let r16 = async {
                match r16_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                status = &mut exited => break status.ok(),
                _ = tokio::time::sleep_until(deadline), if !ttl_over => {
                    ttl_over = true;
                    stop_now(&parts, &record);
                }
                _ = stop.notified() => stop_now(&parts, &record),
                _ = hangup, if r16_at.is_none() => {
                    r16_at = Some(tokio::time::Instant::now() + parts.config.dynos.one_off_hangup_grace);
                }
                _ = r16, if !r16_done => {
                    r16_done = true;
                    parts.logs.publish(
                        &record.app_name,
                        LogLine::heroku(
                            record.name.clone(),
                            "Error R16 (Detached) -> An attached process is not responding to SIGHUP after its external connection was closed.",
                        ),
                    );
                    stop_now(&parts, &record);
                }
            }
        };
        let status = status.unwrap_or(ExitStatus {
            code: None,
            signal: None,
        });
        parts.event(
            &record.app_name,
            PlatformEvent::Exited {
                dyno: &record.name,
                status: status.to_string(),
            },
        );
        parts.event(
            &record.app_name,
            PlatformEvent::StateChanged {
                dyno: &record.name,
                from: DynoState::Up,
                to: DynoState::Complete,
            },
        );
        record.state = DynoState::Complete;
        parts.forget(&record).await;
        if let Some(forward) = forward {
            let _ = forward.send(status);
        }
    });
}

#[cfg(test)]
mod tests;
