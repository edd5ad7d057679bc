//! Tests of the HTTP/2 path's connection bookkeeping.

use super::*;

fn activity() -> Arc<Activity> {
    Arc::new(Activity::new())
}

#[tokio::test]
async fn an_h2_connection_idles_out_only_without_open_streams() {
    let idle = Duration::from_millis(100);
    let activity = activity();
    let guard = StreamGuard::new(&activity);
    // A stream stays open well past the idle window: the connection is not idle.
    let early = tokio::time::timeout(idle * 4, idled_out(&activity, idle)).await;
    assert!(early.is_err(), "idled out while a stream was open");
    drop(guard);
    assert_eq!(activity.open.load(std::sync::atomic::Ordering::SeqCst), 0);
    // Once the last stream finishes, the window starts again and then runs out.
    tokio::time::timeout(Duration::from_secs(5), idled_out(&activity, idle))
        .await
        .expect("a connection without open streams never idled out");
    assert!(activity.idle_since.lock().unwrap().elapsed() >= idle);
}
