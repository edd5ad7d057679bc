#!/usr/bin/env bash
# Benchmark (not a test): cluster mode on one machine. A control plane (`slipway server
# --cluster`, its HTTPS API on the bridge's address) and H host agents, each in a network
# namespace of its own on a bridge this script creates (10.216.0.0/24; agent i at 10.216.0.(17+i),
# dyno subnet 10.217.i.0/24 routed to it). It measures
#   - `ps:scale web=N` across the hosts: from the command until every dyno is up;
#   - failover: one host's link cut, from the cut until the formation is whole (every dyno up
#     again on the other hosts), which includes the lease's expiry (5 s), and from the lease's
#     expiry (the control plane's "host lease expired" line) until the replacements are up
#     (the fencing margin, 1 s, plus placement and dyno starts).
# One control plane on the embedded store; several (`--store etcd://…`, agents given
# `--server A,B`) are what crates/slipway/tests/cluster_hosts.rs runs.
#
#   bench/cluster.sh [N] [H]   (as root; defaults 90 3; builds the release binary unless
#                               SLIPWAY_BIN is set)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-90}; hosts=${2:-3}
. bench/lib.sh
api_port=5740; router_port=8740
# The agents reach the API over HTTPS at the bridge's address (the platform CA issues the
# listener's certificate for it), so the bridge comes first.
bridge=slwbench0
ip link add "$bridge" type bridge
ip addr add 10.216.0.1/24 dev "$bridge"
ip link set "$bridge" up
start_server $api_port $router_port --api-tls-addr 10.216.0.1:5743 --rendezvous-addr 127.0.0.1:5744 \
  --dyno-subnet 10.218.0.0/24 --cluster
agents=()
cleanup_cluster() {
  for pid in "${agents[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  for i in $(seq "$hosts"); do
    root=$work/agent-$i/runtime/runc
    for id in $(runc --root "$root" list -q 2>/dev/null); do
      runc --root "$root" kill --all "$id" KILL 2>/dev/null || true
      runc --root "$root" delete --force "$id" 2>/dev/null || true
    done
    ip route del "10.217.$i.0/24" 2>/dev/null || true
    ip netns del "slwbench$i" 2>/dev/null || true
    ip link del "slwbench$i" 2>/dev/null || true
  done
  ip link del "$bridge" 2>/dev/null || true
  cleanup_server
}
trap cleanup_cluster EXIT
for _ in $(seq 100); do [ -s "$work/data/cluster-token" ] && break; sleep 0.1; done
for i in $(seq "$hosts"); do
  ip netns add "slwbench$i"
  ip link add "slwbench$i" type veth peer name "slwbench${i}p"
  ip link set "slwbench$i" master "$bridge" up
  ip link set "slwbench${i}p" netns "slwbench$i"
  ip netns exec "slwbench$i" sh -c "ip link set lo up; ip link set slwbench${i}p name eth0; \
    ip addr add 10.216.0.$((17 + i))/24 dev eth0; ip link set eth0 up; ip route add default via 10.216.0.1"
  ip route add "10.217.$i.0/24" via "10.216.0.$((17 + i))"
  nsenter --net="/run/netns/slwbench$i" -- "$bin" agent --server https://10.216.0.1:5743 --ca-file "$work/data/tls/router-ca.pem" --name "host-$i" \
    --data "$work/agent-$i" --dyno-subnet "10.217.$i.0/24" --memory-mb 65536 \
    --token-file "$work/data/cluster-token" --routed-from 10.216.0.0/28 >"$work/agent-$i.log" 2>&1 &
  agents+=($!)
done
until [ "$(grep -c 'host registered' "$work/server.log")" -ge "$hosts" ]; do sleep 0.2; done

mkdir "$work/app" && cd "$work/app"
git init -q -b main
printf 'web: python3 -m http.server $PORT\n' > Procfile
git add -A && git commit -qm app
"$bin" apps:create bench >/dev/null
git push -q "http://heroku:$SLIPWAY_API_KEY@127.0.0.1:$api_port/bench.git" main
up() { "$bin" ps -a bench 2>/dev/null | grep -c ': up' || true; }
now() { date +%s.%N; }
t0=$(now)
"$bin" ps:scale "web=$n" -a bench >/dev/null
until [ "$(up)" -ge "$n" ]; do sleep 0.2; done
t1=$(now)
printf 'ps:scale web=%s across %s hosts: %.2f s until every dyno was up\n' "$n" "$hosts" "$(echo "$t1 - $t0" | bc)"
for i in $(seq "$hosts"); do
  # Running containers only: runc also lists created and stopped ones not yet deleted.
  printf '  host-%s runs %s dynos (%s containers in any state)\n' "$i" \
    "$(runc --root "$work/agent-$i/runtime/runc" list | awk 'NR > 1 && $3 == "running"' | wc -l)" \
    "$(runc --root "$work/agent-$i/runtime/runc" list -q | wc -l)"
done
expired_before=$(grep -c 'host lease expired' "$work/server.log" || true)
t0=$(now)
ip link set slwbench1 down
until [ "$(grep -c 'host lease expired' "$work/server.log" || true)" -gt "$expired_before" ]; do sleep 0.05; done
te=$(now)
until [ "$(up)" -ge "$n" ] && [ "$(runc --root "$work/agent-1/runtime/runc" list -q | wc -l)" -eq 0 ]; do sleep 0.2; done
t1=$(now)
printf 'failover (host-1 cut): lease expired %.2f s after the cut; replacements up %.2f s after the expiry; formation whole %.2f s after the cut\n' \
  "$(echo "$te - $t0" | bc)" "$(echo "$t1 - $te" | bc)" "$(echo "$t1 - $t0" | bc)"
