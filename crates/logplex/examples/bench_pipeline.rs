//! Benchmark of the log pipeline (not a test): producers publish into a [`LogHub`] that has one
//! tail and one HTTPS drain, whose receiver runs on loopback in its own thread.
//!
//! 1. Throughput: `PRODUCERS` threads publish `LINES` lines as fast as they can. Reports the
//!    publish rate, the end-to-end rate (until the tail and the drain receiver have seen every
//!    line or its loss), the losses at each stage, and CPU time per 100,000 lines.
//! 2. Paced: one producer publishes at fixed rates (`RATES`, lines/s) for `SECONDS` each.
//!    Reports losses and the p50/p99/max delay from publish to tail arrival and to the drain
//!    receiver.
//!
//! Settings come from the environment: PRODUCERS (2), LINES (1000000), RATES
//! (10000,50000,100000), SECONDS (5), DRAIN_BUFFER (1024, Heroku's).

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::resource::{getrusage, UsageWho};
use slipway_logplex::syslog::split_octet_counted;
use slipway_logplex::{
    DrainConfig, DrainOptions, LogFilter, LogHub, LogLine, SeqTailEvent, DEFAULT_HISTORY,
};
use tokio::sync::{mpsc, oneshot};

const APP: &str = "bench";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn cpu(who: UsageWho) -> Duration {
    match getrusage(who) {
        Ok(usage) => {
            let user = usage.user_time();
            let system = usage.system_time();
            Duration::from_micros(
                (user.tv_sec() as u64 * 1_000_000 + user.tv_usec() as u64)
                    + (system.tv_sec() as u64 * 1_000_000 + system.tv_usec() as u64),
            )
        }
        Err(_) => Duration::ZERO,
    }
}

/// Nanoseconds since the benchmark started, as carried in each message (`t=<nanos>`).
fn stamp(epoch: Instant) -> u64 {
    epoch.elapsed().as_nanos() as u64
}

fn stamp_of(message: &[u8]) -> Option<u64> {
    let at = message.windows(2).rposition(|w| w == b"t=")?;
    std::str::from_utf8(&message[at + 2..])
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// What the receiver thread has counted.
#[derive(Default)]
struct ReceiverCounts {
    messages: AtomicU64,
    l10_lines: AtomicU64,
    bodies: AtomicU64,
}

struct Receiver {
    url: String,
    ca: slipway_logplex::CertificateDer<'static>,
    counts: Arc<ReceiverCounts>,
    delays: mpsc::UnboundedReceiver<u64>,
    record_delays: Arc<AtomicBool>,
    cpu_probe: mpsc::UnboundedSender<oneshot::Sender<Duration>>,
}

/// Starts the HTTPS drain receiver on its own single-threaded runtime, so that its CPU time can
/// be told apart from the pipeline's.
fn start_receiver(epoch: Instant) -> Receiver {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let counts = Arc::new(ReceiverCounts::default());
    let record_delays = Arc::new(AtomicBool::new(false));
    let (delay_tx, delays) = mpsc::unbounded_channel();
    let (cpu_probe, mut cpu_requests) = mpsc::unbounded_channel::<oneshot::Sender<Duration>>();
    let thread_counts = counts.clone();
    let thread_record = record_delays.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("receiver runtime");
        runtime.block_on(async move {
            let pki = support::TestPki::new();
            let mut receiver = support::http_receiver(Some(pki.server_config.clone())).await;
            let _ = ready_tx.send((format!("https://{}/drain", receiver.addr), pki.ca.clone()));
            loop {
                tokio::select! {
                    request = receiver.requests.recv() => {
                        let Some(request) = request else { return };
                        thread_counts.bodies.fetch_add(1, Ordering::Relaxed);
                        let now = stamp(epoch);
                        let record = thread_record.load(Ordering::Relaxed);
                        for message in split_octet_counted(&request.body).unwrap_or_default() {
                            if message.windows(9).any(|w| w == b"Error L10") {
                                thread_counts.l10_lines.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                            thread_counts.messages.fetch_add(1, Ordering::Relaxed);
                            if record {
                                if let Some(sent) = stamp_of(message) {
                                    let _ = delay_tx.send(now.saturating_sub(sent));
                                }
                            }
                        }
                    }
                    probe = cpu_requests.recv() => {
                        let Some(reply) = probe else { return };
                        let _ = reply.send(cpu(UsageWho::RUSAGE_THREAD));
                    }
                }
            }
        });
    });
    let (url, ca) = ready_rx.recv().expect("receiver started");
    Receiver {
        url,
        ca,
        counts,
        delays,
        record_delays,
        cpu_probe,
    }
}

