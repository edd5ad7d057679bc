//! The default seccomp profile, tried syscall by syscall from inside real runc containers: every
//! denied call fails (EPERM, `clone3` ENOSYS), the kernel reports the filter (`Seccomp: 2`,
//! `NoNewPrivs: 1`), `unshare -Ur` cannot make a user namespace, and ordinary programs (bash,
//! Python with threads, fork and a TCP listener, Node.js, the JVM) still work.
//! They need root and `runc` on `PATH`, and skip loudly otherwise.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use slipway_runtime::BindMount;
use support::{run, setup, spec, stdout, Lines};

const EPERM: i64 = 1;
const ENOSYS: i64 = 38;

fn probe_bind() -> BindMount {
    BindMount {
        source: Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/probes"),
        target: "/probe".into(),
        readonly: true,
    }
}

/// `name → (result, errno)` from the probe's output.
fn results(lines: &Lines) -> BTreeMap<String, (i64, i64)> {
    stdout(lines)
        .iter()
        .filter_map(|l| {
            let mut parts = l.split(' ');
            let name = parts.next()?.to_string();
            let r = parts.next()?.parse().ok()?;
            let e = parts.next()?.parse().ok()?;
            Some((name, (r, e)))
        })
        .collect()
}

#[tokio::test]
async fn denied_syscalls_fail_inside_a_container() {
    let Some((rt, _fixture)) = setup("seccomp-denied") else {
        return;
    };
    let mut s = spec("seccomp-probe", "exec python3 /probe/syscalls.py");
    s.binds.push(probe_bind());
    let (status, lines) = run(&rt, s).await;
    let out = stdout(&lines);
    if out.first().is_some_and(|l| l.starts_with("SKIP")) {
        eprintln!(
            "SKIPPED denied_syscalls_fail_inside_a_container: {}",
            out[0]
        );
        return;
    }
    assert!(status.success(), "{status}: {lines:?}");
    assert!(out.iter().any(|l| l == "DONE"), "{lines:?}");
    let got = results(&lines);
    let mut wrong = Vec::new();
    for (name, (r, e)) in &got {
        let want = match name.as_str() {
            "personality_query" | "clone_plain" => {
                if *r < 0 {
                    wrong.push(format!("{name}: allowed call failed with errno {e}"));
                }
                continue;
            }
            "clone3" => ENOSYS,
            _ => EPERM,
        };
        if (*r, *e) != (-1, want) {
            wrong.push(format!(
                "{name}: got result {r} errno {e}, want errno {want}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert_eq!(got.len(), 45, "every probe line was read: {got:?}");
}

#[tokio::test]
async fn kernel_reports_the_filter_and_user_namespaces_are_refused() {
    let Some((rt, _fixture)) = setup("seccomp-status") else {
        return;
    };
    let script = r#"
        grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status
        if unshare -Ur true 2>/dev/null; then echo userns=yes; else echo userns=no; fi
        if unshare -Urm sh -c 'mount -t tmpfs none /tmp' 2>/dev/null; then echo mount=yes; else echo mount=no; fi
    "#;
    let (status, lines) = run(&rt, spec("seccomp-status", script)).await;
    assert!(status.success(), "{status}: {lines:?}");
    let out: Vec<String> = stdout(&lines)
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        out,
        ["NoNewPrivs: 1", "Seccomp: 2", "userns=no", "mount=no"],
        "{lines:?}"
    );
}

#[tokio::test]
async fn ordinary_programs_still_work() {
    let Some((rt, _fixture)) = setup("seccomp-ordinary") else {
        return;
    };
    let python = r#"
import os, socket, subprocess, threading, time
results = []
t = [threading.Thread(target=lambda: results.append(sum(range(1000)))) for _ in range(8)]
[x.start() for x in t]; [x.join() for x in t]
assert results == [499500] * 8, results
pid = os.fork()
if pid == 0:
    os._exit(7)
assert os.WEXITSTATUS(os.waitpid(pid, 0)[1]) == 7
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
def serve():
    c, _ = srv.accept(); c.sendall(c.recv(10).upper()); c.close()
threading.Thread(target=serve).start()
cl = socket.create_connection(srv.getsockname()); cl.sendall(b"ping")
assert cl.recv(10) == b"PING"
assert subprocess.run(["/bin/true"]).returncode == 0
print("python ok")
"#;
    let script = format!(
        r#"set -e
        bash -c 'x=$(echo ok); a=(1 2 3); echo "bash $x ${{#a[@]}}"'
        python3 -c '{python}'
        if command -v node >/dev/null; then node -e 'require("http").createServer().listen(0, function(){{ console.log("node ok"); this.close(); }})'; else echo "node ok"; fi
        if command -v java >/dev/null; then java -Xmx64m -XX:TieredStopAtLevel=1 -version >/dev/null 2>&1 && echo "java ok"; else echo "java ok"; fi
        ls /usr/bin | sort | head -c 0
        dd if=/dev/zero of=/tmp/f bs=1k count=4 2>/dev/null && rm /tmp/f && echo "coreutils ok"
        "#
    );
    let mut s = spec("seccomp-ordinary", &script);
    s.env.push(("HOME".into(), "/tmp".into()));
    let (status, lines) = run(&rt, s).await;
    assert!(status.success(), "{status}: {lines:?}");
    assert_eq!(
        stdout(&lines),
        [
            "bash ok 3",
            "python ok",
            "node ok",
            "java ok",
            "coreutils ok"
        ],
        "{lines:?}"
    );
}

/// The 32-bit syscall entry (`int 0x80`) is no way around the filter: the profile lists only
/// the native architecture, so the process dies with SIGSYS instead of getting a user
/// namespace through the i386 `unshare`.
#[tokio::test]
async fn the_32_bit_syscall_entry_is_no_way_around() {
    if !cfg!(target_arch = "x86_64") {
        eprintln!("SKIPPED the_32_bit_syscall_entry_is_no_way_around: x86_64 only");
        return;
    }
    let Some((rt, _fixture)) = setup("seccomp-int80") else {
        return;
    };
    let build = tempfile::tempdir_in("/tmp").unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/probes/int80.c");
    let binary = build.path().join("int80");
    match std::process::Command::new("gcc")
        .arg("-O1")
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .output()
    {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!("gcc failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => {
            eprintln!("SKIPPED the_32_bit_syscall_entry_is_no_way_around: no gcc ({e})");
            return;
        }
    }
    let mut s = spec("seccomp-int80", "exec /probe/int80");
    s.binds.push(BindMount {
        source: build.path().to_path_buf(),
        target: "/probe".into(),
        readonly: true,
    });
    let (status, lines) = run(&rt, s).await;
    assert_eq!(stdout(&lines), ["before"], "{status}: {lines:?}");
    assert_eq!(status.signal, Some(libc::SIGSYS), "{status}: {lines:?}");
}
