//! The dyno manager: keeps each app's running dynos equal to its formation on its current
//! release.
//!
//! One task owns all dyno state and reacts to events: store watches (formation, releases,
//! apps) and what its own per-dyno tasks report (up, boot timeout, exited). Each reaction is a
//! `reconcile` of one app, which only decides and spawns; anything slow (unpacking a slug,
//! starting or stopping a container, waiting for `$PORT`) runs in a task that reports back.
//! Dyno states are written to the store (`dynos/<app id>/<name>`), where the API and the route
//! publisher read them.
//!
//! A dyno's life: `starting` → `up` (a web dyno when `$PORT` accepts connections; other
//! types at once) → `crashed` when its process exits, whatever the status. A crashed dyno is
//! restarted at once the first time, then after the backoff ladder. New releases replace
//! dynos; scaling down stops the highest-numbered first.
//!
//! Zero-downtime replacement (Heroku's preboot, on by default): when a web dyno that is `up`
//! must be replaced (new release, config change, restart, cycling), its replacement starts
//! beside it as the slot's `next` instance, which is not in the store and so takes no
//! traffic. Once `next` is up it becomes the slot's instance (its record replaces the old one
//! in the store, so the route table switches to it) and the old dyno gets SIGTERM a moment
//! later and drains. A replacement that never comes up (R10, crash) never takes traffic; the
//! old dyno keeps serving and the replacement is retried on the crash backoff ladder.
//!
//! Re-adoption: when the server starts, dynos still running from the previous server process
//! are taken over from the runtime (output, exit) with their store records as they were, so
//! the router serves them at once; containers without a record (or with one for another
//! container) are strays and are stopped, records without a running container are removed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use slipway_logplex::{split_long_line, LogLine};
use slipway_runtime::{ContainerSpec, ExitStatus, OutputSink, StopOutcome, Stream};
use slipway_store::json::range_json;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::model::{keys, App, Dyno, DynoState, Formation, Release, Restart, Slug};
use crate::telemetry::PlatformEvent;
use crate::{size_limits, CoreError, Platform};

mod sleeping;

/// Tunables of the dyno manager; the defaults are Heroku's.
#[derive(Debug, Clone)]
pub struct DynoManagerConfig {
    /// A web dyno must bind `$PORT` within this long (R10).
    pub boot_timeout: Duration,
    /// SIGTERM, then SIGKILL after this long (R12).
    pub stop_grace: Duration,
    /// Waits before restarting a dyno after its 1st, 2nd, ... consecutive crash; the last
    /// entry repeats.
    pub crash_backoff: Vec<Duration>,
    pub max_dynos_per_app: u32,
    /// Start new web dynos and move traffic to them before stopping the old ones.
    pub preboot: bool,
    /// Each dyno is restarted (`Cycling`) after this long plus a random part of
    /// `cycle_jitter`.
    pub cycle_after: Duration,
    pub cycle_jitter: Duration,
    /// How often dynos' memory use is checked against their quota (R14, R15).
    pub memory_check_interval: Duration,
    /// An app whose web dynos are `eco` sleeps after this long without web traffic.
    pub idle_after: Duration,
}

impl Default for DynoManagerConfig {
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        DynoManagerConfig {
            boot_timeout: Duration::from_secs(60),
            stop_grace: Duration::from_secs(30),
            crash_backoff: vec![
                Duration::ZERO,
                minutes(20),
                minutes(40),
                minutes(60),
                minutes(180),
                minutes(320),
            ],
            max_dynos_per_app: 100,
            preboot: true,
            cycle_after: Duration::from_secs(24 * 3600),
            cycle_jitter: minutes(216),
            memory_check_interval: Duration::from_secs(20),
            idle_after: Duration::from_secs(30 * 60),
        }
    }
}

/// What the manager's tasks and watches tell it.
#[derive(Debug)]
enum Event {
    /// Something about this app changed in the store (or: re-check everything).
    AppChanged(Option<Uuid>),
    Started {
        container_id: String,
        pid: u32,
        /// The container's address on the dyno network, if it has one.
        address: Option<IpAddr>,
    },
    StartFailed {
        container_id: String,
        reason: String,
    },
    Up {
        container_id: String,
    },
    BootTimeout {
        container_id: String,
    },
    Exited {
        container_id: String,
        status: ExitStatus,
    },
}

/// One running (or crashed) dyno.
#[derive(Debug, Clone)]
struct Instance {
    record: Dyno,
    /// Set once this manager decided to stop it: its exit is then expected, not a crash.
    stopping: bool,
    /// When it is due for its daily restart (`Cycling`).
    cycle_at: Instant,
    /// The last R14 logged for it, to log one every few minutes at most.
    r14_at: Option<Instant>,
}

/// Which instance of a slot an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    /// The one recorded in the store (and routed to once up).
    Current,
    /// A web replacement booting beside it (preboot).
    Next,
}

#[derive(Debug, Default)]
struct Slot {
    instance: Option<Instance>,
    next: Option<Instance>,
    consecutive_crashes: u32,
    restart_at: Option<Instant>,
}

#[derive(Debug, Default)]
struct AppDynos {
    name: String,
    slots: BTreeMap<String, Slot>,
}

