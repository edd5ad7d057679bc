//! The executor against a real store, the process runtime and the log hub, on a manual clock:
//! transitions are recorded and logged once, refused ones change nothing, a container that is
//! already gone is reported gone, the planner's lines read as Heroku's, and the per-app target
//! cache follows the store's watch (a change is acted on at its event, never from a stale
//! cache, without waiting for the periodic pass).

use std::time::Duration;

use chrono::{TimeZone, Utc};
use slipway_logplex::LogFilter;
use slipway_store::json::put_json;

use super::clock::ManualClock;
use super::*;

/// The uid every app gets in these tests.
struct FixedUid;

#[async_trait::async_trait]
impl AppUids for FixedUid {
    async fn app_uid(&self, _app: &App) -> Result<u32, CoreError> {
        Ok(65_000)
    }
}

struct Fixture {
    manager: Manager,
    inbox: mpsc::UnboundedReceiver<Event>,
    clock: Arc<ManualClock>,
    app_id: Uuid,
    _data_dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let data_dir = tempfile::tempdir().expect("temporary directory");
    let store = slipway_store::SqliteStore::open(
        &data_dir.path().join("slipway.db"),
        slipway_store::StoreOptions::default(),
    )
    .expect("store");
    let clock = Arc::new(ManualClock::new(Now {
        instant: Instant::now(),
        wall: Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap(),
    }));
    let parts = Parts {
        store,
        runtime: Arc::new(slipway_runtime::ProcessRuntime::new()),
        logs: LogHub::default(),
        config: PlatformConfig::new(data_dir.path().to_path_buf()),
        activity: Activity::default(),
        uids: Arc::new(FixedUid),
        clock: clock.clone(),
    };
    let (events, inbox) = mpsc::unbounded_channel();
    Fixture {
        manager: Manager::new(Arc::new(parts), events),
        inbox,
        clock,
        app_id: Uuid::new_v4(),
        _data_dir: data_dir,
    }
}

impl Fixture {
    /// Puts an `up` web.1 in the manager's state and its record in the store.
    async fn with_web_dyno_up(&mut self) -> Dyno {
        let now = self.clock.now();
        let record = Dyno {
            id: Uuid::new_v4(),
            app_id: self.app_id,
            app_name: "app".to_owned(),
            name: "web.1".to_owned(),
            process_type: "web".to_owned(),
            command: "run web".to_owned(),
            size: "basic".to_owned(),
            state: DynoState::Up,
            release_id: Uuid::nil(),
            release_version: 1,
            port: Some(5000),
            address: None,
            container_id: "slipway.app.web.1.gone".to_owned(),
            created_at: now.wall,
            updated_at: now.wall,
        };
        save(&self.manager.parts, &record).await;
        let mut instance = self.manager.new_instance(record.clone(), 0, now);
        instance.lifecycle = Lifecycle::Up;
        instance.container = Container::Ready;
        let app = self.manager.apps.entry(self.app_id).or_default();
        app.name = "app".to_owned();
        app.slots.entry("web.1".to_owned()).or_default().current = Some(instance);
        record
    }

    async fn run(&mut self, actions: Vec<Action>) {
        let now = self.clock.now();
        self.manager.execute(self.app_id, None, actions, now).await;
    }

    async fn stored_state(&self) -> Option<DynoState> {
        get_json::<Dyno, _>(
            self.manager.parts.store.as_ref(),
            &keys::dyno(self.app_id, "web.1"),
        )
        .await
        .expect("store read")
        .map(|record| record.state)
    }

    fn lifecycle(&self) -> Option<Lifecycle> {
        let slot = self.manager.apps.get(&self.app_id)?.slots.get("web.1")?;
        Some(slot.current.as_ref()?.lifecycle)
    }

    fn log(&self) -> Vec<String> {
        self.manager
            .parts
            .logs
            .recent("app", 100, &LogFilter::default())
            .iter()
            .map(|line| {
                format!(
                    "{}[{}]: {}",
                    line.source.as_str(),
                    line.process,
                    line.message
                )
            })
            .collect()
    }
}

fn transition(to: Lifecycle) -> Action {
    Action::Transition {
        dyno: "web.1".to_owned(),
        which: Which::Current,
        to,
    }
}

