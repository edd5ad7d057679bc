//! Tests of the smart-HTTP endpoints' request-body decoding.

use super::*;
use std::io::{Read, Write};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn chunks(data: Vec<u8>) -> impl futures::Stream<Item = std::io::Result<bytes::Bytes>> + Unpin {
    futures::stream::iter(
        data.chunks(1000)
            .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    )
}

#[tokio::test]
async fn gzip_bodies_inflate_to_a_file_under_the_cap() {
    let body = b"0032want 0123456789012345678901234567890123456789\n".repeat(100);
    let mut file = gunzip_to_file(chunks(gzip(&body)), 1 << 20, std::env::temp_dir())
        .await
        .unwrap();
    let mut inflated = Vec::new();
    file.read_to_end(&mut inflated).unwrap();
    assert_eq!(inflated, body);
}

#[tokio::test]
async fn a_gzip_bomb_is_cut_off_at_the_cap() {
    // 64 MiB of zeros gzip to about 64 KB; the cap is 1 MiB.
    let bomb = gzip(&vec![0u8; 64 << 20]);
    assert!(bomb.len() < 100_000, "{}", bomb.len());
    match gunzip_to_file(chunks(bomb), 1 << 20, std::env::temp_dir()).await {
        Err(GunzipError::TooLarge) => {}
        other => panic!("{other:?}"),
    }
    match gunzip_to_file(
        chunks(b"not gzip at all".to_vec()),
        1 << 20,
        std::env::temp_dir(),
    )
    .await
    {
        Err(GunzipError::Invalid(_)) => {}
        other => panic!("{other:?}"),
    }
}
