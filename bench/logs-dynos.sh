#!/usr/bin/env bash
# Benchmark (not a test): the log pipeline fed by real dynos. N `writer` dynos (runc) each print
# LINES lines as fast as Python can, each carrying its write time; a tail session (SSE, the
# logplex_url of a log session) counts what arrives. Reports lines/s end to end, lines lost
# (written but not received, and the tail's L11 counts), the platform's CPU per 100,000 lines
# (the server's utime+stime from /proc) and the write -> tail delay (p50/p99).
#
#   bench/logs-dynos.sh [N] [LINES] [RATE]   (as root; default 2 dynos x 200000 lines, flat out)
#
# RATE (lines/s per dyno, 0 = as fast as possible) paces the writers in batches of 500.
#
# The HTTPS drain side is measured in-process by bench/logplex.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2}
lines=${2:-200000}
rate=${3:-0}
. bench/lib.sh
start_server 5620 8620
"$bin" apps:create logbench >/dev/null

mkdir "$work/app" && cd "$work/app"
git init -q -b main
cat > writer.py <<PY
import os, sys, time
out = sys.stdout
dyno = os.environ.get("DYNO", "?")
rate, start = $rate, time.monotonic()
for i in range($lines):
    out.write(f"bench {dyno} {i} {time.time_ns()}\n")
    if rate and i % 500 == 499:
        out.flush()
        ahead = (i + 1) / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
out.flush()
time.sleep(100000)
PY
echo "writer: python3 writer.py" > Procfile
git add -A && git -c user.email=b@b -c user.name=b commit -qm bench
git push -q "http://x:$SLIPWAY_API_KEY@127.0.0.1:5620/logbench.git" main 2>/dev/null

python3 - "$n" "$lines" "$server" "$rate" <<'PY'
import json, os, subprocess, sys, threading, time, urllib.request
n, lines, server_pid, rate = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
api, key = os.environ["SLIPWAY_API_URL"], os.environ["SLIPWAY_API_KEY"]
def api_call(method, path, body):
    req = urllib.request.Request(api + path, data=json.dumps(body).encode(), method=method, headers={
        "Accept": "application/vnd.heroku+json; version=3", "Authorization": "Bearer " + key,
        "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))
def cpu_seconds():
    fields = open(f"/proc/{server_pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
session = api_call("POST", "/apps/logbench/log-sessions", {"tail": True, "lines": 0, "source": "app"})
received, missed, delays = 0, 0, []
first = last = None
done = threading.Event()
def tail():
    global received, missed, first, last
    req = urllib.request.Request(session["logplex_url"], headers={"Accept": "text/event-stream"})
    with urllib.request.urlopen(req) as stream:
        for raw in stream:
            line = raw.decode(errors="replace")
            if not line.startswith("data: "):
                continue
            now = time.time_ns()
            if " bench " in line:
                parts = line.split()
                received += 1
                delays.append((now - int(parts[-1])) / 1e6)
                first = first or now
                last = now
                if received + missed >= n * lines:
                    done.set()
                    return
            elif "L11" in line:
                missed += int(line.split("dropped ")[1].split()[0])
threading.Thread(target=tail, daemon=True).start()
time.sleep(0.5)
cpu_before = cpu_seconds()
api_call("PATCH", "/apps/logbench/formation", {"updates": [{"type": "writer", "quantity": n}]})
done.wait(timeout=120)
time.sleep(0.5)
cpu_after = cpu_seconds()
total = n * lines
delays.sort()
pct = lambda q: delays[min(len(delays) - 1, int(q * len(delays)))] if delays else float("nan")
span = (last - first) / 1e9 if first and last and last > first else float("nan")
print(f"{n} writer dynos x {lines} lines = {total} lines written" + (f" at {rate} lines/s each" if rate else " as fast as possible"))
print(f"tail received {received} ({received / span:,.0f} lines/s while streaming), L11-missed {missed}, unaccounted {total - received - missed}")
print(f"write -> tail delay: p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms")
print(f"server CPU: {cpu_after - cpu_before:.2f} s = {(cpu_after - cpu_before) / max(received, 1) * 1e5 * 1000:.0f} ms per 100,000 lines")
PY
