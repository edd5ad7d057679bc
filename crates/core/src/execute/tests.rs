//! [`Platform::execute`] against the real SQLite store and a fake source fetcher: relative
//! scaling under concurrency, repositories that come and go with their apps, authorization,
//! restart targets, and source URLs refused before anything is recorded.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use slipway_store::Op;
use uuid::Uuid;

use super::*;
use crate::apps::NewRelease;
use crate::command::*;
use crate::model::{keys, App, Slug};
use crate::{PlatformConfig, SourceFetch, SourceFetcher};
use slipway_model::DynoSize;

/// Serves every URL from memory, except hosts named `refused.example`.
struct FakeFetcher;

#[async_trait::async_trait]
impl SourceFetcher for FakeFetcher {
    async fn check(&self, url: &url::Url) -> Result<(), String> {
        match url.host_str() {
            Some("refused.example") => Err("refused.example resolves to a private address".into()),
            _ => Ok(()),
        }
    }

    fn fetch(&self, _url: url::Url, _max_bytes: u64) -> SourceFetch {
        Box::pin(async { Err("the fake fetcher serves no bytes".to_owned()) })
    }
}

async fn platform(dir: &std::path::Path) -> Arc<Platform> {
    let store = slipway_store::SqliteStore::open(&dir.join("db"), Default::default()).unwrap();
    Platform::open_with_source_fetcher(
        PlatformConfig::new(dir.join("data")),
        store,
        Arc::new(slipway_runtime::ProcessRuntime::new()),
        slipway_logplex::LogHub::default(),
        Arc::new(FakeFetcher),
    )
    .await
    .unwrap()
}

fn user(email: &str) -> User {
    User {
        id: Uuid::new_v4(),
        email: email.into(),
        created_at: Utc::now(),
        admin: false,
    }
}