#[tokio::test]
async fn transitions_are_recorded_logged_once_and_refused_ones_change_nothing() {
    let mut fixture = fixture();
    fixture.with_web_dyno_up().await;
    let deadline = fixture.clock.now().instant + Duration::from_secs(30);
    let stopping = Lifecycle::Stopping {
        deadline,
        then: lifecycle::AfterStop::Down,
    };

    fixture.run(vec![transition(stopping)]).await;
    assert_eq!(fixture.lifecycle(), Some(stopping));
    assert_eq!(fixture.stored_state().await, Some(DynoState::Down));
    assert_eq!(
        fixture.log(),
        ["heroku[web.1]: State changed from up to down"]
    );

    // Stopping → up is not a transition the lifecycle allows: nothing changes.
    fixture.run(vec![transition(Lifecycle::Up)]).await;
    assert_eq!(fixture.lifecycle(), Some(stopping));
    assert_eq!(fixture.stored_state().await, Some(DynoState::Down));
    assert_eq!(fixture.log().len(), 1);

    // Down (no new line: it already showed as down), then its record goes.
    fixture
        .run(vec![
            transition(Lifecycle::Down),
            Action::DeleteRecord {
                dyno: "web.1".to_owned(),
            },
        ])
        .await;
    assert_eq!(fixture.lifecycle(), None);
    assert_eq!(fixture.stored_state().await, None);
    assert_eq!(fixture.log().len(), 1);
}

#[tokio::test]
async fn stopping_a_container_that_is_already_gone_reports_it_gone() {
    let mut fixture = fixture();
    let record = fixture.with_web_dyno_up().await;
    fixture
        .run(vec![Action::StopContainer {
            dyno: "web.1".to_owned(),
            container_id: record.container_id.clone(),
            delay: Duration::ZERO,
            grace: Duration::from_secs(30),
            sigterm_line: true,
        }])
        .await;
    let event = tokio::time::timeout(Duration::from_secs(10), fixture.inbox.recv())
        .await
        .expect("the stop reports back");
    assert!(
        matches!(&event, Some(Event::Stopped { container_id }) if *container_id == record.container_id),
        "{event:?}"
    );
    // Its SIGTERM line, and no R12: nothing had to be killed.
    assert_eq!(
        fixture.log(),
        ["heroku[web.1]: Stopping all processes with SIGTERM"]
    );
}

#[test]
fn the_planners_lines_read_as_herokus() {
    let table = [
        (Line::Restarting, "Restarting"),
        (Line::Cycling, "Cycling"),
        (Line::Idling, "Idling"),
        (Line::Unidling, "Unidling"),
        (
            Line::BootTimeout { seconds: 60 },
            "Error R10 (Boot timeout) -> Web process failed to bind to $PORT within 60 seconds of launch",
        ),
        (Line::Sigkill, "Stopping process with SIGKILL"),
        (
            Line::StartFailed {
                reason: "no space".to_owned(),
            },
            "Failed to start process: no space",
        ),
        (
            Line::MemoryAtLimit {
                mb: 1024,
                per_mille: 2000,
            },
            "Process running mem=1024MB(200.0%)",
        ),
        (
            Line::MemoryQuotaVastlyExceeded,
            "Error R15 (Memory quota vastly exceeded)",
        ),
    ];
    for (line, message) in table {
        let logged = line.event("web.1").to_line();
        assert_eq!(logged.process, "web.1");
        assert_eq!(logged.message, message, "{line:?}");
    }
}

/// A one-off dyno's record (`run.4821`), as `oneoff.rs` writes it.
fn one_off_record(app_id: Uuid, container_id: &str) -> Dyno {
    Dyno {
        id: Uuid::new_v4(),
        app_id,
        app_name: "app".to_owned(),
        name: "run.4821".to_owned(),
        process_type: "run".to_owned(),
        command: "bash".to_owned(),
        size: "basic".to_owned(),
        state: DynoState::Up,
        release_id: Uuid::nil(),
        release_version: 1,
        port: None,
        address: None,
        container_id: container_id.to_owned(),
        created_at: Utc::now(),
        updated_at: Utc::now(),
    }
}

