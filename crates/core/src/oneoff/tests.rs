//! One-off dynos against the real SQLite store and the process runtime (which cannot attach,
//! so an attached start fails here: the full attached path is the end-to-end tests'): bad
//! requests leave nothing behind, the cap, the claim bookkeeping of attached dynos (unknown,
//! reused and expired secrets, the window, a failed start), `ps:stop` of an unclaimed dyno,
//! and the pure helpers as tables.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use slipway_logplex::LogFilter;
use slipway_rendezvous::{ClaimError, Sessions};
use slipway_store::Op;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::*;
use crate::apps::NewRelease;
use crate::command::{Command, Outcome, RestartTarget};
use crate::model::{Slug, User};

async fn platform(dir: &std::path::Path, tune: impl FnOnce(&mut PlatformConfig)) -> Arc<Platform> {
    let store = slipway_store::SqliteStore::open(&dir.join("db"), Default::default()).unwrap();
    let mut config = PlatformConfig::new(dir.join("data"));
    tune(&mut config);
    Platform::open(
        config,
        store,
        Arc::new(slipway_runtime::ProcessRuntime::new()),
        LogHub::default(),
    )
    .await
    .unwrap()
}

fn owner() -> User {
    User {
        id: Uuid::new_v4(),
        email: "owner@example.com".into(),
        created_at: Utc::now(),
        admin: false,
    }
}

async fn create_app(platform: &Arc<Platform>, owner: &User, name: &str) -> App {
    let Outcome::App(app) = platform
        .execute(
            owner,
            Command::CreateApp {
                name: Some(name.parse().unwrap()),
            },
        )
        .await
        .unwrap()
    else {
        panic!("CreateApp answers the app");
    };
    app
}