struct Manager {
    platform: Arc<Platform>,
    apps: HashMap<Uuid, AppDynos>,
    events: mpsc::UnboundedSender<Event>,
    /// Slugs being unpacked or already unpacked, by digest.
    unpacked: Arc<tokio::sync::Mutex<HashSet<String>>>,
}

/// After the route table switched to a new dyno, the old one gets SIGTERM this much later, so
/// that requests the router sent it just before the switch are in its hands.
const ROUTE_SWITCH_DELAY: Duration = Duration::from_millis(1000);
/// R14 is logged at most this often per dyno.
const R14_EVERY: Duration = Duration::from_secs(300);

pub(crate) fn spawn(platform: Arc<Platform>) -> tokio::task::JoinHandle<()> {
    let (events, mut inbox) = mpsc::unbounded_channel();
    for prefix in [keys::FORMATION, keys::RELEASES, keys::APPS, keys::RESTARTS] {
        let store = platform.store.clone();
        let events = events.clone();
        tokio::spawn(async move {
            loop {
                let mut watcher = match store.watch(prefix, None).await {
                    Ok(watcher) => watcher,
                    Err(error) => {
                        tracing::error!(%error, prefix, "dyno manager cannot watch the store");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                // Something may have changed while the watch was being (re-)established.
                let _ = events.send(Event::AppChanged(None));
                while let Some(event) = watcher.next().await {
                    let Ok(event) = event else { break };
                    let app = if prefix == keys::APPS {
                        None
                    } else {
                        keys::app_id_in(&event.kv.key, prefix)
                    };
                    if events.send(Event::AppChanged(app)).is_err() {
                        return;
                    }
                }
            }
        });
    }
    let mut manager = Manager {
        platform,
        apps: HashMap::new(),
        events: events.clone(),
        unpacked: Arc::new(tokio::sync::Mutex::new(HashSet::new())),
    };
    let mut wakes = manager.platform.activity.wake_inbox();
    tokio::spawn(async move {
        manager.adopt_previous_run().await;
        let config = manager.platform.config.dynos.clone();
        let mut tick = tokio::time::interval(crate::RECONCILE_INTERVAL);
        let mut memory_tick =
            tokio::time::interval(config.memory_check_interval.max(Duration::from_millis(100)));
        let mut idle_tick = tokio::time::interval(
            (config.idle_after / 4).clamp(Duration::from_millis(250), Duration::from_secs(30)),
        );
        for interval in [&mut tick, &mut memory_tick, &mut idle_tick] {
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        loop {
            let event = tokio::select! {
                biased;
                Some(app) = async { wakes.as_mut()?.recv().await } => {
                    manager.wake(&app).await;
                    continue;
                }
                event = inbox.recv() => match event {
                    Some(event) => event,
                    None => return,
                },
                _ = memory_tick.tick() => {
                    manager.check_memory();
                    continue;
                }
                _ = idle_tick.tick() => {
                    manager.sleep_idle_apps().await;
                    continue;
                }
                _ = tick.tick() => Event::AppChanged(None),
            };
            manager.handle(event).await;
        }
    })
}

impl Manager {
    /// Takes over the dynos a previous server process left running (see the module doc).
    async fn adopt_previous_run(&mut self) {
        let containers = match self.platform.runtime.list().await {
            Ok(containers) => containers,
            Err(error) => {
                tracing::error!(%error, "cannot list the runtime's containers to re-adopt dynos");
                Vec::new()
            }
        };
        let records = match range_json::<Dyno, _>(self.platform.store.as_ref(), keys::DYNOS).await {
            Ok((records, _)) => records,
            Err(error) => {
                tracing::error!(%error, "cannot read dyno records to re-adopt dynos");
                return;
            }
        };
        let apps = match range_json::<App, _>(self.platform.store.as_ref(), keys::APPS).await {
            Ok((apps, _)) => apps,
            Err(error) => {
                tracing::error!(%error, "cannot read apps to re-adopt dynos");
                return;
            }
        };
        let mut adopted = HashSet::new();
        for container in containers {
            if !container.labels.contains_key("app") {
                continue;
            }
            let record = records
                .iter()
                .map(|(_, record)| record)
                .find(|record| record.container_id == container.id);
            let app = record.and_then(|record| {
                apps.iter()
                    .map(|(_, app)| app)
                    .find(|app| app.id == record.app_id)
            });
            let (Some(record), Some(app), true) = (record, app, container.running) else {
                tracing::info!(container = %container.id, "stopping a stray container from a previous run");
                let runtime = self.platform.runtime.clone();
                let grace = self.platform.config.dynos.stop_grace;
                tokio::spawn(async move {
                    if let Err(error) = runtime.stop(&container.id, grace).await {
                        tracing::warn!(%error, container = %container.id, "could not stop a stray container");
                    }
                });
                continue;
            };
            let output = dyno_output(&self.platform, &record.app_name, &record.name);
            let running = match self.platform.runtime.adopt(&container.id, output).await {
                Ok(running) => running,
                Err(error) => {
                    tracing::warn!(%error, container = %container.id, "could not re-adopt a dyno; stopping it");
                    let runtime = self.platform.runtime.clone();
                    let grace = self.platform.config.dynos.stop_grace;
                    tokio::spawn(async move {
                        let _ = runtime.stop(&container.id, grace).await;
                    });
                    continue;
                }
            };
            tracing::info!(container = %container.id, dyno = %record.name, app = %app.name, "re-adopted a running dyno");
            adopted.insert(record.container_id.clone());
            let stored_address = record.address;
            // The runtime's word on the address wins (it persists it with the container).
            let mut record = record.clone();
            record.address = running.address.or(container.address);
            if record.address != stored_address {
                // The route table reads the address from the store.
                self.save(&record).await;
            }
            let age = (Utc::now() - record.created_at)
                .to_std()
                .unwrap_or(Duration::ZERO);
            let mut instance = self.new_instance(record.clone());
            instance.cycle_at = instance.cycle_at.checked_sub(age).unwrap_or(Instant::now());
            let entry = self.apps.entry(app.id).or_default();
            entry.name = app.name.clone();
            entry.slots.entry(record.name.clone()).or_default().instance = Some(instance);
            let remaining_boot = if record.state == DynoState::Starting {
                Some(
                    self.platform
                        .config
                        .dynos
                        .boot_timeout
                        .saturating_sub(age)
                        .max(Duration::from_secs(1)),
                )
            } else {
                None
            };
            spawn_watcher(
                self.platform.clone(),
                self.events.clone(),
                record.clone(),
                running,
                remaining_boot,
            );
        }
        for (key, record) in records {
            if adopted.contains(&record.container_id) {
                continue;
            }
            let app = apps
                .iter()
                .map(|(_, app)| app)
                .find(|app| app.id == record.app_id);
            match app {
                // A sleeping dyno has no container: it stays asleep.
                Some(app) if record.state == DynoState::Idle => {
                    let mut instance = self.new_instance(record.clone());
                    instance.stopping = true;
                    let entry = self.apps.entry(app.id).or_default();
                    entry.name = app.name.clone();
                    entry.slots.entry(record.name.clone()).or_default().instance = Some(instance);
                }
                _ => {
                    let _ = self.platform.store.delete(&key.key).await;
                }
            }
        }
    }

    fn new_instance(&self, record: Dyno) -> Instance {
        let config = &self.platform.config.dynos;
        let jitter = if config.cycle_jitter.is_zero() {
            Duration::ZERO
        } else {
            use rand::Rng;
            let millis = config.cycle_jitter.as_millis().min(u64::MAX as u128) as u64;
            Duration::from_millis(rand::thread_rng().gen_range(0..=millis))
        };
        Instance {
            record,
            stopping: false,
            cycle_at: Instant::now() + config.cycle_after + jitter,
            r14_at: None,
        }
    }

    async fn handle(&mut self, event: Event) {
        let app = match event {
            Event::AppChanged(app) => app,
            Event::Started {
                container_id,
                pid,
                address,
            } => {
                tracing::debug!(container_id, pid, ?address, "dyno container started");
                self.on_started(&container_id, address).await;
                return;
            }
            Event::StartFailed {
                container_id,
                reason,
            } => self.on_exit(&container_id, None, Some(reason)).await,
            Event::Up { container_id } => self.on_up(&container_id).await,
            Event::BootTimeout { container_id } => self.on_boot_timeout(&container_id).await,
            Event::Exited {
                container_id,
                status,
            } => self.on_exit(&container_id, Some(status), None).await,
        };
        match app {
            Some(app) => {
                if let Err(error) = self.reconcile(app).await {
                    tracing::error!(%error, %app, "reconciling an app's dynos failed");
                }
            }
            None => self.reconcile_all().await,
        }
    }

    async fn reconcile_all(&mut self) {
        let apps = match range_json::<App, _>(self.platform.store.as_ref(), keys::APPS).await {
            Ok((apps, _)) => apps,
            Err(error) => {
                tracing::error!(%error, "dyno manager cannot list apps");
                return;
            }
        };
        let mut ids: HashSet<Uuid> = apps.iter().map(|(_, app)| app.id).collect();
        ids.extend(self.apps.keys().copied());
        for id in ids {
            if let Err(error) = self.reconcile(id).await {
                tracing::error!(%error, app = %id, "reconciling an app's dynos failed");
            }
        }
    }

    fn find(&self, container_id: &str) -> Option<(Uuid, String, Which)> {
        self.apps.iter().find_map(|(app_id, app)| {
            app.slots.iter().find_map(|(name, slot)| {
                let is = |i: &Option<Instance>| {
                    i.as_ref()
                        .is_some_and(|i| i.record.container_id == container_id)
                };
                if is(&slot.instance) {
                    Some((*app_id, name.clone(), Which::Current))
                } else if is(&slot.next) {
                    Some((*app_id, name.clone(), Which::Next))
                } else {
                    None
                }
            })
        })
    }

    /// Logs R14 (and `Process running mem=`) for dynos over their quota. Twice the quota is
    /// the cgroup's hard limit (`dyno_spec`): there the kernel kills the dyno, and `on_exit`
    /// logs R15.
    fn check_memory(&mut self) {
        let platform = self.platform.clone();
        for app in self.apps.values_mut() {
            for (name, slot) in app.slots.iter_mut() {
                for instance in [slot.instance.as_mut(), slot.next.as_mut()]
                    .into_iter()
                    .flatten()
                {
                    if instance.stopping || instance.record.state == DynoState::Crashed {
                        continue;
                    }
                    let Some(used) = platform.runtime.memory_usage(&instance.record.container_id)
                    else {
                        continue;
                    };
                    let (quota, _) = size_limits(&instance.record.size);
                    if used < quota {
                        continue;
                    }
                    let memory = PlatformEvent::ProcessMemory {
                        dyno: name,
                        mb: used / (1024 * 1024),
                        per_mille: used.saturating_mul(1000) / quota,
                    };
                    if instance.r14_at.is_none_or(|at| at.elapsed() >= R14_EVERY) {
                        instance.r14_at = Some(Instant::now());
                        platform.event(&app.name, memory);
                        platform
                            .event(&app.name, PlatformEvent::MemoryQuotaExceeded { dyno: name });
                    }
                }
            }
        }
    }

    /// Records the address of a started dyno (the route table uses it once the dyno is up).
    async fn on_started(&mut self, container_id: &str, address: Option<IpAddr>) -> Option<()> {
        let (app_id, name, which) = self.find(container_id)?;
        let slot = self.apps.get_mut(&app_id)?.slots.get_mut(&name)?;
        let instance = match which {
            Which::Current => slot.instance.as_mut()?,
            Which::Next => slot.next.as_mut()?,
        };
        instance.record.address = address;
        let record = instance.record.clone();
        if which == Which::Current {
            self.save(&record).await;
        }
        Some(())
    }

    async fn on_up(&mut self, container_id: &str) -> Option<Uuid> {
        let (app_id, name, which) = self.find(container_id)?;
        let app = self.apps.get_mut(&app_id)?;
        let app_name = app.name.clone();
        let slot = app.slots.get_mut(&name)?;
        match which {
            Which::Current => {
                let instance = slot.instance.as_mut()?;
                if instance.record.state != DynoState::Starting {
                    return None;
                }
                if instance.record.process_type == "web" {
                    // A web dyno that bound $PORT started successfully (see `on_exit` for others).
                    slot.consecutive_crashes = 0;
                }
                let record = transition(&self.platform, &app_name, instance, DynoState::Up);
                self.save(&record).await;
            }
            Which::Next => {
                let mut next = slot.next.take()?;
                if next.record.state != DynoState::Starting {
                    slot.next = Some(next);
                    return None;
                }
                slot.consecutive_crashes = 0;
                let record = transition(&self.platform, &app_name, &mut next, DynoState::Up);
                let old = slot.instance.replace(next);
                // The route table follows the store: traffic moves to the new dyno now.
                self.save(&record).await;
                if let Some(old) = old {
                    self.stop_after(&app_name, old, ROUTE_SWITCH_DELAY);
                }
            }
        }
        Some(app_id)
    }

    async fn on_boot_timeout(&mut self, container_id: &str) -> Option<Uuid> {
        let (app_id, name, which) = self.find(container_id)?;
        let app = self.apps.get(&app_id)?;
        let slot = app.slots.get(&name)?;
        let instance = match which {
            Which::Current => slot.instance.as_ref()?,
            Which::Next => slot.next.as_ref()?,
        };
        if instance.record.state != DynoState::Starting {
            return None;
        }
        let seconds = self.platform.config.dynos.boot_timeout.as_secs();
        self.platform.event(
            &app.name,
            PlatformEvent::BootTimeout {
                dyno: &name,
                seconds,
            },
        );
        self.platform
            .event(&app.name, PlatformEvent::StoppingSigkill { dyno: &name });
        // The exit that follows is reported as a crash by `on_exit`.
        let runtime = self.platform.runtime.clone();
        let container_id = container_id.to_owned();
        tokio::spawn(async move {
            let _ = runtime.stop(&container_id, Duration::ZERO).await;
        });
        None
    }

    async fn on_exit(
        &mut self,
        container_id: &str,
        status: Option<ExitStatus>,
        failure: Option<String>,
    ) -> Option<Uuid> {
        let (app_id, name, which) = self.find(container_id)?;
        let backoff = self.platform.config.dynos.crash_backoff.clone();
        let app = self.apps.get_mut(&app_id)?;
        let app_name = app.name.clone();
        let slot = app.slots.get_mut(&name)?;
        let instance = match which {
            Which::Current => slot.instance.as_mut()?,
            Which::Next => slot.next.as_mut()?,
        };
        let oom_killed = self.platform.runtime.take_oom_kill(container_id);
        if instance.stopping {
            // An exit we asked for; the stopping task cleans up.
            return None;
        }
        if oom_killed {
            // The kernel killed it at the hard limit, twice the quota: R15.
            let (quota, _) = size_limits(&instance.record.size);
            let limit = crate::dyno_spec::hard_memory_limit(quota);
            self.platform.event(
                &app_name,
                PlatformEvent::ProcessMemory {
                    dyno: &name,
                    mb: limit / (1024 * 1024),
                    per_mille: limit.saturating_mul(1000) / quota.max(1),
                },
            );
            self.platform.event(
                &app_name,
                PlatformEvent::MemoryQuotaVastlyExceeded { dyno: &name },
            );
            self.platform
                .event(&app_name, PlatformEvent::StoppingSigkill { dyno: &name });
        }
        if let Some(reason) = failure {
            self.platform.event(
                &app_name,
                PlatformEvent::StartFailed {
                    dyno: &name,
                    reason,
                },
            );
        }
        // A dyno that ran for longer than the boot timeout had started successfully: its crash
        // is a first crash again.
        let ran_for = (Utc::now() - instance.record.created_at)
            .to_std()
            .unwrap_or(Duration::ZERO);
        if instance.record.state == DynoState::Up
            && ran_for > self.platform.config.dynos.boot_timeout
        {
            slot.consecutive_crashes = 0;
        }
        let record = transition(&self.platform, &app_name, instance, DynoState::Crashed);
        let _ = status;
        let wait = backoff
            .get(slot.consecutive_crashes as usize)
            .or(backoff.last())
            .copied()
            .unwrap_or(Duration::ZERO);
        slot.consecutive_crashes += 1;
        slot.restart_at = Some(Instant::now() + wait);
        if !wait.is_zero() {
            let events = self.events.clone();
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                let _ = events.send(Event::AppChanged(Some(app_id)));
            });
        }
        if which == Which::Current {
            self.save(&record).await;
        }
        Some(app_id)
    }

    /// Makes one app's dynos match its formation and current release.
    async fn reconcile(&mut self, app_id: Uuid) -> Result<(), CoreError> {
        let desired = self.desired(app_id).await?;
        let Some(desired) = desired else {
            // The app is gone: stop everything it had.
            let app = self.apps.remove(&app_id).unwrap_or_default();
            for (name, slot) in app.slots {
                for instance in [slot.instance, slot.next].into_iter().flatten() {
                    self.stop(&app.name, instance);
                }
                let _ = self.platform.store.delete(&keys::dyno(app_id, &name)).await;
            }
            return Ok(());
        };
        let preboot = self.platform.config.dynos.preboot;
        let entry = self.apps.entry(app_id).or_default();
        entry.name = desired.app.name.clone();

        // Stop dynos that are no longer wanted, highest numbers first.
        let mut unwanted: Vec<String> = entry
            .slots
            .keys()
            .filter(|name| !desired.dynos.contains_key(*name))
            .cloned()
            .collect();
        unwanted.sort_by_key(|name| std::cmp::Reverse(dyno_order(name)));
        let mut to_stop = Vec::new();
        let mut to_delete = Vec::new();
        let mut to_save = Vec::new();
        for name in unwanted {
            if let Some(slot) = entry.slots.remove(&name) {
                to_stop.extend([slot.instance, slot.next].into_iter().flatten());
                to_delete.push(name);
            }
        }

        // Start what is missing, replace what is outdated, restart crashes.
        let now = Instant::now();
        let mut to_start = Vec::new();
        let mut restarting = Vec::new();
        for (name, wanted) in &desired.dynos {
            let slot = entry.slots.entry(name.clone()).or_default();
            let restart = desired.restart_for(name, &wanted.process_type);
            let outdated = |i: &Instance| {
                i.record.release_id != desired.release.id
                    || i.record.size != wanted.size
                    || restart.is_some_and(|r| i.record.created_at < r.at)
                    // A sleeping dyno has nothing to cycle.
                    || (i.cycle_at <= now && i.record.state != DynoState::Idle)
            };
            let backoff_over = slot.restart_at.is_none_or(|at| at <= now);
            if slot.next.as_ref().is_some_and(outdated) {
                to_stop.extend(slot.next.take());
            }
            match &slot.instance {
                None => {
                    if let Some(next) = slot.next.take() {
                        to_save.push(next.record.clone());
                        slot.instance = Some(next);
                    } else if backoff_over {
                        to_start.push((name.clone(), wanted.clone(), Which::Current));
                    }
                }
                Some(instance) if outdated(instance) => {
                    let cycling = instance.cycle_at <= now
                        && instance.record.release_id == desired.release.id
                        && restart.is_none_or(|r| instance.record.created_at >= r.at);
                    let by_stop =
                        restart.is_some_and(|r| r.stop && instance.record.created_at < r.at);
                    let web_up = wanted.process_type == "web"
                        && instance.record.state == DynoState::Up
                        && !instance.stopping;
                    if preboot && web_up && !by_stop {
                        match &slot.next {
                            None => {
                                slot.consecutive_crashes = 0;
                                slot.restart_at = None;
                                restarting.push((name.clone(), cycling));
                                to_start.push((name.clone(), wanted.clone(), Which::Next));
                            }
                            Some(next)
                                if next.record.state == DynoState::Crashed && backoff_over =>
                            {
                                to_start.push((name.clone(), wanted.clone(), Which::Next));
                            }
                            Some(_) => {}
                        }
                    } else {
                        slot.consecutive_crashes = 0;
                        slot.restart_at = None;
                        if instance.record.state != DynoState::Crashed {
                            restarting.push((name.clone(), cycling));
                        }
                        to_stop.extend(slot.instance.take());
                        if let Some(next) = slot.next.take() {
                            to_save.push(next.record.clone());
                            slot.instance = Some(next);
                        } else {
                            to_start.push((name.clone(), wanted.clone(), Which::Current));
                        }
                    }
                }
                // Asleep: started again by a request (`wake`), or by a deploy, restart or
                // resize (the outdated arm above).
                Some(instance) if instance.record.state == DynoState::Idle => {}
                Some(instance) if instance.record.state == DynoState::Crashed => {
                    if backoff_over {
                        to_start.push((name.clone(), wanted.clone(), Which::Current));
                    }
                }
                Some(_) => {}
            }
        }
        let app_name = desired.app.name.clone();
        for (name, cycling) in restarting {
            self.platform.event(
                &app_name,
                if cycling {
                    PlatformEvent::Cycling { dyno: &name }
                } else {
                    PlatformEvent::Restarting { dyno: &name }
                },
            );
        }
        for instance in to_stop {
            self.stop(&app_name, instance);
        }
        for name in to_delete {
            let _ = self.platform.store.delete(&keys::dyno(app_id, &name)).await;
        }
        for record in to_save {
            self.save(&record).await;
        }
        for (name, wanted, which) in to_start {
            self.start(&desired, &name, &wanted, which).await;
        }
        Ok(())
    }

    /// What should run for an app, or `None` if the app no longer exists.
    async fn desired(&self, app_id: Uuid) -> Result<Option<Desired>, CoreError> {
        let (apps, _) = range_json::<App, _>(self.platform.store.as_ref(), keys::APPS).await?;
        let Some(app) = apps
            .into_iter()
            .map(|(_, app)| app)
            .find(|app| app.id == app_id)
        else {
            return Ok(None);
        };
        let Some(release) = self.platform.current_release(&app).await? else {
            return Ok(Some(Desired::empty(app)));
        };
        let Some(slug_id) = release.slug_id else {
            return Ok(Some(Desired::empty(app)));
        };
        let slug = self.platform.slug(&app, slug_id).await?;
        let formation: Vec<Formation> = self.platform.formation(&app).await?;
        let (restarts, _) =
            range_json::<Restart, _>(self.platform.store.as_ref(), &keys::restarts(app.id)).await?;
        let prefix = keys::restarts(app.id);
        let restarts = restarts
            .into_iter()
            .filter_map(|(key, restart)| Some((key.key.strip_prefix(&prefix)?.to_owned(), restart)))
            .collect();
        let mut dynos = BTreeMap::new();
        for entry in formation {
            let Some(command) = slug.process_types.get(&entry.process_type) else {
                continue;
            };
            if entry.process_type == "release" {
                continue;
            }
            for number in 1..=entry.quantity {
                dynos.insert(
                    format!("{}.{number}", entry.process_type),
                    Wanted {
                        process_type: entry.process_type.clone(),
                        command: command.clone(),
                        size: entry.size.clone(),
                    },
                );
            }
        }
        Ok(Some(Desired {
            app,
            release,
            slug: Some(slug),
            dynos,
            restarts,
        }))
    }

    async fn start(&mut self, desired: &Desired, name: &str, wanted: &Wanted, which: Which) {
        let Some(slug) = desired.slug.clone() else {
            return;
        };
        let app = &desired.app;
        let port = match free_port() {
            Ok(port) => port,
            Err(error) => {
                tracing::error!(%error, "no free port for a dyno");
                return;
            }
        };
        let now = Utc::now();
        let short: String = Uuid::new_v4().simple().to_string()[..8].to_owned();
        let record = Dyno {
            id: Uuid::new_v4(),
            app_id: app.id,
            app_name: app.name.clone(),
            name: name.to_owned(),
            process_type: wanted.process_type.clone(),
            command: wanted.command.clone(),
            size: wanted.size.clone(),
            state: DynoState::Starting,
            release_id: desired.release.id,
            release_version: desired.release.version,
            port: Some(port),
            address: None,
            container_id: format!("slipway.{}.{name}.{short}", app.name),
            created_at: now,
            updated_at: now,
        };
        self.platform.event(
            &app.name,
            PlatformEvent::Starting {
                dyno: name,
                command: &wanted.command,
            },
        );
        let instance = self.new_instance(record.clone());
        let Some(entry) = self.apps.get_mut(&app.id) else {
            return;
        };
        let slot = entry.slots.entry(name.to_owned()).or_default();
        slot.restart_at = None;
        match which {
            Which::Current => {
                slot.instance = Some(instance);
                self.save(&record).await;
            }
            Which::Next => slot.next = Some(instance),
        }

        let platform = self.platform.clone();
        let events = self.events.clone();
        let unpacked = self.unpacked.clone();
        let boot_timeout = platform.config.dynos.boot_timeout;
        let app = app.clone();
        let release = desired.release.clone();
        tokio::spawn(async move {
            let container_id = record.container_id.clone();
            // The app's own uid (given now to an app from before uids per app).
            let uid = match platform.app_uid(&app).await {
                Ok(uid) => uid,
                Err(error) => {
                    let _ = events.send(Event::StartFailed {
                        container_id,
                        reason: error.to_string(),
                    });
                    return;
                }
            };
            let spec = container_spec(&platform.config, &record, &release, &slug, uid);
            let app_dir = match unpack(&platform, &slug, uid, &unpacked).await {
                Ok(dir) => dir,
                Err(error) => {
                    let _ = events.send(Event::StartFailed {
                        container_id,
                        reason: error.to_string(),
                    });
                    return;
                }
            };
            let spec = ContainerSpec {
                app_dir: Some(app_dir),
                ..spec
            };
            let output = dyno_output(&platform, &record.app_name, &record.name);
            let running = match platform.runtime.start(spec, output).await {
                Ok(running) => running,
                Err(error) => {
                    let _ = events.send(Event::StartFailed {
                        container_id,
                        reason: error.to_string(),
                    });
                    return;
                }
            };
            let _ = events.send(Event::Started {
                container_id: container_id.clone(),
                pid: running.pid,
                address: running.address,
            });
            spawn_watcher(platform, events, record, running, Some(boot_timeout));
        });
    }
}

/// A formation dyno's container, running as its app's `uid`.
fn container_spec(
    config: &crate::PlatformConfig,
    record: &Dyno,
    release: &Release,
    slug: &Slug,
    uid: u32,
) -> ContainerSpec {
    crate::dyno_spec::container_spec(
        config,
        crate::dyno_spec::DynoSpec {
            container_id: record.container_id.clone(),
            app_id: record.app_id,
            app_name: &record.app_name,
            dyno: &record.name,
            release_version: Some(release.version),
            command: &record.command,
            size: &record.size,
            port: record.port.unwrap_or(5000),
            config_vars: &release.config_vars,
            stack: &slug.stack,
            app_dir: None,
            uid,
        },
    )
}

impl Manager {
    /// Stops a dyno in the background: SIGTERM, SIGKILL after the grace period.
    fn stop(&self, app_name: &str, instance: Instance) {
        self.stop_after(app_name, instance, Duration::ZERO);
    }

    /// Stops a dyno in the background after `delay`.
    fn stop_after(&self, app_name: &str, mut instance: Instance, delay: Duration) {
        if instance.record.state == DynoState::Idle {
            // Asleep: its container is already gone.
            return;
        }
        instance.stopping = true;
        let platform = self.platform.clone();
        let app_name = app_name.to_owned();
        tokio::spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let dyno = instance.record.name.clone();
            if instance.record.state != DynoState::Crashed {
                platform.event(&app_name, PlatformEvent::StoppingSigterm { dyno: &dyno });
            }
            let grace = platform.config.dynos.stop_grace;
            match platform
                .runtime
                .stop(&instance.record.container_id, grace)
                .await
            {
                Ok(StopOutcome::Killed) => {
                    platform.event(&app_name, PlatformEvent::ExitTimeout { dyno: &dyno });
                    platform.event(&app_name, PlatformEvent::StoppingSigkill { dyno: &dyno });
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(%error, container = %instance.record.container_id, "stopping a dyno failed");
                }
            }
        });
    }

    async fn save(&self, record: &Dyno) {
        let key = keys::dyno(record.app_id, &record.name);
        if let Err(error) =
            slipway_store::json::put_json(self.platform.store.as_ref(), &key, record).await
        {
            tracing::error!(%error, key, "could not record a dyno's state");
        }
    }
}