impl Fixture {
    /// Puts the app `app`, a release `version` of a slug with a `web` process and a `web`
    /// formation of `quantity` in the store, as the core would; returns the release.
    async fn store_app(&self, version: u32, quantity: u32) -> Release {
        let store = self.manager.parts.store.as_ref();
        let now = self.clock.now().wall;
        let app = App {
            id: self.app_id,
            name: "app".to_owned(),
            owner_email: "owner@example.com".to_owned(),
            stack: "heroku-24".to_owned(),
            maintenance: false,
            created_at: now,
            updated_at: now,
            uid: None,
        };
        let slug = Slug {
            id: Uuid::new_v4(),
            app_id: self.app_id,
            checksum: format!("SHA256:{:064x}", version),
            size: 1,
            process_types: [("web".to_owned(), "run web".to_owned())].into(),
            commit: None,
            buildpack_description: "test".to_owned(),
            stack: "heroku-24".to_owned(),
            stack_id: None,
            created_at: now,
        };
        let release = Release {
            id: Uuid::new_v4(),
            app_id: self.app_id,
            version,
            description: format!("Deploy v{version}"),
            slug_id: Some(slug.id),
            config_vars: Default::default(),
            user_email: "owner@example.com".to_owned(),
            status: ReleaseStatus::Succeeded,
            created_at: now,
        };
        put_json(store, &keys::app("app"), &app).await.expect("app");
        put_json(store, &keys::slug(self.app_id, slug.id), &slug)
            .await
            .expect("slug");
        put_json(store, &keys::release(self.app_id, version), &release)
            .await
            .expect("release");
        self.set_web_quantity(quantity).await;
        release
    }

    async fn set_web_quantity(&self, quantity: u32) {
        let now = self.clock.now().wall;
        let entry = Formation {
            id: Uuid::new_v4(),
            app_id: self.app_id,
            process_type: "web".to_owned(),
            quantity,
            size: "basic".to_owned(),
            created_at: now,
            updated_at: now,
        };
        put_json(
            self.manager.parts.store.as_ref(),
            &keys::formation(self.app_id, "web"),
            &entry,
        )
        .await
        .expect("formation");
    }

    /// Waits for the watch's next report about this app, passing over the containers'
    /// reports (dynos that cannot start here) and the watches' own start-up reports.
    async fn next_store_change(&mut self) -> Event {
        loop {
            let event = tokio::time::timeout(Duration::from_secs(10), self.inbox.recv())
                .await
                .expect("the store's watch reports the change")
                .expect("the manager's inbox stays open");
            if matches!(event, Event::AppChanged(Some(app)) if app == self.app_id) {
                return event;
            }
        }
    }

    /// The release of web.1's current instance, if it has one.
    fn web_release(&self) -> Option<Uuid> {
        let slot = self.manager.apps.get(&self.app_id)?.slots.get("web.1")?;
        Some(slot.current.as_ref()?.record.release_id)
    }

    /// The release the manager's cached target for the app runs.
    fn cached_release(&self) -> Option<Uuid> {
        let target = self.manager.known_targets.get(&self.app_id)?.as_ref()?;
        Some(target.release.as_ref()?.id)
    }
}

#[tokio::test]
async fn reconciling_leaves_one_off_dynos_alone() {
    let mut fixture = fixture();
    fixture.with_web_dyno_up().await;
    let one_off = one_off_record(fixture.app_id, "slipway.app.run.4821.abcd");
    save(&fixture.manager.parts, &one_off).await;
    // The app is gone from the store: the planner retires every dyno it manages.
    fixture.manager.reconcile(fixture.app_id).await;
    fixture.manager.reconcile_all().await;
    let stored = get_json::<Dyno, _>(
        fixture.manager.parts.store.as_ref(),
        &keys::dyno(fixture.app_id, "run.4821"),
    )
    .await
    .expect("store read");
    assert_eq!(stored, Some(one_off), "the one-off record is untouched");
    assert!(
        fixture
            .manager
            .apps
            .values()
            .all(|app| !app.slots.contains_key("run.4821")),
        "the manager never takes a one-off dyno into a slot"
    );
    assert!(
        !fixture.log().iter().any(|line| line.contains("run.4821")),
        "nothing is logged for the one-off dyno: {:?}",
        fixture.log()
    );
}