/// An app with a release whose slug defines `web` and `worker` (its tarball does not exist:
/// a start fails at unpacking, which is what these tests want of a start).
async fn deployed_app(platform: &Arc<Platform>, owner: &User, name: &str) -> App {
    let app = create_app(platform, owner, name).await;
    let process_types: BTreeMap<String, String> = [("web", "serve"), ("worker", "work --hard")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let slug = Slug {
        id: Uuid::new_v4(),
        app_id: app.id,
        checksum: format!("SHA256:{}", "b".repeat(64)),
        size: 1,
        process_types: process_types.clone(),
        commit: None,
        buildpack_description: String::new(),
        stack: "heroku-24".into(),
        stack_id: None,
        created_at: Utc::now(),
    };
    let mut ops = vec![Op::put_json(keys::slug(app.id, slug.id), &slug).unwrap()];
    let mut compares = Vec::new();
    for (compare, op) in platform
        .formation_ops_for(&app, &process_types, &BTreeMap::new())
        .await
        .unwrap()
    {
        compares.push(compare);
        ops.push(op);
    }
    platform
        .try_create_release(
            owner,
            &app,
            NewRelease {
                description: "Deploy test".into(),
                slug_id: Some(slug.id),
                config_vars: BTreeMap::new(),
                ops,
                compares,
                failure: None,
            },
        )
        .await
        .unwrap()
        .expect("the release is written");
    app
}

fn run(app: &str, command: &str, attach: bool) -> Command {
    Command::RunDyno {
        app: app.into(),
        command: command.into(),
        attach,
        env: BTreeMap::new(),
        size: None,
        process_type: None,
        time_to_live: None,
        force_no_tty: false,
    }
}

/// Runs `command` and returns the dyno and its attach URL.
async fn run_ok(platform: &Arc<Platform>, owner: &User, command: Command) -> (Dyno, String) {
    match platform.execute(owner, command).await {
        Ok(Outcome::OneOff { dyno, attach_url }) => (dyno, attach_url.unwrap_or_default()),
        other => panic!("a one-off dyno, not {other:?}"),
    }
}

fn log(platform: &Platform, app: &str) -> Vec<String> {
    platform
        .logs()
        .recent(app, 100, &LogFilter::default())
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

/// Polls `condition` for up to 10 s.
async fn eventually(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn bad_requests_are_refused_with_a_message_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform(dir.path(), |_| {}).await;
    let owner = owner();
    let fresh = create_app(&platform, &owner, "fresh").await;
    let app = deployed_app(&platform, &owner, "demo").await;
    let with = |f: &dyn Fn(&mut Command)| {
        let mut command = run("demo", "bash", false);
        f(&mut command);
        command
    };
    let cases: Vec<(Command, &str)> = vec![
        (run("fresh", "bash", false), "fresh has no release yet"),
        (run("demo", "   ", false), "Command can't be empty"),
        (run("demo", "echo \0", false), "NUL"),
        (
            with(&|c| {
                if let Command::RunDyno { time_to_live, .. } = c {
                    *time_to_live = Some(Duration::from_secs(24 * 3600 + 1));
                }
            }),
            "time_to_live must be between 1 and 86400 seconds",
        ),
        (
            with(&|c| {
                if let Command::RunDyno { process_type, .. } = c {
                    *process_type = Some("clock".parse().unwrap());
                }
            }),
            "Unknown process type clock: release v1 defines web, worker",
        ),
        (
            with(&|c| {
                if let Command::RunDyno { env, .. } = c {
                    env.insert("BIG".parse().unwrap(), "x".repeat(70 * 1024));
                }
            }),
            "env is too large",
        ),
    ];
    for (command, expected) in cases {
        let error = platform.execute(&owner, command).await.unwrap_err();
        assert!(
            matches!(error, CoreError::Invalid { .. }),
            "{expected}: {error:?}"
        );
        assert!(error.to_string().contains(expected), "{error}");
    }
    for app in [&fresh, &app] {
        assert!(platform.dynos(app).await.unwrap().is_empty());
        assert_eq!(platform.one_offs().count(app.id), 0);
    }
    assert!(platform.runtime().list().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_failed_detached_start_is_an_error_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform(dir.path(), |_| {}).await;
    let owner = owner();
    let app = deployed_app(&platform, &owner, "demo").await;
    let error = platform
        .execute(&owner, run("demo", "echo hi", false))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("could not start"), "{error}");
    assert!(platform.dynos(&app).await.unwrap().is_empty());
    assert_eq!(platform.one_offs().count(app.id), 0);
    let log = log(&platform, "demo");
    assert!(
        log.iter().any(|l| l.starts_with("heroku[run.")
            && l.contains("Starting process with command `echo hi`")),
        "{log:?}"
    );
}

#[tokio::test]
async fn the_cap_refuses_one_more_and_a_stop_makes_room() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform(dir.path(), |config| config.dynos.max_one_offs_per_app = 2).await;
    let owner = owner();
    let app = deployed_app(&platform, &owner, "demo").await;
    let (first, _) = run_ok(&platform, &owner, run("demo", "bash", true)).await;
    run_ok(&platform, &owner, run("demo", "bash", true)).await;
    let error = platform
        .execute(&owner, run("demo", "bash", true))
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("demo already runs 2 one-off dynos, the most it may run at once"),
        "{error}"
    );
    assert_eq!(platform.dynos(&app).await.unwrap().len(), 2);
    platform
        .execute(
            &owner,
            Command::Stop {
                app: "demo".into(),
                target: RestartTarget::Dyno(first.name.parse().unwrap()),
            },
        )
        .await
        .unwrap();
    let names: Vec<String> = platform
        .dynos(&app)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert!(!names.contains(&first.name), "{names:?}");
    run_ok(&platform, &owner, run("demo", "bash", true)).await;
}

#[tokio::test]
async fn an_attached_dyno_waits_for_one_claim_of_its_secret() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform(dir.path(), |_| {}).await;
    let owner = owner();
    let app = deployed_app(&platform, &owner, "demo").await;
    let (dyno, attach_url) = run_ok(&platform, &owner, run("demo", "bash", true)).await;
    assert!(dyno.name.starts_with("run."), "{}", dyno.name);
    assert_eq!(
        (
            dyno.process_type.as_str(),
            dyno.command.as_str(),
            dyno.state
        ),
        ("run", "bash", DynoState::Starting)
    );
    // Sized as the web formation (the default formation size).
    assert_eq!(dyno.size, platform.formation(&app).await.unwrap()[0].size);
    let prefix = format!("{}/", platform.config().rendezvous_url);
    let secret = attach_url
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{attach_url} starts with {prefix}"))
        .to_owned();
    assert_eq!(secret.len(), 64);
    let listed = platform.dynos(&app).await.unwrap();
    assert_eq!(listed, vec![dyno.clone()], "ps shows it while it waits");

    let refused = |result: Result<slipway_rendezvous::Session, ClaimError>| match result {
        Ok(_) => panic!("claimed"),
        Err(error) => error,
    };
    assert!(matches!(
        refused(platform.claim(&"0".repeat(64)).await),
        ClaimError::Unknown
    ));
    // The process runtime cannot attach: the start fails, and nothing is left.
    let failed = refused(platform.claim(&secret).await);
    assert!(
        matches!(&failed, ClaimError::Failed(message) if message.contains(&dyno.name)),
        "{failed:?}"
    );
    assert!(!failed.to_string().contains(&secret));
    assert!(platform.dynos(&app).await.unwrap().is_empty());
    assert_eq!(platform.one_offs().count(app.id), 0);
    assert!(platform.runtime().list().await.unwrap().is_empty());
    assert!(matches!(
        refused(platform.claim(&secret).await),
        ClaimError::AlreadyUsed
    ));
}

