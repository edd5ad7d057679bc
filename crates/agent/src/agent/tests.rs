//! The agent's choices that need no control plane: its `--server` list, the round robin over
//! control planes, and how long a sync may take as the fencing deadline nears.

use super::*;

#[test]
fn server_lists_parse_each_url_and_refuse_an_empty_or_bad_one() {
    let check = |text: &str, expected: Option<&[&str]>| {
        let got = parse_servers(text)
            .ok()
            .map(|urls| urls.iter().map(url::Url::to_string).collect::<Vec<_>>());
        let expected = expected.map(|e| e.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(got, expected, "{text:?}");
    };
    check("http://10.0.0.1:5000", Some(&["http://10.0.0.1:5000/"]));
    check(
        "http://a:1, https://b:2,",
        Some(&["http://a:1/", "https://b:2/"]),
    );
    check("", None);
    check(",", None);
    check("http://a:1,ftp://b", None);
    check("http://a:1,not a url", None);
}

#[test]
fn control_planes_are_tried_round_robin() {
    let servers = Servers::new(parse_servers("http://a:1,http://b:1,http://c:1").unwrap());
    assert_eq!(servers.current(), 0);
    // A round ends when the first control plane is next again.
    assert_eq!(
        [servers.advance(), servers.advance(), servers.advance()],
        [false, false, true]
    );
    assert_eq!(servers.current(), 0);
    let one = Servers::new(parse_servers("http://a:1").unwrap());
    assert!(one.advance());
    assert_eq!(one.current(), 0);
}

#[test]
fn a_sync_leaves_time_to_try_another_control_plane_before_the_fencing_deadline() {
    let ms = Duration::from_millis;
    let check = |left: Duration, wait: Duration, timeout: Duration| {
        assert_eq!(attempt_budget(left), (wait, timeout), "{left:?} left");
    };
    // No lease yet (an hour): the usual long poll and timeout.
    check(
        Duration::from_secs(3600),
        LONG_POLL,
        LONG_POLL + SYNC_TIMEOUT,
    );
    // Just renewed a 5 s lease (3.33 s to the deadline): the long poll, half the time.
    check(ms(3334), LONG_POLL, ms(1667));
    // A failed attempt later: no long poll, half of what is left.
    check(ms(2000), Duration::ZERO, ms(1000));
    check(ms(400), Duration::ZERO, ms(300));
}
