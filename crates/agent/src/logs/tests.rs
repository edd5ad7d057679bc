//! The log buffer is bounded and counts what it drops.

use super::*;

#[test]
fn a_full_buffer_drops_new_lines_and_counts_them_per_container() {
    let buffer = LogBuffer::new(2);
    buffer.push("a", "one");
    buffer.push("b", "two");
    buffer.push("a", "three");
    buffer.push("b", "four");
    buffer.push("b", "five");
    let batch = buffer.take(10).unwrap();
    let lines: Vec<&str> = batch.lines.iter().map(|l| l.line.as_str()).collect();
    assert_eq!(lines, ["one", "two"]);
    assert_eq!(
        batch.dropped,
        BTreeMap::from([("a".into(), 1), ("b".into(), 2)])
    );
    assert_eq!(buffer.take(10), None);
}

#[test]
fn batches_are_capped_and_lost_batches_count_as_dropped() {
    let buffer = LogBuffer::new(100);
    for i in 0..5 {
        buffer.push("a", &i.to_string());
    }
    let first = buffer.take(3).unwrap();
    assert_eq!(first.lines.len(), 3);
    buffer.lost(first);
    let rest = buffer.take(10).unwrap();
    assert_eq!(rest.lines.len(), 2);
    assert_eq!(rest.dropped, BTreeMap::from([("a".into(), 3)]));
}

#[test]
fn a_sink_tags_lines_with_its_container() {
    let buffer = LogBuffer::new(10);
    (buffer.sink("c1"))(Stream::Stdout, "hello");
    let batch = buffer.take(10).unwrap();
    assert_eq!(batch.lines[0].container, "c1");
    assert_eq!(batch.lines[0].line, "hello");
}