/// Creates `name` through `execute` and gives it a release whose slug defines `web` and
/// `worker`, with the formation that release brings (web 1, worker 0).
async fn deployed_app(platform: &Arc<Platform>, owner: &User, name: &str) -> App {
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
    let process_types: BTreeMap<String, String> = [("web", "serve"), ("worker", "work")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let slug = Slug {
        id: Uuid::new_v4(),
        app_id: app.id,
        checksum: format!("SHA256:{}", "a".repeat(64)),
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

async fn quantity(platform: &Platform, app: &App, process_type: &str) -> u32 {
    platform
        .formation(app)
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.process_type == process_type)
        .map(|f| f.quantity)
        .unwrap()
}

fn scale(app: &str, process_type: &str, quantity: Quantity) -> Command {
    Command::Scale {
        app: app.into(),
        changes: vec![FormationChange {
            process_type: process_type.parse().unwrap(),
            quantity: Some(quantity),
            size: None,
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_relative_scales_all_count() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform(dir.path()).await;
    let owner = user("owner@example.com");
    let app = deployed_app(&platform, &owner, "busy").await;
    assert_eq!(quantity(&platform, &app, "web").await, 1);
    let scales = (0..20).map(|_| {
        let (platform, owner) = (platform.clone(), owner.clone());
        tokio::spawn(async move {
            platform
                .execute(&owner, scale("busy", "web", Quantity::Relative(1)))
                .await
                .unwrap()
        })
    });
    let mut seen = Vec::new();
    for result in futures::future::join_all(scales).await {
        let Outcome::Formation(changed) = result.unwrap() else {
            panic!("Scale answers the formation it wrote");
        };
        seen.push(changed[0].quantity);
    }
    // Each change was resolved on the one before it: every writer wrote its own quantity.
    seen.sort_unstable();
    assert_eq!(seen, (2..=21).collect::<Vec<u32>>());
    assert_eq!(
        quantity(&platform, &app, "web").await,
        21,
        "every web+1 counts"
    );
}

#[tokio::test]
async fn relative_scaling_stops_at_zero_and_the_limit_still_holds() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform(dir.path()).await;
    let owner = user("owner@example.com");
    let app = deployed_app(&platform, &owner, "demo").await;
    platform
        .execute(&owner, scale("demo", "web", Quantity::Relative(-5)))
        .await
        .unwrap();
    assert_eq!(quantity(&platform, &app, "web").await, 0);
    let error = platform
        .execute(&owner, scale("demo", "web", Quantity::Relative(101)))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("the limit is 100 dynos per app"),
        "{error}"
    );
    let error = platform
        .execute(&owner, scale("demo", "clock", Quantity::Absolute(1)))
        .await
        .unwrap_err();
    assert!(matches!(error, CoreError::NotFound { .. }), "{error:?}");
    // A batch naming a type twice applies both changes.
    platform
        .execute(
            &owner,
            Command::Scale {
                app: "demo".into(),
                changes: vec![
                    FormationChange {
                        process_type: "worker".parse().unwrap(),
                        quantity: Some(Quantity::Absolute(2)),
                        size: None,
                    },
                    FormationChange {
                        process_type: "worker".parse().unwrap(),
                        quantity: Some(Quantity::Relative(1)),
                        size: Some(DynoSize::Standard2X),
                    },
                ],
            },
        )
        .await
        .unwrap();
    assert_eq!(quantity(&platform, &app, "worker").await, 3);
    let worker = platform.formation(&app).await.unwrap();
    let worker = worker.iter().find(|f| f.process_type == "worker").unwrap();
    assert_eq!(worker.size, "standard-2x");
}

#[test]
fn quantities_apply_to_the_current_one() {
    for (quantity, current, expected) in [
        (Quantity::Absolute(3), 1, 3),
        (Quantity::Absolute(0), 7, 0),
        (Quantity::Relative(1), 1, 2),
        (Quantity::Relative(-1), 1, 0),
        (Quantity::Relative(-9), 1, 0),
        (Quantity::Relative(i32::MAX), u32::MAX, u32::MAX),
    ] {
        assert_eq!(
            quantity.apply(current),
            expected,
            "{quantity:?} on {current}"
        );
    }
}

#[tokio::test]
async fn apps_come_and_go_with_their_repositories() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform(dir.path()).await;
    let owner = user("owner@example.com");
    platform
        .execute(
            &owner,
            Command::CreateApp {
                name: Some("repo-app".parse().unwrap()),
            },
        )
        .await
        .unwrap();
    let repo = platform.git_repos().path("repo-app");
    assert!(repo.join("HEAD").exists(), "{}", repo.display());
    assert!(repo.join("hooks/pre-receive").exists());
    let Outcome::AppDeleted(app) = platform
        .execute(
            &owner,
            Command::DeleteApp {
                app: "repo-app".into(),
            },
        )
        .await
        .unwrap()
    else {
        panic!("DeleteApp answers the deleted app");
    };
    assert_eq!(app.name, "repo-app");
    assert!(!repo.exists(), "the repository goes with the app");
}

#[tokio::test]
async fn only_the_owner_may_change_an_app() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform(dir.path()).await;
    let owner = user("owner@example.com");
    deployed_app(&platform, &owner, "mine").await;
    let stranger = user("stranger@example.com");
    for command in [
        scale("mine", "web", Quantity::Relative(1)),
        Command::DeleteApp { app: "mine".into() },
        Command::Restart {
            app: "mine".into(),
            target: RestartTarget::App,
        },
        Command::UpdateApp {
            app: "mine".into(),
            changes: AppChanges {
                maintenance: Some(true),
                ..AppChanges::default()
            },
        },
    ] {
        let error = platform.execute(&stranger, command).await.unwrap_err();
        assert!(matches!(error, CoreError::Forbidden { .. }), "{error:?}");
    }
    assert_eq!(platform.apps(&owner).await.unwrap().len(), 1);
}

#[tokio::test]
async fn restarts_name_what_exists() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform(dir.path()).await;
    let owner = user("owner@example.com");
    deployed_app(&platform, &owner, "demo").await;
    let restart = |target| Command::Restart {
        app: "demo".into(),
        target,
    };
    for (command, expected) in [
        (restart(RestartTarget::App), None),
        (
            restart(RestartTarget::ProcessType("web".parse().unwrap())),
            None,
        ),
        (
            restart(RestartTarget::ProcessType("clock".parse().unwrap())),
            Some("Couldn't find that process type."),
        ),
        (
            restart(RestartTarget::Dyno("web.9".parse().unwrap())),
            Some("Couldn't find that dyno."),
        ),
        (
            Command::Stop {
                app: "demo".into(),
                target: RestartTarget::ProcessType("worker".parse().unwrap()),
            },
            None,
        ),
    ] {
        let described = format!("{command:?}");
        match (platform.execute(&owner, command).await, expected) {
            (Ok(Outcome::Accepted), None) => {}
            (Err(error), Some(message)) => assert_eq!(error.to_string(), message, "{described}"),
            (other, _) => panic!("{described}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn source_urls_are_checked_by_the_fetcher_before_a_build_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let platform = platform(dir.path()).await;
    let owner = user("owner@example.com");
    let app = deployed_app(&platform, &owner, "demo").await;
    let build = |url: &str| Command::CreateBuild {
        app: "demo".into(),
        source: crate::SourceBlob {
            url: url.into(),
            ..Default::default()
        },
        buildpacks: Vec::new(),
    };
    let error = platform
        .execute(&owner, build("http://refused.example/app.tgz"))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "source_blob.url is refused: refused.example resolves to a private address. Point it at a tarball on a public server."
    );
    let error = platform
        .execute(&owner, build("file:///etc/passwd"))
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("is not an http:// or https:// URL"),
        "{error}"
    );
    assert!(platform.builds(&app).await.unwrap().is_empty());
    let Outcome::Build(pending) = platform
        .execute(&owner, build("https://example.com/app.tgz"))
        .await
        .unwrap()
    else {
        panic!("CreateBuild answers the build");
    };
    assert_eq!(pending.source_url, "https://example.com/app.tgz");
    assert_eq!(platform.builds(&app).await.unwrap().len(), 1);
}
