#!/usr/bin/env bash
# Benchmark of Slipway's router on loopback (not a test): wrk against
#   (a) the backend directly, (b) nginx as a keep-alive reverse proxy, (c) Slipway's router,
# each with a 13-byte and a 100 KB response, with keep-alive clients and with a new connection
# per request (`Connection: close`), over HTTP and over HTTPS (nginx and the router terminate
# TLS: TLS 1.3, ECDSA P-256 certificates, session tickets, both; "direct" stays plain HTTP, the
# no-proxy reference).
# Then a latency pass with LATENCY_CONNECTIONS (1) keep-alive client: the time one hop adds
# (medians over LATENCY_ROUNDS interleaved rounds).
# Prints req/s, p50, p99 and ratios to direct and to nginx, then the router's resident memory
# with IDLE_CONNECTIONS (10,000) idle client connections open.
# Bounded: DURATION seconds per case (default 10), 27 cases.
# Knobs: DURATION, CONNECTIONS (50), THREADS (wrk threads, 1), BENCH_ROUTER_THREADS (router
# threads, as `slipway server --router-threads`; default one per core, like nginx's
# `worker_processes auto`), LATENCY_CONNECTIONS, IDLE_CONNECTIONS, CARGO_TARGET_DIR, ROUTER_BENCH_BIN
# (a directory of prebuilt `bench_backend`/`bench_router`: no build). The
# examples are built with fat LTO and one codegen unit through CARGO_PROFILE_RELEASE_* variables
# (the workspace's release profile is left alone).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-50}"
THREADS="${THREADS:-1}"
IDLE_CONNECTIONS="${IDLE_CONNECTIONS:-10000}"
LATENCY_CONNECTIONS="${LATENCY_CONNECTIONS:-1}"
ulimit -n "$(( IDLE_CONNECTIONS * 2 + 1024 ))" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BACKEND=127.0.0.1:18081
NGINX=127.0.0.1:18082
ROUTER=127.0.0.1:18083
ROUTER_TLS=127.0.0.1:18084
NGINX_TLS=127.0.0.1:18085

for tool in wrk nginx cargo openssl; do
    command -v "$tool" >/dev/null || { echo "bench/router.sh needs $tool on PATH" >&2; exit 1; }
done

if [[ -n "${ROUTER_BENCH_BIN:-}" ]]; then
    # Prebuilt examples (e.g. an older commit's, to compare two builds in one sitting).
    BIN="$ROUTER_BENCH_BIN"
else
    echo "building release examples (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)..." >&2
    (cd "$ROOT" && CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
        cargo build --quiet --release -p slipway-router --examples)
    BIN="$CARGO_TARGET_DIR/release/examples"
fi

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
"$BIN/bench_router" "$ROUTER" "$BACKEND" "$ROUTER_TLS" 2>"$WORK/router.log" &
PIDS+=($!)

mkdir -p "$WORK/nginx/logs"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=bench.localhost -keyout "$WORK/nginx/key.pem" -out "$WORK/nginx/cert.pem" 2>/dev/null
cat >"$WORK/nginx/nginx.conf" <<NGINX
daemon off;
worker_processes auto;
error_log $WORK/nginx/logs/error.log warn;
pid $WORK/nginx/nginx.pid;
worker_rlimit_nofile $(( IDLE_CONNECTIONS * 2 + 1024 ));
events { worker_connections 20000; }
http {
    access_log off;
    upstream backend { server $BACKEND; keepalive 64; keepalive_timeout 90s; }
    server {
        listen $NGINX;
        listen $NGINX_TLS ssl;
        ssl_certificate $WORK/nginx/cert.pem;
        ssl_certificate_key $WORK/nginx/key.pem;
        # nginx's own default since 1.23.4 (Debian 12's 1.22 still defaults to TLS 1.2 at most,
        # whose ticket resumption skips the key exchange that TLS 1.3 always does).
        ssl_protocols TLSv1.2 TLSv1.3;
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

wait_port "$BACKEND"; wait_port "$NGINX"; wait_port "$ROUTER"; wait_port "$NGINX_TLS"; wait_port "$ROUTER_TLS"

# run NAME URL CONNECTIONS [EXTRA_HEADER] -> "req/s p50 p99"
run() {
    local out extra=()
    [[ -n "${4:-}" ]] && extra=(-H "$4")
    out="$(wrk -t"$THREADS" -c"$3" -d"${DURATION}s" --latency \
        -H 'Host: bench.localhost' "${extra[@]}" "$2")"
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
# case NAME VIA URL CONNECTIONS [EXTRA_HEADER]
case_() {
    local rps p50 p99
    read -r rps p50 p99 < <(run "$1-$2" "$3" "$4" "${5:-}")
    RPS[$1-$2]=$rps
    P50[$1-$2]=$(to_us "$p50")
    P99[$1-$2]=$(to_us "$p99")
    printf '%-18s %-8s %12s %10s %10s\n' "$1" "$2" "$rps" "$p50" "$p99"
}
printf '%-18s %-8s %12s %10s %10s\n' "case" "via" "req/s" "p50" "p99"
CASES=()
for mode in keepalive close; do
    header=""; [[ $mode == close ]] && header="Connection: close"
    for size in small 100k; do
        path=/; [[ $size == 100k ]] && path=/100k
        k="$mode-$size"; CASES+=("$k")
        case_ "$k" direct "http://$BACKEND$path" "$CONNECTIONS" "$header"
        case_ "$k" nginx "http://$NGINX$path" "$CONNECTIONS" "$header"
        case_ "$k" slipway "http://$ROUTER$path" "$CONNECTIONS" "$header"
    done
done
# HTTPS: the proxies terminate TLS; "direct" is the plain-HTTP reference measured above.
for k in https-keepalive-small https-keepalive-100k https-close-small; do
    header=""; [[ $k == *close* ]] && header="Connection: close"
    path=/; [[ $k == *100k ]] && path=/100k
    plain="${k#https-}"
    RPS[$k-direct]=${RPS[$plain-direct]}; P50[$k-direct]=${P50[$plain-direct]}; P99[$k-direct]=${P99[$plain-direct]}
    CASES+=("$k")
    case_ "$k" nginx "https://$NGINX_TLS$path" "$CONNECTIONS" "$header"
    case_ "$k" slipway "https://$ROUTER_TLS$path" "$CONNECTIONS" "$header"
done
# Latency: one keep-alive client at a time, so queueing on the shared cores stays out of it.
# Single-client figures swing with where the scheduler puts the processes, so the three are
# interleaved over LATENCY_ROUNDS (3) rounds and the median of each column is kept.
k="latency-c$LATENCY_CONNECTIONS"; CASES+=("$k")
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
declare -A LAT_RPS LAT_P50 LAT_P99
for round in $(seq 1 "${LATENCY_ROUNDS:-3}"); do
    for via in direct nginx slipway; do
        case $via in direct) addr=$BACKEND ;; nginx) addr=$NGINX ;; slipway) addr=$ROUTER ;; esac
        read -r rps p50 p99 < <(run "$k-$via-$round" "http://$addr/" "$LATENCY_CONNECTIONS")
        LAT_RPS[$via]+="$rps "; LAT_P50[$via]+="$(to_us "$p50") "; LAT_P99[$via]+="$(to_us "$p99") "
    done
