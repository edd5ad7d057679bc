//! The transfer shape `heroku pg:backups` reads, from backup records.

use chrono::{TimeZone, Utc};
use slipway_core::Backup;

use super::transfer;

fn backup(status: &str, scheduled: bool) -> Backup {
    Backup {
        id: uuid::Uuid::nil(),
        number: 3,
        addon_id: uuid::Uuid::nil(),
        addon_name: "postgresql-shaped-12345".into(),
        app_name: "demo".into(),
        status: status.into(),
        size: 2048,
        error: None,
        created_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        finished_at: Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 5).unwrap()),
        scheduled,
    }
}

fn check(status: &str, scheduled: bool, expected: serde_json::Value) {
    let shown = serde_json::to_value(transfer(&backup(status, scheduled))).unwrap();
    for (key, value) in expected.as_object().unwrap() {
        assert_eq!(&shown[key], value, "{status} {scheduled}: {key} in {shown}");
    }
}

#[test]
fn backups_read_as_heroku_data_transfers() {
    // The CLI names a transfer by `from_type`/`to_type`/`schedule` and `num` (b003, a003),
    // and its status by `finished_at` and `succeeded`.
    check(
        "completed",
        false,
        serde_json::json!({"num": 3, "from_type": "pg_dump", "to_type": "gof3r",
            "schedule": false, "succeeded": true, "processed_bytes": 2048,
            "finished_at": "2026-01-01T00:00:05Z", "from_name": "postgresql-shaped-12345"}),
    );
    check(
        "completed",
        true,
        serde_json::json!({"schedule": true, "succeeded": true}),
    );
    check(
        "failed",
        false,
        serde_json::json!({"succeeded": false, "finished_at": "2026-01-01T00:00:05Z"}),
    );
    check(
        "running",
        false,
        serde_json::json!({"succeeded": false, "finished_at": null}),
    );
}
