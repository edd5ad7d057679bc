//! The wire spec carries everything of a dyno's container but its host paths.

use super::*;

fn dyno_spec() -> ContainerSpec {
    ContainerSpec {
        id: "slipway.demo.web.1.abc".into(),
        labels: BTreeMap::from([("app".into(), "demo".into())]),
        app_dir: Some("/var/lib/slipway/unpacked/x-20000/app".into()),
        rootfs: Rootfs::Dir("/var/lib/slipway/stacks/s/1/run".into()),
        binds: Vec::new(),
        args: vec!["/bin/bash".into(), "-c".into(), "exec web".into()],
        env: vec![("PORT".into(), "5000".into())],
        cwd: "/app".into(),
        uid: 20000,
        gid: 20000,
        hostname: "slipway.demo.web.1.abc".into(),
        limits: Limits {
            memory_bytes: Some(1 << 30),
            memory_reservation_bytes: Some(1 << 29),
            pids: Some(256),
            cpu_shares: Some(1024),
            disk_bytes: Some(2 << 30),
        },
        network: Network::Isolated,
        allowed_host_ports: Vec::new(),
    }
}

#[test]
fn a_spec_survives_the_wire_except_its_app_dir() {
    let spec = dyno_spec();
    let wire = Spec::from_container(&spec).unwrap();
    let json = serde_json::to_string(&wire).unwrap();
    assert!(!json.contains("unpacked"), "{json}");
    let back: Spec = serde_json::from_str(&json).unwrap();
    let agent_dir = PathBuf::from("/srv/agent/unpacked/x-20000/app");
    let expected = ContainerSpec {
        app_dir: Some(agent_dir.clone()),
        ..spec
    };
    assert_eq!(back.into_container(Some(agent_dir)), expected);
}

#[test]
fn binds_never_cross_the_wire() {
    let mut spec = dyno_spec();
    spec.binds.push(slipway_runtime::BindMount {
        source: "/etc".into(),
        target: "/host-etc".into(),
        readonly: true,
    });
    assert_eq!(
        Spec::from_container(&spec),
        Err(SpecError::Binds {
            id: spec.id.clone()
        })
    );
}

#[test]
fn slug_digests() {
    let good = "a".repeat(64);
    assert!(is_slug_digest(&good));
    for bad in [
        "",
        "../etc/passwd",
        &"A".repeat(64),
        &"a".repeat(63),
        &"g".repeat(64),
    ] {
        assert!(!is_slug_digest(bad), "{bad:?}");
    }
}

#[test]
fn final_states_have_an_exit_status() {
    let exited = ContainerState::Exited {
        code: Some(3),
        signal: None,
        oom_killed: false,
    };
    assert!(exited.is_final());
    assert_eq!(exited.exit_status().unwrap().code, Some(3));
    assert!(!ContainerState::Starting.is_final());
    assert_eq!(ContainerState::Starting.exit_status(), None);
    let killed = ContainerState::Stopped {
        outcome: StopResult::Killed,
    };
    assert_eq!(killed.exit_status().unwrap().signal, Some(9));
}
