//! The isolation suite, in the style of youki's integration tests: a probe program is pushed as
//! an app and runs inside a real dyno; it reports each property of its sandbox (namespaces,
//! uid, capabilities, seccomp mode and which dangerous syscalls it may make, no_new_privs,
//! which addresses it can reach, which processes it can see, its disk quota, its keyring), and
//! the test asserts each one. A second app is the victim: the probe tries to reach it, read
//! its files and take its traffic. Every assertion here failed on the main branch before the
//! isolation work (dynos on the host network, no seccomp, one uid for every app, no disk
//! quota).

mod support;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

use serde_json::Value;
use support::{repo, text, Server};

/// The probe: a small HTTP server (Python, from the stack) that answers
/// - `/probe`: JSON facts about its own sandbox;
/// - `/connect?host=H&port=P`: whether a TCP connection to H:P succeeds within a second;
/// - `/fill?path=P&mb=N`: writes N MiB to P and reports the error, if any;
/// - `/write?path=P` and `/read?path=P`: a small file, to see across apps;
/// - `/listen?port=P`: binds P on every address of its namespace and keeps it;
/// - anything else: `probe <app> <dyno>`.
const PROBE: &str = r#"
import ctypes, errno, json, os, socket, struct, sys, threading, urllib.parse, http.server

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

# x86_64 numbers; each call is made with arguments that would do no harm if it were allowed.
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
SYSCALLS = {
    "unshare(CLONE_NEWUSER)": (272, [CLONE_NEWUSER]),
    "unshare(CLONE_NEWNET)": (272, [CLONE_NEWNET]),
    "keyctl(GET_KEYRING_ID)": (250, [0, -3, 0]),
    "add_key": (248, [ctypes.c_char_p(b"user"), ctypes.c_char_p(b"probe"), ctypes.c_char_p(b"x"), 1, -3]),
    "io_uring_setup": (425, [1, ctypes.create_string_buffer(120)]),
    "bpf": (321, [0, ctypes.create_string_buffer(128), 128]),
    "perf_event_open": (298, [ctypes.create_string_buffer(128), 0, -1, -1, 0]),
    "mount": (165, [ctypes.c_char_p(b"none"), ctypes.c_char_p(b"/tmp"), ctypes.c_char_p(b"tmpfs"), 0, 0]),
    "umount2": (166, [ctypes.c_char_p(b"/app"), 2]),
    "ptrace(TRACEME)": (101, [0, 0, 0, 0]),
    "setns": (308, [-1, 0]),
    "pivot_root": (155, [ctypes.c_char_p(b"/tmp"), ctypes.c_char_p(b"/tmp")]),
    "init_module": (175, [0, 0, ctypes.c_char_p(b"")]),
    "finit_module": (313, [-1, ctypes.c_char_p(b""), 0]),
    "kexec_load": (246, [0, 0, 0, 0]),
    "clock_settime": (227, [0, ctypes.create_string_buffer(16)]),
    "reboot": (169, [0, 0, 0, 0]),
    "swapon": (167, [ctypes.c_char_p(b"/tmp/x"), 0]),
    "userfaultfd": (323, [0]),
}

def try_syscall(nr, args):
    ctypes.set_errno(0)
    rc = libc.syscall(ctypes.c_long(nr), *[a if not isinstance(a, int) else ctypes.c_long(a) for a in args])
    if rc >= 0:
        # Undo what can be undone: a new key or descriptor stays in this dyno only.
        return "allowed"
    return errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))

def status_field(name):
    for line in open("/proc/self/status"):
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    return None

def own_address():
    # The source address this namespace would use for its default route (no packet is sent).
    for line in open("/proc/net/route").read().splitlines()[1:]:
        fields = line.split()
        if fields[1] == "00000000":
            gateway = socket.inet_ntoa(struct.pack("<L", int(fields[2], 16)))
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.connect((gateway, 9))
            return s.getsockname()[0], gateway
    return None, None