impl Receiver {
    async fn cpu(&self) -> Duration {
        let (reply, answer) = oneshot::channel();
        let _ = self.cpu_probe.send(reply);
        answer.await.unwrap_or_default()
    }
}

#[derive(Default)]
struct TailCounts {
    lines: AtomicU64,
    missed: AtomicU64,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index] as f64 / 1e6
}

fn summary(mut delays: Vec<u64>) -> String {
    delays.sort_unstable();
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples)",
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        percentile(&delays, 1.0),
        delays.len()
    )
}

/// Waits until `done` holds or `limit` passes; true if it held.
async fn wait_until(limit: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    true
}

/// Nanoseconds per `publish` with `threads` threads publishing `per_thread` lines each, into one
/// app (`shared`) or one app per thread.
fn publish_cost(hub: &LogHub, threads: usize, per_thread: u64, shared: bool) -> f64 {
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let hub = hub.clone();
            let app = if shared {
                "cost".to_owned()
            } else {
                format!("cost-{t}")
            };
            std::thread::spawn(move || {
                for _ in 0..per_thread {
                    hub.publish(&app, LogLine::app("web.1", "at=info status=200 bytes=13"));
                }
            })
        })
        .collect();
    for handle in handles {
        let _ = handle.join();
    }
    start.elapsed().as_nanos() as f64 / (threads as u64 * per_thread) as f64
}

