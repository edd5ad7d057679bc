//! The dyno manager: keeps each app's running dynos equal to its formation on its current
//! release.
//!
//! It is three parts. `lifecycle.rs` is a dyno's life as a state enum whose `can_*` checks
//! guard every transition. `plan.rs` is a pure planner: from an app's dynos as observed, the
//! desired state, the time and the configuration it decides a list of actions, with no IO,
//! clock or randomness, so its rules are table tests. This file is the thin executor: one task
//! owns all dyno state, turns what happens (store watches, its per-dyno tasks reporting a
//! container started, ready, exited or gone, ticks, wake-ups) into observations, asks the
//! planner, and runs the actions against the store, the runtime, the log hub and a clock
//! (`clock.rs`). Anything slow (unpacking a slug, starting or stopping a container, waiting for
//! `$PORT`) runs in a task that reports back. Dyno states are written to the store
//! (`dynos/<app id>/<name>`), where the API and the route publisher read them. The manager is
//! given exactly what it needs ([`Parts`]), not the platform.
//!
//! A dyno's life: `starting` → `up` (a web dyno when `$PORT` accepts connections at its own
//! address; other types at once) → `crashed` when its process exits, whatever the status. A
//! crashed dyno is restarted at once the first time, then after the backoff ladder. New
//! releases replace dynos; scaling down stops the highest-numbered first, shows them `down`
//! while they stop and removes their records once their containers are gone. A container that
//! is already gone when the manager stops it is an observation like any other, not an error.
//!
//! Zero-downtime replacement (Heroku's preboot, on by default): when a web dyno that is `up`
//! must be replaced (new release, config change, restart, cycling), its replacement starts
//! beside it as the slot's `next` instance, which is not in the store and so takes no
//! traffic. Once `next` is up it becomes the slot's instance (its record replaces the old one
//! in the store, so the route table switches to it) and the old dyno gets SIGTERM a moment
//! later and drains. A replacement that never comes up (R10, crash) never takes traffic; the
//! old dyno keeps serving and the replacement is retried on the crash backoff ladder.
//!
//! Sleeping (see `idling.rs` for the router's side): an app sleeps when every one of its web
//! dynos is an `eco` dyno that is `up` and neither a web request nor a dyno start happened for
//! `idle_after`; its dynos log `Idling` and `State changed from up to idle`, stop, and keep
//! their slot as an `idle` record. A wake-up (a request held by the router) logs `Unidling`
//! and starts each idle dyno at once; deploys, restarts and resizes wake an app too; cycling
//! skips sleeping dynos.
//!
//! Re-adoption: when the server starts, dynos still running from the previous server process
//! are taken over from the runtime (output, exit) with their store records as they were, so
//! the router serves them at once; containers without a record (or with one for another
//! container) are strays and are stopped, records without a running container are removed.
//! One-off dynos (`run.N`, `oneoff.rs`) are not the manager's: it never plans, counts or stops
//! them while it runs (they are in no slot), and at start-up it stops the one-off containers
//! a previous server left and removes their records, since their sessions did not survive.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use slipway_logplex::{split_long_line, LogHub, LogLine};
use slipway_model::DynoSize;
use slipway_runtime::{ContainerSpec, ExitStatus, OutputSink, Runtime, StopOutcome, Stream};
use slipway_store::json::{get_json, range_json};
use slipway_store::Store;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::config::PlatformConfig;
use crate::error::CoreError;
use crate::idling::Activity;
use crate::model::{keys, App, Dyno, DynoState, Formation, Release, ReleaseStatus, Restart, Slug};
use crate::telemetry::PlatformEvent;
use clock::Clock;
use lifecycle::{Boot, Lifecycle};
use plan::{Action, AppDynos, Container, Desired, Instance, Line, Now, Wanted, Which};

pub(crate) mod clock;
mod lifecycle;
mod plan;

/// How long the dyno manager waits between checks when nothing happens.
const RECONCILE_INTERVAL: Duration = Duration::from_secs(5);

/// The one thing the manager still asks of the platform: an app's uid, which an app from
/// before uids per app is given on first use by a claim in the store (`uids.rs`).
#[async_trait::async_trait]
pub(crate) trait AppUids: Send + Sync {
    async fn app_uid(&self, app: &App) -> Result<u32, CoreError>;
}

