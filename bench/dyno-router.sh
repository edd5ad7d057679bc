#!/usr/bin/env bash
# Benchmark (not a test): HTTP throughput and latency through the router to a real dyno, and
# what a heavy build on the same host does to that app's latency.
#
#   bench/dyno-router.sh [seconds]      (as root; builds the release binary if needed)
#
# The dyno runs nginx from the stack (so the backend is not the bottleneck) and answers 13 B.
# wrk runs with one thread and 50 keep-alive connections against the router. Then, while a build
# that burns every core and 1.5 GB of memory runs for another app (a Node.js `preinstall`
# script), the same load again: the p99 ratio "during the build / idle" is what a build costs a
# running app. Set SLIPWAY_BIN to compare binaries (e.g. before and after a change) in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
. bench/lib.sh
api_port=5630; router_port=8630
start_server $api_port $router_port
"$bin" apps:create fast >/dev/null
"$bin" apps:create heavy >/dev/null

mkdir "$work/fast" && cd "$work/fast"
git init -q -b main
cat > start.sh <<'SH'
mkdir -p /tmp/nginx
cat > /tmp/nginx/nginx.conf <<CONF
worker_processes 1;
pid /tmp/nginx/nginx.pid;
error_log stderr;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path /tmp/nginx; proxy_temp_path /tmp/nginx; fastcgi_temp_path /tmp/nginx;
  uwsgi_temp_path /tmp/nginx; scgi_temp_path /tmp/nginx;
  server { listen $PORT; location / { return 200 "hello, world\n"; } }
}
CONF
exec /usr/sbin/nginx -e stderr -c /tmp/nginx/nginx.conf -g 'daemon off;'
SH
echo "web: bash start.sh" > Procfile
git add -A && git -c user.email=b@b -c user.name=b commit -qm app
git push -q "http://x:$SLIPWAY_API_KEY@127.0.0.1:$api_port/fast.git" main 2>/dev/null
until curl -sf -H 'Host: fast.localhost' "http://127.0.0.1:$router_port/" >/dev/null; do sleep 0.1; done

load() {
  wrk -t1 -c50 -d"${secs}s" --latency -H 'Host: fast.localhost' "http://127.0.0.1:$router_port/" \
    | awk '/Requests\/sec/ {rps=$2} /^ +99%/ {p99=$2} /^ +50%/ {p50=$2} END {print rps, p50, p99}'
}
ms() { python3 -c "import sys; v=sys.argv[1]; print(float(v[:-2])/1000 if v.endswith('us') else float(v[:-2]) if v.endswith('ms') else float(v[:-1])*1000)" "$1"; }

read -r idle_rps idle_p50 idle_p99 < <(load)

mkdir "$work/heavy" && cd "$work/heavy"
git init -q -b main
cat > package.json <<'JSON'
{ "name": "heavy", "version": "1.0.0",
  "scripts": { "preinstall": "node burn.js", "start": "node -e 0" } }
JSON
cat > burn.js <<JS
// Every core busy and 1.5 GB allocated for $((secs + 5)) s: what a big compile does.
const { Worker } = require('worker_threads');
const end = Date.now() + $((secs + 5)) * 1000;
const hog = [];
for (let i = 0; i < 6; i++) hog.push(Buffer.alloc(256 * 1024 * 1024, 1));
for (let i = 0; i < 3; i++) new Worker('const end = ' + end + '; while (Date.now() < end) {}', { eval: true });
setTimeout(() => process.exit(0), end - Date.now());
JS
git add -A && git -c user.email=b@b -c user.name=b commit -qm app
git push -q "http://x:$SLIPWAY_API_KEY@127.0.0.1:$api_port/heavy.git" main >/dev/null 2>&1 &
push=$!
sleep 3
read -r busy_rps busy_p50 busy_p99 < <(load)
wait $push || true

python3 - "$idle_rps" "$(ms "$idle_p50")" "$(ms "$idle_p99")" "$busy_rps" "$(ms "$busy_p50")" "$(ms "$busy_p99")" <<'PY'
import sys
ir, i50, i99, br, b50, b99 = map(float, sys.argv[1:])
print(f"router -> nginx dyno, idle host:       {ir:10.0f} req/s  p50 {i50:6.2f} ms  p99 {i99:6.2f} ms")
print(f"router -> nginx dyno, during a build:  {br:10.0f} req/s  p50 {b50:6.2f} ms  p99 {b99:6.2f} ms")
print(f"p99 during the build / idle: {b99 / i99:.2f}x; throughput {br / ir:.2f}x")
PY
