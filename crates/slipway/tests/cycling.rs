//! End to end: daily cycling (here after 3 s): each dyno is restarted (`Cycling`), web dynos
//! with preboot, so requests sent all along through the router never fail.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cycled_web_dynos_are_replaced_without_dropping_requests() {
    require_runc!();
    let server = Server::start_with(&["--cycle-after", "3", "--stop-grace", "3"]);
    let _app = server.deploy_echo_app("cycler").await;
    let first = server.wait_for_containers("slipway.cycler.web.", 1).await;

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let url = format!("http://127.0.0.1:{}/", server.router_port);
    let client_task = {
        let (stop, failures) = (stop.clone(), failures.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut sent = 0usize;
            while !stop.load(Ordering::Relaxed) {
                sent += 1;
                match client
                    .get(&url)
                    .header("host", "cycler.localhost")
                    .send()
                    .await
                {
                    Ok(response) if response.status() == 200 => {
                        let _ = response.text().await;
                    }
                    Ok(response) => {
                        let status = response.status();
                        let body = response.text().await.unwrap_or_default();
                        failures.lock().unwrap().push(format!("{status}: {body}"));
                    }
                    Err(error) => failures.lock().unwrap().push(error.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            sent
        })
    };

    // Cycled: `Cycling` logged, and a new container serves.
    server
        .wait_for_log("cycler", |log| log.contains("heroku[web.1]: Cycling"))
        .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now: Vec<String> = server
            .containers()
            .into_iter()
            .filter(|c| c.contains("slipway.cycler.web."))
            .collect();
        if now.len() == 1 && now != first {
            break;
        }
        assert!(Instant::now() < deadline, "web.1 was not replaced: {now:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let sent = client_task.await.unwrap();
    let failures = failures.lock().unwrap().clone();
    assert!(sent > 50, "only {sent} requests were sent");
    assert!(
        failures.is_empty(),
        "{} of {sent} requests failed: {failures:?}\n{}",
        failures.len(),
        server.logs("cycler")
    );
    let log = server.logs("cycler");
    let cycling = log.find("heroku[web.1]: Cycling").unwrap();
    assert!(
        log[cycling..].contains("heroku[web.1]: Stopping all processes with SIGTERM"),
        "the old dyno is stopped after its replacement is up:\n{log}"
    );
}
