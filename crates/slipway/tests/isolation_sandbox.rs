//! Tenant isolation at the kernel boundary, through real pushed apps: each app runs as its own
//! uid (so per-uid kernel limits like inotify instances are its own), the keyring is closed by
//! seccomp, each dyno's `/tmp` is its own, the slug's files belong to the app's uid so it can
//! edit them in its ephemeral layer, and a dyno writing past its disk quota gets ENOSPC while
//! the host and another app see nothing. A probe app is pushed twice: `attacker` and `victim`.

mod support;

use serde_json::Value;
use support::{repo, text, Server};

/// The probe: a web server whose endpoints each report one property of its dyno as JSON.
const PROBE: &str = r##"import ctypes, http.server, json, os, subprocess
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
held = []
def status():
    facts = {}
    for line in open("/proc/self/status"):
        key, _, value = line.partition(":")
        if key in ("Uid", "Gid", "Seccomp", "NoNewPrivs", "CapEff"):
            facts[key] = value.split()
    st = os.stat("/app/Procfile")
    facts["procfile_owner"] = [st.st_uid, st.st_gid]
    try:
        with open("/app/Procfile", "a") as f:
            f.write("# edited in the ephemeral layer\n")
        facts["procfile_editable"] = True
    except OSError as e:
        facts["procfile_editable"] = str(e)
    return facts
def add_key():
    ctypes.set_errno(0)
    # add_key("user", "planted", "secret", 6, KEY_SPEC_USER_KEYRING)
    r = libc.syscall(ctypes.c_long(248), ctypes.c_char_p(b"user"), ctypes.c_char_p(b"planted"),
                     ctypes.c_char_p(b"secret"), ctypes.c_long(6), ctypes.c_long(-4))
    e = ctypes.get_errno() if r == -1 else 0
    ctypes.set_errno(0)
    # keyctl(KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, "user", "planted", 0)
    s = libc.syscall(ctypes.c_long(250), ctypes.c_long(10), ctypes.c_long(-4),
                     ctypes.c_char_p(b"user"), ctypes.c_char_p(b"planted"), ctypes.c_long(0))
    return {"add_key": r, "add_key_errno": e, "search": s, "search_errno": ctypes.get_errno() if s == -1 else 0}
def inotify_exhaust():
    while len(held) < 100000:
        ctypes.set_errno(0)
        fd = libc.inotify_init()
        if fd < 0:
            return {"held": len(held), "errno": ctypes.get_errno()}
        held.append(fd)
    return {"held": len(held), "errno": 0}
def inotify_one():
    ctypes.set_errno(0)
    fd = libc.inotify_init()
    if fd < 0:
        return {"ok": False, "errno": ctypes.get_errno()}
    os.close(fd)
    return {"ok": True, "errno": 0}
def tmp_write():
    with open("/tmp/secret", "w") as f:
        f.write("secret of " + os.environ["APP"])
    return {"written": True}
def tmp_read():
    try:
        return {"content": open("/tmp/secret").read()}
    except OSError as e:
        return {"content": None, "error": e.strerror}
def dd(target, mb):
    r = subprocess.run(["dd", "if=/dev/zero", "of=" + target, "bs=1M", "count=" + str(mb)],
                       capture_output=True, text=True)
    return {"rc": r.returncode, "enospc": "No space left on device" in r.stderr}
def fill():
    facts = {"app": dd("/app/fill", 200)}
    os.remove("/app/fill")
    facts["tmp"] = dd("/tmp/fill", 200)
    os.remove("/tmp/fill")
    facts["app_10mb"] = dd("/app/small", 10)
    os.remove("/app/small")
    st = os.statvfs("/app")
    facts["app_disk_mb"] = st.f_blocks * st.f_frsize // (1024 * 1024)
    return facts
def keep():
    # 1000 MB into /app, kept: without a quota the host would lose all of it.
    return dd("/app/keep", 1000)