done
for via in direct nginx slipway; do
    # shellcheck disable=SC2086
    RPS[$k-$via]=$(median ${LAT_RPS[$via]}); P50[$k-$via]=$(median ${LAT_P50[$via]}); P99[$k-$via]=$(median ${LAT_P99[$via]})
    printf '%-18s %-8s %12s %9sus %9sus   (median of %s rounds)\n' "$k" "$via" "${RPS[$k-$via]}" "${P50[$k-$via]}" "${P99[$k-$via]}" "${LATENCY_ROUNDS:-3}"
done
echo
for k in "${CASES[@]}"; do
    awk -v k="$k" \
        -v d="${RPS[$k-direct]}" -v n="${RPS[$k-nginx]}" -v r="${RPS[$k-slipway]}" \
        -v d99="${P99[$k-direct]}" -v n99="${P99[$k-nginx]}" -v r99="${P99[$k-slipway]}" \
        -v d50="${P50[$k-direct]}" -v n50="${P50[$k-nginx]}" -v r50="${P50[$k-slipway]}" \
        'BEGIN { printf "%-22s req/s slipway/nginx=%.2f slipway/direct=%.2f | p50 slipway/nginx=%.2f | p99 slipway/nginx=%.2f | p99 over direct: slipway %+.0fus, nginx %+.0fus\n",
            k, r/n, r/d, r50/n50, r99/n99, r99-d99, n99-d99 }'
done
echo "(wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, loopback, $(nproc) cores shared by wrk, proxy and backend)"

# Memory with many idle client connections, the router's RSS beside the sum of nginx's workers:
# first connections that have sent nothing, then the same connections idle after one request
# each (keep-alive).
ROUTER_PID="${PIDS[1]}"
NGINX_WORKERS="$(pgrep -P "${PIDS[2]}" | tr '\n' ' ')"
python3 - "$IDLE_CONNECTIONS" "$ROUTER" "$ROUTER_PID" "$NGINX" "$NGINX_WORKERS" <<'PY'
import socket, sys, time

count = int(sys.argv[1])
targets = [("slipway", sys.argv[2], [sys.argv[3]]), ("nginx", sys.argv[4], sys.argv[5].split())]

def rss_mib(pids):
    total = 0
    for pid in pids:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024

for name, addr, pids in targets:
    host, port = addr.rsplit(":", 1)
    before = rss_mib(pids)
    socks = [socket.create_connection((host, int(port))) for _ in range(count)]
    time.sleep(3)
    fresh = rss_mib(pids)
    # In batches of 100: more requests in flight than 200 per dyno would be H11 (503). Paced
    # (about 4 s for 10,000), so connections idle for 2 s have given their dyno connection
    # back and the router stays under its file descriptor limit.
    for start in range(0, count, 100):
        time.sleep(0.04)
        batch = socks[start:start + 100]
        for s in batch:
            s.sendall(b"GET / HTTP/1.1\r\nHost: bench.localhost\r\n\r\n")
        for s in batch:
            answer = s.recv(4096)
            assert answer.startswith(b"HTTP/1.1 200"), f"{name} stopped answering: {answer[:80]!r}"
    time.sleep(3)
    used = rss_mib(pids)
    print(f"{name:8} RSS {before:6.1f} MiB idle; with {count} idle client connections: "
          f"{fresh:6.1f} MiB before any request, {used:6.1f} MiB after one request each "
          f"({(used - before) * 1024 / count:.1f} KiB per connection)")
    for s in socks:
        s.close()
    time.sleep(1)
PY