def listeners():
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            for line in open(table).read().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A":
                    found.append(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return sorted(set(found))

def facts():
    address, gateway = own_address()
    disk = {}
    for path in ("/app", "/tmp"):
        st = os.statvfs(path)
        disk[path] = st.f_blocks * st.f_frsize
    return {
        "app": os.environ.get("PROBE_APP"),
        "dyno": os.environ.get("DYNO"),
        "port": int(os.environ["PORT"]),
        "uid": os.getuid(),
        "gid": os.getgid(),
        "groups": os.getgroups(),
        "namespaces": {ns: os.readlink("/proc/self/ns/" + ns) for ns in ("net", "pid", "mnt", "uts", "ipc", "user")},
        "cap_eff": status_field("CapEff"),
        "cap_bnd": status_field("CapBnd"),
        "cap_prm": status_field("CapPrm"),
        "seccomp": status_field("Seccomp"),
        "no_new_privs": status_field("NoNewPrivs"),
        "syscalls": {name: try_syscall(nr, args) for name, (nr, args) in SYSCALLS.items()},
        "address": address,
        "gateway": gateway,
        "listeners": listeners(),
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "disk": disk,
    }

held = []

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/probe":
            body = facts()
        elif url.path == "/connect":
            s = socket.socket(socket.AF_INET6 if ":" in q["host"] else socket.AF_INET)
            s.settimeout(1.0)
            try:
                s.connect((q["host"], int(q["port"])))
                body = {"ok": True}
            except OSError as e:
                body = {"ok": False, "error": str(e)}
            finally:
                s.close()
        elif url.path == "/fill":
            written = 0
            try:
                with open(q["path"], "wb") as f:
                    chunk = b"\0" * (1 << 20)
                    for _ in range(int(q["mb"])):
                        f.write(chunk)
                        f.flush()
                        written += 1
                    os.fsync(f.fileno())
                body = {"ok": True, "written_mb": written}
            except OSError as e:
                body = {"ok": False, "errno": errno.errorcode.get(e.errno), "written_mb": written}
            try:
                os.unlink(q["path"])
            except OSError:
                pass
        elif url.path == "/write":
            with open(q["path"], "w") as f:
                f.write("secret of " + os.environ.get("PROBE_APP", "?"))
            os.chmod(q["path"], 0o644)
            body = {"ok": True}
        elif url.path == "/read":
            try:
                body = {"ok": True, "content": open(q["path"]).read()}
            except OSError as e:
                body = {"ok": False, "errno": errno.errorcode.get(e.errno)}
        elif url.path == "/listen":
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("0.0.0.0", int(q["port"])))
                s.listen(16)
                held.append(s)
                def answer(sock):
                    while True:
                        c, _ = sock.accept()
                        c.recv(65536)
                        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nattacker")
                        c.close()
                threading.Thread(target=answer, args=(s,), daemon=True).start()
                body = {"ok": True}
            except OSError as e:
                body = {"ok": False, "error": str(e)}
        else:
            body = "probe %s %s" % (os.environ.get("PROBE_APP"), os.environ.get("DYNO"))
        data = (json.dumps(body) if not isinstance(body, str) else body).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
"#;

/// Creates `app`, sets `PROBE_APP`, pushes the probe and waits for it to answer.
async fn deploy_probe(server: &Server, app: &str) -> Value {
    server.cli_ok(&["apps:create", app]);
    server.cli_ok(&["config:set", &format!("PROBE_APP={app}"), "-a", app]);
    let source = repo(&[("Procfile", "web: python3 probe.py\n"), ("probe.py", PROBE)]);
    let push = server.push(app, source.path());
    assert!(
        push.status.success(),
        "push of {app} failed:\n{}\n{}",
        text(&push),
        server.log()
    );
    server.wait_for_200(app, "/").await;
    probe(server, app, "/probe").await
}