/// Everything the dyno manager works with, and nothing more.
pub(crate) struct Parts {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) runtime: Arc<dyn Runtime>,
    pub(crate) logs: LogHub,
    pub(crate) config: PlatformConfig,
    /// Web traffic per app (for sleeping) and wake-ups.
    pub(crate) activity: Activity,
    pub(crate) uids: Arc<dyn AppUids>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl Parts {
    fn event(&self, app: &str, event: PlatformEvent<'_>) {
        self.logs.publish(app, event.to_line());
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
    /// The boot wait is over without the dyno up (the planner checks the deadline).
    BootTimeout {
        container_id: String,
    },
    Exited {
        container_id: String,
    },
    /// A stop the manager asked for finished: the container is gone.
    Stopped {
        container_id: String,
    },
}

/// What should run for an app: the planner's part and what starting a dyno needs.
#[derive(Debug, Clone)]
struct Target {
    app: App,
    release: Option<Release>,
    slug: Option<Slug>,
    plan: Desired,
}

struct Manager {
    parts: Arc<Parts>,
    apps: HashMap<Uuid, AppDynos>,
    /// Apps a request is waiting for.
    wakes: HashSet<Uuid>,
    /// What the store said should run, per app (`None`: the app is gone), read once per change:
    /// dropped when the store's watch reports a change to the app (`AppChanged`) and on every
    /// periodic pass, so container events (up, exited) and wake-ups plan without reading the
    /// store again.
    known_targets: HashMap<Uuid, Option<Target>>,
    events: mpsc::UnboundedSender<Event>,
    /// Slugs being unpacked or already unpacked, by digest.
    unpacked: Arc<tokio::sync::Mutex<HashSet<String>>>,
}

/// R14 is logged at most this often per dyno.
const R14_EVERY: Duration = Duration::from_secs(300);

pub(crate) fn spawn(parts: Parts) -> tokio::task::JoinHandle<()> {
    let parts = Arc::new(parts);
    let (events, mut inbox) = mpsc::unbounded_channel();
    watch_store(&parts.store, &events);
    let mut wakes = parts.activity.wake_inbox();
    let mut manager = Manager::new(parts, events.clone());
    tokio::spawn(async move {
        manager.adopt_previous_run().await;
        let config = manager.parts.config.dynos.clone();
        let mut tick = tokio::time::interval(RECONCILE_INTERVAL);
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
                    manager.plan_sleepy_apps().await;
                    continue;
                }
                _ = tick.tick() => Event::AppChanged(None),
            };
            manager.handle(event).await;
        }
    })
}

