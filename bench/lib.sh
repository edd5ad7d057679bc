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
  # The dyno network: namespace mounts in the bundles, veths, the bridge, the firewall table.
  grep -o " $work/[^ ]*" /proc/self/mountinfo | xargs -r -n1 umount -l 2>/dev/null || true
  local br
  br=$(grep -o 'dyno network: bridge slw[0-9a-f]*' "$work/server.log" 2>/dev/null | head -1 | awk '{print $4}')
  if [ -n "$br" ]; then
    for v in $(ip -o link show master "$br" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
      ip link del "$v" 2>/dev/null || true
    done
    ip link del "$br" 2>/dev/null || true
    nft delete table inet "slipway_$br" 2>/dev/null || true
  fi
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
