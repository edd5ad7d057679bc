//! Runs Slipway's router with a static route table for `bench/router.sh`:
//! `bench.localhost` → one backend. Log lines are counted, not printed.
//!
//! Usage: `bench_router 127.0.0.1:18083 127.0.0.1:18081`

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

#[tokio::main]
async fn main() -> std::io::Result<()> {
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