#[derive(Debug, Clone)]
struct Wanted {
    process_type: String,
    command: String,
    size: String,
}

#[derive(Debug)]
struct Desired {
    app: App,
    release: Release,
    slug: Option<Slug>,
    dynos: BTreeMap<String, Wanted>,
    /// Restarts asked for, by target: `*`, a process type or a dyno name.
    restarts: BTreeMap<String, Restart>,
}

impl Desired {
    /// The latest restart that applies to a dyno.
    fn restart_for(&self, name: &str, process_type: &str) -> Option<&Restart> {
        ["*", process_type, name]
            .iter()
            .filter_map(|target| self.restarts.get(*target))
            .max_by_key(|restart| restart.at)
    }

    fn empty(app: App) -> Desired {
        Desired {
            app,
            release: Release {
                id: Uuid::nil(),
                app_id: Uuid::nil(),
                version: 0,
                description: String::new(),
                slug_id: None,
                config_vars: BTreeMap::new(),
                user_email: String::new(),
                status: crate::model::ReleaseStatus::Pending,
                created_at: Utc::now(),
            },
            slug: None,
            dynos: BTreeMap::new(),
            restarts: BTreeMap::new(),
        }
    }
}

/// Sorts `web.10` after `web.9`.
fn dyno_order(name: &str) -> (String, u32) {
    match name.rsplit_once('.') {
        Some((process_type, number)) => (process_type.to_owned(), number.parse().unwrap_or(0)),
        None => (name.to_owned(), 0),
    }
}

