//! Tests of which add-on servers an app's dynos may reach: built-in add-ons attached to the
//! app only, from the platform's records, plus what a deploy in flight holds.

use std::path::PathBuf;
use std::sync::Arc;

use slipway_store::SqliteStore;

use super::*;

fn servers(postgres_admin_url: Option<&str>) -> slipway_addons::AddonsConfig {
    slipway_addons::AddonsConfig {
        dir: PathBuf::from("/nonexistent/addons"),
        listen: "10.1.0.1".parse().unwrap(),
        postgres_port: 54320,
        redis_ports: 54400..=54599,
        postgres_admin_url: postgres_admin_url.map(str::to_owned),
        redis_admin_url: None,
        postgres_max_bytes: None,
        postgres_bin: PathBuf::from("/nonexistent"),
        redis_server: PathBuf::from("/nonexistent"),
    }
}

#[test]
fn only_this_platforms_servers_have_a_port() {
    let embedded = servers(None);
    for (url, expected) in [
        ("postgres://u:p@10.1.0.1:54320/d", Some(54320)),
        ("redis://u:p@10.1.0.1:54401", Some(54401)),
        // Another address (an operator's server), a port outside the ranges, no port, junk.
        ("postgres://u:p@10.2.0.1:54320/d", None),
        ("postgres://u:p@10.1.0.1:5432/d", None),
        ("postgres://u:p@10.1.0.1/d", None),
        ("postgres://u:p@db.example.com:54320/d", None),
        ("not a url", None),
    ] {
        assert_eq!(server_port(url, &embedded), expected, "{url}");
    }
    // With an operator's PostgreSQL, the embedded port is no add-on port.
    let external = servers(Some("postgres://admin:x@10.9.9.9:5432/postgres"));
    assert_eq!(
        server_port("postgres://u:p@10.1.0.1:54320/d", &external),
        None
    );
}

#[tokio::test]
async fn an_app_reaches_the_servers_of_its_attached_built_in_add_ons_only() {
    let dir = tempfile::tempdir().unwrap();
    let store_arc = SqliteStore::open(
        &dir.path().join("store.db"),
        slipway_store::StoreOptions::default(),
    )
    .unwrap();
    let store: &SqliteStore = &store_arc;
    let mut config = PlatformConfig::new(dir.path().to_path_buf());
    config.addons = Some(Arc::new(slipway_addons::Addons::new(servers(None))));
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let put = |key: String, value: serde_json::Value| async move {
        slipway_store::json::put_json(store, &key, &value)
            .await
            .unwrap()
    };
    put(
        addon_key("postgresql-a"),
        serde_json::json!({"url": "postgres://r:p@10.1.0.1:54320/r"}),
    )
    .await;
    put(
        addon_key("redis-a"),
        serde_json::json!({"url": "redis://r:p@10.1.0.1:54433"}),
    )
    .await;
    put(
        addon_key("partner-a"),
        serde_json::json!({"url": "", "partner": {"state": "provisioned"}}),
    )
    .await;
    for (name, addon) in [
        ("DATABASE", "postgresql-a"),
        ("REDIS", "redis-a"),
        ("FAST", "partner-a"),
    ] {
        put(
            attachment_key(a, name),
            serde_json::json!({"addon_name": addon}),
        )
        .await;
    }
    // B has A's database attached; C has nothing.
    put(
        attachment_key(b, "SHARED_DB"),
        serde_json::json!({"addon_name": "postgresql-a"}),
    )
    .await;
    assert_eq!(
        addon_ports(store, &config, a).await.unwrap(),
        vec![54320, 54433]
    );
    assert_eq!(addon_ports(store, &config, b).await.unwrap(), vec![54320]);
    assert!(addon_ports(store, &config, c).await.unwrap().is_empty());

    // A deploy in flight holds its app.json add-ons' ports until it ends.
    {
        let mut held = PendingReach::default();
        held.add(c, 54320);
        held.add(c, 54402);
        let mut other = PendingReach::default();
        other.add(c, 54403);
        assert_eq!(
            addon_ports(store, &config, c).await.unwrap(),
            vec![54320, 54402, 54403]
        );
        drop(other);
        assert_eq!(
            addon_ports(store, &config, c).await.unwrap(),
            vec![54320, 54402]
        );
    }
    assert!(addon_ports(store, &config, c).await.unwrap().is_empty());

    // A platform without add-on servers opens nothing.
    let none = PlatformConfig::new(dir.path().to_path_buf());
    assert!(addon_ports(store, &none, a).await.unwrap().is_empty());
}
