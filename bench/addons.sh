#!/usr/bin/env bash
# Benchmark (not a test): PostgreSQL add-ons on the embedded server. It measures
#   - provision-to-query: from `addons:create heroku-postgresql` until the app's web dyno
#     (restarted onto its new DATABASE_URL) answers a `SELECT 1` through it, N times (a new
#     app each time), median and p90;
#   - pgbench (TPC-B-like, scale S, C clients, T seconds) through a one-off dyno's
#     DATABASE_URL, against the same database on the same server reached directly from the
#     host (same run, same scale, same URL): transactions per second and their ratio;
#   - server memory per provisioned database: the PSS (and RSS) of the embedded server's
#     processes before and after provisioning M more databases, delta / M. These databases
#     are idle (no app connects), so this is what a database costs the server by existing; a
#     connection adds a backend process of its own. The same for Redis, where each add-on is
#     a redis-server process of its own: the PSS (and RSS) of every redis-server whose
#     working directory (its `dir`) is below the platform's data dir, delta / M.
#
#   "Directly" means from the host to the same URL the dyno uses (the add-on server's
#   address on the dyno bridge, a local address of the host): the ratio is the cost of the
#   dyno's network namespace, veth and firewall path and its cgroup limits, nothing else.
#
#   bench/addons.sh [N] [M] [SCALE] [SECONDS]   (as root; defaults 5 10 5 20; builds the
#                                                release binary unless SLIPWAY_BIN is set)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-5}; m=${2:-10}; scale=${3:-5}; seconds=${4:-20}; clients=4
pgbench=/usr/lib/postgresql/15/bin/pgbench
[ -x "$pgbench" ] || { echo "needs $pgbench (apt-get install postgresql-contrib)" >&2; exit 1; }
. bench/lib.sh
api_port=5640; router_port=8640
start_server $api_port $router_port --api-tls-addr 127.0.0.1:5643 --rendezvous-addr 127.0.0.1:5644
# The embedded PostgreSQL runs as the postgres user, which must reach <data>/addons below it.
chmod 711 "$work"
"$bin" ca > "$work/ca.pem"
export SLIPWAY_CA_CERT=$work/ca.pem

mkdir "$work/app" && cd "$work/app"
git init -q -b main
cat > server.py <<'PY'
import http.server, os, subprocess
PSQL = "/usr/lib/postgresql/15/bin/psql"
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        url = os.environ.get("DATABASE_URL", "")
        out = b"no DATABASE_URL"
        if url:
            p = subprocess.run([PSQL, "-X", "-A", "-t", "-c", "SELECT 1", url], capture_output=True, timeout=20)
            out = (p.stdout + p.stderr).strip()
        self.send_response(200); self.send_header("Content-Length", str(len(out))); self.end_headers(); self.wfile.write(out)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("", int(os.environ["PORT"])), H).serve_forever()
PY
echo "web: python3 server.py" > Procfile
git add -A && git -c user.email=b@b -c user.name=b commit -qm app
cd - >/dev/null

ms() { echo $(( $(date +%s%N) / 1000000 )); }
get() { curl -s -m 5 -H "Host: $1.localhost" "http://127.0.0.1:$router_port/" || true; }

# Provision to first query.
: > "$work/provision.ms"
for i in $(seq "$n"); do
  app=pgq$i
  "$bin" apps:create "$app" >/dev/null
  git -C "$work/app" push -q "http://x:$SLIPWAY_API_KEY@127.0.0.1:$api_port/$app.git" main 2>/dev/null
  for _ in $(seq 600); do [ "$(get "$app")" = "no DATABASE_URL" ] && break; sleep 0.1; done
  [ "$(get "$app")" = "no DATABASE_URL" ] || { echo "$app never served" >&2; exit 1; }
  t0=$(ms)
  "$bin" addons:create heroku-postgresql -a "$app" >/dev/null
  for _ in $(seq 3000); do [ "$(get "$app")" = "1" ] && break; sleep 0.02; done
  [ "$(get "$app")" = "1" ] || { echo "$app never queried its database" >&2; exit 1; }
  echo $(( $(ms) - t0 )) >> "$work/provision.ms"
done