/// Watches a started (or adopted) dyno: reports `Up` (web: once `$PORT` accepts connections
/// within `boot_timeout`; other types at once; `None`: it already is) or `BootTimeout`, then
/// `Exited`.
fn spawn_watcher(
    platform: Arc<Platform>,
    events: mpsc::UnboundedSender<Event>,
    record: Dyno,
    running: slipway_runtime::RunningContainer,
    boot_timeout: Option<Duration>,
) {
    tokio::spawn(async move {
        let container_id = record.container_id.clone();
        // Up means: `$PORT` accepts connections at the dyno's own address, i.e. inside its
        // network namespace (a listener on its loopback does not count).
        let running_address = running.address;
        let exited = running.exited;
        tokio::pin!(exited);
        if let Some(boot_timeout) = boot_timeout {
            let up = async {
                match (record.process_type.as_str(), record.port) {
                    ("web", Some(port)) => {
                        let address = running_address.unwrap_or(Ipv4Addr::LOCALHOST.into());
                        wait_for_port(SocketAddr::new(address, port), boot_timeout).await
                    }
                    _ => true,
                }
            };
            tokio::select! {
                is_up = up => {
                    let _ = events.send(if is_up {
                        Event::Up { container_id: container_id.clone() }
                    } else {
                        Event::BootTimeout { container_id: container_id.clone() }
                    });
                }
                status = &mut exited => {
                    let status = status.unwrap_or(ExitStatus { code: None, signal: None });
                    platform.event(&record.app_name, PlatformEvent::Exited { dyno: &record.name, status: status.to_string() });
                    let _ = events.send(Event::Exited { container_id, status });
                    return;
                }
            }
        }
        let status = exited.await.unwrap_or(ExitStatus {
            code: None,
            signal: None,
        });
        platform.event(
            &record.app_name,
            PlatformEvent::Exited {
                dyno: &record.name,
                status: status.to_string(),
            },
        );
        let _ = events.send(Event::Exited {
            container_id,
            status,
        });
    });
}

