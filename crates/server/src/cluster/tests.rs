//! The cluster token's file and sharing, and the route table's wire round trip.

use std::os::unix::fs::PermissionsExt;

use super::*;

#[test]
fn the_token_is_made_once_readable_by_its_owner_alone() {
    let dir = tempfile::tempdir().unwrap();
    let token = cluster_token(dir.path()).unwrap();
    let path = dir.path().join(CLUSTER_TOKEN_FILE);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(
        cluster_token(dir.path()).unwrap(),
        token,
        "stable across starts"
    );
    assert_eq!(read_cluster_token(&path).unwrap(), token);
}

#[test]
fn a_file_without_a_token_is_refused_without_quoting_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "hunter2-not-a-token\n").unwrap();
    let error = read_cluster_token(&path).unwrap_err().to_string();
    assert!(error.contains("does not hold a cluster token"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
    let missing = read_cluster_token(&dir.path().join("missing")).unwrap_err();
    assert!(
        matches!(missing, ClusterTokenError::Read { .. }),
        "{missing}"
    );
}

#[tokio::test]
async fn control_planes_on_one_store_share_the_first_ones_token() {
    let dir = tempfile::tempdir().unwrap();
    let store = slipway_store::SqliteStore::open(
        &dir.path().join("store.db"),
        slipway_store::StoreOptions::default(),
    )
    .unwrap();
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    std::fs::create_dir_all(&first).unwrap();
    std::fs::create_dir_all(&second).unwrap();
    let token = shared_cluster_token(store.as_ref(), &first).await.unwrap();
    let adopted = shared_cluster_token(store.as_ref(), &second).await.unwrap();
    assert_eq!(adopted, token);
    assert_eq!(
        read_cluster_token(&second.join(CLUSTER_TOKEN_FILE)).unwrap(),
        token,
        "the second control plane's file holds the shared token"
    );
    let mode = std::fs::metadata(second.join(CLUSTER_TOKEN_FILE))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn a_route_table_survives_the_wire() {
    let route = |app: &str, status, backends: &[(&str, &str)]| {
        Arc::new(AppRoute {
            app: app.into(),
            status,
            backends: backends
                .iter()
                .map(|(dyno, addr)| Backend {
                    dyno: (*dyno).into(),
                    addr: addr.parse().unwrap(),
                })
                .collect(),
        })
    };
    let mut table = RouteTable::new();
    let web = route(
        "web",
        RouteStatus::Serving,
        &[("web.1", "10.1.0.2:5000"), ("web.2", "10.2.0.3:5001")],
    );
    table.insert("web.slipway.local", web.clone());
    table.insert("www.example.com", web);
    for (name, status) in [
        ("h14", RouteStatus::NoWebDynos),
        ("h10", RouteStatus::Crashed),
        ("h81", RouteStatus::NoRelease),
        ("h80", RouteStatus::Maintenance),
        ("sleepy", RouteStatus::Idle),
    ] {
        table.insert(format!("{name}.slipway.local"), route(name, status, &[]));
    }
    let snapshot = snapshot_of(&table);
    let wire = serde_json::to_string(&snapshot).unwrap();
    let back = table_of(&serde_json::from_str(&wire).unwrap());
    assert_eq!(back.len(), table.len());
    for (host, route) in table.iter() {
        assert_eq!(back.get(host), Some(route), "{host}");
    }
    assert!(
        Arc::ptr_eq(
            back.get("web.slipway.local").unwrap(),
            back.get("www.example.com").unwrap()
        ),
        "an app's hostnames share one route"
    );
    let hosts: Vec<&str> = snapshot
        .routes
        .iter()
        .map(|r| r.hostname.as_str())
        .collect();
    let mut sorted = hosts.clone();
    sorted.sort();
    assert_eq!(
        hosts, sorted,
        "hostnames in order, so equal tables send equal lines"
    );
}
