#!/usr/bin/env bash
# Benchmark of Slipway's log pipeline on loopback (not a test): producers publishing into a
# LogHub with one tail and one HTTPS drain (receiver in-process, own thread). Prints publish and
# end-to-end lines/s, losses per stage, CPU per 100,000 lines, and publish->tail / publish->drain
# delays at fixed rates. Bounded: LINES lines flat out, then SECONDS per paced rate.
#   PRODUCERS (2)  LINES (1000000)  RATES (10000,50000,100000)  SECONDS (5)  DRAIN_BUFFER (1024)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

echo "building release example (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)..." >&2
(cd "$ROOT" && cargo build --quiet --release -p slipway-logplex --example bench_pipeline)
exec timeout 300 "$CARGO_TARGET_DIR/release/examples/bench_pipeline"
