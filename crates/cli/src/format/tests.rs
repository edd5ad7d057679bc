//! Snapshot tests of the CLI's output, built from api-types values with fixed times.

use chrono::{DateTime, Duration, TimeZone, Utc};
use insta::assert_snapshot;
use slipway_api_types::{
    App, ConfigVars, Dyno, DynoState, Formation, Release, ReleaseRef, ReleaseStatus, ResourceRef,
    UserRef,
};
use uuid::Uuid;

use super::*;

fn at(hour: u32, min: u32, sec: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, hour, min, sec).unwrap()
}

fn named(name: &str) -> ResourceRef {
    ResourceRef {
        id: Uuid::nil(),
        name: name.to_owned(),
    }
}

fn admin() -> UserRef {
    UserRef {
        id: Uuid::nil(),
        email: "admin@example.com".to_owned(),
    }
}

fn app(name: &str) -> App {
    App {
        acm: false,
        archived_at: None,
        build_stack: named("heroku-24"),
        buildpack_provided_description: None,
        created_at: at(11, 0, 0),
        generation: named("cedar"),
        git_url: format!("http://127.0.0.1:5000/{name}.git"),
        id: Uuid::nil(),
        internal_routing: None,
        maintenance: false,
        name: name.to_owned(),
        organization: None,
        owner: admin(),
        region: named("us"),
        released_at: Some(at(12, 0, 0)),
        repo_size: None,
        slug_size: Some(12_900_000),
        space: None,
        stack: named("heroku-24"),
        team: None,
        updated_at: at(12, 0, 0),
        web_url: Some(format!("http://{name}.localhost:8080/")),
    }
}

fn release(version: i64, description: &str, status: ReleaseStatus, current: bool) -> Release {
    Release {
        addon_plan_names: Vec::new(),
        artifacts: Vec::new(),
        app: named("demo"),
        created_at: at(11, version as u32, 0),
        description: description.to_owned(),
        id: Uuid::from_u128(version as u128),
        updated_at: at(11, version as u32, 0),
        slug: None,
        status,
        user: admin(),
        version,
        current,
        output_stream_url: None,
        eligible_for_rollback: status == ReleaseStatus::Succeeded,
    }
}

fn dyno(name: &str, command: &str, state: DynoState, updated_at: DateTime<Utc>) -> Dyno {
    let process_type = name.split('.').next().unwrap_or(name);
    Dyno {
        app: named("demo"),
        attach_url: None,
        command: command.to_owned(),
        created_at: updated_at,
        id: Uuid::nil(),
        name: name.to_owned(),
        release: ReleaseRef {
            id: Uuid::nil(),
            version: 2,
        },
        size: "Standard-1X".to_owned(),
        state,
        process_type: process_type.to_owned(),
        updated_at,
    }
}

fn formation(process_type: &str, quantity: i64) -> Formation {
    Formation {
        app: named("demo"),
        command: "python3 app.py".to_owned(),
        created_at: at(12, 0, 0),
        dyno_size: named("Standard-1X"),
        id: Uuid::nil(),
        quantity,
        size: "Standard-1X".to_owned(),
        process_type: process_type.to_owned(),
        updated_at: at(12, 0, 0),
    }
}