/// Moves a dyno to a new state, logs the transition and returns the record to save.
fn transition(platform: &Platform, app: &str, instance: &mut Instance, to: DynoState) -> Dyno {
    let from = instance.record.state;
    if from != to {
        platform.event(
            app,
            PlatformEvent::StateChanged {
                dyno: &instance.record.name,
                from,
                to,
            },
        );
    }
    instance.record.state = to;
    instance.record.updated_at = Utc::now();
    instance.record.clone()
}

fn dyno_output(platform: &Arc<Platform>, app: &str, dyno: &str) -> OutputSink {
    let logs = platform.logs.clone();
    let app = app.to_owned();
    let dyno = dyno.to_owned();
    Arc::new(move |_stream: Stream, line: &str| {
        for part in split_long_line(line) {
            logs.publish(&app, LogLine::app(dyno.clone(), part));
        }
    })
}

/// Unpacks a slug once per uid into the shared, read-only lower layer of every dyno of that
/// app that runs it, owned by the app's uid (so its dynos can edit files in their ephemeral
/// layer). Two apps with the same slug get a copy each: a copy belongs to one uid.
async fn unpack(
    platform: &Platform,
    slug: &Slug,
    uid: u32,
    unpacked: &tokio::sync::Mutex<HashSet<String>>,
) -> Result<PathBuf, CoreError> {
    let digest = slug.digest().to_owned();
    let dir = platform.config.unpacked_slug_dir(&digest, uid);
    let key = format!("{digest}-{uid}");
    let mut done = unpacked.lock().await;
    if done.contains(&key) || dir.join(".complete").exists() {
        done.insert(key);
        return Ok(dir.join("app"));
    }
    let tarball = platform.config.slugs_dir().join(format!("{digest}.tgz"));
    let temporary = platform
        .config
        .unpacked_slugs_dir()
        .join(format!(".{digest}.{}", Uuid::new_v4().simple()));
    let gid = uid;
    let (tmp, final_dir) = (temporary.clone(), dir.clone());
    let app_id = slug.app_id;
    tokio::task::spawn_blocking(move || -> Result<(), CoreError> {
        std::fs::create_dir_all(tmp.join("app")).map_err(|source| CoreError::Io {
            app: app_id,
            action: "unpack the slug",
            source,
        })?;
        slipway_build::unpack_slug(&tarball, &tmp.join("app"), uid, gid)?;
        std::fs::write(tmp.join(".complete"), b"").map_err(|source| CoreError::Io {
            app: app_id,
            action: "unpack the slug",
            source,
        })?;
        let _ = std::fs::remove_dir_all(&final_dir);
        std::fs::rename(&tmp, &final_dir).map_err(|source| CoreError::Io {
            app: app_id,
            action: "unpack the slug",
            source,
        })
    })
    .await
    .map_err(|error| CoreError::Io {
        app: slug.app_id,
        action: "unpack the slug",
        source: std::io::Error::other(error),
    })??;
    done.insert(key);
    Ok(dir.join("app"))
}

fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    Ok(listener.local_addr()?.port())
}

/// Polls until something accepts connections at `addr`, or the timeout passes.
async fn wait_for_port(addr: SocketAddr, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(2);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return true;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(25));
    }
    false
}
