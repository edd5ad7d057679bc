#!/usr/bin/env bash
# Benchmark of Slipway's router on loopback (not a test): wrk against
#   (a) the backend directly, (b) nginx as a keep-alive reverse proxy, (c) Slipway's router,
# each with a 13-byte and a 100 KB response, keep-alive clients. Prints req/s, p50, p99 and
# ratios. Bounded: DURATION seconds per case (default 10), 6 cases.
# Knobs: DURATION, CONNECTIONS (50), THREADS (wrk threads, 1), BENCH_ROUTER_THREADS (router's
# tokio workers; default one per core, 0 = current-thread runtime), CARGO_TARGET_DIR.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-50}"
THREADS="${THREADS:-1}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BACKEND=127.0.0.1:18081
NGINX=127.0.0.1:18082
ROUTER=127.0.0.1:18083

for tool in wrk nginx cargo; do
    command -v "$tool" >/dev/null || { echo "bench/router.sh needs $tool on PATH" >&2; exit 1; }
done

echo "building release examples (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)..." >&2
(cd "$ROOT" && cargo build --quiet --release -p slipway-router --examples)
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
events { worker_connections 4096; }
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

# run NAME ADDR PATH -> "req/s p50 p99"
run() {
    local out
    out="$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency \
        -H 'Host: bench.localhost' "http://$2$3")"
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

declare -A RPS
printf '%-8s %-8s %12s %10s %10s\n' "size" "via" "req/s" "p50" "p99"
for size in small 100k; do
    path=/; [[ $size == 100k ]] && path=/100k
    for via in direct nginx slipway; do
        case $via in direct) addr=$BACKEND ;; nginx) addr=$NGINX ;; slipway) addr=$ROUTER ;; esac
        read -r rps p50 p99 < <(run "$size-$via" "$addr" "$path")
        RPS[$size-$via]=$rps
        printf '%-8s %-8s %12s %10s %10s\n' "$size" "$via" "$rps" "$p50" "$p99"
    done
done
echo
for size in small 100k; do
    awk -v s="$size" -v d="${RPS[$size-direct]}" -v n="${RPS[$size-nginx]}" -v r="${RPS[$size-slipway]}" \
        'BEGIN { printf "%-6s slipway/direct = %.2f   slipway/nginx = %.2f   nginx/direct = %.2f\n", s, r/d, r/n, n/d }'
done
echo "(wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, keep-alive, loopback, $(nproc) cores shared by wrk, proxy and backend)"