/// Reports every change the store's watch sees to what decides a dyno (formation, releases,
/// apps, restarts) as an `AppChanged` event: the app's, or `None` (every app) for the apps'
/// own records and whenever a watch is (re-)established.
fn watch_store(store: &Arc<dyn Store>, events: &mpsc::UnboundedSender<Event>) {
    for prefix in [keys::FORMATION, keys::RELEASES, keys::APPS, keys::RESTARTS] {
        let store = store.clone();
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
}

impl Manager {
    /// A manager that knows no dyno yet; `events` is where its watchers report.
    fn new(parts: Arc<Parts>, events: mpsc::UnboundedSender<Event>) -> Manager {
        Manager {
            parts,
            apps: HashMap::new(),
            wakes: HashSet::new(),
            known_targets: HashMap::new(),
            events,
            unpacked: Arc::new(tokio::sync::Mutex::new(HashSet::new())),
        }
    }

    /// Takes over the dynos a previous server process left running (see the module doc).
    async fn adopt_previous_run(&mut self) {
        let parts = self.parts.clone();
        let containers = match parts.runtime.list().await {
            Ok(containers) => containers,
            Err(error) => {
                tracing::error!(%error, "cannot list the runtime's containers to re-adopt dynos");
                Vec::new()
            }
        };
        let records = match range_json::<Dyno, _>(parts.store.as_ref(), keys::DYNOS).await {
            Ok((records, _)) => records,
            Err(error) => {
                tracing::error!(%error, "cannot read dyno records to re-adopt dynos");
                return;
            }
        };
        let apps = match range_json::<App, _>(parts.store.as_ref(), keys::APPS).await {
            Ok((apps, _)) => apps,
            Err(error) => {
                tracing::error!(%error, "cannot read apps to re-adopt dynos");
                return;
            }
        };
        let now = parts.clock.now();
        let mut adopted = HashSet::new();
        for container in containers {
            if !container.labels.contains_key("app") {
                continue;
            }
            // A one-off dyno does not survive its server: its client's session is gone with
            // the process that held it. Its record goes below (it is never adopted).
            if container
                .labels
                .contains_key(crate::dyno_spec::ONE_OFF_LABEL)
            {
                tracing::info!(container = %container.id, "stopping a one-off dyno from a previous run");
                self.stop_in_background(container.id.clone(), "could not stop a one-off dyno");
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
                self.stop_in_background(container.id.clone(), "could not stop a stray container");
                continue;
            };
            let output = dyno_output(&parts.logs, &record.app_name, &record.name);
            let running = match parts.runtime.adopt(&container.id, output).await {
                Ok(running) => running,
                Err(error) => {
                    tracing::warn!(%error, container = %container.id, "could not re-adopt a dyno; stopping it");
                    self.stop_in_background(container.id.clone(), "could not stop a dyno");
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
                save(&parts, &record).await;
            }
            let age = (now.wall - record.created_at)
                .to_std()
                .unwrap_or(Duration::ZERO);
            let remaining_boot = (record.state == DynoState::Starting).then(|| {
                parts
                    .config
                    .dynos
                    .boot_timeout
                    .saturating_sub(age)
                    .max(Duration::from_secs(1))
            });
            let (lifecycle, observed) = match remaining_boot {
                Some(remaining) => (
                    Lifecycle::Starting {
                        boot: Boot::Booting {
                            deadline: now.instant + remaining,
                        },
                    },
                    Container::Running,
                ),
                None => (Lifecycle::Up, Container::Ready),
            };
            let mut instance = self.new_instance(record.clone(), 0, now);
            instance.lifecycle = lifecycle;
            instance.container = observed;
            instance.cycle_at = instance.cycle_at.checked_sub(age).unwrap_or(now.instant);
            let entry = self.apps.entry(app.id).or_default();
            entry.name = app.name.clone();
            entry.slots.entry(record.name.clone()).or_default().current = Some(instance);
            spawn_watcher(
                parts.clone(),
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
                    let mut instance = self.new_instance(record.clone(), 0, now);
                    instance.lifecycle = Lifecycle::Idle;
                    instance.container = Container::Gone;
                    let entry = self.apps.entry(app.id).or_default();
                    entry.name = app.name.clone();
                    entry.slots.entry(record.name.clone()).or_default().current = Some(instance);
                }
                _ => {
                    let _ = parts.store.delete(&key.key).await;
                }
            }
        }
    }

    /// Stops a container nobody manages any more (a stray, or one that could not be adopted).
    fn stop_in_background(&self, container_id: String, failure: &'static str) {
        let runtime = self.parts.runtime.clone();
        let grace = self.parts.config.dynos.stop_grace;
        tokio::spawn(async move {
            if let Err(error) = runtime.stop(&container_id, grace).await {
                tracing::warn!(%error, container = %container_id, "{failure}");
            }
        });
    }

    /// A new instance of a dyno; its cycling moment gets its random jitter here, so that the
    /// planner sees it as data.
    fn new_instance(&self, record: Dyno, crashes: u32, now: Now) -> Instance {
        let config = &self.parts.config.dynos;
        let jitter = if config.cycle_jitter.is_zero() {
            Duration::ZERO
        } else {
            use rand::Rng;
            let millis = config.cycle_jitter.as_millis().min(u64::MAX as u128) as u64;
            Duration::from_millis(rand::thread_rng().gen_range(0..=millis))
        };
        Instance {
            record,
            lifecycle: Lifecycle::Starting {
                boot: Boot::Creating,
            },
            container: Container::Creating,
            crashes,
            cycle_at: now.instant + config.cycle_after + jitter,
            r14_at: None,
        }
    }

    async fn handle(&mut self, event: Event) {
        let found = match event {
            Event::AppChanged(Some(app)) => {
                self.known_targets.remove(&app);
                Some(app)
            }
            Event::AppChanged(None) => {
                self.known_targets.clear();
                self.reconcile_all().await;
                return;
            }
            Event::Started {
                container_id,
                pid,
                address,
            } => {
                tracing::debug!(container_id, pid, ?address, "dyno container started");
                let mut unwanted = false;
                let found = self.observe(&container_id, |instance| {
                    instance.record.address = address;
                    if instance.container == Container::Creating {
                        instance.container = Container::Running;
                    }
                    unwanted = matches!(
                        instance.lifecycle,
                        Lifecycle::Stopping { .. } | Lifecycle::Down
                    );
                });
                match &found {
                    // Retired while it was being created (the planner does not stop a
                    // container before it exists): stop it now.
                    None => self.stop_in_background(container_id, "could not stop a retired dyno"),
                    Some((_, _, record)) if unwanted => self.stop_container(
                        record.app_name.clone(),
                        record.name.clone(),
                        container_id,
                        Duration::ZERO,
                        self.parts.config.dynos.stop_grace,
                        false,
                    ),
                    // The route table uses the address once the dyno is up.
                    Some((_, Which::Current, record)) => save(&self.parts, record).await,
                    Some(_) => {}
                }
                found.map(|(app, _, _)| app)
            }
            Event::StartFailed {
                container_id,
                reason,
            } => self
                .observe(&container_id, |instance| {
                    instance.container = Container::Exited {
                        oom_killed: false,
                        failure: Some(reason),
                    };
                })
                .map(|(app, _, _)| app),
            Event::Up { container_id } => self
                .observe(&container_id, |instance| {
                    if matches!(instance.container, Container::Creating | Container::Running) {
                        instance.container = Container::Ready;
                    }
                })
                .map(|(app, _, _)| app),
            Event::BootTimeout { container_id } => {
                self.observe(&container_id, |_| {}).map(|(app, _, _)| app)
            }
            Event::Exited { container_id } => {
                let oom_killed = self.parts.runtime.take_oom_kill(&container_id);
                self.observe(&container_id, |instance| {
                    if instance.container != Container::Gone {
                        instance.container = Container::Exited {
                            oom_killed,
                            failure: None,
                        };
                    }
                })
                .map(|(app, _, _)| app)
            }
            Event::Stopped { container_id } => self
                .observe(&container_id, |instance| {
                    if !matches!(instance.container, Container::Exited { .. }) {
                        instance.container = Container::Gone;
                    }
                })
                .map(|(app, _, _)| app),
        };
        // `None`: a container no instance has any more (stopped, replaced); nothing to do.
        if let Some(app) = found {
            self.reconcile(app).await;
        }
    }

    /// Records what a container did on the instance that runs it; returns its app, which
    /// instance of its slot it is, and its record.
    fn observe(
        &mut self,
        container_id: &str,
        update: impl FnOnce(&mut Instance),
    ) -> Option<(Uuid, Which, Dyno)> {
        for (app_id, app) in self.apps.iter_mut() {
            for slot in app.slots.values_mut() {
                for (which, instance) in [
                    (Which::Current, slot.current.as_mut()),
                    (Which::Next, slot.next.as_mut()),
                ] {
                    let Some(instance) = instance else { continue };
                    if instance.record.container_id == container_id {
                        update(instance);
                        return Some((*app_id, which, instance.record.clone()));
                    }
                }
            }
        }
        None
    }

    async fn reconcile_all(&mut self) {
        let apps = match range_json::<App, _>(self.parts.store.as_ref(), keys::APPS).await {
            Ok((apps, _)) => apps,
            Err(error) => {
                tracing::error!(%error, "dyno manager cannot list apps");
                return;
            }
        };
        let mut ids: HashSet<Uuid> = apps.iter().map(|(_, app)| app.id).collect();
        ids.extend(self.apps.keys().copied());
        for id in ids {
            self.reconcile(id).await;
        }
    }

    /// Asks the planner what to do for one app, and does it.
    async fn reconcile(&mut self, app_id: Uuid) {
        let target = match self.known_targets.get(&app_id) {
            Some(target) => target.clone(),
            None => match self.desired(app_id).await {
                Ok(target) => {
                    self.known_targets.insert(app_id, target.clone());
                    target
                }
                Err(error) => {
                    tracing::error!(%error, app = %app_id, "reconciling an app's dynos failed");
                    return;
                }
            },
        };
        let now = self.parts.clock.now();
        let wake = self.wakes.remove(&app_id);
        let observed = self.apps.entry(app_id).or_default();
        let desired = target.map(|mut target| {
            observed.name = target.app.name.clone();
            target.plan.wake = wake;
            target.plan.last_request = self.parts.activity.last_request(&target.app.name);
            target
        });
        let actions = plan::plan(
            observed,
            desired.as_ref().map(|target| &target.plan),
            now,
            &self.parts.config.dynos,
        );
        self.execute(app_id, desired.as_ref(), actions, now).await;
        if desired.is_none() {
            self.known_targets.remove(&app_id);
            self.apps.remove(&app_id);
        }
    }

    /// Starts the idle dynos of `app_name` (a request is waiting for it).
    async fn wake(&mut self, app_name: &str) {
        let Some(&app_id) = self
            .apps
            .iter()
            .find_map(|(id, app)| (app.name == app_name).then_some(id))
        else {
            return;
        };
        self.wakes.insert(app_id);
        self.reconcile(app_id).await;
    }

    /// Plans again the apps that might go to sleep (web dynos `eco` and `up`).
    async fn plan_sleepy_apps(&mut self) {
        let sleepy: Vec<Uuid> = self
            .apps
            .iter()
            .filter(|(_, app)| {
                app.slots.values().any(|slot| {
                    slot.current.as_ref().is_some_and(|instance| {
                        instance.record.size == plan::SLEEPING_SIZE
                            && instance.lifecycle.can_sleep()
                    })
                })
            })
            .map(|(id, _)| *id)
            .collect();
        for app_id in sleepy {
            self.reconcile(app_id).await;
        }
    }

    /// Logs R14 (and `Process running mem=`) for dynos over their quota. Twice the quota is
    /// the cgroup's hard limit (`dyno_spec`): there the kernel kills the dyno, and the
    /// planner logs R15 when it sees the exit.
    fn check_memory(&mut self) {
        let parts = self.parts.clone();
        let now = parts.clock.now();
        for app in self.apps.values_mut() {
            for (name, slot) in app.slots.iter_mut() {
                for instance in [slot.current.as_mut(), slot.next.as_mut()]
                    .into_iter()
                    .flatten()
                {
                    if !matches!(
                        instance.lifecycle,
                        Lifecycle::Starting { .. } | Lifecycle::Up
                    ) {
                        continue;
                    }
                    let Some(used) = parts.runtime.memory_usage(&instance.record.container_id)
                    else {
                        continue;
                    };
                    let quota = match instance.record.size.parse::<DynoSize>() {
                        Ok(size) => size.memory_bytes(),
                        Err(error) => {
                            // Such a dyno could not have started; say so rather than check it
                            // against some default quota.
                            tracing::error!(
                                app = %app.name,
                                dyno = %name,
                                %error,
                                "a running dyno's stored size is not a dyno size"
                            );
                            continue;
                        }
                    };
                    if used < quota {
                        continue;
                    }
                    let memory = PlatformEvent::ProcessMemory {
                        dyno: name,
                        mb: used / (1024 * 1024),
                        per_mille: used.saturating_mul(1000) / quota,
                    };
                    let due = instance
                        .r14_at
                        .is_none_or(|at| now.instant.saturating_duration_since(at) >= R14_EVERY);
                    if due {
                        instance.r14_at = Some(now.instant);
                        parts.event(&app.name, memory);
                        parts.event(&app.name, PlatformEvent::MemoryQuotaExceeded { dyno: name });
                    }
                }
            }
        }
    }

    /// What should run for an app, or `None` if the app no longer exists.
    async fn desired(&self, app_id: Uuid) -> Result<Option<Target>, CoreError> {
        let store = self.parts.store.as_ref();
        let (apps, _) = range_json::<App, _>(store, keys::APPS).await?;
        let Some(app) = apps
            .into_iter()
            .map(|(_, app)| app)
            .find(|app| app.id == app_id)
        else {
            return Ok(None);
        };
        let mut target = Target {
            app,
            release: None,
            slug: None,
            plan: Desired::default(),
        };
        let (releases, _) = range_json::<Release, _>(store, &keys::releases(app_id)).await?;
        // The release that runs: the newest one that succeeded.
        let Some(release) = releases
            .into_iter()
            .map(|(_, release)| release)
            .rev()
            .find(|release| release.status == ReleaseStatus::Succeeded)
        else {
            return Ok(Some(target));
        };
        let Some(slug_id) = release.slug_id else {
            return Ok(Some(target));
        };
        let slug = get_json::<Slug, _>(store, &keys::slug(app_id, slug_id))
            .await?
            .ok_or_else(|| CoreError::not_found("slug", slug_id.to_string()))?;
        let (formation, _) = range_json::<Formation, _>(store, &keys::formations(app_id)).await?;
        let prefix = keys::restarts(app_id);
        let (restarts, _) = range_json::<Restart, _>(store, &prefix).await?;
        target.plan.restarts = restarts
            .into_iter()
            .filter_map(|(key, restart)| Some((key.key.strip_prefix(&prefix)?.to_owned(), restart)))
            .collect();
        let mut dynos = BTreeMap::new();
        for (_, entry) in formation {
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
        target.plan.release_id = release.id;
        target.plan.dynos = dynos;
        target.release = Some(release);
        target.slug = Some(slug);
        Ok(Some(target))
    }

    /// Runs the planner's actions, in order.
    async fn execute(
        &mut self,
        app_id: Uuid,
        target: Option<&Target>,
        actions: Vec<Action>,
        now: Now,
    ) {
        let parts = self.parts.clone();
        for action in actions {
            let app_name = self
                .apps
                .get(&app_id)
                .map(|app| app.name.clone())
                .unwrap_or_default();
            match action {
                Action::Log { dyno, line } => parts.event(&app_name, line.event(&dyno)),
                Action::Transition { dyno, which, to } => {
                    let Some(instance) = self.instance_mut(app_id, &dyno, which) else {
                        tracing::error!(app = %app_name, dyno, ?which, "the dyno planner moved a dyno the manager does not have");
                        continue;
                    };
                    let from = instance.lifecycle.state();
                    if let Err(error) = instance.lifecycle.transition(to) {
                        tracing::error!(%error, app = %app_name, dyno, "the dyno planner proposed a transition the lifecycle refuses");
                        continue;
                    }
                    instance.record.state = to.state();
                    instance.record.updated_at = now.wall;
                    let record = instance.record.clone();
                    if from != to.state() {
                        parts.event(
                            &app_name,
                            PlatformEvent::StateChanged {
                                dyno: &dyno,
                                from,
                                to: to.state(),
                            },
                        );
                    }
                    if which == Which::Current {
                        save(&parts, &record).await;
                    }
                }
                Action::Start {
                    dyno,
                    which,
                    wanted,
                    crashes,
                } => {
                    if let Some(target) = target {
                        self.start(target, &dyno, &wanted, which, crashes, now)
                            .await;
                    }
                }
                Action::Promote { dyno } => {
                    let Some(slot) = self
                        .apps
                        .get_mut(&app_id)
                        .and_then(|app| app.slots.get_mut(&dyno))
                    else {
                        continue;
                    };
                    if let Some(next) = slot.next.take() {
                        // The route table follows the store: traffic moves to it now.
                        let record = next.record.clone();
                        slot.current = Some(next);
                        save(&parts, &record).await;
                    }
                }
                Action::Retire { dyno, which } => {
                    if let Some(slot) = self
                        .apps
                        .get_mut(&app_id)
                        .and_then(|app| app.slots.get_mut(&dyno))
                    {
                        match which {
                            Which::Current => slot.current = None,
                            Which::Next => slot.next = None,
                        }
                    }
                }
                Action::StopContainer {
                    dyno,
                    container_id,
                    delay,
                    grace,
                    sigterm_line,
                } => self.stop_container(app_name, dyno, container_id, delay, grace, sigterm_line),
                Action::DeleteRecord { dyno } => {
                    if let Some(app) = self.apps.get_mut(&app_id) {
                        app.slots.remove(&dyno);
                    }
                    let _ = parts.store.delete(&keys::dyno(app_id, &dyno)).await;
                }
                Action::WakeAt(at) => {
                    let events = self.events.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep_until(at.into()).await;
                        let _ = events.send(Event::AppChanged(Some(app_id)));
                    });
                }
            }
        }
    }

    fn instance_mut(&mut self, app_id: Uuid, dyno: &str, which: Which) -> Option<&mut Instance> {
        let slot = self.apps.get_mut(&app_id)?.slots.get_mut(dyno)?;
        match which {
            Which::Current => slot.current.as_mut(),
            Which::Next => slot.next.as_mut(),
        }
    }

    /// Starts a new instance in a slot: records it (the current one), then unpacks the slug
    /// and starts the container in the background.
    async fn start(
        &mut self,
        target: &Target,
        name: &str,
        wanted: &Wanted,
        which: Which,
        crashes: u32,
        now: Now,
    ) {
        let (Some(release), Some(slug)) = (target.release.clone(), target.slug.clone()) else {
            return;
        };
        let app = &target.app;
        let port = match free_port() {
            Ok(port) => port,
            Err(error) => {
                tracing::error!(%error, "no free port for a dyno");
                return;
            }
        };
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
            release_id: release.id,
            release_version: release.version,
            port: Some(port),
            address: None,
            container_id: format!("slipway.{}.{name}.{short}", app.name),
            created_at: now.wall,
            updated_at: now.wall,
        };
        self.parts.event(
            &app.name,
            PlatformEvent::Starting {
                dyno: name,
                command: &wanted.command,
            },
        );
        let instance = self.new_instance(record.clone(), crashes, now);
        let Some(entry) = self.apps.get_mut(&app.id) else {
            return;
        };
        let slot = entry.slots.entry(name.to_owned()).or_default();
        match which {
            Which::Current => {
                slot.current = Some(instance);
                save(&self.parts, &record).await;
            }
            Which::Next => slot.next = Some(instance),
        }

        let parts = self.parts.clone();
        let events = self.events.clone();
        let unpacked = self.unpacked.clone();
        let boot_timeout = parts.config.dynos.boot_timeout;
        let app = app.clone();
        tokio::spawn(async move {
            let container_id = record.container_id.clone();
            let failed = |reason: String| Event::StartFailed {
                container_id: container_id.clone(),
                reason,
            };
            // The app's own uid (given now to an app from before uids per app).
            let uid = match parts.uids.app_uid(&app).await {
                Ok(uid) => uid,
                Err(error) => {
                    let _ = events.send(failed(error.to_string()));
                    return;
                }
            };
            // The add-on servers the app's dynos may reach, as attached now.
            let addon_ports =
                match crate::addons_reach::addon_ports(parts.store.as_ref(), &parts.config, app.id)
                    .await
                {
                    Ok(ports) => ports,
                    Err(error) => {
                        let _ = events.send(failed(error.to_string()));
                        return;
                    }
                };
            let spec =
                match container_spec(&parts.config, &record, &release, &slug, uid, addon_ports) {
                    Ok(spec) => spec,
                    Err(error) => {
                        let _ = events.send(failed(error));
                        return;
                    }
                };
            let app_dir = match unpack(&parts.config, &slug, uid, &unpacked).await {
                Ok(dir) => dir,
                Err(error) => {
                    let _ = events.send(failed(error.to_string()));
                    return;
                }
            };
            let spec = ContainerSpec {
                app_dir: Some(app_dir),
                ..spec
            };
            let output = dyno_output(&parts.logs, &record.app_name, &record.name);
            let running = match parts.runtime.start(spec, output).await {
                Ok(running) => running,
                Err(error) => {
                    let _ = events.send(failed(error.to_string()));
                    return;
                }
            };
            let _ = events.send(Event::Started {
                container_id: container_id.clone(),
                pid: running.pid,
                address: running.address,
            });
            spawn_watcher(parts, events, record, running, Some(boot_timeout));
        });
    }

    /// Stops a container in the background after `delay` (SIGTERM, SIGKILL after `grace`)
    /// and reports when it is gone. A container that is already gone is no error.
    fn stop_container(
        &self,
        app_name: String,
        dyno: String,
        container_id: String,
        delay: Duration,
        grace: Duration,
        sigterm_line: bool,
    ) {
        let parts = self.parts.clone();
        let events = self.events.clone();
        tokio::spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if sigterm_line {
                parts.event(&app_name, PlatformEvent::StoppingSigterm { dyno: &dyno });
            }
            match parts.runtime.stop(&container_id, grace).await {
                // A zero grace is a kill asked for (R10), not an exit timeout.
                Ok(StopOutcome::Killed) if !grace.is_zero() => {
                    parts.event(&app_name, PlatformEvent::ExitTimeout { dyno: &dyno });
                    parts.event(&app_name, PlatformEvent::StoppingSigkill { dyno: &dyno });
                }
                Ok(StopOutcome::NotFound) => {
                    tracing::debug!(container = %container_id, "the dyno's container was already gone");
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(%error, container = %container_id, "stopping a dyno failed");
                }
            }
            let _ = events.send(Event::Stopped { container_id });
        });
    }
}

