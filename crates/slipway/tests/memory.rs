//! End to end: memory quotas as on Heroku. A dyno above its quota keeps running and logs
//! `Process running mem=...` and R14; at twice its quota (the cgroup's hard limit) the kernel
//! kills it, R15 is logged and the dyno is restarted.

mod support;

use support::{repo, text, Server, ECHO_APP};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_quota_logs_r14_and_twice_the_quota_is_r15_and_a_restart() {
    require_runc!();
    let server = Server::start_with(&["--memory-check-interval", "1", "--stop-grace", "2"]);
    server.cli_ok(&["apps:create", "hungry"]);
    let app = repo(&[
        (
            "Procfile",
            "web: python3 server.py\n\
             hog: python3 -c \"import time; b = b'x' * (768 << 20); print('holding', flush=True); time.sleep(1000)\"\n\
             bloat: python3 -c \"import time; print('growing', flush=True); b = b'x' * (1200 << 20); time.sleep(1000)\"\n",
        ),
        ("server.py", ECHO_APP),
    ]);
    let push = server.push("hungry", app.path());
    assert!(push.status.success(), "{}", text(&push));

    // 768 MB of a 512 MB eco dyno: 150%, R14, and it keeps running.
    server.cli_ok(&["ps:scale", "hog=1:eco", "-a", "hungry"]);
    let log = server
        .wait_for_log("hungry", |log| {
            // R14 may be logged while the allocation is still under way, before `holding`.
            log.contains("heroku[hog.1]: Error R14 (Memory quota exceeded)")
                && log.contains("app[hog.1]: holding")
        })
        .await;
    assert!(log.contains("app[hog.1]: holding"), "{log}");
    let mem_line = log
        .lines()
        .find(|l| l.contains("heroku[hog.1]: Process running mem="))
        .unwrap_or_else(|| panic!("no mem= line:\n{log}"));
    let mb: u64 = mem_line
        .split("mem=")
        .nth(1)
        .and_then(|rest| rest.split("MB").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{mem_line}"));
    // Logged as soon as it passes the quota, maybe before the allocation is complete.
    assert!((512..1024).contains(&mb), "{mem_line}");
    assert!(mem_line.contains("MB(1"), "{mem_line}");
    assert!(!log.contains("R15"), "{log}");
    assert!(
        !log.contains("heroku[hog.1]: State changed from up to crashed"),
        "{log}"
    );
    assert_eq!(
        server
            .containers()
            .iter()
            .filter(|c| c.contains(".hog."))
            .count(),
        1
    );
    server.cli_ok(&["ps:scale", "hog=0", "-a", "hungry"]);

    // 1200 MB of a 512 MB dyno: killed at 1024 MB, R15, restarted.
    server.cli_ok(&["ps:scale", "bloat=1:standard-1x", "-a", "hungry"]);
    let log = server
        .wait_for_log("hungry", |log| {
            log.contains("heroku[bloat.1]: Error R15 (Memory quota vastly exceeded)")
                && log
                    .matches("heroku[bloat.1]: Starting process with command")
                    .count()
                    >= 2
        })
        .await;
    assert!(
        log.contains("heroku[bloat.1]: Process running mem=1024MB(200.0%)"),
        "{log}"
    );
    assert!(
        log.contains("heroku[bloat.1]: Process exited with status 137"),
        "{log}"
    );
}