async fn probe(server: &Server, app: &str, path: &str) -> Value {
    let response = server
        .request(reqwest::Method::GET, app, path)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path} on {app}: {e}"));
    assert_eq!(response.status(), 200, "GET {path} on {app}");
    response.json().await.expect("JSON from the probe")
}

async fn connect(server: &Server, app: &str, host: &str, port: u16) -> Value {
    probe(server, app, &format!("/connect?host={host}&port={port}")).await
}

/// This host's own IPv4 addresses (every interface), as `ip` reports them.
fn host_addresses() -> Vec<String> {
    let output = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .output()
        .expect("ip addr");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .filter_map(|cidr| cidr.split('/').next())
        .map(str::to_owned)
        .collect()
}

fn own_namespace(ns: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{ns}"))
        .expect("own namespace")
        .to_string_lossy()
        .into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dyno_is_sandboxed_from_the_host_and_from_other_apps() {
    require_runc!();
    let server = Server::start();
    let victim = deploy_probe(&server, "victim").await;
    let attacker = deploy_probe(&server, "attacker").await;

    // Namespaces: its own network, PID, mount, UTS and IPC namespaces.
    for ns in ["net", "pid", "mnt", "uts", "ipc"] {
        assert_ne!(
            attacker["namespaces"][ns].as_str(),
            Some(own_namespace(ns).as_str()),
            "the dyno shares the host's {ns} namespace"
        );
        assert_ne!(
            attacker["namespaces"][ns], victim["namespaces"][ns],
            "two apps' dynos share a {ns} namespace"
        );
    }
    // Processes: only its own.
    let pids = attacker["pids"].as_array().expect("pids");
    assert!(pids.len() < 10, "the dyno sees other processes: {pids:?}");

    // Users: unprivileged, one uid per app, no capabilities, no new privileges.
    let (attacker_uid, victim_uid) = (&attacker["uid"], &victim["uid"]);
    assert_ne!(attacker_uid, 0);
    assert_ne!(attacker_uid, victim_uid, "two apps run as the same uid");
    assert_ne!(attacker["gid"], victim["gid"], "two apps share a gid");
    for field in ["cap_eff", "cap_prm", "cap_bnd"] {
        assert_eq!(
            attacker[field], "0000000000000000",
            "{field}: the dyno holds capabilities"
        );
    }
    assert_eq!(attacker["no_new_privs"], "1");

    // Seccomp: filter mode, and every dangerous syscall refused.
    assert_eq!(attacker["seccomp"], "2", "no seccomp filter");
    let syscalls = attacker["syscalls"].as_object().expect("syscalls");
    let allowed: Vec<&String> = syscalls
        .iter()
        .filter(|(_, result)| *result == "allowed")
        .map(|(name, _)| name)
        .collect();
    assert!(
        allowed.is_empty(),
        "dangerous syscalls allowed: {allowed:?}"
    );
    for (name, result) in syscalls {
        assert!(
            matches!(result.as_str(), Some("EPERM" | "ENOSYS" | "EACCES")),
            "{name} failed for another reason than a refusal: {result}"
        );
    }

    // Network: an address of its own, on the dyno subnet; nothing of the host or the victim.
    let (address, gateway) = (
        attacker["address"]
            .as_str()
            .expect("the dyno has an address"),
        attacker["gateway"]
            .as_str()
            .expect("the dyno has a gateway"),
    );
    let victim_address = victim["address"].as_str().expect("victim address");
    assert_ne!(address, victim_address);
    assert!(
        !address.starts_with("127."),
        "the dyno is on the host's loopback"
    );
    let victim_port = victim["port"].as_u64().unwrap() as u16;
    assert_eq!(
        attacker["listeners"],
        serde_json::json!([attacker["port"]]),
        "the dyno sees listeners other than its own"
    );

    // A service of the host's, listening on every address: unreachable from the dyno.
    let host_service = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("host listener");
    let host_port = host_service.local_addr().unwrap().port();
    let api_port: u16 = server
        .api_url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("API port");
    let mut targets: Vec<(String, u16, &str)> = vec![
        ("127.0.0.1".into(), api_port, "the API on loopback"),
        ("127.0.0.1".into(), host_port, "a host service on loopback"),
        (gateway.into(), host_port, "a host service at the gateway"),
        (gateway.into(), api_port, "the API port at the gateway"),
        (
            victim_address.into(),
            victim_port,
            "the victim's dyno at its address",
        ),
        ("169.254.169.254".into(), 80, "the metadata address"),
    ];
    for host_address in host_addresses() {
        targets.push((host_address, host_port, "a host service at a host address"));
    }
    for (host, port, what) in &targets {
        let result = connect(&server, "attacker", host, *port).await;
        assert_eq!(
            result["ok"], false,
            "the dyno reached {what} ({host}:{port}): {result}"
        );
    }
    drop(host_service);
    // The victim itself is reachable (the router does), so the refusal above is the firewall's.
    let own = connect(&server, "victim", victim_address, victim_port).await;
    assert_eq!(own["ok"], true, "a dyno cannot reach its own port: {own}");

    // Traffic: an attacker listening on the victim's port number gets none of its requests,
    // even while the victim restarts.
    let listen = probe(&server, "attacker", &format!("/listen?port={victim_port}")).await;
    assert_eq!(listen["ok"], true, "{listen}");
    server.cli_ok(&["ps:restart", "-a", "victim"]);
    let mut answers: BTreeMap<String, u32> = BTreeMap::new();
    for _ in 0..40 {
        if let Ok(response) = server
            .request(reqwest::Method::GET, "victim", "/")
            .send()
            .await
        {
            let body = response.text().await.unwrap_or_default();
            *answers.entry(body).or_default() += 1;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        !answers.keys().any(|body| body.contains("attacker")),
        "the attacker answered the victim's traffic: {answers:?}"
    );

    // Files: /tmp is the dyno's own.
    let written = probe(&server, "victim", "/write?path=/tmp/victim-secret").await;
    assert_eq!(written["ok"], true);
    let read = probe(&server, "attacker", "/read?path=/tmp/victim-secret").await;
    assert_eq!(
        read["ok"], false,
        "the attacker read the victim's /tmp: {read}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dyno_that_fills_its_disk_gets_enospc_and_nobody_else_notices() {
    require_runc!();
    let server = Server::start_with(&["--dyno-disk-mb", "64"]);
    let probe_facts = deploy_probe(&server, "filler").await;
    for path in ["/app", "/tmp"] {
        let size = probe_facts["disk"][path].as_u64().expect("disk size");
        assert!(
            size <= 64 * 1024 * 1024,
            "{path} is not limited to the quota: {size} bytes"
        );
    }
    let before = free_bytes(&server.data_dir);
    for path in ["/app/fill", "/tmp/fill"] {
        let filled = probe(&server, "filler", &format!("/fill?path={path}&mb=200")).await;
        assert_eq!(
            filled["ok"], false,
            "{path}: wrote 200 MiB past a 64 MiB quota"
        );
        assert_eq!(filled["errno"], "ENOSPC", "{path}: {filled}");
        assert!(
            filled["written_mb"].as_u64().unwrap() <= 64,
            "{path}: {filled}"
        );
    }
    // The dyno's disk is a sparse image: the host gives it at most its quota (freed blocks
    // stay with the image until the dyno ends), never the 400 MiB the dyno tried to write.
    let after = free_bytes(&server.data_dir);
    assert!(
        before.saturating_sub(after) < 80 * 1024 * 1024,
        "the host lost {} bytes of disk",
        before.saturating_sub(after)
    );
    // The dyno keeps serving after hitting its quota.
    let again = probe(&server, "filler", "/probe").await;
    assert_eq!(again["dyno"], "web.1");
}

fn free_bytes(path: &std::path::Path) -> u64 {
    let stat = nix::sys::statvfs::statvfs(path).expect("statvfs");
    stat.blocks_available() as u64 * stat.fragment_size() as u64
}