impl Line {
    /// The telemetry event that says it.
    fn event<'a>(&'a self, dyno: &'a str) -> PlatformEvent<'a> {
        match self {
            Line::Restarting => PlatformEvent::Restarting { dyno },
            Line::Cycling => PlatformEvent::Cycling { dyno },
            Line::Idling => PlatformEvent::Idling { dyno },
            Line::Unidling => PlatformEvent::Unidling { dyno },
            Line::BootTimeout { seconds } => PlatformEvent::BootTimeout {
                dyno,
                seconds: *seconds,
            },
            Line::Sigkill => PlatformEvent::StoppingSigkill { dyno },
            Line::StartFailed { reason } => PlatformEvent::StartFailed {
                dyno,
                reason: reason.clone(),
            },
            Line::MemoryAtLimit { mb, per_mille } => PlatformEvent::ProcessMemory {
                dyno,
                mb: *mb,
                per_mille: *per_mille,
            },
            Line::MemoryQuotaVastlyExceeded => PlatformEvent::MemoryQuotaVastlyExceeded { dyno },
        }
    }
}

/// Records a dyno's state in the store.
async fn save(parts: &Parts, record: &Dyno) {
    let key = keys::dyno(record.app_id, &record.name);
    if let Err(error) = slipway_store::json::put_json(parts.store.as_ref(), &key, record).await {
        tracing::error!(%error, key, "could not record a dyno's state");
    }
}

