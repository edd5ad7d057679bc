//! Replies parse, and oversized or malformed ones are refused rather than buffered.

use super::*;

async fn check(input: &[u8], expected: Result<Reply, &str>) {
    let mut reader = tokio::io::BufReader::new(input);
    let got = read_reply(&mut reader, 0).await;
    match (got, expected) {
        (Ok(got), Ok(want)) => assert_eq!(got, want, "{input:?}"),
        (Err(got), Err(want)) => assert!(got.contains(want), "{input:?}: {got}"),
        (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
    }
}

#[tokio::test]
async fn replies() {
    check(b"+OK\r\n", Ok(Reply::Status("OK".into()))).await;
    check(b"-ERR no\r\n", Ok(Reply::Error("ERR no".into()))).await;
    check(b":42\r\n", Ok(Reply::Int(42))).await;
    check(b"$-1\r\n", Ok(Reply::Bulk(None))).await;
    check(b"$3\r\nabc\r\n", Ok(Reply::Bulk(Some(b"abc".to_vec())))).await;
    check(
        b"*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n",
        Ok(Reply::Array(Some(vec![
            Reply::Bulk(Some(b"0".to_vec())),
            Reply::Array(Some(vec![Reply::Bulk(Some(b"k".to_vec()))])),
        ]))),
    )
    .await;
    check(b"$99999999999\r\n", Err("unexpected length")).await;
    check(b"*99999999\r\n", Err("unexpected length")).await;
    check(b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", Err("nested")).await;
    check(b"$5\r\nab", Err("cannot read")).await;
    check(b"+OK", Err("truncated")).await;
    check(b"", Err("closed")).await;
    check(b"HTTP/1.1 400\r\n", Err("RESP")).await;
    let long = [b"+".as_slice(), &[b'a'; 5000], b"\r\n"].concat();
    check(&long, Err("overlong")).await;
}

#[test]
fn commands_encode_as_bulk_arrays() {
    assert_eq!(
        encode(&["SET", "k", ""]),
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n".to_vec()
    );
}
