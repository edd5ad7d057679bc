//! Unit tests of the attach plumbing: end of input, end of output, and draining on drop.

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn pipes_carry_input_and_end_when_every_writer_is_gone() {
    let ([stdin, stdout, stderr], mut p) = plumb(Attach::Pipes, HostTerminal::Raw).unwrap();
    p.input.write_all(b"hello").await.unwrap();
    p.input.shutdown().await.unwrap();
    // The child's stdin sees the bytes and then end of input.
    let mut stdin = std::fs::File::from(stdin);
    let mut got = String::new();
    std::io::Read::read_to_string(&mut stdin, &mut got).unwrap();
    assert_eq!(got, "hello");
    // stdout and stderr are one stream, which ends when both are closed.
    std::io::Write::write_all(&mut std::fs::File::from(stdout), b"out ").unwrap();
    std::io::Write::write_all(&mut std::fs::File::from(stderr), b"err").unwrap();
    let mut out = String::new();
    p.output.read_to_string(&mut out).await.unwrap();
    assert_eq!(out, "out err");
    assert!(p.master.is_none());
}

#[tokio::test]
async fn a_terminal_ends_with_eof_once_the_slave_is_closed() {
    let ([stdin, stdout, stderr], p) =
        plumb(Attach::Tty { cols: 91, rows: 27 }, HostTerminal::Raw).unwrap();
    let size = rustix::termios::tcgetwinsize(&stdout).unwrap();
    assert_eq!((size.ws_col, size.ws_row), (91, 27));
    assert!(p.master.is_some());
    let mut io = p.into_attached(Box::new(|| Ok(())));
    io.control.resize(100, 30).unwrap();
    let size = rustix::termios::tcgetwinsize(&stdin).unwrap();
    assert_eq!((size.ws_col, size.ws_row), (100, 30));
    // Raw: what is typed arrives as is, without echo.
    io.input.write_all(b"ab\x03").await.unwrap();
    let mut typed = [0u8; 3];
    std::io::Read::read_exact(&mut std::fs::File::from(stdin), &mut typed).unwrap();
    assert_eq!(&typed, b"ab\x03");
    std::io::Write::write_all(&mut std::fs::File::from(stdout), b"bye").unwrap();
    drop(stderr);
    let mut out = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        io.output.read_to_end(&mut out),
    )
    .await
    .expect("EIO must end the output")
    .unwrap();
    assert_eq!(out, b"bye");
}

#[tokio::test]
async fn a_dropped_output_is_drained_so_the_writer_never_blocks() {
    let ([_stdin, stdout, stderr], p) = plumb(Attach::Pipes, HostTerminal::Raw).unwrap();
    drop(p.output);
    let mut stdout = std::fs::File::from(stdout);
    drop(stderr);
    // Far more than a pipe holds: blocks forever unless something drains it.
    let writer = std::thread::spawn(move || {
        std::io::Write::write_all(&mut stdout, &vec![b'x'; 1 << 20]).is_ok()
    });
    for _ in 0..1000 {
        if writer.is_finished() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(writer.is_finished(), "the writer is stuck on a full pipe");
    assert!(writer.join().unwrap());
}
