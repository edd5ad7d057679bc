//! The self-fencing rule as a table over injected instants.

use super::*;

#[test]
fn an_agent_fences_itself_before_its_lease_can_expire() {
    let ttl = Duration::from_secs(6);
    let sent = Instant::now();
    let lease = Lease::renewed(sent, ttl);
    for (after_ms, fenced) in [(0, false), (3999, false), (4000, true), (6000, true)] {
        assert_eq!(
            lease.must_fence(sent + Duration::from_millis(after_ms)),
            fenced,
            "{after_ms} ms after the last renewal was sent"
        );
    }
    // The control plane's lease runs from the renewal's arrival, at or after `sent`: the
    // agent's deadline always comes first.
    assert!(lease.deadline().unwrap() < sent + ttl);
}

#[test]
fn a_renewal_moves_the_deadline_and_no_lease_never_fences() {
    let ttl = Duration::from_secs(6);
    let first = Instant::now();
    let second = Lease::renewed(first + Duration::from_secs(3), ttl);
    assert!(!second.must_fence(first + Duration::from_secs(5)));
    assert!(second.must_fence(first + Duration::from_secs(7)));
    assert!(!Lease::None.must_fence(first + Duration::from_secs(3600)));
    assert_eq!(Lease::None.deadline(), None);
}
