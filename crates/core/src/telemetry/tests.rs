//! Tests of the platform's own log lines: their wording is Heroku's.

use super::*;

fn check(event: PlatformEvent<'_>, expected: &str) {
    let line = event.to_line();
    let shown = format!(
        "{}[{}]: {}",
        line.source.as_str(),
        line.process,
        line.message
    );
    assert_eq!(shown, expected);
}

#[test]
fn wording_matches_heroku() {
    check(
        PlatformEvent::Starting {
            dyno: "web.1",
            command: "python3 app.py",
        },
        "heroku[web.1]: Starting process with command `python3 app.py`",
    );
    check(
        PlatformEvent::StateChanged {
            dyno: "web.1",
            from: DynoState::Starting,
            to: DynoState::Up,
        },
        "heroku[web.1]: State changed from starting to up",
    );
    check(
        PlatformEvent::Exited {
            dyno: "worker.2",
            status: "137".into(),
        },
        "heroku[worker.2]: Process exited with status 137",
    );
    check(
        PlatformEvent::BootTimeout { dyno: "web.1", seconds: 60 },
        "heroku[web.1]: Error R10 (Boot timeout) -> Web process failed to bind to $PORT within 60 seconds of launch",
    );
    check(
        PlatformEvent::Deploy {
            commit: "1a2b3c4",
            user: "admin@slipway.local",
        },
        "app[api]: Deploy 1a2b3c4 by admin@slipway.local",
    );
    check(
        PlatformEvent::ReleaseCreated {
            version: 3,
            user: "a@b",
        },
        "app[api]: Release v3 created by a@b",
    );
    check(
        PlatformEvent::Changed {
            description: "Set FOO, BAR config vars",
            user: "a@b",
        },
        "app[api]: Set FOO, BAR config vars by a@b",
    );
    check(
        PlatformEvent::Scaled {
            formation: format!(
                "web@2:{}",
                slipway_model::DynoSize::Standard1X.display_name()
            ),
            user: "a@b",
        },
        "app[api]: Scaled to web@2:Standard-1X by a@b",
    );
    check(
        PlatformEvent::ProcessMemory {
            dyno: "web.1",
            mb: 528,
            per_mille: 1033,
        },
        "heroku[web.1]: Process running mem=528MB(103.3%)",
    );
    check(
        PlatformEvent::MemoryQuotaExceeded { dyno: "web.1" },
        "heroku[web.1]: Error R14 (Memory quota exceeded)",
    );
    check(
        PlatformEvent::Cycling { dyno: "web.1" },
        "heroku[web.1]: Cycling",
    );
    check(
        PlatformEvent::DatabaseOverLimit {
            addon: "postgresql-shaped-123",
            size_bytes: 20,
            limit_bytes: 10,
        },
        "app[heroku-postgres]: source=postgresql-shaped-123 sample#db_size=20bytes sample#db_size_limit=10bytes message=\"Database is over its storage limit: INSERT, UPDATE and CREATE privileges are revoked until it is under the limit again\"",
    );
    check(
        PlatformEvent::DatabaseUnderLimit {
            addon: "postgresql-shaped-123",
            size_bytes: 5,
            limit_bytes: 10,
        },
        "app[heroku-postgres]: source=postgresql-shaped-123 sample#db_size=5bytes sample#db_size_limit=10bytes message=\"Database is under its storage limit again: INSERT, UPDATE and CREATE privileges are restored\"",
    );
}
