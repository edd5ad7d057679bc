#!/usr/bin/env bash
# Benchmark (not a test): one-off dynos. For N runs each it measures, from the client,
#   - `slipway run -a APP -- true` with stdin and stdout piped (no TTY), start to exit;
#   - `slipway run:detached -a APP -- true`, start to the command's return;
#   - the same attached run spoken by hand (Python, Slipway mode), split into POST /dynos,
#     the TLS connect to the rendezvous listener, the first byte (the listener's `Ready`,
#     sent once the container has started) and the exit (the listener closing);
#   - the peer: `runc run` of a trivial bundle (`true`, the host's /usr read-only, no network),
#     the container start alone, without the platform around it.
# It prints median and p90 for each, and the ratio to the peer (goal for `run -- true`: 250 ms).
#
#   bench/oneoff.sh [N]      (as root; default N=10; builds the release binary if needed)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10}
. bench/lib.sh
api_port=5630; router_port=8630
start_server $api_port $router_port --api-tls-addr 127.0.0.1:5633 --rendezvous-addr 127.0.0.1:5634
"$bin" apps:create oneoff >/dev/null

mkdir "$work/app" && cd "$work/app"
git init -q -b main
cat > server.py <<'PY'
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok"
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
PY
echo "web: python3 server.py" > Procfile
git add -A && git -c user.email=b@b -c user.name=b commit -qm app
git push -q "http://x:$SLIPWAY_API_KEY@127.0.0.1:$api_port/oneoff.git" main 2>/dev/null
"$bin" ca > "$work/ca.pem"
export SLIPWAY_CA_CERT=$work/ca.pem

# The peer: a runc bundle whose rootfs is the host's /usr, read-only, running `true`.
peer=$work/peer
mkdir -p "$peer/rootfs/usr" "$peer/rootfs/proc" "$peer/rootfs/dev" "$peer/rootfs/tmp"
for d in bin sbin lib lib64; do [ -e "/$d" ] && ln -s "usr/$d" "$peer/rootfs/$d"; done
(cd "$peer" && runc spec)
python3 - "$peer/config.json" <<'PY'
import json, sys
path = sys.argv[1]
spec = json.load(open(path))
spec["process"]["terminal"] = False
spec["process"]["args"] = ["true"]
spec["root"]["readonly"] = True
spec["mounts"].append({"destination": "/usr", "type": "bind", "source": "/usr", "options": ["rbind", "ro"]})
json.dump(spec, open(path, "w"))
PY
runc_root=$work/peer-runc

timed() {  # timed FILE CMD...: appends the wall time of CMD in ms to FILE; CMD must succeed.
  local file=$1; shift
  local t0 t1
  t0=$(date +%s%N)
  "$@" </dev/null >/dev/null 2>"$work/last.err" || { cat "$work/last.err" >&2; exit 1; }
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000)) >> "$file"
}
# A first run of each warms the slug cache and the page cache; it is not counted.
"$bin" run -a oneoff -- true </dev/null >/dev/null 2>&1
: > "$work/run.ms"; : > "$work/detached.ms"; : > "$work/peer.ms"
for i in $(seq "$n"); do
  timed "$work/run.ms" "$bin" run -a oneoff -- true
  timed "$work/detached.ms" "$bin" run:detached -a oneoff -- true
  timed "$work/peer.ms" runc --root "$runc_root" run --bundle "$peer" "peer-$i"
done
# The detached dynos end on their own; the hand-spoken runs below must not meet the cap.
for _ in $(seq 100); do "$bin" ps -a oneoff 2>/dev/null | grep -q '^run\.' || break; sleep 0.1; done

python3 - "$n" "$api_port" "$SLIPWAY_API_KEY" "$work" <<'PY'
import json, socket, ssl, statistics, sys, time, urllib.parse, urllib.request
n, api_port, key, work = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=f"{work}/ca.pem")
post, connect, first, exit_ = [], [], [], []
for _ in range(n):
    t0 = time.monotonic()
    req = urllib.request.Request(
        f"http://127.0.0.1:{api_port}/apps/oneoff/dynos", method="POST",
        data=json.dumps({"command": "true", "attach": True, "force_no_tty": True}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json",
                 "Accept": "application/vnd.heroku+json; version=3"})
    dyno = json.load(urllib.request.urlopen(req, timeout=20))
    t1 = time.monotonic()
    url = urllib.parse.urlparse(dyno["attach_url"])
    raw = socket.create_connection((url.hostname, url.port), timeout=20)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    tls = ctx.wrap_socket(raw, server_hostname=url.hostname)
    t2 = time.monotonic()
    tls.sendall((url.path.lstrip("/") + " slipway/1\r\n").encode())
    tls.recv(65536)
    t3 = time.monotonic()
    while tls.recv(65536):
        pass
    t4 = time.monotonic()
    tls.close()
    for xs, a, b in ((post, t0, t1), (connect, t1, t2), (first, t2, t3), (exit_, t3, t4)):
        xs.append((b - a) * 1000)
def pct(xs, p):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]
def load(name):
    return [int(l) / 1000 for l in open(f"{work}/{name}.ms")]
peer = load("peer")
peer_median = statistics.median(peer)
rows = [
    ("slipway run -- true (piped)", load("run")),
    ("slipway run:detached -- true", load("detached")),
    ("by hand: POST /dynos", post),
    ("by hand: TLS connect", connect),
    ("by hand: secret -> first byte (Ready)", first),
    ("by hand: first byte -> exit", exit_),
    ("by hand: total", [a + b + c + d for a, b, c, d in zip(post, connect, first, exit_)]),
    ("peer: runc run of a `true` bundle", peer),
]
print(f"{n} runs each; ratios are medians over the peer's median ({peer_median:.0f} ms)")
print(f"{'':<40}{'median':>10}{'p90':>10}{'ratio':>8}")
for name, xs in rows:
    m = statistics.median(xs)
    print(f"{name:<40}{m:>8.0f}ms{pct(xs, 90):>8.0f}ms{m / peer_median:>7.1f}x")
PY
