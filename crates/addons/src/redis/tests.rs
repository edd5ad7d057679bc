//! The configuration file round-trips and denies the escaping commands.

use super::*;

#[test]
fn conf_round_trips_and_denies_admin_commands() {
    let dir = tempfile::tempdir().unwrap();
    let plan = crate::plans::parse_plan("heroku-redis:premium-0").unwrap();
    let instance = Instance::new(
        dir.path(),
        "redis_a_1",
        Ipv4Addr::new(172, 30, 0, 1),
        6400,
        "ab".repeat(32),
        plan,
    );
    instance.write(None).unwrap();
    let conf = instance.conf();
    for needle in [
        "appendonly yes",
        "-config",
        "-acl",
        "-shutdown",
        "maxmemory 52428800",
        "maxclients 40",
    ] {
        assert!(conf.contains(needle), "{needle} missing from {conf}");
    }
    assert_eq!(Instance::read(&instance.dir), Some(instance.clone()));
    assert_eq!(
        instance.url(),
        format!("redis://default:{}@172.30.0.1:6400", "ab".repeat(32))
    );
}
