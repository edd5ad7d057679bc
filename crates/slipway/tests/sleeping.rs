//! End to end: an app whose web dynos are eco sleeps after `--idle-after` seconds without web
//! traffic (its dyno stops, `Idling` is logged, `ps` shows it idle), and the next request
//! through the router wakes it and is answered without an error (`Unidling`). Other sizes
//! never sleep.

mod support;

use std::time::Duration;

use support::{repo, text, Server, ECHO_APP};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eco_app_sleeps_without_traffic_and_the_next_request_wakes_it() {
    require_runc!();
    let server = Server::start_with(&["--idle-after", "2", "--stop-grace", "3"]);
    let app = repo(&[
        ("Procfile", "web: python3 server.py\n"),
        ("server.py", ECHO_APP),
    ]);
    for name in ["sleepy", "awake"] {
        server.cli_ok(&["apps:create", name]);
        let push = server.push(name, app.path());
        assert!(push.status.success(), "{}", text(&push));
    }
    // `ps:type` changes only the size.
    let typed = server.cli_ok(&["ps:type", "web=eco", "-a", "sleepy"]);
    let web_row = typed
        .lines()
        .find(|l| l.starts_with("web "))
        .unwrap_or_else(|| panic!("{typed}"));
    assert!(web_row.to_lowercase().contains(" eco "), "{typed}");
    assert!(web_row.ends_with(" 1"), "{typed}");
    server.cli_ok(&["ps:type", "web=standard-1x", "-a", "awake"]);
    let shown = server.cli_ok(&["ps:type", "-a", "awake"]);
    assert!(shown.to_lowercase().contains("standard-1x"), "{shown}");
    server.wait_for_200("awake", "/").await;

    // No traffic for 2 s: the eco app's dyno stops and shows as idle.
    let log = server
        .wait_for_log("sleepy", |log| {
            log.contains("heroku[web.1]: Idling")
                && log.contains("heroku[web.1]: State changed from up to idle")
        })
        .await;
    assert!(
        log.contains("heroku[web.1]: Stopping all processes with SIGTERM"),
        "{log}"
    );
    server.wait_for_containers("slipway.sleepy.", 0).await;
    let ps = server.cli_ok(&["ps", "-a", "sleepy"]);
    assert!(ps.contains("web.1: idle"), "{ps}");

    // One request wakes it and is answered by the woken dyno, not with an error.
    let response = server.get("sleepy", "/").await;
    assert_eq!(response.status(), 200, "the request that wakes the app");
    assert_eq!(response.text().await.unwrap(), "hello from web.1\n");
    let log = server.logs("sleepy");
    let unidling = log
        .find("heroku[web.1]: Unidling")
        .unwrap_or_else(|| panic!("no Unidling:\n{log}"));
    assert!(
        log[unidling..].contains("heroku[web.1]: State changed from idle to starting")
            && log[unidling..].contains("heroku[web.1]: State changed from starting to up"),
        "{log}"
    );
    assert!(!log.contains("code=H"), "no router error: {log}");
    let ps = server.cli_ok(&["ps", "-a", "sleepy"]);
    assert!(ps.contains("web.1: up"), "{ps}");

    // The standard-1x app, just as idle all along, never slept.
    let log = server.logs("awake");
    assert!(!log.contains("Idling"), "{log}");
    assert!(server.cli_ok(&["ps", "-a", "awake"]).contains("web.1: up"));
    assert_eq!(
        server
            .containers()
            .iter()
            .filter(|c| c.contains("slipway.awake.web."))
            .count(),
        1
    );

    // Awake again, it sleeps again once the traffic stops.
    tokio::time::sleep(Duration::from_millis(500)).await;
    server
        .wait_for_log("sleepy", |log| {
            log.matches("heroku[web.1]: Idling").count() == 2
        })
        .await;
    let response = server.get("sleepy", "/").await;
    assert_eq!(response.status(), 200);
}
