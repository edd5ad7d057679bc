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

#[test]
fn info_reads_version_memory_clients_and_keys() {
    fn check(text: &str, expected: RedisInfo) {
        assert_eq!(parse_info(text), expected, "{text:?}");
    }
    check(
        "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n# Clients\r\nconnected_clients:3\r\n# Memory\r\nused_memory:1048576\r\nmaxmemory_policy:noeviction\r\n# Keyspace\r\ndb0:keys=5,expires=0,avg_ttl=0\r\ndb3:keys=2,expires=1,avg_ttl=9\r\n",
        RedisInfo {
            version: "7.0.15".into(),
            used_memory: 1_048_576,
            max_memory_policy: "noeviction".into(),
            clients: 3,
            keys: 7,
            ..RedisInfo::default()
        },
    );
    // An empty keyspace, junk lines and overlong values are bounded, not fatal.
    check(
        "redis_version:7\nused_memory:x\ndbx:keys=9\ndb0:keys=oops\nnonsense\n",
        RedisInfo {
            version: "7".into(),
            ..RedisInfo::default()
        },
    );
    assert_eq!(
        parse_info(&format!("redis_version:{}", "9".repeat(100)))
            .version
            .len(),
        32
    );
}

#[test]
fn the_info_request_is_auth_then_info_in_resp() {
    assert_eq!(
        info_request("pw"),
        b"*3\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n$2\r\npw\r\n*1\r\n$4\r\nINFO\r\n".to_vec()
    );
}