async fn publish_costs() {
    const N: u64 = 500_000;
    println!(
        "== publish cost (wall ns per line over all threads, LogLine construction included) =="
    );
    let plain = LogHub::default();
    println!(
        "no readers: 1 thread {:.0} ns; 2 threads, same app {:.0} ns; 2 threads, two apps {:.0} ns",
        publish_cost(&plain, 1, N, true),
        publish_cost(&plain, 2, N, true),
        publish_cost(&plain, 2, N, false)
    );
    let tailed = LogHub::default();
    let (_, _idle_tail) = tailed.recent_and_tail("cost", 0, &LogFilter::default());
    println!(
        "with 1 (idle) tail: 1 thread {:.0} ns",
        publish_cost(&tailed, 1, N, true)
    );
    let drained = LogHub::default();
    // A drain to a closed port: its buffer stays full, so every publish also drops a line.
    let dead = DrainConfig::new("syslog://127.0.0.1:9").expect("drain URL");
    drained.add_drain("cost", dead).expect("add drain");
    println!(
        "with 1 tail and 1 (dead, overflowing) drain: 1 thread {:.0} ns",
        {
            let (_, _idle_tail) = drained.recent_and_tail("cost", 0, &LogFilter::default());
            publish_cost(&drained, 1, N, true)
        }
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    publish_costs().await;
    let producers: usize = env_or("PRODUCERS", 2).max(1);
    let total: u64 = env_or("LINES", 1_000_000);
    let seconds: u64 = env_or("SECONDS", 5);
    let rates: Vec<u64> = std::env::var("RATES")
        .unwrap_or_else(|_| "10000,50000,100000".to_owned())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let epoch = Instant::now();
    let mut receiver = start_receiver(epoch);
    let hub = LogHub::with_drain_options(
        DEFAULT_HISTORY,
        DrainOptions {
            extra_roots: vec![receiver.ca.clone()],
            buffer_size: env_or("DRAIN_BUFFER", slipway_logplex::DRAIN_BUFFER),
            ..DrainOptions::default()
        },
    );
    hub.add_drain(APP, DrainConfig::new(&receiver.url).expect("drain URL"))
        .expect("add drain");

    // The tail: counts lines and losses, and records delays while asked to.
    let tail_counts = Arc::new(TailCounts::default());
    let tail_record = Arc::new(AtomicBool::new(false));
    let (tail_delay_tx, mut tail_delays) = mpsc::unbounded_channel::<u64>();
    let (_, mut tail) = hub.recent_and_tail_seq(APP, 0, &LogFilter::default());
    {
        let counts = tail_counts.clone();
        let record = tail_record.clone();
        tokio::spawn(async move {
            while let Some(event) = tail.next_seq().await {
                match event {
                    SeqTailEvent::Line(_, line) => {
                        if line.process == "logplex" {
                            continue;
                        }
                        if record.load(Ordering::Relaxed) {
                            if let Some(sent) = stamp_of(line.message.as_bytes()) {
                                let _ = tail_delay_tx.send(stamp(epoch).saturating_sub(sent));
                            }
                        }
                        counts.lines.fetch_add(1, Ordering::Relaxed);
                    }
                    SeqTailEvent::Missed(n) => {
                        counts.missed.fetch_add(n, Ordering::Relaxed);
                    }
                }
            }
        });
    }
    let drain_stats = |hub: &LogHub| hub.drains(APP)[0].stats;
    // Warm up the TLS connection.
    hub.publish(APP, LogLine::app("web.1", "warm up t=0"));
    wait_until(Duration::from_secs(10), || {
        receiver.counts.messages.load(Ordering::Relaxed) == 1
    })
    .await;

    println!("== throughput: {producers} producers, {total} lines, 1 tail, 1 HTTPS drain ==");
    let base_tail = tail_counts.lines.load(Ordering::Relaxed);
    let base_received = receiver.counts.messages.load(Ordering::Relaxed);
    let base_stats = drain_stats(&hub);
    let cpu_before = cpu(UsageWho::RUSAGE_SELF);
    let receiver_cpu_before = receiver.cpu().await;
    let start = Instant::now();
    let per_producer = total / producers as u64;
    let total = per_producer * producers as u64;
    let handles: Vec<_> = (0..producers)
        .map(|p| {
            let hub = hub.clone();
            std::thread::spawn(move || {
                let process = format!("web.{}", p + 1);
                for i in 0..per_producer {
                    hub.publish(
                        APP,
                        LogLine::app(
                            process.as_str(),
                            format!(
                                "at=info method=GET path=/items/{i} status=200 bytes=1234 t={}",
                                stamp(epoch)
                            ),
                        ),
                    );
                }
            })
        })
        .collect();
    for handle in handles {
        let _ = handle.join();
    }
    let published_in = start.elapsed();
    let finished = wait_until(Duration::from_secs(60), || {
        let tail_done = tail_counts.lines.load(Ordering::Relaxed) - base_tail
            + tail_counts.missed.load(Ordering::Relaxed)
            >= total;
        let stats = drain_stats(&hub);
        let drain_done =
            stats.delivered - base_stats.delivered + stats.dropped - base_stats.dropped >= total;
        tail_done && drain_done
    })
    .await;
    let end_to_end = start.elapsed();
    let cpu_total = cpu(UsageWho::RUSAGE_SELF) - cpu_before;
    let receiver_cpu = receiver.cpu().await - receiver_cpu_before;
    let tail_lines = tail_counts.lines.load(Ordering::Relaxed) - base_tail;
    let tail_missed = tail_counts.missed.load(Ordering::Relaxed);
    let stats = drain_stats(&hub);
    let received = receiver.counts.messages.load(Ordering::Relaxed) - base_received;
    let per_100k = |d: Duration| d.as_secs_f64() * 1e3 * 100_000.0 / total as f64;
    println!(
        "publish: {:.0} lines/s ({total} lines in {:.3} s)",
        total as f64 / published_in.as_secs_f64(),
        published_in.as_secs_f64()
    );
    println!(
        "end to end{}: {:.0} lines/s ({:.3} s until tail and drain accounted for every line)",
        if finished { "" } else { " (TIMED OUT)" },
        total as f64 / end_to_end.as_secs_f64(),
        end_to_end.as_secs_f64()
    );
    println!("tail: {tail_lines} received, {tail_missed} missed (L11)");
    println!(
        "drain throughput while overloaded: {:.0} lines/s delivered",
        (stats.delivered - base_stats.delivered) as f64 / end_to_end.as_secs_f64()
    );
    println!(
        "drain: {} delivered, {} dropped (L10: buffer overflow or failed batches), \
         receiver counted {received} lines in {} POSTs, {} L10 lines",
        stats.delivered - base_stats.delivered,
        stats.dropped - base_stats.dropped,
        receiver.counts.bodies.load(Ordering::Relaxed),
        receiver.counts.l10_lines.load(Ordering::Relaxed),
    );
    println!(
        "CPU per 100,000 lines: {:.1} ms pipeline (publish + tail + drain client), \
         {:.1} ms HTTPS receiver, {:.1} ms process total",
        per_100k(cpu_total.saturating_sub(receiver_cpu)),
        per_100k(receiver_cpu),
        per_100k(cpu_total)
    );

    for rate in rates {
        let lines = rate * seconds;
        println!("== paced: {rate} lines/s for {seconds} s, 1 producer ==");
        let base_tail = tail_counts.lines.load(Ordering::Relaxed);
        let base_missed = tail_counts.missed.load(Ordering::Relaxed);
        let base_received = receiver.counts.messages.load(Ordering::Relaxed);
        let base_stats = drain_stats(&hub);
        while tail_delays.try_recv().is_ok() {}
        while receiver.delays.try_recv().is_ok() {}
        tail_record.store(true, Ordering::Relaxed);
        receiver.record_delays.store(true, Ordering::Relaxed);
        let cpu_before = cpu(UsageWho::RUSAGE_SELF);
        let receiver_cpu_before = receiver.cpu().await;
        let producer = {
            let hub = hub.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                let mut sent = 0u64;
                while sent < lines {
                    let due = ((start.elapsed().as_secs_f64() * rate as f64) as u64).min(lines);
                    while sent < due {
                        hub.publish(
                            APP,
                            LogLine::app(
                                "web.1",
                                format!("at=info path=/paced/{sent} status=200 t={}", stamp(epoch)),
                            ),
                        );
                        sent += 1;
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
                start.elapsed()
            })
        };
        let took = producer.join().unwrap_or_default();
        let finished = wait_until(Duration::from_secs(30), || {
            let tail_done = tail_counts.lines.load(Ordering::Relaxed) - base_tail
                + tail_counts.missed.load(Ordering::Relaxed)
                - base_missed
                >= lines;
            let stats = drain_stats(&hub);
            tail_done
                && stats.delivered - base_stats.delivered + stats.dropped - base_stats.dropped
                    >= lines
        })
        .await;
        tail_record.store(false, Ordering::Relaxed);
        receiver.record_delays.store(false, Ordering::Relaxed);
        let cpu_total = cpu(UsageWho::RUSAGE_SELF) - cpu_before;
        let receiver_cpu = receiver.cpu().await - receiver_cpu_before;
        let stats = drain_stats(&hub);
        let mut tail_samples = Vec::new();
        while let Ok(d) = tail_delays.try_recv() {
            tail_samples.push(d);
        }
        let mut drain_samples = Vec::new();
        while let Ok(d) = receiver.delays.try_recv() {
            drain_samples.push(d);
        }
        println!(
            "achieved {:.0} lines/s{}; tail: {} received, {} missed; drain: {} delivered, {} dropped, receiver counted {}",
            lines as f64 / took.as_secs_f64(),
            if finished { "" } else { " (TIMED OUT waiting for delivery)" },
            tail_counts.lines.load(Ordering::Relaxed) - base_tail,
            tail_counts.missed.load(Ordering::Relaxed) - base_missed,
            stats.delivered - base_stats.delivered,
            stats.dropped - base_stats.dropped,
            receiver.counts.messages.load(Ordering::Relaxed) - base_received,
        );
        println!("publish -> tail:  {}", summary(tail_samples));
        println!("publish -> drain receiver: {}", summary(drain_samples));
        println!(
            "CPU per 100,000 lines: {:.1} ms pipeline, {:.1} ms receiver",
            (cpu_total.saturating_sub(receiver_cpu)).as_secs_f64() * 1e3 * 100_000.0 / lines as f64,
            receiver_cpu.as_secs_f64() * 1e3 * 100_000.0 / lines as f64,
        );
    }
}