ROUTES = {"/status": status, "/keyring": add_key, "/inotify-exhaust": inotify_exhaust,
          "/inotify-one": inotify_one, "/tmp-write": tmp_write, "/tmp-read": tmp_read,
          "/fill": fill, "/keep": keep}
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        route = ROUTES.get(self.path)
        body = json.dumps(route() if route else {"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
"##;

/// Starts a server (dyno disks of `disk_mb` MiB) with the probe pushed as `attacker` and
/// `victim`; both answer.
async fn two_probes(disk_mb: &str) -> Server {
    let server = Server::start_with(&["--dyno-disk-mb", disk_mb]);
    for app in ["attacker", "victim"] {
        server.cli_ok(&["apps:create", app]);
        server.cli_ok(&["config:set", &format!("APP={app}"), "-a", app]);
        let source = repo(&[("Procfile", "web: python3 probe.py\n"), ("probe.py", PROBE)]);
        let push = server.push(app, source.path());
        assert!(
            push.status.success(),
            "push to {app} failed:\n{}\n{}",
            text(&push),
            server.log()
        );
        server.wait_for_200(app, "/").await;
    }
    server
}

async fn probe(server: &Server, app: &str, path: &str) -> Value {
    let response = server.get(app, path).await;
    assert_eq!(response.status(), 200, "{app}{path}");
    response.json().await.expect("JSON from the probe")
}

fn uid_of(status: &Value) -> u64 {
    status["Uid"][0].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_app_has_its_own_uid_keyring_tmp_and_inotify_budget() {
    require_runc!();
    let server = two_probes("2048").await;

    // Own uids (real, effective, saved, fs all the same), from the configured range, gid too;
    // no capabilities, seccomp filtering, no_new_privs.
    let attacker = probe(&server, "attacker", "/status").await;
    let victim = probe(&server, "victim", "/status").await;
    for status in [&attacker, &victim] {
        let uid = uid_of(status);
        assert!((100_000..=165_535).contains(&uid), "{status}");
        assert_eq!(status["Uid"], serde_json::json!(vec![uid.to_string(); 4]));
        assert_eq!(status["Gid"], serde_json::json!(vec![uid.to_string(); 4]));
        assert_eq!(status["CapEff"][0], "0000000000000000");
        assert_eq!(status["Seccomp"][0], "2");
        assert_eq!(status["NoNewPrivs"][0], "1");
        // The slug is unpacked for the app's own uid: it can edit its files in /app.
        assert_eq!(status["procfile_owner"], serde_json::json!([uid, uid]));
        assert_eq!(status["procfile_editable"], true, "{status}");
    }
    assert_ne!(uid_of(&attacker), uid_of(&victim), "two apps, two uids");

    // The keyring: seccomp refuses add_key and keyctl outright (EPERM), so nothing can be
    // planted for another tenant to find.
    for app in ["attacker", "victim"] {
        let keyring = probe(&server, app, "/keyring").await;
        assert_eq!(keyring["add_key"], -1, "{app}: {keyring}");
        assert_eq!(keyring["add_key_errno"], 1, "{app}: {keyring}");
        assert_eq!(keyring["search"], -1, "{app}: {keyring}");
        assert_eq!(keyring["search_errno"], 1, "{app}: {keyring}");
    }

    // /tmp: what the attacker writes there, the victim does not see.
    probe(&server, "attacker", "/tmp-write").await;
    let own = probe(&server, "attacker", "/tmp-read").await;
    assert_eq!(own["content"], "secret of attacker");
    let other = probe(&server, "victim", "/tmp-read").await;
    assert_eq!(other["content"], Value::Null, "{other}");

    // inotify instances are counted per uid (fs.inotify.max_user_instances): the attacker
    // takes all of its own, and the victim can still make one.
    let limit: u64 = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let exhausted = probe(&server, "attacker", "/inotify-exhaust").await;
    assert_eq!(exhausted["errno"], 24, "EMFILE at the limit: {exhausted}");
    assert!(
        exhausted["held"].as_u64().unwrap() <= limit,
        "{exhausted} (limit {limit})"
    );
    let again = probe(&server, "attacker", "/inotify-one").await;
    assert_eq!(
        again["ok"], false,
        "the attacker's own budget is used up: {again}"
    );
    let victim_one = probe(&server, "victim", "/inotify-one").await;
    assert_eq!(
        victim_one["ok"], true,
        "the victim's budget is its own: {victim_one}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dyno_past_its_disk_quota_gets_enospc_and_nobody_else_notices() {
    require_runc!();
    let server = two_probes("64").await;
    let host_free = || {
        let st = nix::sys::statvfs::statvfs(server.data_dir.as_path()).unwrap();
        st.blocks_available() * st.fragment_size()
    };
    let before = host_free();
    let filled = probe(&server, "attacker", "/fill").await;
    let kept = probe(&server, "attacker", "/keep").await;
    let after = host_free();
    assert_eq!(kept["rc"], 1, "{kept}");
    assert_eq!(kept["enospc"], true, "{kept}");
    // 200 MB into /app and 200 MB into /tmp: each stops at the 64 MiB disk, with ENOSPC.
    assert_eq!(filled["app"]["rc"], 1, "{filled}");
    assert_eq!(filled["app"]["enospc"], true, "{filled}");
    assert_eq!(filled["tmp"]["rc"], 1, "{filled}");
    assert_eq!(filled["tmp"]["enospc"], true, "{filled}");
    assert_eq!(
        filled["app_10mb"]["rc"], 0,
        "space is back once freed: {filled}"
    );
    let disk_mb = filled["app_disk_mb"].as_u64().unwrap();
    assert!((48..=64).contains(&disk_mb), "a 64 MiB disk: {filled}");
    // About the 64 MiB quota, with slack for whatever else writes on this machine meanwhile;
    // far below the 1000 MB the attacker keeps trying to hold.
    assert!(
        before.saturating_sub(after) < 250 * 1024 * 1024,
        "the host lost {} MiB",
        before.saturating_sub(after) / (1024 * 1024)
    );
    // The victim writes as usual.
    let victim = probe(&server, "victim", "/fill").await;
    assert_eq!(victim["app_10mb"]["rc"], 0, "{victim}");
    assert_eq!(probe(&server, "victim", "/status").await["Seccomp"][0], "2");
}
