#!/usr/bin/env bash
# Benchmark (not a test): the platform on etcd against the embedded SQLite store, one
# server each, on loopback. Prints medians and the etcd/SQLite ratios:
#   - API latency: GETS x `GET /apps/bench`, SETS x `PATCH /apps/bench/config-vars` (a release
#     each, on an app without dynos, so it is the store's work alone);
#   - dyno start latency: `ps:scale web=DYNOS` from 0 to every dyno `up`, ROUNDS times;
#   - etcd traffic per dyno state change: etcd's own /metrics counters (committed raft
#     proposals, ranges, gRPC
#     bytes received and sent) read before and after the scale rounds, divided by the state
#     changes the rounds made (each dyno starting -> up, then up -> down: DYNOS x ROUNDS x 4,
#     counting `starting`, `up`, `stopping`/`down` and the record's removal as Heroku's
#     `State changed` lines do).
#
#   bench/etcd.sh [GETS] [SETS] [DYNOS] [ROUNDS]    (as root; default 200 50 3 3)
#   SLIPWAY_BIN=target/debug/slipway bench/etcd.sh 20 5 1 1    (a short smoke run)
#
# etcd runs as one member with --max-txn-ops 10000 (deleting a big app is one transaction
# of more than etcd's default 128 operations) and its data on tmpfs, so the figures are the
# platform's round trips, not a disk's fsyncs.
set -euo pipefail
cd "$(dirname "$0")/.."
gets=${1:-200}; sets=${2:-50}; dynos=${3:-3}; rounds=${4:-3}
. bench/lib.sh

etcd_dir=$(mktemp -d /dev/shm/slipway-bench-etcd-XXXXXX)
etcd_port=5720
etcd --name bench --data-dir "$etcd_dir/data" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$((etcd_port + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((etcd_port + 1))" \
  --initial-cluster "bench=http://127.0.0.1:$((etcd_port + 1))" --max-txn-ops 10000 \
  --log-level warn --logger zap >"$etcd_dir/etcd.log" 2>&1 &
etcd_pid=$!
stop_etcd() { kill "$etcd_pid" 2>/dev/null || true; wait "$etcd_pid" 2>/dev/null || true; rm -rf "$etcd_dir"; }
trap stop_etcd EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$etcd_port/health" >/dev/null && break; sleep 0.1; done

median() { sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)] * 1000}'; }
# etcd 3.4 names its MVCC counters etcd_debugging_mvcc_*, later versions etcd_mvcc_*.
counter() { curl -s "http://127.0.0.1:$etcd_port/metrics" | awk -v n="$1" '$1 == n || $1 == "etcd_debugging_" substr(n, 6) {s += $2} END {printf "%d", s}'; }
up() { "$bin" ps -a bench 2>/dev/null | grep -c '^web\.[0-9]*: up' || true; }
count() { "$bin" ps -a bench 2>/dev/null | grep -c '^web\.' || true; }

# measure LABEL API_PORT ROUTER_PORT [server flags...]: prints "LABEL get set start" (ms).
measure() {
  local label=$1; shift
  (
    start_server "$@" >/dev/null
    for _ in $(seq 100); do curl -sf "$SLIPWAY_API_URL/apps" -H "Authorization: Bearer $SLIPWAY_API_KEY" >/dev/null && break; sleep 0.1; done
    "$bin" apps:create bench >/dev/null
    local h=(-H "Authorization: Bearer $SLIPWAY_API_KEY" -H "Accept: application/vnd.heroku+json; version=3")
    get=$(for _ in $(seq "$gets"); do curl -s -o /dev/null -w '%{time_total}\n' "${h[@]}" "$SLIPWAY_API_URL/apps/bench"; done | median)
    set_=$(for i in $(seq "$sets"); do curl -s -o /dev/null -w '%{time_total}\n' "${h[@]}" -X PATCH \
      -H 'Content-Type: application/json' -d "{\"BENCH\":\"$i\"}" "$SLIPWAY_API_URL/apps/bench/config-vars"; done | median)

    mkdir "$work/app" && cd "$work/app"
    git init -q -b main
    printf 'web: python3 -m http.server $PORT\n' > Procfile
    git add -A && git -c user.email=b@b -c user.name=b commit -qm app
    git push -q "http://x:$SLIPWAY_API_KEY@${SLIPWAY_API_URL#http://}/bench.git" main 2>/dev/null
    until [ "$(up)" -ge 1 ]; do sleep 0.1; done
    "$bin" ps:scale web=0 -a bench >/dev/null
    until [ "$(count)" -eq 0 ]; do sleep 0.1; done
    writes0=$(counter etcd_server_proposals_committed_total)
    txns0=$(counter etcd_mvcc_txn_total); ranges0=$(counter etcd_mvcc_range_total)
    rx0=$(counter etcd_network_client_grpc_received_bytes_total); tx0=$(counter etcd_network_client_grpc_sent_bytes_total)
    starts=$(for _ in $(seq "$rounds"); do
      t0=$(date +%s.%N)
      "$bin" ps:scale "web=$dynos" -a bench >/dev/null
      until [ "$(up)" -ge "$dynos" ]; do sleep 0.05; done
      echo "$(date +%s.%N) - $t0" | bc
      "$bin" ps:scale web=0 -a bench >/dev/null
      until [ "$(count)" -eq 0 ]; do sleep 0.1; done
    done | median)
    changes=$((dynos * rounds * 4))
    echo "$label $get $set_ $starts $(( $(counter etcd_server_proposals_committed_total) - writes0 )) $(( ($(counter etcd_mvcc_txn_total) - txns0) )) $(( ($(counter etcd_mvcc_range_total) - ranges0) )) $(( ($(counter etcd_network_client_grpc_received_bytes_total) - rx0) + ($(counter etcd_network_client_grpc_sent_bytes_total) - tx0) )) $changes"
  )
}

sqlite=$(measure sqlite 5730 8730)
etcd_line=$(measure etcd 5740 8740 --store "etcd://127.0.0.1:$etcd_port/bench-$$")
stop_etcd
read -r _ sg ss sd _ _ _ _ _ <<<"$sqlite"
read -r _ eg es ed writes txns ranges bytes changes <<<"$etcd_line"
ratio() { echo "scale=2; $1 / $2" | bc; }
echo "GET /apps/x median: sqlite ${sg} ms, etcd ${eg} ms (x$(ratio "$eg" "$sg"))"
echo "config:set median: sqlite ${ss} ms, etcd ${es} ms (x$(ratio "$es" "$ss"))"
echo "ps:scale web=$dynos to all up, median of $rounds: sqlite ${sd} ms, etcd ${ed} ms (x$(ratio "$ed" "$sd"))"
echo "etcd per dyno state change ($changes changes): $(ratio "$writes" "$changes") committed writes (raft proposals), $(ratio "$ranges" "$changes") ranges, $(ratio "$bytes" "$changes") gRPC bytes"
