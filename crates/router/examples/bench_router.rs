//! Runs Slipway's router with a static route table for `bench/router.sh`:
//! `bench.localhost` → one backend. Log lines are counted, not printed.
//!
//! Usage: `bench_router 127.0.0.1:18083 127.0.0.1:18081` (`BENCH_ROUTER_THREADS=N` sets the
//! tokio worker threads; 0 means a current-thread runtime).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use slipway_router::{AppRoute, Backend, RouteStatus, RouteTable, Router, RouterConfig};
use tokio::net::TcpListener;

fn addr(arg: Option<String>, default: &str) -> std::io::Result<SocketAddr> {
    arg.unwrap_or_else(|| default.to_owned())
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
}

fn main() -> std::io::Result<()> {
    // BENCH_ROUTER_THREADS=0 runs on a current-thread runtime; default: one worker per core.
    let threads: usize = std::env::var("BENCH_ROUTER_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let runtime = if threads == 0 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(run())
}

async fn run() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = addr(args.next(), "127.0.0.1:18083")?;
    let backend = addr(args.next(), "127.0.0.1:18081")?;
    let mut table = RouteTable::new();
    table.insert(
        "bench.localhost",
        Arc::new(AppRoute {
            app: "bench".to_owned(),
            status: RouteStatus::Serving,
            backends: vec![Backend {
                dyno: "web.1".to_owned(),
                addr: backend,
            }],
        }),
    );
    let (_routes, receiver) = tokio::sync::watch::channel(Arc::new(table));
    let lines = Arc::new(AtomicU64::new(0));
    let counter = lines.clone();
    let router = Router::new(
        receiver,
        Arc::new(move |_app: &str, line: slipway_logplex::LogLine| {
            std::hint::black_box(line.message.len());
            counter.fetch_add(1, Ordering::Relaxed);
        }),
        RouterConfig::default(),
    );
    let listener = TcpListener::bind(listen).await?;
    eprintln!("bench_router listening on {listen}, forwarding bench.localhost to {backend}");
    router
        .serve(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    eprintln!("bench_router: {} log lines", lines.load(Ordering::Relaxed));
    Ok(())
}