# pgbench: through a one-off dyno, then from the host, on the same database.
url=$("$bin" config:get DATABASE_URL -a pgq1)
"$pgbench" -q -i -s "$scale" "$url" >/dev/null 2>&1
bench_args="-n -c $clients -j $clients -T $seconds -S"
"$bin" run -a pgq1 -- sh -c "$pgbench $bench_args \"\$DATABASE_URL\"" </dev/null > "$work/dyno.out" 2>&1 || true
"$pgbench" $bench_args "$url" > "$work/host.out" 2>&1
tps() { grep -o 'tps = [0-9.]*' "$1" | tail -1 | awk '{print $3}'; }
dyno_tps=$(tps "$work/dyno.out"); host_tps=$(tps "$work/host.out")
[ -n "$dyno_tps" ] && [ -n "$host_tps" ] || { echo "pgbench failed:"; cat "$work/dyno.out" "$work/host.out"; exit 1; } >&2

# Memory per database: the embedded server's processes, before and after M more databases.
pidfile=$(find "$work/data/addons/postgres" -name postmaster.pid | head -1)
postmaster=$(head -1 "$pidfile")
mem() {  # prints "PSS_KB RSS_KB" summed over the postmaster and its children
  local pids pss=0 rss=0 p
  pids="$postmaster $(pgrep -P "$postmaster" | tr '\n' ' ')"
  for p in $pids; do
    [ -r "/proc/$p/smaps_rollup" ] || continue
    pss=$((pss + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup")))
    rss=$((rss + $(awk '/^Rss:/ {print $2}' "/proc/$p/smaps_rollup")))
  done
  echo "$pss $rss"
}
"$bin" apps:create pgmem >/dev/null
sleep 2
read -r pss0 rss0 < <(mem)
for i in $(seq "$m"); do "$bin" addons:create heroku-postgresql -a pgmem >/dev/null; done
sleep 2
read -r pss1 rss1 < <(mem)

# Redis: one redis-server per add-on, found by its working directory below the data dir.
redis_mem() {  # prints "PSS_KB RSS_KB COUNT" summed over this platform's redis-servers
  local pss=0 rss=0 count=0 p
  for p in $(pgrep -x redis-server || true); do
    case "$(readlink "/proc/$p/cwd" 2>/dev/null)" in "$work/data/"*) ;; *) continue ;; esac
    [ -r "/proc/$p/smaps_rollup" ] || continue
    pss=$((pss + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup")))
    rss=$((rss + $(awk '/^Rss:/ {print $2}' "/proc/$p/smaps_rollup")))
    count=$((count + 1))
  done
  echo "$pss $rss $count"
}
"$bin" apps:create rdmem >/dev/null
read -r rpss0 rrss0 rcount0 < <(redis_mem)
for i in $(seq "$m"); do "$bin" addons:create heroku-redis -a rdmem >/dev/null; done
sleep 2
read -r rpss1 rrss1 rcount1 < <(redis_mem)
[ $((rcount1 - rcount0)) -eq "$m" ] || { echo "expected $m more redis-servers, found $((rcount1 - rcount0))" >&2; exit 1; }

python3 - "$work/provision.ms" "$dyno_tps" "$host_tps" "$m" "$pss0" "$pss1" "$rss0" "$rss1" "$scale" "$seconds" "$clients" "$rpss0" "$rpss1" "$rrss0" "$rrss1" <<'PY'
import statistics, sys
f, dyno, host, m, pss0, pss1, rss0, rss1, scale, seconds, clients, rpss0, rpss1, rrss0, rrss1 = sys.argv[1:]
ms = sorted(int(x) for x in open(f))
p90 = ms[min(len(ms) - 1, int(round(0.9 * (len(ms) - 1))))]
print(f"addons:create -> first query from a dyno: median {statistics.median(ms):.0f} ms, p90 {p90} ms (n={len(ms)})")
dyno, host = float(dyno), float(host)
print(f"pgbench -S scale {scale}, {clients} clients, {seconds} s: dyno {dyno:.0f} tps, host {host:.0f} tps, dyno/host {dyno / host:.2f}")
m = int(m)
print(f"server memory: PSS {int(pss0) // 1024} -> {int(pss1) // 1024} MB for {m} more databases: {(int(pss1) - int(pss0)) / m / 1024:.2f} MB each "
      f"(RSS {int(rss0) // 1024} -> {int(rss1) // 1024} MB, {(int(rss1) - int(rss0)) / m / 1024:.2f} MB each)")
print(f"redis memory: PSS {int(rpss0) // 1024} -> {int(rpss1) // 1024} MB for {m} more add-ons: {(int(rpss1) - int(rpss0)) / m / 1024:.2f} MB each "
      f"(RSS {(int(rrss1) - int(rrss0)) / m / 1024:.2f} MB each)")
PY
