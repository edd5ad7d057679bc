#!/usr/bin/env bash
# Benchmark (not a test): `ps:scale web=N` on one host. Measures the time from the scale
# command to all N web dynos being `up`, and the server's own memory (RSS) per running dyno.
#
#   bench/dynos-scale.sh [N]      (as root; default N=50; builds the release binary if needed)
#
# RSS per dyno = (server RSS with N+1 dynos - server RSS with 1 dyno) / N, read from
# /proc/<server pid>/status. Dynos' own memory is not counted: it is the app's.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-50}
. bench/lib.sh
api_port=5610; router_port=8610
start_server $api_port $router_port --max-dynos-per-app $((n + 1))
"$bin" apps:create scale >/dev/null

mkdir "$work/app" && cd "$work/app"
git init -q -b main
cat > server.py <<'PY'
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = os.environ.get("DYNO", "?").encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
PY
echo "web: python3 server.py" > Procfile
git add -A && git -c user.email=b@b -c user.name=b commit -qm app
git push -q "http://x:$SLIPWAY_API_KEY@127.0.0.1:$api_port/scale.git" main 2>/dev/null

up() { "$bin" ps -a scale 2>/dev/null | grep -c '^web\.[0-9]*: up' || true; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$server/status"; }
until [ "$(up)" -ge 1 ]; do sleep 0.1; done
sleep 2
rss_one=$(rss)

start=$(date +%s.%N)
"$bin" ps:scale "web=$((n + 1))" -a scale >/dev/null
until [ "$(up)" -ge $((n + 1)) ]; do sleep 0.05; done
end=$(date +%s.%N)
sleep 2
rss_all=$(rss)
"$bin" logs -n 1500 -a scale > "$work/log"
python3 - "$n" "$start" "$end" "$rss_one" "$rss_all" <<'PY'
import sys
n, start, end, one, all_ = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
print(f"ps:scale web=1 -> web={n + 1}: all {n + 1} up after {end - start:.2f} s")
print(f"server RSS: {one / 1024:.1f} MiB with 1 dyno, {all_ / 1024:.1f} MiB with {n + 1}: "
      f"{(all_ - one) / n:.0f} KiB per additional dyno")
PY
# Where the time goes: when each dyno's container was started and when it came up, from the
# dyno manager's own log lines, relative to the first start.
python3 - "$work/log" "$n" <<'PY'
import sys
from datetime import datetime
starts, ups = {}, {}
for line in open(sys.argv[1]):
    parts = line.split()
    if len(parts) < 3 or not parts[1].startswith("heroku[web."):
        continue
    dyno = parts[1][len("heroku["):-2]
    if dyno == "web.1":
        continue
    stamp = datetime.fromisoformat(parts[0])
    if "Starting process" in line:
        starts.setdefault(dyno, stamp)
    elif "State changed from starting to up" in line:
        ups.setdefault(dyno, stamp)
if not starts:
    sys.exit(0)
t0 = min(starts.values())
rel = lambda t: (t - t0).total_seconds()
s = sorted(rel(t) for t in starts.values())
u = sorted(rel(t) for t in ups.values())
boot = sorted((ups[d] - starts[d]).total_seconds() for d in ups if d in starts)
print(f"containers started over {s[-1]:.2f} s (first to last 'Starting process'); "
      f"last up at {u[-1]:.2f} s; per-dyno start->up median {boot[len(boot)//2]:.2f} s, max {boot[-1]:.2f} s")
PY
