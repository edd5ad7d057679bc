# Shared by the benchmark scripts: start a throwaway Slipway server and clean up after it.
#
#   . bench/lib.sh
#   start_server API_PORT ROUTER_PORT [extra server flags...]
#
# Sets $bin (the slipway binary: $SLIPWAY_BIN, or target/release/slipway built first), $work (a temp dir),
# $server (the server's pid) and exports SLIPWAY_API_URL and SLIPWAY_API_KEY. On exit the
# server stops, its dynos are killed and $work is removed.

if [ -z "${SLIPWAY_BIN:-}" ]; then
  cargo build --release -q -p slipway   # a no-op when the binary is up to date
fi
bin=$(realpath "${SLIPWAY_BIN:-target/release/slipway}")

cleanup_server() {
  kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true
  for id in $(runc --root "$work/data/runtime/runc" list -q 2>/dev/null); do
    runc --root "$work/data/runtime/runc" kill --all "$id" KILL 2>/dev/null || true
    runc --root "$work/data/runtime/runc" delete --force "$id" 2>/dev/null || true
  done
  rm -rf "$work"
}

start_server() {
  local api_port=$1 router_port=$2
  shift 2
  work=$(mktemp -d /tmp/slipway-bench-XXXXXX)
  "$bin" server --data-dir "$work/data" --api-addr "127.0.0.1:$api_port" \
    --router-addr "127.0.0.1:$router_port" --router-tls-addr "127.0.0.1:$((router_port + 1))" "$@" >"$work/server.log" 2>&1 &
  server=$!
  trap cleanup_server EXIT
  for _ in $(seq 100); do [ -s "$work/data/admin.key" ] && break; sleep 0.1; done
  export SLIPWAY_API_URL=http://127.0.0.1:$api_port
  SLIPWAY_API_KEY=$(cat "$work/data/admin.key")
  export SLIPWAY_API_KEY
}