fn config() -> ConfigVars {
    [
        ("FOO", "bar"),
        ("DATABASE_URL", "postgres://u:p@db/x"),
        ("GREETING", "it's a nice day"),
        ("EMPTY", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[test]
fn app_created() {
    assert_snapshot!(format_app_created(&app("demo")));
}

#[test]
fn apps_list() {
    let mut eu = app("euro-app");
    eu.region = named("eu");
    assert_snapshot!(format_apps(
        Some("admin@example.com"),
        &[app("zeta"), eu, app("demo")]
    ));
    assert_eq!(format_apps(None, &[app("demo")]), "=== Apps\n\ndemo\n");
    assert_eq!(format_apps(Some("a@b.c"), &[]), "You have no apps.\n");
}

#[test]
fn app_info() {
    let dynos = [
        dyno("web.1", "python3 app.py", DynoState::Up, at(12, 0, 0)),
        dyno("web.2", "python3 app.py", DynoState::Up, at(12, 0, 0)),
        dyno("worker.1", "python3 worker.py", DynoState::Up, at(12, 0, 0)),
    ];
    assert_snapshot!(format_app_info(&app("demo"), &dynos));
    let mut changing = app("demo");
    changing.build_stack = named("heroku-26");
    changing.maintenance = true;
    assert_snapshot!("app_info_next_stack", format_app_info(&changing, &[]));
}

#[test]
fn releases_list() {
    let releases = [
        release(4, "Deploy abc1234", ReleaseStatus::Pending, false),
        release(3, "Set FOO config vars", ReleaseStatus::Succeeded, true),
        release(2, "Deploy 0f00ba4", ReleaseStatus::Failed, false),
        release(1, "Initial release", ReleaseStatus::Succeeded, false),
    ];
    assert_snapshot!(format_releases("demo", &releases));
    assert_eq!(format_releases("demo", &[]), "demo has no releases.\n");
}

#[test]
fn release_info() {
    let mut r = release(3, "Set FOO config vars", ReleaseStatus::Succeeded, true);
    r.addon_plan_names = vec!["heroku-postgresql:essential-0".to_owned()];
    assert_snapshot!(format_release_info(&r, Some(&config())));
    assert_snapshot!(
        "release_info_without_config",
        format_release_info(
            &release(1, "Initial release", ReleaseStatus::Expired, false),
            None
        )
    );
}

#[test]
fn config_views() {
    assert_snapshot!(format_config("demo", &config()));
    assert_snapshot!("config_shell", format_config_shell(&config()));
    assert_snapshot!("config_json", format_config_json(&config()));
    assert_eq!(
        format_config("demo", &ConfigVars::new()),
        "demo has no config vars.\n"
    );
    assert_eq!(
        format_config_subset(&config(), &["FOO".to_owned(), "GREETING".to_owned()]),
        "FOO:      bar\nGREETING: it's a nice day\n"
    );
}

#[test]
fn ps_listing() {
    let now = at(12, 0, 5);
    let dynos = [
        dyno("web.10", "python3 app.py", DynoState::Up, at(12, 0, 0)),
        dyno(
            "web.2",
            "python3 app.py",
            DynoState::Starting,
            at(11, 58, 0),
        ),
        dyno("web.1", "python3 app.py", DynoState::Up, at(12, 0, 0)),
        dyno(
            "worker.1",
            "python3 worker.py",
            DynoState::Crashed,
            at(9, 0, 0),
        ),
        dyno("run.4821", "bash", DynoState::Up, now - Duration::days(3)),
    ];
    assert_snapshot!(format_ps("demo", &dynos, now));
    assert_eq!(format_ps("demo", &[], now), "No dynos on ⬢ demo\n");
}

#[test]
fn ps_single_type_matches_heroku() {
    let now = at(12, 0, 5);
    let dynos = [dyno("web.1", "python3 app.py", DynoState::Up, at(12, 0, 0))];
    assert_eq!(
        format_ps("demo", &dynos, now),
        "=== web (Standard-1X): python3 app.py (1)\n\nweb.1: up 2026/11/26 12:00:00 +0000 (~ 5s ago)\n"
    );
}

#[test]
fn formation_views() {
    let formations = [formation("worker", 0), formation("web", 2)];
    assert_eq!(
        format_formation(&formations),
        "web=2:Standard-1X worker=0:Standard-1X\n"
    );
    assert_eq!(
        format_scaled(&formations),
        "worker at 0:Standard-1X, web at 2:Standard-1X"
    );
}

#[test]
fn ages() {
    let now = at(12, 0, 0);
    let cases = [
        (Duration::seconds(0), "(~ 0s ago)"),
        (Duration::seconds(60), "(~ 60s ago)"),
        (Duration::seconds(61), "(~ 1m ago)"),
        (Duration::minutes(60), "(~ 60m ago)"),
        (Duration::minutes(61), "(~ 1h ago)"),
        (Duration::hours(25), "(~ 25h ago)"),
        (Duration::seconds(-30), "(~ 0s ago)"),
    ];
    for (age, suffix) in cases {
        let text = format_ago(now - age, now);
        assert!(text.ends_with(suffix), "{age:?}: {text}");
    }
    assert_eq!(
        format_ago(now - Duration::hours(26), now),
        "2026/11/25 10:00:00 +0000"
    );
}

#[test]
fn sizes() {
    let cases = [
        (None, "0 B"),
        (Some(0), "0 B"),
        (Some(1023), "1023 B"),
        (Some(1024), "1 KB"),
        (Some(1536), "1.5 KB"),
        (Some(12_900_000), "12.3 MB"),
        (Some(5 * 1024 * 1024 * 1024), "5 GB"),
    ];
    for (bytes, expected) in cases {
        assert_eq!(format_size(bytes), expected, "{bytes:?}");
    }
}

#[test]
fn shell_quoting_and_name_lists() {
    let cases = [
        ("bar", "bar"),
        ("", "''"),
        ("postgres://u:p@db/x", "postgres://u:p@db/x"),
        ("hello world", "'hello world'"),
        ("it's", "'it'\\''s'"),
        ("$HOME", "'$HOME'"),
    ];
    for (value, expected) in cases {
        assert_eq!(shell_quote(value), expected, "{value:?}");
    }
    let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(join_names(&names(&["FOO"])), "FOO");
    assert_eq!(join_names(&names(&["FOO", "BAR"])), "FOO and BAR");
    assert_eq!(join_names(&names(&["A", "B", "C"])), "A, B and C");
}