#[tokio::test]
async fn an_unclaimed_dyno_is_removed_after_its_window() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform(dir.path(), |config| {
        config.dynos.one_off_attach_window = Duration::from_millis(50);
    })
    .await;
    let owner = owner();
    let app = deployed_app(&platform, &owner, "demo").await;
    let (dyno, attach_url) = run_ok(&platform, &owner, run("demo", "bash", true)).await;
    let secret = attach_url.rsplit('/').next().unwrap().to_owned();
    eventually("the record to go", async || {
        platform.dynos(&app).await.unwrap().is_empty()
    })
    .await;
    assert_eq!(platform.one_offs().count(app.id), 0);
    assert!(matches!(
        platform.claim(&secret).await,
        Err(ClaimError::Expired)
    ));
    let log = log(&platform, "demo");
    let r13 = format!(
        "heroku[{}]: Error R13 (Attach error) -> Failed to attach to process",
        dyno.name
    );
    assert!(log.contains(&r13), "{log:?}");
}

#[tokio::test]
async fn stopping_an_unclaimed_dyno_removes_it_and_spends_its_secret() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform(dir.path(), |_| {}).await;
    let owner = owner();
    let app = deployed_app(&platform, &owner, "demo").await;
    let (dyno, attach_url) = run_ok(&platform, &owner, run("demo", "bash", true)).await;
    // `ps:restart run.N` ends a one-off dyno as `ps:stop` does.
    platform
        .execute(
            &owner,
            Command::Restart {
                app: "demo".into(),
                target: RestartTarget::Dyno(dyno.name.parse().unwrap()),
            },
        )
        .await
        .unwrap();
    assert!(platform.dynos(&app).await.unwrap().is_empty());
    let secret = attach_url.rsplit('/').next().unwrap();
    assert!(platform.claim(secret).await.is_err());
    // A restart of the whole app is the formation's business; it does not touch one-offs.
    let (kept, _) = run_ok(&platform, &owner, run("demo", "bash", true)).await;
    platform
        .execute(
            &owner,
            Command::Restart {
                app: "demo".into(),
                target: RestartTarget::App,
            },
        )
        .await
        .unwrap();
    assert_eq!(platform.dynos(&app).await.unwrap(), vec![kept]);
}

#[test]
fn commands_resolve_process_types_as_heroku_does() {
    let types: BTreeMap<String, String> = [("web", "gunicorn app"), ("worker", "python w.py")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    for (command, expected) in [
        ("bash", "bash"),
        ("  worker ", "python w.py"),
        ("worker --queue high", "python w.py --queue high"),
        ("web", "gunicorn app"),
        ("webby", "webby"),
        ("echo worker", "echo worker"),
        ("python manage.py migrate", "python manage.py migrate"),
    ] {
        assert_eq!(resolve_command(command, &types), expected, "{command}");
    }
}

#[test]
fn the_terminal_size_comes_from_columns_and_lines() {
    let env = |pairs: &[(&str, &str)]| -> BTreeMap<ConfigKey, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), (*v).to_owned()))
            .collect()
    };
    for (pairs, expected) in [
        (vec![], (80, 24)),
        (vec![("COLUMNS", "132"), ("LINES", "43")], (132, 43)),
        (vec![("COLUMNS", "0"), ("LINES", "x")], (80, 24)),
        (vec![("COLUMNS", "99999999")], (80, 24)),
        (vec![("TERM", "xterm"), ("LINES", " 50 ")], (80, 50)),
    ] {
        assert_eq!(tty_size(&env(&pairs)), expected, "{pairs:?}");
    }
}

