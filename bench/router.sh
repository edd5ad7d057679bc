#!/usr/bin/env bash
# Benchmark of Slipway's router on loopback (not a test): wrk against
#   (a) the backend directly, (b) nginx as a keep-alive reverse proxy, (c) Slipway's router,
# each with a 13-byte and a 100 KB response, with keep-alive clients and with a new connection
# per request (`Connection: close`). Prints req/s, p50, p99 and ratios to direct and to nginx,
# then the router's resident memory with IDLE_CONNECTIONS (10,000) idle client connections open.
# Bounded: DURATION seconds per case (default 10), 12 cases.
# Knobs: DURATION, CONNECTIONS (50), THREADS (wrk threads, 1), BENCH_ROUTER_THREADS (router's
# tokio workers; default one per core, 0 = current-thread runtime), IDLE_CONNECTIONS,
# CARGO_TARGET_DIR. The examples are built with fat LTO and one codegen unit through
# CARGO_PROFILE_RELEASE_* variables (the workspace's release profile is left alone).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-50}"
THREADS="${THREADS:-1}"
IDLE_CONNECTIONS="${IDLE_CONNECTIONS:-10000}"
ulimit -n "$(( IDLE_CONNECTIONS * 2 + 1024 ))" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BACKEND=127.0.0.1:18081
NGINX=127.0.0.1:18082
ROUTER=127.0.0.1:18083

for tool in wrk nginx cargo; do
    command -v "$tool" >/dev/null || { echo "bench/router.sh needs $tool on PATH" >&2; exit 1; }
done

echo "building release examples (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)..." >&2
(cd "$ROOT" && CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
    cargo build --quiet --release -p slipway-router --examples)
BIN="$CARGO_TARGET_DIR/release/examples"

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listening on $1" >&2
    exit 1
}

"$BIN/bench_backend" "$BACKEND" 2>"$WORK/backend.log" &
PIDS+=($!)
"$BIN/bench_router" "$ROUTER" "$BACKEND" 2>"$WORK/router.log" &
PIDS+=($!)

mkdir -p "$WORK/nginx/logs"
cat >"$WORK/nginx/nginx.conf" <<NGINX
daemon off;
worker_processes auto;
error_log $WORK/nginx/logs/error.log warn;
pid $WORK/nginx/nginx.pid;
events { worker_connections 20000; }
http {
    access_log off;
    upstream backend { server $BACKEND; keepalive 64; keepalive_timeout 90s; }
    server {
        listen $NGINX;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_buffering on;
        }
    }
}
NGINX
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
PIDS+=($!)

wait_port "$BACKEND"; wait_port "$NGINX"; wait_port "$ROUTER"

# run NAME ADDR PATH [EXTRA_HEADER] -> "req/s p50 p99"
run() {
    local out extra=()
    [[ -n "${4:-}" ]] && extra=(-H "$4")
    out="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency \
        -H 'Host: bench.localhost' "${extra[@]}" "http://$2$3")"
    echo "$out" >"$WORK/wrk-$1.txt"
    if grep -q "Non-2xx" <<<"$out"; then
        echo "case $1 got non-2xx answers:" >&2; echo "$out" >&2; exit 1
    fi
    local rps p50 p99
    rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
    p50="$(awk '$1 == "50%" {print $2}' <<<"$out")"
    p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
    echo "$rps $p50 $p99"
}

# wrk latency ("512.00us", "1.20ms", "2.00s") -> microseconds
to_us() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /s$/) print n * 1000000; else print n
    }'
}

declare -A RPS P50 P99
printf '%-10s %-8s %-8s %12s %10s %10s\n' "conn" "size" "via" "req/s" "p50" "p99"
for mode in keepalive close; do
    header=""; [[ $mode == close ]] && header="Connection: close"
    for size in small 100k; do
        path=/; [[ $size == 100k ]] && path=/100k
        for via in direct nginx slipway; do
            case $via in direct) addr=$BACKEND ;; nginx) addr=$NGINX ;; slipway) addr=$ROUTER ;; esac
            read -r rps p50 p99 < <(run "$mode-$size-$via" "$addr" "$path" "$header")
            RPS[$mode-$size-$via]=$rps
            P50[$mode-$size-$via]=$(to_us "$p50")
            P99[$mode-$size-$via]=$(to_us "$p99")
            printf '%-10s %-8s %-8s %12s %10s %10s\n' "$mode" "$size" "$via" "$rps" "$p50" "$p99"
        done
    done
done
echo
for mode in keepalive close; do
    for size in small 100k; do
        k="$mode-$size"
        awk -v k="$k" \
            -v d="${RPS[$k-direct]}" -v n="${RPS[$k-nginx]}" -v r="${RPS[$k-slipway]}" \
            -v d99="${P99[$k-direct]}" -v n99="${P99[$k-nginx]}" -v r99="${P99[$k-slipway]}" \
            -v d50="${P50[$k-direct]}" -v n50="${P50[$k-nginx]}" -v r50="${P50[$k-slipway]}" \
            'BEGIN { printf "%-16s req/s slipway/direct=%.2f slipway/nginx=%.2f | p50 slipway/direct=%.2f slipway/nginx=%.2f | p99 slipway/direct=%.2f slipway/nginx=%.2f, slipway-direct=%+.0fus\n",
                k, r/d, r/n, r50/d50, r50/n50, r99/d99, r99/n99, r99-d99 }'
    done
done
echo "(wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, loopback, $(nproc) cores shared by wrk, proxy and backend)"

# Memory with many idle client connections: open them, wait, read the router's RSS.
ROUTER_PID="${PIDS[1]}"
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
before="$(rss_kb "$ROUTER_PID")"
python3 - "$ROUTER" "$IDLE_CONNECTIONS" "$ROUTER_PID" <<'PY'
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
count, pid = int(sys.argv[2]), sys.argv[3]
socks = []
for _ in range(count):
    s = socket.create_connection((host, int(port)))
    socks.append(s)
time.sleep(2)
# One request on one of them proves the router still serves while holding the rest.
s = socks[0]
s.sendall(b"GET / HTTP/1.1\r\nHost: bench.localhost\r\n\r\n")
assert s.recv(4096).startswith(b"HTTP/1.1 200"), "router stopped answering"
rss = [l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:")][0].split()[1]
print(f"router RSS with {count} idle client connections: {int(rss) / 1024:.1f} MiB")
for s in socks:
    s.close()
PY
echo "router RSS before: $(( before / 1024 )) MiB"
