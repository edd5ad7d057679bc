//! Tests of the server's defaults and of their mapping onto the core's configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::*;

fn platform_config(config: &ServerConfig) -> slipway_core::PlatformConfig {
    let api: SocketAddr = "127.0.0.1:5000".parse().expect("address");
    let router: SocketAddr = "127.0.0.1:8080".parse().expect("address");
    config.platform_config(PathBuf::from("/data"), api, router)
}

#[test]
fn defaults_parse() {
    let config = ServerConfig::new("/data");
    assert_eq!(config.dyno_subnet.to_string(), defaults::DYNO_SUBNET);
    assert_eq!(config.dyno_uid_range, 100_000..=165_535);
    assert_eq!(
        config.crash_backoff.len(),
        defaults::CRASH_BACKOFF_SECS.len()
    );
}

#[test]
fn default_build_budget_is_the_cores() {
    // Two places must not disagree on what a build may use: the server's defaults are the
    // core's.
    let platform = platform_config(&ServerConfig::new("/data"));
    assert_eq!(platform.build, slipway_core::BuildBudget::default());
}

#[test]
fn cycling_jitter_is_herokus_216_minutes_a_day() {
    let platform = platform_config(&ServerConfig::new("/data"));
    assert_eq!(platform.dynos.cycle_after, Duration::from_secs(86_400));
    assert_eq!(platform.dynos.cycle_jitter, Duration::from_secs(216 * 60));
}

#[test]
fn addresses_become_urls() {
    let platform = platform_config(&ServerConfig::new("/data"));
    assert_eq!(platform.api_url, "http://127.0.0.1:5000");
    assert_eq!(platform.router_port, 8080);
    assert_eq!(platform.data_dir, PathBuf::from("/data"));
}

#[test]
fn budgets_have_floors() {
    fn check(change: impl Fn(&mut ServerConfig), expected: impl Fn(&slipway_core::PlatformConfig)) {
        let mut config = ServerConfig::new("/data");
        change(&mut config);
        expected(&platform_config(&config));
    }
    const MIB: u64 = 1024 * 1024;
    check(
        |c| c.build_timeout = Duration::ZERO,
        |p| assert_eq!(p.build.timeout, Duration::from_secs(1)),
    );
    check(
        |c| c.build_memory_mb = 1,
        |p| assert_eq!(p.build.memory_bytes, 64 * MIB),
    );
    check(|c| c.build_pids = 0, |p| assert_eq!(p.build.pids, 16));
    check(
        |c| c.build_cpu_shares = 0,
        |p| assert_eq!(p.build.cpu_shares, 2),
    );
    check(
        |c| c.max_slug_size_mb = 0,
        |p| assert_eq!(p.build.max_slug_bytes, MIB),
    );
    check(
        |c| c.max_source_size_mb = 0,
        |p| assert_eq!(p.build.max_source_bytes, MIB),
    );
    check(
        |c| c.max_push_size_mb = 0,
        |p| assert_eq!(p.build.max_push_bytes, MIB),
    );
    check(
        |c| c.memory_check_interval = Duration::ZERO,
        |p| assert_eq!(p.dynos.memory_check_interval, Duration::from_secs(1)),
    );
    check(
        |c| c.max_source_blob_mb = u64::MAX,
        |p| assert_eq!(p.max_source_blob_bytes, u64::MAX),
    );
}

#[test]
fn runtime_names_round_trip() {
    for kind in [RuntimeKind::Runc, RuntimeKind::Process] {
        assert_eq!(kind.name().parse::<RuntimeKind>().ok(), Some(kind));
    }
    assert!("docker".parse::<RuntimeKind>().is_err());
}

#[test]
fn one_off_defaults_are_the_cores() {
    // `--max-one-offs-per-app` and `--one-off-idle-timeout` default to what the core uses
    // when nobody configures it.
    let platform = platform_config(&ServerConfig::new("/data"));
    let core = slipway_core::DynoManagerConfig::default();
    assert_eq!(
        platform.dynos.max_one_offs_per_app,
        core.max_one_offs_per_app
    );
    assert_eq!(
        platform.dynos.one_off_idle_timeout,
        core.one_off_idle_timeout
    );
}