/// A runtime whose containers run until stopped: attached ones get in-memory streams and a
/// control that records hangups (the process ignores them, as one that triggers R16).
#[derive(Default)]
struct FakeRuntime {
    exits: std::sync::Mutex<BTreeMap<String, oneshot::Sender<ExitStatus>>>,
    attaches: std::sync::Mutex<Vec<Attach>>,
    hangups: Arc<std::sync::atomic::AtomicUsize>,
}

struct FakeControl {
    hangups: Arc<std::sync::atomic::AtomicUsize>,
}

impl AttachControl for FakeControl {
    fn resize(&self, _cols: u16, _rows: u16) -> std::io::Result<()> {
        Ok(())
    }

    fn hangup(&self) -> std::io::Result<()> {
        self.hangups
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

impl FakeRuntime {
    fn running(&self, id: &str) -> RunningContainer {
        let (sender, exited) = oneshot::channel();
        self.exits.lock().unwrap().insert(id.to_owned(), sender);
        RunningContainer {
            id: id.to_owned(),
            pid: 1,
            address: None,
            exited,
        }
    }
}

#[async_trait::async_trait]
impl Runtime for FakeRuntime {
    async fn start(
        &self,
        spec: ContainerSpec,
        output: slipway_runtime::OutputSink,
    ) -> Result<RunningContainer, slipway_runtime::RuntimeError> {
        output(slipway_runtime::Stream::Stdout, "hello from the fake");
        Ok(self.running(&spec.id))
    }

    async fn start_attached(
        &self,
        spec: ContainerSpec,
        attach: Attach,
    ) -> Result<(RunningContainer, AttachedIo), slipway_runtime::RuntimeError> {
        self.attaches.lock().unwrap().push(attach);
        let (ours, theirs) = tokio::io::duplex(64);
        drop(ours);
        let (output, input) = tokio::io::split(theirs);
        let io = AttachedIo {
            input: Box::pin(input),
            output: Box::pin(output),
            control: Arc::new(FakeControl {
                hangups: self.hangups.clone(),
            }),
        };
        Ok((self.running(&spec.id), io))
    }

    async fn stop(
        &self,
        id: &str,
        _grace: Duration,
    ) -> Result<slipway_runtime::StopOutcome, slipway_runtime::RuntimeError> {
        match self.exits.lock().unwrap().remove(id) {
            Some(sender) => {
                let _ = sender.send(ExitStatus {
                    code: None,
                    signal: Some(15),
                });
                Ok(slipway_runtime::StopOutcome::Terminated)
            }
            None => Ok(slipway_runtime::StopOutcome::NotFound),
        }
    }

    async fn list(
        &self,
    ) -> Result<Vec<slipway_runtime::ContainerInfo>, slipway_runtime::RuntimeError> {
        Ok(Vec::new())
    }
}

/// A platform on the fake runtime, with `app` deployed and its slug already unpacked.
async fn on_fake_runtime(
    dir: &std::path::Path,
    tune: impl FnOnce(&mut PlatformConfig),
) -> (Arc<Platform>, Arc<FakeRuntime>, User, App) {
    let store = slipway_store::SqliteStore::open(&dir.join("db"), Default::default()).unwrap();
    let mut config = PlatformConfig::new(dir.join("data"));
    tune(&mut config);
    let runtime = Arc::new(FakeRuntime::default());
    let platform = Platform::open(config, store, runtime.clone(), LogHub::default())
        .await
        .unwrap();
    let owner = owner();
    let app = deployed_app(&platform, &owner, "demo").await;
    let uid = platform.app_uid(&app).await.unwrap();
    let unpacked = platform.config().unpacked_slug_dir(&"b".repeat(64), uid);
    std::fs::create_dir_all(unpacked.join("app")).unwrap();
    std::fs::write(unpacked.join(".complete"), b"").unwrap();
    (platform, runtime, owner, app)
}

#[tokio::test]
async fn a_claimed_dyno_outliving_its_hangup_gets_r16_and_its_session_the_exit() {
    let dir = tempfile::tempdir().unwrap();
    let (platform, runtime, owner, app) = on_fake_runtime(dir.path(), |config| {
        config.dynos.one_off_hangup_grace = Duration::from_millis(50);
    })
    .await;
    let mut command = run("demo", "bash", true);
    if let Command::RunDyno { env, .. } = &mut command {
        env.insert("COLUMNS".parse().unwrap(), "100".into());
        env.insert("LINES".parse().unwrap(), "30".into());
    }
    let (dyno, attach_url) = run_ok(&platform, &owner, command).await;
    let secret = attach_url.rsplit('/').next().unwrap().to_owned();
    let session = platform.claim(&secret).await.expect("a session");
    assert_eq!(session.dyno, dyno.name);
    assert_eq!(session.idle_timeout, Duration::from_secs(3600));
    assert_eq!(
        *runtime.attaches.lock().unwrap(),
        vec![Attach::Tty {
            cols: 100,
            rows: 30
        }]
    );
    let listed = platform.dynos(&app).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, DynoState::Up);

    // The client hangs up; the process keeps running past the grace: R16, then it is stopped.
    session.io.control.hangup().unwrap();
    assert_eq!(runtime.hangups.load(std::sync::atomic::Ordering::SeqCst), 1);
    let status = tokio::time::timeout(Duration::from_secs(10), session.exited)
        .await
        .expect("R16 stops the dyno")
        .expect("the exit is forwarded");
    assert_eq!(status.signal, Some(15));
    eventually("the record to go", async || {
        platform.dynos(&app).await.unwrap().is_empty()
    })
    .await;
    assert_eq!(platform.one_offs().count(app.id), 0);
    let name = &dyno.name;
    let expected = [
        format!("heroku[{name}]: Starting process with command `bash`"),
        format!("heroku[{name}]: State changed from starting to up"),
        format!("heroku[{name}]: Error R16 (Detached) -> An attached process is not responding to SIGHUP after its external connection was closed."),
        format!("heroku[{name}]: Stopping all processes with SIGTERM"),
        format!("heroku[{name}]: Process exited with status 143"),
        format!("heroku[{name}]: State changed from up to complete"),
    ];
    let log = log(&platform, "demo");
    let ours: Vec<&String> = log.iter().filter(|l| l.contains(name.as_str())).collect();
    assert_eq!(ours, expected.iter().collect::<Vec<_>>());
}

#[tokio::test]
async fn a_detached_dyno_logs_its_output_and_ends_at_its_time_to_live_or_a_stop() {
    let dir = tempfile::tempdir().unwrap();
    let (platform, runtime, owner, app) = on_fake_runtime(dir.path(), |_| {}).await;
    let mut command = run("demo", "sleep 600", false);
    if let Command::RunDyno { time_to_live, .. } = &mut command {
        *time_to_live = Some(Duration::from_millis(50));
    }
    let (timed, attach_url) = run_ok(&platform, &owner, command).await;
    assert_eq!(attach_url, "", "a detached dyno has no attach URL");
    assert_eq!(timed.state, DynoState::Up);
    eventually("the time to live to end it", async || {
        platform.dynos(&app).await.unwrap().is_empty()
    })
    .await;
    let log = log(&platform, "demo");
    let name = &timed.name;
    for line in [
        format!("app[{name}]: hello from the fake"),
        format!("heroku[{name}]: Stopping all processes with SIGTERM"),
        format!("heroku[{name}]: Process exited with status 143"),
    ] {
        assert!(log.contains(&line), "{line} missing from {log:?}");
    }
    assert!(runtime.attaches.lock().unwrap().is_empty());

    let (stopped, _) = run_ok(&platform, &owner, run("demo", "sleep 600", false)).await;
    assert_eq!(platform.dynos(&app).await.unwrap(), vec![stopped.clone()]);
    platform
        .execute(
            &owner,
            Command::Stop {
                app: "demo".into(),
                target: RestartTarget::ProcessType("run".parse().unwrap()),
            },
        )
        .await
        .unwrap();
    eventually("ps:stop run to end it", async || {
        platform.dynos(&app).await.unwrap().is_empty()
    })
    .await;
    assert!(
        runtime.exits.lock().unwrap().is_empty(),
        "no container left"
    );
}
