#!/usr/bin/env bash
# Benchmark (not a test): for a Procfile-only app, the time from the start of `git push` to the
# first 200 through the router, and from container start to the web dyno being up.
#
#   bench/push-to-serve.sh [iterations]      (as root; builds the release binary if needed)
#
# Each iteration pushes a new commit (a new slug and release). The container-start-to-up time
# comes from the dyno's own log lines (`Starting process` → `State changed from starting to up`).
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=${1:-10}
. bench/lib.sh
api_port=5600; router_port=8600
start_server $api_port $router_port
"$bin" apps:create bench >/dev/null

mkdir "$work/app" && cd "$work/app"
git init -q -b main
cat > server.py <<'PY'
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = os.environ.get("REVISION", "?").encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
PY

python3 - "$iterations" "$api_port" "$router_port" "$SLIPWAY_API_KEY" "$bin" <<'PY'
import subprocess, sys, time, urllib.request, statistics, re, datetime
iterations, api_port, router_port, key, binary = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
push_to_200, start_to_up = [], []
for i in range(iterations):
    with open("Procfile", "w") as f:
        f.write(f"web: REVISION={i} python3 server.py\n")
    subprocess.run(["git", "add", "-A"], check=True)
    subprocess.run(["git", "-c", "user.email=b@b", "-c", "user.name=b", "commit", "-qm", f"r{i}"], check=True)
    start = time.monotonic()
    subprocess.run(["git", "push", "-q", f"http://x:{key}@127.0.0.1:{api_port}/bench.git", "main"], check=True, capture_output=True)
    while True:
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{router_port}/", headers={"Host": "bench.localhost"})
            if urllib.request.urlopen(req, timeout=5).read().decode() == str(i):
                break
        except Exception:
            pass
        time.sleep(0.002)
    push_to_200.append((time.monotonic() - start) * 1000)
logs = subprocess.run([binary, "logs", "-a", "bench", "-n", "1500", "--ps", "web.1"], capture_output=True, text=True).stdout
started = None
for line in logs.splitlines():
    ts = datetime.datetime.fromisoformat(line.split(" ")[0])
    if "Starting process with command" in line:
        started = ts
    elif "State changed from starting to up" in line and started:
        start_to_up.append((ts - started).total_seconds() * 1000)
        started = None
def report(name, values):
    values = sorted(values)
    p = lambda q: values[min(len(values) - 1, int(q * len(values)))]
    print(f"{name:<38} n={len(values):<3} median={statistics.median(values):7.1f} ms  p90={p(0.9):7.1f} ms  min={values[0]:7.1f} ms")
report("git push start -> first 200 (new rev)", push_to_200)
report("container start -> web dyno up", start_to_up)
PY