/// A formation dyno's container, running as its app's `uid`.
fn container_spec(
    config: &PlatformConfig,
    record: &Dyno,
    release: &Release,
    slug: &Slug,
    uid: u32,
    addon_ports: Vec<u16>,
) -> Result<ContainerSpec, String> {
    // The record keeps the size as the store has it; an unknown one fails the start with
    // where it came from rather than running as some default size.
    let size: DynoSize = record.size.parse().map_err(|error| {
        CoreError::stored_dyno_size(&record.app_name, &format!("dyno {}", record.name), &error)
            .to_string()
    })?;
    Ok(crate::dyno_spec::container_spec(
        config,
        crate::dyno_spec::DynoSpec {
            container_id: record.container_id.clone(),
            app_id: record.app_id,
            app_name: &record.app_name,
            dyno: &record.name,
            release_version: Some(release.version),
            command: &record.command,
            size,
            port: record.port.unwrap_or(5000),
            config_vars: &release.config_vars,
            stack: &slug.stack,
            stack_id: slug.stack_id,
            app_dir: None,
            uid,
            addon_ports,
        },
    ))
}

/// Watches a started (or adopted) dyno: reports `Up` (web: once `$PORT` accepts connections
/// within `boot_timeout`; other types at once; `None`: it already is) or `BootTimeout`, then
/// `Exited`.
fn spawn_watcher(
    parts: Arc<Parts>,
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
        let exit_status = |status: Option<ExitStatus>| {
            status.unwrap_or(ExitStatus {
                code: None,
                signal: None,
            })
        };
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
                    let status = exit_status(status.ok());
                    parts.event(&record.app_name, PlatformEvent::Exited { dyno: &record.name, status: status.to_string() });
                    let _ = events.send(Event::Exited { container_id });
                    return;
                }
            }
        }
        let status = exit_status(exited.await.ok());
        parts.event(
            &record.app_name,
            PlatformEvent::Exited {
                dyno: &record.name,
                status: status.to_string(),
            },
        );
        let _ = events.send(Event::Exited { container_id });
    });
}

pub(crate) fn dyno_output(logs: &LogHub, app: &str, dyno: &str) -> OutputSink {
    let logs = logs.clone();
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
pub(crate) async fn unpack(
    config: &PlatformConfig,
    slug: &Slug,
    uid: u32,
    unpacked: &tokio::sync::Mutex<HashSet<String>>,
) -> Result<PathBuf, CoreError> {
    let digest = slug.digest().to_owned();
    let dir = config.unpacked_slug_dir(&digest, uid);
    let key = format!("{digest}-{uid}");
    let mut done = unpacked.lock().await;
    if done.contains(&key) || dir.join(".complete").exists() {
        done.insert(key);
        return Ok(dir.join("app"));
    }
    let tarball = config.slugs_dir().join(format!("{digest}.tgz"));
    let temporary = config
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

pub(crate) fn free_port() -> std::io::Result<u16> {
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

#[cfg(test)]
mod tests;
