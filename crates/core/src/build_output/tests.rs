//! Tests of the in-memory build output and upload records.

use super::*;

async fn collect(buffer: Arc<OutputBuffer>, from: u64) -> Vec<(u64, String)> {
    buffer.follow(from).collect().await
}

#[tokio::test]
async fn output_is_streamed_from_the_start_and_followed_until_the_build_ends() {
    let buffer = Arc::new(OutputBuffer::new(Uuid::nil()));
    buffer.push("one");
    let reader = tokio::spawn(collect(buffer.clone(), 0));
    let late = tokio::spawn(collect(buffer.clone(), 1));
    tokio::task::yield_now().await;
    buffer.push("two");
    buffer.push("three");
    buffer.finish();
    let all = reader.await.unwrap();
    assert_eq!(
        all,
        vec![(0, "one".into()), (1, "two".into()), (2, "three".into())]
    );
    assert_eq!(late.await.unwrap().len(), 2);
    assert_eq!(collect(buffer, 3).await, vec![]);
}

#[tokio::test]
async fn output_keeps_only_the_last_lines() {
    let buffer = Arc::new(OutputBuffer::new(Uuid::nil()));
    for i in 0..OUTPUT_LINES + 5 {
        buffer.push(&format!("line {i}"));
    }
    buffer.finish();
    let lines = collect(buffer, 0).await;
    assert_eq!(lines.len(), OUTPUT_LINES);
    assert_eq!(lines[0], (5, "line 5".into()));
}

#[test]
fn finished_outputs_are_forgotten_oldest_first_running_ones_never() {
    let state = BuildState::default();
    let running = state.register("running", Uuid::new_v4(), OutputHolder::default());
    for i in 0..KEPT_OUTPUTS + 3 {
        state
            .register(
                &format!("done-{i}"),
                Uuid::new_v4(),
                OutputHolder::default(),
            )
            .finish();
    }
    assert!(state.output("running").is_some());
    assert!(state.output("done-0").is_none());
    assert!(state
        .output(&format!("done-{}", KEPT_OUTPUTS + 2))
        .is_some());
    running.finish();
}