#[tokio::test]
async fn a_new_server_stops_one_off_containers_and_removes_their_records() {
    let mut fixture = fixture();
    let runtime = fixture.manager.parts.runtime.clone();
    let container_id = "slipway.app.run.4821.left";
    let spec = ContainerSpec {
        id: container_id.to_owned(),
        labels: BTreeMap::from([
            ("app".to_owned(), "app".to_owned()),
            (
                crate::dyno_spec::ONE_OFF_LABEL.to_owned(),
                "true".to_owned(),
            ),
        ]),
        app_dir: None,
        rootfs: slipway_runtime::Rootfs::Host,
        binds: Vec::new(),
        args: vec![
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            "sleep 600".to_owned(),
        ],
        env: vec![("PATH".to_owned(), "/usr/bin:/bin".to_owned())],
        cwd: "/".to_owned(),
        uid: 0,
        gid: 0,
        hostname: "left".to_owned(),
        limits: Default::default(),
        network: Default::default(),
        allowed_host_ports: Vec::new(),
    };
    let _running = runtime
        .start(spec, Arc::new(|_, _: &str| {}))
        .await
        .expect("a process starts");
    let record = one_off_record(fixture.app_id, container_id);
    save(&fixture.manager.parts, &record).await;
    fixture.manager.adopt_previous_run().await;
    let key = keys::dyno(fixture.app_id, "run.4821");
    let stored = get_json::<Dyno, _>(fixture.manager.parts.store.as_ref(), &key)
        .await
        .expect("store read");
    assert_eq!(stored, None, "no stale `ps` row");
    assert!(fixture.manager.apps.is_empty(), "nothing was adopted");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = runtime.list().await.expect("list");
        if !list.iter().any(|c| c.id == container_id && c.running) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the one-off container still runs"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_formation_change_is_acted_on_at_its_watch_event_not_the_periodic_pass() {
    let mut fixture = fixture();
    let v1 = fixture.store_app(1, 0).await;
    // One periodic pass reads the app (no web dyno wanted) into the cache; then the watches
    // start, and report once each that they are watching.
    fixture.manager.handle(Event::AppChanged(None)).await;
    assert_eq!(fixture.cached_release(), Some(v1.id));
    assert_eq!(fixture.web_release(), None);
    watch_store(&fixture.manager.parts.store, &fixture.manager.events);
    for _ in 0..4 {
        let event = tokio::time::timeout(Duration::from_secs(10), fixture.inbox.recv())
            .await
            .expect("each watch reports that it started");
        assert!(matches!(event, Some(Event::AppChanged(None))), "{event:?}");
    }

    fixture.set_web_quantity(1).await;
    let event = fixture.next_store_change().await;
    // Until the event is handled the cache stands: a container's report about the app plans
    // from it, and starts nothing.
    fixture.manager.reconcile(fixture.app_id).await;
    assert_eq!(fixture.web_release(), None, "planned from the cache");
    // The watch's event drops the cache, and web.1 starts at once, on v1.
    fixture.manager.handle(event).await;
    assert_eq!(fixture.web_release(), Some(v1.id));
    let stored = get_json::<Dyno, _>(
        fixture.manager.parts.store.as_ref(),
        &keys::dyno(fixture.app_id, "web.1"),
    )
    .await
    .expect("store read")
    .expect("web.1 is recorded");
    assert_eq!(
        (stored.state, stored.release_id),
        (DynoState::Starting, v1.id)
    );
}

#[tokio::test]
async fn a_release_change_is_not_planned_from_a_stale_cache() {
    let mut fixture = fixture();
    let v1 = fixture.store_app(1, 1).await;
    fixture.manager.handle(Event::AppChanged(None)).await;
    assert_eq!(fixture.web_release(), Some(v1.id));
    watch_store(&fixture.manager.parts.store, &fixture.manager.events);

    // A deploy: v2 of a new slug. Its watch event (the release's, or the slug's formation
    // write before it) must make the manager read the store again.
    let v2 = fixture.store_app(2, 1).await;
    let event = fixture.next_store_change().await;
    assert_eq!(fixture.cached_release(), Some(v1.id), "the cache is stale");
    // Planned from the stale cache (a container's report before the event), web.1 stays on
    // v1: the event is what moves it.
    fixture.manager.reconcile(fixture.app_id).await;
    assert_eq!(fixture.web_release(), Some(v1.id));
    fixture.manager.handle(event).await;
    // Whichever of the deploy's writes reported first, the cache was dropped and read again;
    // handle the rest of its events as the manager's loop would.
    while fixture.cached_release() != Some(v2.id) {
        let event = fixture.next_store_change().await;
        fixture.manager.handle(event).await;
    }
    assert_eq!(fixture.web_release(), Some(v2.id), "web.1 runs v2");
    assert!(
        fixture
            .log()
            .contains(&"heroku[web.1]: Restarting".to_owned()),
        "{:?}",
        fixture.log()
    );
}
