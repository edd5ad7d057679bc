//! Tests of `redis:info`'s output.

use super::*;

#[test]
fn info_reads_like_herokus() {
    let info = serde_json::json!({
        "addon": {"name": "redis-cubed-12345", "plan": {"name": "heroku-redis:mini"}},
        "created_at": "2026-01-01T00:00:00Z",
        "version": "7.0.15",
        "used_memory": 1048576,
        "max_memory": 26214400,
        "max_memory_policy": "noeviction",
        "clients": 2,
        "max_clients": 20,
        "keys": 3,
    });
    assert_eq!(
        render("REDIS", &info),
        "=== redis-cubed-12345 (REDIS_URL)\n\
         Plan:        Mini\n\
         Status:      available\n\
         Created:     2026-01-01T00:00:00Z\n\
         Version:     7.0.15\n\
         Memory:      1 MB used of 25 MB\n\
         Maxmemory:   25 MB (noeviction)\n\
         Clients:     2 of 20\n\
         Keys:        3\n\
         Persistence: AOF\n"
    );
    assert_eq!(plan_name("heroku-redis:premium-0"), "Premium 0");
}
