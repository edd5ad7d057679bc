//! The platform as a cluster on one machine: three etcd members, two control planes
//! (`slipway server --store etcd://a,b,c`) and a standalone router (`slipway router`), all
//! on loopback with distinct ports (`support/cluster.rs`). An app pushed with the real git
//! client is served through the standalone router under a steady client loop while one etcd
//! member is killed and then the leading control plane: requests keep succeeding, the
//! survivor leads the dyno manager within 10 s, the release ledger has no gap, `config:set`
//! through the survivor reaches the dyno, and the router's log lines reach `heroku logs` on
//! whichever control plane it forwards to. Also: the cluster routes refuse anything but the
//! cluster token.

#[path = "support/cluster.rs"]
mod cluster_support;
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_support::{EtcdCluster, StandaloneRouter};
use support::Server;

/// How one request of the client loop went.
#[derive(Debug, Clone)]
struct Outcome {
    at: Duration,
    result: Result<(), String>,
}

/// The client loop: GETs `/load` for `app` through the router every 20 ms (each with its own
/// 30 s budget: a request held while a replacement dyno boots is still a success) until
/// `stop`, for at most 10 minutes.
fn start_load(
    router_port: u16,
    app: &'static str,
    stop: Arc<AtomicBool>,
    start: Instant,
) -> std::thread::JoinHandle<Vec<Outcome>> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the client loop");
        runtime.block_on(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client");
            let mut outcomes = Vec::new();
            while !stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(600) {
                let sent = start.elapsed();
                let result = match client
                    .get(format!("http://127.0.0.1:{router_port}/load"))
                    .header("host", format!("{app}.localhost"))
                    .send()
                    .await
                {
                    Ok(response) => {
                        let status = response.status();
                        let body = response.text().await.unwrap_or_default();
                        if status == 200 && body.starts_with("hello from web.") {
                            Ok(())
                        } else {
                            Err(format!(
                                "{status}: {}",
                                body.chars().take(200).collect::<String>()
                            ))
                        }
                    }
                    Err(error) => Err(error.to_string()),
                };
                outcomes.push(Outcome { at: sent, result });
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            outcomes
        })
    })
}

fn leads(server: &Server) -> bool {
    let log = server.log();
    log.matches("this server leads").count() > log.matches("this server no longer leads").count()
}

