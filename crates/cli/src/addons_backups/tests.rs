//! `pg:backups` reads like Heroku's: three sections, the backups as an aligned table.

use serde_json::json;

use super::render;

#[test]
fn backups_read_like_herokus() {
    let backups = [
        json!({
            "name": "b001", "status": "completed", "size": 2048,
            "created_at": "2026-11-29T05:00:00Z", "finished_at": "2026-11-29T05:00:02Z",
            "addon": {"name": "postgresql-shaped-123"}
        }),
        json!({
            "name": "a002", "status": "running", "size": 0,
            "created_at": "2026-11-29T06:00:00Z", "finished_at": null,
            "addon": {"name": "postgresql-shaped-123"}
        }),
    ];
    assert_eq!(
        render("demo", &backups),
        "=== Backups\n\n\
         ID    Created at                 Status                               Size  Database\n\
         ────  ─────────────────────────  ───────────────────────────────────  ────  ─────────────────────\n\
         b001  2026-11-29 05:00:00 +0000  Completed 2026-11-29 05:00:02 +0000  2 KB  postgresql-shaped-123\n\
         a002  2026-11-29 06:00:00 +0000  Running                              0 B   postgresql-shaped-123\n\
         \n=== Restores\n\nSlipway keeps no history of restores: each pg:backups:restore reports its own end.\n\
         \n=== Copies\n\nNo copies found. Slipway has no pg:copy.\n"
    );
}

#[test]
fn no_backups_says_how_to_capture_one() {
    let text = render("demo", &[]);
    assert!(
        text.starts_with(
            "=== Backups\n\nNo backups. Capture one with: slipway pg:backups:capture -a demo\n"
        ),
        "{text}"
    );
    // The heroku CLI's own smoke test looks for these three headers.
    for header in ["=== Backups", "=== Restores", "=== Copies"] {
        assert!(text.contains(header), "{header} missing: {text}");
    }
}
