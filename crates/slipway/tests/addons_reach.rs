//! Add-on servers are reachable per app, end to end: the real binary, its embedded PostgreSQL
//! and Redis, runc dynos that try a plain TCP connection to the servers' ports from inside
//! their network namespace. A dyno (web or one-off) of an app without an add-on cannot open a
//! connection to either server at all; attaching another app's database opens it to that
//! app's new dynos, and detaching closes it again. An operator's PostgreSQL
//! (`--addon-postgres-admin-url`, here in a network namespace of the test's own) is reached
//! over the dynos' NAT as any outside address. They need root, runc, PostgreSQL 15 and
//! redis-server, and skip loudly otherwise.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{repo, runc_available, Server};

/// A web dyno that probes TCP ports (`/probe?t=HOST:PORT,...`: `open` or `closed` each) and
/// queries PostgreSQL and Redis through a config var (`/pg?var=...`, `/redis`).
const REACH_APP: &str = r#"
import http.server, os, socket, subprocess, urllib.parse
PSQL = "/usr/lib/postgresql/15/bin/psql"
def run(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        return (p.stdout + p.stderr).strip()
    except Exception as e:
        return "error: %s" % e
def probe(targets):
    out = []
    for target in targets.split(","):
        host, port = target.rsplit(":", 1)
        s = socket.socket()
        s.settimeout(1.5)
        try:
            s.connect((host, int(port)))
            out.append("open")
        except Exception as e:
            out.append("closed")
        finally:
            s.close()
    return " ".join(out)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        if u.path == "/probe":
            out = probe(q["t"][0])
        elif u.path == "/pg":
            url = os.environ.get(q.get("var", ["DATABASE_URL"])[0], "")
            out = run([PSQL, "-X", "-A", "-t", "-c", "SELECT 1", url]) if url else "no url"
        elif u.path == "/redis":
            url = os.environ.get("REDIS_URL", "")
            out = run(["redis-cli", "--no-auth-warning", "-u", url, "PING"]) if url else "no url"
        else:
            out = "ok"
        b = out.encode()
        self.send_response(200)
        self.send_header("content-length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("", int(os.environ["PORT"])), H).serve_forever()
"#;

/// The same probe for a one-off dyno: `python3 -c PROBE HOST:PORT,...`.
const PROBE: &str = r#"
import socket, sys
out = []
for target in sys.argv[1].split(","):
    host, port = target.rsplit(":", 1)
    s = socket.socket()
    s.settimeout(1.5)
    try:
        s.connect((host, int(port)))
        out.append("open")
    except Exception:
        out.append("closed")
    finally:
        s.close()
print("probe: " + " ".join(out))
"#;

fn available(test: &str) -> bool {
    if !runc_available() {
        eprintln!("SKIPPED {test}: needs root and runc");
        return false;
    }
    for path in [
        "/usr/lib/postgresql/15/bin/postgres",
        "/usr/lib/postgresql/15/bin/initdb",
        "/usr/lib/postgresql/15/bin/psql",
        "/usr/bin/redis-server",
        "/usr/bin/redis-cli",
    ] {
        if !Path::new(path).exists() {
            eprintln!("SKIPPED {test}: needs {path} (apt-get install postgresql redis-server)");
            return false;
        }
    }
    true
}

async fn deploy(server: &Server, app: &str) {
    server.cli_ok(&["apps:create", app]);
    let dir = repo(&[
        ("Procfile", "web: python3 server.py\n"),
        ("server.py", REACH_APP),
    ]);
    server.push_ok(app, dir.path());
    server.wait_for_200(app, "/").await;
}

/// Polls the app's `path` until its body satisfies `done`; returns it.
async fn wait_for_body(
    server: &Server,
    app: &str,
    path: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(response) = server.get(app, path).await.error_for_status() {
            last = response.text().await.unwrap_or_default();
            if done(&last) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{app}{path} never matched; last: {last}\nserver log:\n{}",
        server.log()
    );
}

/// `host:port` of a config var's URL.
async fn endpoint(server: &Server, app: &str, var: &str) -> String {
    let config = server.api_json(&format!("/apps/{app}/config-vars")).await;
    let url = config[var]
        .as_str()
        .unwrap_or_else(|| panic!("{var} missing from {app}'s config"));
    let url = reqwest::Url::parse(url).unwrap();
    format!("{}:{}", url.host_str().unwrap(), url.port().unwrap())
}

/// What a one-off dyno of `app` sees probing `targets`.
fn one_off_probe(server: &Server, app: &str, targets: &str) -> String {
    let out = server.cli(&["run", "-a", app, "--", "python3", "-c", PROBE, targets]);
    let text = support::text(&out);
    assert!(out.status.success(), "{text}\n{}", server.log());
    text.lines()
        .find_map(|line| line.trim().strip_prefix("probe: "))
        .unwrap_or_else(|| panic!("no probe line in {text}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dyno_reaches_its_own_apps_add_on_servers_and_no_others() {
    if !available("a_dyno_reaches_its_own_apps_add_on_servers_and_no_others") {
        return;
    }
    let server = Server::start();
    deploy(&server, "reacha").await;
    deploy(&server, "reachb").await;
    server.cli_ok(&["addons:create", "heroku-postgresql", "-a", "reacha"]);
    server.cli_ok(&["addons:create", "heroku-redis", "-a", "reacha"]);
    let pg = endpoint(&server, "reacha", "DATABASE_URL").await;
    let redis = endpoint(&server, "reacha", "REDIS_URL").await;
    let both = format!("/probe?t={pg},{redis}");

    // A's dynos reach both servers and use them.
    assert_eq!(
        wait_for_body(&server, "reacha", "/pg", |b| b == "1").await,
        "1"
    );
    assert_eq!(
        wait_for_body(&server, "reacha", "/redis", |b| b == "PONG").await,
        "PONG"
    );
    assert_eq!(
        wait_for_body(&server, "reacha", &both, |_| true).await,
        "open open"
    );
    assert_eq!(
        one_off_probe(&server, "reacha", &format!("{pg},{redis}")),
        "open open"
    );

    // B has no add-on: neither its web dyno nor a one-off one can open a connection.
    assert_eq!(
        wait_for_body(&server, "reachb", &both, |_| true).await,
        "closed closed"
    );
    assert_eq!(
        one_off_probe(&server, "reachb", &format!("{pg},{redis}")),
        "closed closed"
    );

    // Attaching A's database to B opens PostgreSQL (and only it) to B's new dynos.
    let name = server
        .api_json("/apps/reacha/addons")
        .await
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["addon_service"]["name"] == "heroku-postgresql")
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .unwrap();
    server.cli_ok(&["addons:attach", &name, "-a", "reachb", "--as", "SHARED_DB"]);
    assert_eq!(
        wait_for_body(&server, "reachb", "/pg?var=SHARED_DB_URL", |b| b == "1").await,
        "1"
    );
    assert_eq!(
        wait_for_body(&server, "reachb", &both, |_| true).await,
        "open closed"
    );
    assert_eq!(
        one_off_probe(&server, "reachb", &format!("{pg},{redis}")),
        "open closed"
    );

    // Detaching closes it again for B's new dynos; A keeps both.
    server.cli_ok(&["addons:detach", "SHARED_DB", "-a", "reachb"]);
    assert_eq!(
        wait_for_body(&server, "reachb", &both, |b| b == "closed closed").await,
        "closed closed"
    );
    assert_eq!(
        one_off_probe(&server, "reachb", &format!("{pg},{redis}")),
        "closed closed"
    );
    assert_eq!(
        wait_for_body(&server, "reacha", &both, |_| true).await,
        "open open"
    );
}

/// An operator's PostgreSQL in a network namespace of its own ("outside" the host), joined
/// to the host by a veth with a /30 the test owns; stopped and removed when dropped.
struct OperatorPostgres {
    namespace: String,
    server: std::process::Child,
    address: String,
    _dir: tempfile::TempDir,
}

const OPERATOR_PASSWORD: &str = "operator-pg-s3cret";

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        support::text(&output)
    );
}

impl OperatorPostgres {
    fn start() -> OperatorPostgres {
        let n = std::process::id() % 250;
        let namespace = format!("slipway-extpg-{}", std::process::id());
        let (host_if, ns_if) = (format!("sxpg{n}h"), format!("sxpg{n}n"));
        let _ = Command::new("ip")
            .args(["netns", "del", &namespace])
            .stderr(Stdio::null())
            .status();
        run("ip", &["netns", "add", &namespace]);
        run(
            "ip",
            &[
                "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
            ],
        );
        run("ip", &["link", "set", &ns_if, "netns", &namespace]);
        run(
            "ip",
            &["addr", "add", &format!("10.216.{n}.1/30"), "dev", &host_if],
        );
        run("ip", &["link", "set", &host_if, "up"]);
        let exec = ["netns", "exec", &namespace, "ip"];
        let address = format!("10.216.{n}.2");
        run(
            "ip",
            &[
                &exec[..],
                &["addr", "add", &format!("{address}/30"), "dev", &ns_if],
            ]
            .concat(),
        );
        run("ip", &[&exec[..], &["link", "set", &ns_if, "up"]].concat());
        run("ip", &[&exec[..], &["link", "set", "lo", "up"]].concat());
        run(
            "ip",
            &[
                &exec[..],
                &["route", "add", "default", "via", &format!("10.216.{n}.1")],
            ]
            .concat(),
        );

        // A cluster owned by the postgres user, its admin logging in with a password over TCP.
        let dir = tempfile::Builder::new()
            .prefix("slipway-extpg-")
            .tempdir_in("/tmp")
            .unwrap();
        run(
            "chown",
            &["postgres:postgres", dir.path().to_str().unwrap()],
        );
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, OPERATOR_PASSWORD).unwrap();
        run("chown", &["postgres:postgres", pwfile.to_str().unwrap()]);
        run(
            "runuser",
            &[
                "-u",
                "postgres",
                "--",
                "/usr/lib/postgresql/15/bin/initdb",
                "-D",
                data.to_str().unwrap(),
                "-U",
                "operator",
                "--auth=scram-sha-256",
                &format!("--pwfile={}", pwfile.display()),
            ],
        );
        let hba = data.join("pg_hba.conf");
        let mut rules = std::fs::read_to_string(&hba).unwrap();
        rules.push_str("host all all 0.0.0.0/0 scram-sha-256\n");
        std::fs::write(&hba, rules).unwrap();
        let server = Command::new("ip")
            .args([
                "netns", "exec", &namespace, "runuser", "-u", "postgres", "--",
            ])
            .arg("/usr/lib/postgresql/15/bin/postgres")
            .arg("-D")
            .arg(&data)
            .args(["-c", &format!("listen_addresses={address}"), "-p", "5432"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.path().display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the operator's PostgreSQL");
        let postgres = OperatorPostgres {
            namespace,
            server,
            address: address.clone(),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect((address.as_str(), 5432)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the operator's PostgreSQL never listened"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        postgres
    }

    fn admin_url(&self) -> String {
        format!(
            "postgres://operator:{OPERATOR_PASSWORD}@{}:5432/postgres",
            self.address
        )
    }
}

impl Drop for OperatorPostgres {
    fn drop(&mut self) {
        // `ip netns exec` and `runuser` pass the signal on; postgres shuts down fast on SIGINT.
        let _ = Command::new("kill")
            .args(["-INT", &self.server.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.server.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.namespace])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_operators_postgres_is_reached_over_nat() {
    if !available("an_operators_postgres_is_reached_over_nat") {
        return;
    }
    let postgres = OperatorPostgres::start();
    let server = Server::start_with(&["--addon-postgres-admin-url", &postgres.admin_url()]);
    deploy(&server, "extpg").await;
    server.cli_ok(&["addons:create", "heroku-postgresql", "-a", "extpg"]);
    let pg = endpoint(&server, "extpg", "DATABASE_URL").await;
    assert_eq!(pg, format!("{}:5432", postgres.address));
    assert_eq!(
        wait_for_body(&server, "extpg", "/pg", |b| b == "1").await,
        "1"
    );
    // The embedded server's port at the gateway is no add-on port here: closed.
    let gateway = server
        .dyno_subnet
        .split('/')
        .next()
        .unwrap()
        .rsplit_once('.')
        .map(|(net, _)| format!("{net}.1"))
        .unwrap();
    assert_eq!(
        wait_for_body(
            &server,
            "extpg",
            &format!("/probe?t={gateway}:54320"),
            |_| true
        )
        .await,
        "closed"
    );
}
