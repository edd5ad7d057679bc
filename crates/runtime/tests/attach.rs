//! Attached containers (`Runtime::start_attached`) with real runc: a terminal of the asked size
//! that follows `resize`, echoes what is typed, turns Ctrl-C into SIGINT and Ctrl-D into end of
//! input; pipes that carry stdin to the end and stdout and stderr back; SIGHUP on `hangup`; the
//! exit status; and that nothing is left behind (containers, bundles, fds). It also prints the
//! median time from `start_attached` of `true` to `exited`. They need root and `runc` on
//! `PATH`, and skip loudly otherwise.

mod support;

use std::time::{Duration, Instant};

use slipway_runtime::{
    Attach, AttachedIo, ExitStatus, RuncRuntime, RunningContainer, Runtime, StopOutcome,
};
use support::{setup, spec, Fixture};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(20);

/// Open fds are the whole process's: the tests take turns, so that one's count is not
/// another's run.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Reads the output into `seen` until `want` appears in it; false if it did not within `wait`.
async fn try_read_until(
    io: &mut AttachedIo,
    seen: &mut String,
    want: &str,
    wait: Duration,
) -> bool {
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 4096];
    while !seen.contains(want) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, io.output.read(&mut buf)).await {
            Ok(Ok(0)) => panic!("the output ended before {want:?}: {seen:?}"),
            Ok(Ok(n)) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            Ok(Err(e)) => panic!("reading the output failed: {e} (after {seen:?})"),
            Err(_) => return false,
        }
    }
    true
}

/// Reads the output into `seen` until `want` appears in it (panics after [`TIMEOUT`]).
async fn read_until(io: &mut AttachedIo, seen: &mut String, want: &str) {
    if !try_read_until(io, seen, want, TIMEOUT).await {
        panic!("{want:?} did not appear within {TIMEOUT:?}: {seen:?}");
    }
}

/// Reads the rest of the output and waits for the exit status.
async fn finish(io: &mut AttachedIo, running: RunningContainer, seen: &mut String) -> ExitStatus {
    let mut rest = Vec::new();
    tokio::time::timeout(TIMEOUT, io.output.read_to_end(&mut rest))
        .await
        .expect("the output must end once the container has exited")
        .unwrap();
    seen.push_str(&String::from_utf8_lossy(&rest));
    tokio::time::timeout(TIMEOUT, running.exited)
        .await
        .expect("exited must resolve")
        .unwrap()
}

async fn assert_nothing_left(rt: &RuncRuntime, fixture: &Fixture) {
    assert!(rt.list().await.unwrap().is_empty(), "a container is left");
    let bundles: Vec<_> = std::fs::read_dir(fixture.path().join("containers"))
        .unwrap()
        .collect();
    assert!(bundles.is_empty(), "bundles are left: {bundles:?}");
}

fn tty(cols: u16, rows: u16) -> Attach {
    Attach::Tty { cols, rows }
}

#[tokio::test]
async fn a_terminal_has_the_size_follows_resize_and_echoes_what_is_typed() {
    let _serial = SERIAL.lock().await;
    let Some((rt, fixture)) = setup("attach_tty") else {
        return;
    };
    let script = r#"stty size; echo ready
        while read -r cmd; do
          case "$cmd" in
            size) stty size ;;
            quit) exit 3 ;;
            *) echo "typed:$cmd" ;;
          esac
        done"#;
    let (running, mut io) = rt
        .start_attached(spec("tty", script), tty(80, 24))
        .await
        .unwrap();
    assert!(
        rt.list()
            .await
            .unwrap()
            .iter()
            .any(|c| c.id == "tty" && c.running),
        "an attached container is listed"
    );
    let mut seen = String::new();
    read_until(&mut io, &mut seen, "ready").await;
    assert!(seen.starts_with("24 80\r\n"), "{seen:?}");

    // runc forwards the new size when its SIGWINCH arrives: ask until it shows.
    io.control.resize(132, 43).unwrap();
    let mut resized = false;
    for _ in 0..50 {
        io.input.write_all(b"size\n").await.unwrap();
        if try_read_until(&mut io, &mut seen, "43 132", Duration::from_millis(200)).await {
            resized = true;
            break;
        }
    }
    assert!(resized, "stty size never showed the new size: {seen:?}");

    // The container's terminal echoes the line, then the program answers it.
    io.input.write_all(b"hello there\n").await.unwrap();
    read_until(&mut io, &mut seen, "typed:hello there").await;
    assert!(
        seen.contains("hello there\r\ntyped:hello there"),
        "{seen:?}"
    );

    io.input.write_all(b"quit\n").await.unwrap();
    let status = finish(&mut io, running, &mut seen).await;
    assert_eq!(status.code, Some(3), "{seen:?}");
    assert_nothing_left(&rt, &fixture).await;
}

