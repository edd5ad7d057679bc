#!/usr/bin/env bash
# Benchmark (not a test): waking a sleeping eco app. An app whose web dyno is eco sleeps after
# `--idle-after` (1 s here) without traffic; the next request wakes it. For N wake-ups it
# measures, from the client, the time from sending the request to the complete response, and,
# from the dyno's own log lines, the app's boot time (`Starting process` to `State changed from
# starting to up`, which includes the container start and the app binding $PORT). The
# difference is what the platform adds on top of the app's boot (goal: under 300 ms).
#
#   bench/wake.sh [N]      (as root; default N=10; builds the release binary if needed)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10}
. bench/lib.sh
api_port=5620; router_port=8620
start_server $api_port $router_port --idle-after 1
"$bin" apps:create wake >/dev/null

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
git push -q "http://x:$SLIPWAY_API_KEY@127.0.0.1:$api_port/wake.git" main 2>/dev/null
"$bin" ps:type web=eco -a wake >/dev/null

idle() { "$bin" ps -a wake 2>/dev/null | grep -q '^web\.1: idle'; }
: > "$work/requests"
for i in $(seq "$n"); do
  until idle; do sleep 0.1; done
  sleep 0.3
  curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -H 'Host: wake.localhost' \
    "http://127.0.0.1:$router_port/" >> "$work/requests"
done
"$bin" logs -n 1500 -a wake > "$work/log"
python3 - "$work/requests" "$work/log" <<'PY'
import sys, re, statistics
from datetime import datetime
requests = [l.split() for l in open(sys.argv[1])]
codes = [c for c, _ in requests]
totals = [float(t) * 1000 for _, t in requests]
stamp = lambda line: datetime.fromisoformat(line.split()[0])
boots, start = [], None
unidled = False
for line in open(sys.argv[2]):
    if "heroku[web.1]: Unidling" in line:
        unidled = True
    elif unidled and "heroku[web.1]: Starting process" in line:
        start = stamp(line)
    elif start and "heroku[web.1]: State changed from starting to up" in line:
        boots.append((stamp(line) - start).total_seconds() * 1000)
        start, unidled = None, False
def pct(xs, p):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]
n = len(totals)
print(f"{n} wake-ups, HTTP statuses: {sorted(set(codes))} (all must be 200)")
print(f"request -> response (client): median {statistics.median(totals):.0f} ms, p90 {pct(totals, 90):.0f} ms")
if len(boots) == n:
    over = [t - b for t, b in zip(totals, boots)]
    print(f"app boot (Starting process -> up): median {statistics.median(boots):.0f} ms, p90 {pct(boots, 90):.0f} ms")
    print(f"overhead on top of the boot: median {statistics.median(over):.0f} ms, p90 {pct(over, 90):.0f} ms (goal < 300 ms)")
else:
    print(f"found {len(boots)} boots in the log for {n} wake-ups; cannot compute the overhead")
PY