async fn wait_until_leading(server: &Server, limit: Duration) -> Duration {
    let start = Instant::now();
    while !leads(server) {
        assert!(
            start.elapsed() < limit,
            "the control plane did not lead within {limit:?}:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

async fn wait_for_log(server: &Server, app: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = server.logs(app);
        if log.contains(needle) {
            return log;
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} never reached the app's log on {}:\n{log}",
            server.api_url
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_serves_through_the_standalone_router_while_etcd_and_the_leader_fail() {
    require_runc!();
    // Declared first, dropped last: the control planes stop before their store.
    let mut etcd = EtcdCluster::start(3);
    let store_url = etcd.store_url(&slipway_store::testing::unique_namespace("cluster"));
    let store_args = ["--store", store_url.as_str()];
    let mut first = Server::start_with(&store_args);
    wait_until_leading(&first, Duration::from_secs(10)).await;
    // Both control planes see the slugs either builds (shared storage, as an NFS mount would
    // be): the survivor must run the app's slug after the builder is gone.
    let second =
        Server::start_joining(&store_args, &first.key, Some(&first.data_dir.join("slugs")));
    let token_file = first.data_dir.join("cluster-token");
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert_eq!(
        std::fs::read_to_string(second.data_dir.join("cluster-token")).unwrap(),
        token,
        "every control plane of the platform accepts the same cluster token"
    );

    // The cluster routes take the cluster token and nothing else, not even the admin's key.
    let http = reqwest::Client::new();
    for credential in [
        None,
        Some(first.key.as_str()),
        Some("0".repeat(64).as_str()),
    ] {
        let mut request = http.get(format!("{}/slipway/cluster/routes", second.api_url));
        if let Some(credential) = credential {
            request = request.bearer_auth(credential);
        }
        let response = request.send().await.unwrap();
        let message = support::expect_api_error(response, 401, "unauthorized").await;
        assert!(message.contains("cluster token"), "{message}");
    }

    let router = StandaloneRouter::start(&[&first.api_url, &second.api_url], &token_file);
    let app = "clustered";
    let _repo = first.deploy_echo_app(app).await;
    // The standalone router gets the table from the control plane and serves the app.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = router.request(&http, app, "/").send().await;
        if let Ok(response) = response {
            if response.status() == 200 {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the standalone router never served the app:\n{}",
            router.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let load_start = Instant::now();
    let load = start_load(router.port, app, stop.clone(), load_start);
    // Its request lines reach the app's log on the control plane it forwards to.
    wait_for_log(
        &first,
        app,
        "heroku[router]: at=info method=GET path=\"/load\"",
    )
    .await;

    // One etcd member dies: the platform goes on with the other two.
    tokio::time::sleep(Duration::from_secs(2)).await;
    etcd.members[0].kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    second.cli_ok(&["config:set", "STAGE=etcd-member-down", "-a", app]);

    // The leading control plane dies (SIGKILL; its dynos keep running, as on a host crash).
    let (leader, survivor) = if leads(&first) {
        (&mut first, &second)
    } else {
        panic!(
            "the first control plane lost the lead to the second when an etcd member died:\n{}",
            second.log()
        );
    };
    leader.kill9();
    let killed = Instant::now();
    let takeover = wait_until_leading(survivor, Duration::from_secs(10)).await;
    eprintln!("failover: the surviving control plane led {takeover:?} after the leader was killed");

    // The survivor takes changes, and they reach a dyno it runs.
    survivor.cli_ok(&["config:set", "STAGE=after-failover", "-a", app]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = match router.request(&http, app, "/env").send().await {
            Ok(response) => (
                response.status().as_u16(),
                response.text().await.unwrap_or_default(),
            ),
            Err(error) => (0, error.to_string()),
        };
        let env: Option<serde_json::Value> = serde_json::from_str(&body).ok();
        if status == 200
            && env
                .as_ref()
                .is_some_and(|env| env["env"]["STAGE"] == "after-failover")
        {
            break;
        }
        if Instant::now() > deadline {
            panic!(
                "the new config never reached a dyno through the standalone router; last {status}: {}\nps: {}\nrouter:\n{}\nsurvivor:\n{}",
                body.chars().take(300).collect::<String>(),
                survivor.cli_ok(&["ps", "-a", app]),
                router.log(),
                survivor.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Router lines now reach the survivor's log: the router reconnected its event stream.
    wait_for_log(
        survivor,
        app,
        "heroku[router]: at=info method=GET path=\"/load\"",
    )
    .await;
    // A few more seconds of load on the new state.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let outcomes = load.join().expect("the client loop");

    let failures: Vec<&Outcome> = outcomes.iter().filter(|o| o.result.is_err()).collect();
    let after_kill = outcomes
        .iter()
        .filter(|o| o.result.is_ok() && o.at > killed.duration_since(load_start))
        .count();
    eprintln!(
        "client loop: {} requests, {} failed: {failures:?}",
        outcomes.len(),
        failures.len()
    );
    assert!(
        outcomes.len() > 100,
        "the client loop barely ran: {}",
        outcomes.len()
    );
    assert!(
        after_kill > 0,
        "no request succeeded after the leader was killed"
    );
    // Requests keep succeeding: the router serves the table it has while control planes
    // come and go, and the killed leader's dyno serves until the survivor takes over. The
    // exception, and the bound: the survivor cannot adopt a dyno that runs on another host,
    // so its dyno manager records it crashed and restarts it at once (the first crash
    // restarts without delay); a request routed in between those two writes gets H10 (503).
    // The window is one store round trip, a few requests of a loop sending every 20 ms at
    // most; everything before the leader was killed must have succeeded.
    let since_kill = killed.duration_since(load_start);
    for failure in &failures {
        let error = failure.result.as_ref().err().map_or("", String::as_str);
        assert!(
            failure.at >= since_kill && error.starts_with("503"),
            "a request failed outside the takeover window: {failure:?}"
        );
    }
    assert!(failures.len() <= 3, "failed requests: {failures:?}");

    // The release ledger has no gap: v1 the deploy, then the two config changes.
    let releases = survivor.api_json(&format!("/apps/{app}/releases")).await;
    let versions: Vec<i64> = releases
        .as_array()
        .expect("a list of releases")
        .iter()
        .map(|r| r["version"].as_i64().expect("a version"))
        .collect();
    assert_eq!(versions, [1, 2, 3], "{releases}");
    let ps = survivor.cli_ok(&["ps", "-a", app]);
    assert!(ps.contains("web.1: up"), "{ps}");
    let _ = &etcd;
}