#[tokio::test]
async fn cat_on_a_terminal_echoes_and_ctrl_d_ends_it() {
    let _serial = SERIAL.lock().await;
    let Some((rt, fixture)) = setup("attach_cat") else {
        return;
    };
    let mut cat = spec("cat", "");
    cat.args = vec!["cat".into()];
    let (running, mut io) = rt.start_attached(cat, tty(80, 24)).await.unwrap();
    let mut seen = String::new();
    io.input.write_all(b"meow\n").await.unwrap();
    // Once the terminal's echo, once cat's copy.
    read_until(&mut io, &mut seen, "meow\r\nmeow\r\n").await;
    io.input.write_all(b"\x04").await.unwrap();
    let status = finish(&mut io, running, &mut seen).await;
    assert_eq!(status.code, Some(0), "{seen:?}");
    assert_nothing_left(&rt, &fixture).await;
}

#[tokio::test]
async fn ctrl_c_interrupts_the_foreground_process() {
    let _serial = SERIAL.lock().await;
    let Some((rt, fixture)) = setup("attach_int") else {
        return;
    };
    let script = "trap 'echo got-int; exit 5' INT; echo ready; sleep 100; echo after";
    let started = Instant::now();
    let (running, mut io) = rt
        .start_attached(spec("int", script), tty(80, 24))
        .await
        .unwrap();
    let mut seen = String::new();
    read_until(&mut io, &mut seen, "ready").await;
    // Ctrl-C may reach the shell before it has started `sleep` (the trap then waits for the
    // sleep): type it until the trap has run.
    for _ in 0..100 {
        io.input.write_all(b"\x03").await.unwrap();
        if try_read_until(&mut io, &mut seen, "got-int", Duration::from_millis(200)).await {
            break;
        }
    }
    let status = finish(&mut io, running, &mut seen).await;
    assert_eq!(status.code, Some(5), "{seen:?}");
    assert!(seen.contains("got-int"), "{seen:?}");
    assert!(
        !seen.contains("after"),
        "sleep was not interrupted: {seen:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(50));
    assert_nothing_left(&rt, &fixture).await;
}

#[tokio::test]
async fn pipes_carry_stdin_to_its_end_and_stdout_and_stderr_back() {
    let _serial = SERIAL.lock().await;
    let Some((rt, fixture)) = setup("attach_pipes") else {
        return;
    };
    let (running, mut io) = rt
        .start_attached(spec("pipes", "cat; echo done >&2"), Attach::Pipes)
        .await
        .unwrap();
    io.input.write_all(b"line 1\nline 2 \x03\n").await.unwrap();
    io.input.shutdown().await.unwrap();
    let mut seen = String::new();
    let status = finish(&mut io, running, &mut seen).await;
    assert_eq!(status.code, Some(0), "{seen:?}");
    assert_eq!(seen, "line 1\nline 2 \x03\ndone\n");

    let (running, mut io) = rt
        .start_attached(spec("exit3", "exit 3"), Attach::Pipes)
        .await
        .unwrap();
    assert_eq!(finish(&mut io, running, &mut seen).await.code, Some(3));
    assert_nothing_left(&rt, &fixture).await;
}

#[tokio::test]
async fn hangup_sends_sighup_on_a_terminal_and_on_pipes() {
    let _serial = SERIAL.lock().await;
    let Some((rt, fixture)) = setup("attach_hup") else {
        return;
    };
    let script = "trap 'echo got-hup; exit 7' HUP; echo ready; while :; do sleep 0.1; done";
    for (id, attach) in [("hup-tty", tty(80, 24)), ("hup-pipes", Attach::Pipes)] {
        let (running, mut io) = rt.start_attached(spec(id, script), attach).await.unwrap();
        let mut seen = String::new();
        read_until(&mut io, &mut seen, "ready").await;
        io.control.hangup().unwrap();
        let status = finish(&mut io, running, &mut seen).await;
        assert_eq!(status.code, Some(7), "{id}: {seen:?}");
        assert!(seen.contains("got-hup"), "{id}: {seen:?}");
        // A hang-up after the end is no error.
        io.control.hangup().unwrap();
    }
    assert_nothing_left(&rt, &fixture).await;
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[tokio::test]
async fn no_fd_is_leaked_and_a_dropped_attachment_does_not_block_the_container() {
    let _serial = SERIAL.lock().await;
    let Some((rt, fixture)) = setup("attach_fds") else {
        return;
    };
    // One run first, so that lazily opened fds (the runtime's epoll, ...) are counted before.
    let (running, mut io) = rt
        .start_attached(spec("warm", "true"), Attach::Pipes)
        .await
        .unwrap();
    finish(&mut io, running, &mut String::new()).await;
    drop(io);
    let before = open_fds();

    let mut times = Vec::new();
    for i in 0..10 {
        let attach = if i % 2 == 0 {
            Attach::Pipes
        } else {
            tty(80, 24)
        };
        let mut t = spec(&format!("true-{i}"), "");
        t.args = vec!["true".into()];
        let started = Instant::now();
        let (running, io) = rt.start_attached(t, attach).await.unwrap();
        let status = running.exited.await.unwrap();
        times.push(started.elapsed());
        assert_eq!(status.code, Some(0));
        drop(io);
    }
    // The same with `start`, for comparison on the same (possibly busy) machine.
    let mut plain = Vec::new();
    for i in 0..10 {
        let mut t = spec(&format!("plain-{i}"), "");
        t.args = vec!["true".into()];
        let started = Instant::now();
        let running = rt.start(t, support::collector().0).await.unwrap();
        assert_eq!(running.exited.await.unwrap().code, Some(0));
        plain.push(started.elapsed());
    }
    times.sort();
    plain.sort();
    eprintln!(
        "start_attached(true) to exited, 10 runs: median {:?} (min {:?}, max {:?}); \
         start(true): median {:?}",
        times[5], times[0], times[9], plain[5]
    );

    // Much more output than a pipe or terminal holds, nobody reading: it must still end.
    for (id, attach) in [("flood-tty", tty(80, 24)), ("flood-pipes", Attach::Pipes)] {
        let (running, io) = rt
            .start_attached(spec(id, "head -c 2000000 /dev/zero | tr '\\0' x"), attach)
            .await
            .unwrap();
        drop(io);
        let status = tokio::time::timeout(TIMEOUT, running.exited)
            .await
            .expect("a container whose output nobody reads must not get stuck")
            .unwrap();
        assert_eq!(status.code, Some(0), "{id}");
    }
    // Dropped while the container still runs: `stop` ends it as any other.
    for (id, attach) in [("drop-tty", tty(80, 24)), ("drop-pipes", Attach::Pipes)] {
        let (running, mut io) = rt
            .start_attached(spec(id, "echo ready; while :; do sleep 1; done"), attach)
            .await
            .unwrap();
        read_until(&mut io, &mut String::new(), "ready").await;
        drop(io);
        let outcome = rt.stop(id, Duration::from_millis(200)).await.unwrap();
        assert_eq!(outcome, StopOutcome::Killed, "{id}");
        let status = tokio::time::timeout(TIMEOUT, running.exited).await.unwrap();
        assert_eq!(status.unwrap().signal, Some(9), "{id}");
    }
    // The drains end with the containers; give them a moment to close their fds.
    let mut after = open_fds();
    for _ in 0..100 {
        if after <= before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        after = open_fds();
    }
    assert_eq!(after, before, "fds leaked");
    assert_nothing_left(&rt, &fixture).await;
}

#[tokio::test]
async fn a_program_that_does_not_exist_is_a_runc_error_and_leaves_nothing() {
    let _serial = SERIAL.lock().await;
    let Some((rt, fixture)) = setup("attach_missing") else {
        return;
    };
    let before = open_fds();
    for attach in [tty(80, 24), Attach::Pipes] {
        let mut missing = spec("missing", "");
        missing.args = vec!["/nonexistent/program".into()];
        match rt.start_attached(missing, attach).await {
            Err(slipway_runtime::RuntimeError::Runc { stderr, .. }) => {
                assert!(stderr.contains("/nonexistent/program"), "{stderr}")
            }
            Ok((running, _)) => panic!("started: {:?}", running.exited.await),
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(open_fds(), before, "fds leaked");
    assert_nothing_left(&rt, &fixture).await;
}
