//! Runs Slipway's router with a static route table for `bench/router.sh`:
//! `bench.localhost` → one backend. Log lines are counted, not printed.
//!
//! Usage: `bench_router 127.0.0.1:18083 127.0.0.1:18081` (`BENCH_ROUTER_THREADS=N` sets the
//! router threads, as `slipway server --router-threads` does; default: one per core). With a
//! third argument, HTTPS is served there too (a certificate from a throwaway CA).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use slipway_router::{
    AppRoute, Backend, CertIssuer, CertTable, Protocol, RouteStatus, RouteTable, Router,
    RouterConfig, TlsSettings,
};

fn addr(arg: Option<String>, default: &str) -> std::io::Result<SocketAddr> {
    arg.unwrap_or_else(|| default.to_owned())
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
}

fn main() -> std::io::Result<()> {
    let threads: usize = std::env::var("BENCH_ROUTER_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let mut args = std::env::args().skip(1);
    let listen = addr(args.next(), "127.0.0.1:18083")?;
    let backend = addr(args.next(), "127.0.0.1:18081")?;
    let tls_listen = args.next().map(|a| addr(Some(a), "")).transpose()?;
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
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let http = router
        .clone()
        .serve_per_core(listen, threads, Protocol::Http, shutdown.clone())?;
    eprintln!("bench_router listening on {listen} ({threads} threads), forwarding bench.localhost to {backend}");
    let https = match tls_listen {
        Some(tls_listen) => {
            let (_certs, certs) = tokio::sync::watch::channel(Arc::new(CertTable::default()));
            let issuer = CertIssuer::generate("localhost").map_err(std::io::Error::other)?;
            let settings = TlsSettings {
                certs,
                issuer: Arc::new(issuer),
                port_for_header: tls_listen.port(),
            };
            eprintln!("bench_router serving HTTPS on {tls_listen}");
            Some(router.serve_per_core(tls_listen, threads, Protocol::Https(settings), shutdown)?)
        }
        None => None,
    };
    // Runs until SIGINT or SIGTERM.
    let signals = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    signals.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        std::io::Result::Ok(())
    })?;
    let _ = stop.send(true);
    http.join()?;
    if let Some(https) = https {
        https.join()?;
    }
    eprintln!("bench_router: {} log lines", lines.load(Ordering::Relaxed));
    Ok(())
}
