//! Tests of the dyno container spec: limits, environment, mounts and commands per dyno kind.

use super::*;

#[test]
fn quota_is_the_soft_limit_and_twice_it_the_hard_one() {
    let config = PlatformConfig::new(PathBuf::from("/tmp/x"));
    let vars = ConfigVars::from([("A".to_owned(), "1".to_owned())]);
    let spec = container_spec(
        &config,
        DynoSpec {
            container_id: "slipway.demo.web.1.abcd".into(),
            app_id: Uuid::nil(),
            app_name: "demo",
            dyno: "web.1",
            release_version: Some(3),
            command: "python3 app.py",
            size: DynoSize::Standard2X,
            port: 5123,
            config_vars: &vars,
            stack: "heroku-24",
            stack_id: None,
            app_dir: None,
            uid: 100_042,
            addon_ports: vec![54320, 54401],
        },
    );
    let gib = 1024 * 1024 * 1024;
    assert_eq!((spec.uid, spec.gid), (100_042, 100_042));
    assert_eq!(spec.limits.disk_bytes, Some(4 * gib));
    assert_eq!(spec.limits.memory_reservation_bytes, Some(gib));
    assert_eq!(spec.limits.memory_bytes, Some(2 * gib));
    assert_eq!(spec.limits.pids, Some(512));
    assert_eq!(spec.labels["release"], "3");
    assert!(spec.env.contains(&("PORT".into(), "5123".into())));
    assert!(spec.env.contains(&("A".into(), "1".into())));
    assert_eq!(spec.args.last().map(String::as_str), Some("python3 app.py"));
    assert_eq!(spec.allowed_host_ports, vec![54320, 54401]);
}

/// The init script reports the command's own status, however quickly it ends: run for
/// real with the host's bash (no container needed), many times, with quick exits.
#[test]
fn the_init_script_returns_the_commands_status_even_when_it_ends_at_once() {
    for attempt in 0..40 {
        for (command, expected) in [("exit 3", 3), ("true", 0), ("kill -TERM $$", 143)] {
            let status = std::process::Command::new("/bin/bash")
                .args(["-c", DYNO_INIT, "slipway-dyno", command])
                .stdin(std::process::Stdio::null())
                .status()
                .expect("run bash");
            assert_eq!(
                status.code(),
                Some(expected),
                "attempt {attempt}: `{command}`"
            );
        }
    }
}

#[test]
fn a_one_off_is_labelled_and_an_attached_one_keeps_its_stdin() {
    let config = PlatformConfig::new(PathBuf::from("/tmp/x"));
    let vars = ConfigVars::new();
    let spec = || {
        container_spec(
            &config,
            DynoSpec {
                container_id: "slipway.demo.run.1234.abcd".into(),
                app_id: Uuid::nil(),
                app_name: "demo",
                dyno: "run.1234",
                release_version: Some(1),
                command: "bash",
                size: DynoSize::Basic,
                port: 5000,
                config_vars: &vars,
                stack: "heroku-24",
                stack_id: None,
                app_dir: None,
                uid: 100_042,
                addon_ports: Vec::new(),
            },
        )
    };
    let mut detached = spec();
    make_one_off(&mut detached, false);
    assert_eq!(detached.labels[ONE_OFF_LABEL], "true");
    assert!(detached.args[2].contains("</dev/null &"));
    let mut attached = spec();
    make_one_off(&mut attached, true);
    // In the foreground (not `&`, which would ignore SIGINT), on the container's stdin.
    assert!(attached.args[2].contains("/bin/bash -c \"$1\"\nexit"));
    assert!(!attached.args[2].contains("\"$1\" &") && !attached.args[2].contains("<&0 &"));
    assert!(!attached.args[2].contains("/dev/null"));
    assert_eq!(attached.args.last().map(String::as_str), Some("bash"));
}

#[test]
fn disk_quota_scales_with_the_size_from_the_configured_base() {
    let mut config = PlatformConfig::new(PathBuf::from("/tmp/x"));
    let mib = 1024 * 1024;
    for (size, want) in [
        ("eco", 2048),
        ("basic", 2048),
        ("standard-1x", 2048),
        ("Standard-2X", 4096),
        ("performance-m", 8192),
        ("performance-l", 16384),
    ] {
        let parsed: DynoSize = size.parse().expect("a dyno size");
        assert_eq!(config.dyno_disk_bytes(parsed), want * mib, "{size}");
    }
    config.dyno_disk_mb = 64;
    assert_eq!(config.dyno_disk_bytes(DynoSize::Eco), 64 * mib);
    assert_eq!(config.dyno_disk_bytes(DynoSize::PerformanceL), 512 * mib);
}
