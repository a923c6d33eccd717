#!/usr/bin/env bash
# Render benchmark: `gatehouse-operator render` (read + admit + validate + compile + build +
# YAML) over 1,000 generated resources (Gateways, EdgeServices, Aggregators; 20 routes or
# endpoints each). See operator/examples/render_bench.rs for what is generated and measured.
#
# Usage: bench/render/run.sh              (from anywhere)
#   REPEATS=3 RESOURCES=1000 bench/render/run.sh
#   SKIP_BUILD=1 bench/render/run.sh      (reuse the release build)
#
# Each repeat is a fresh process (cold, like one `render` invocation). Prints the machine,
# each run's wall time and peak RSS (VmHWM, cross-checked with /usr/bin/time -v when present),
# and the median of the repeats. Goal: < 1 s and < 100 MiB.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
REPEATS="${REPEATS:-3}"
RESOURCES="${RESOURCES:-1000}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/release/examples/render_bench"

if [[ -z "${SKIP_BUILD:-}" ]]; then
  (cd "$ROOT" && cargo build --release -p gatehouse-operator --example render_bench)
fi

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(rustc --version)"
echo "command: $BIN $RESOURCES   (built by: cargo build --release -p gatehouse-operator --example render_bench)"

walls=() cpus=() peaks=()
for run in $(seq 1 "$REPEATS"); do
  log="$(mktemp)"
  if [[ -x /usr/bin/time ]]; then
    /usr/bin/time -v "$BIN" "$RESOURCES" >"$log" 2>"$log.time"
    max_rss_kib="$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$log.time")"
  else
    "$BIN" "$RESOURCES" >"$log"
    max_rss_kib=""
  fi
  echo "--- run $run"
  grep -v '^RESULT' "$log"
  [[ -n "$max_rss_kib" ]] && echo "/usr/bin/time -v: maximum resident set size $((max_rss_kib / 1024)) MiB (whole process, generation included)"
  result="$(grep '^RESULT' "$log")"
  walls+=("$(sed -E 's/.*wall_ms=([0-9.]+).*/\1/' <<<"$result")")
  cpus+=("$(sed -E 's/.*cpu_ms=([0-9.]+).*/\1/' <<<"$result")")
  peaks+=("$(sed -E 's/.*peak_mib=([0-9.]+).*/\1/' <<<"$result")")
  rm -f "$log" "$log.time"
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "=== median of $REPEATS: render_paths ${RESOURCES} resources: $(median "${walls[@]}") ms wall, $(median "${cpus[@]}") ms CPU, peak RSS $(median "${peaks[@]}") MiB (goal < 1000 ms, < 100 MiB)"

# Issue 16's scale: one Gateway exposing CONTRACTS Contract resources of CONTRACT_ROUTES routes
# each (operator/examples/render_bench/contracts.rs). Goals: <= 200 ms to plan again after one
# Contract changed, the stored table within the 1 MiB an object holds, <= 100 MiB.
CONTRACTS="${CONTRACTS:-200}"
CONTRACT_ROUTES="${CONTRACT_ROUTES:-50}"
changes=() peaks=()
for run in $(seq 1 "$REPEATS"); do
  log="$(mktemp)"
  "$BIN" contracts "$CONTRACTS" "$CONTRACT_ROUTES" >"$log"
  echo "--- contracts run $run"
  grep -v '^RESULT' "$log"
  result="$(grep '^RESULT' "$log")"
  changes+=("$(sed -E 's/.*change_ms=([0-9.]+).*/\1/' <<<"$result")")
  peaks+=("$(sed -E 's/.*peak_mib=([0-9.]+).*/\1/' <<<"$result")")
  rm -f "$log"
done
echo "=== median of $REPEATS: $CONTRACTS Contracts x $CONTRACT_ROUTES routes: plan after one change $(median "${changes[@]}") ms, peak RSS $(median "${peaks[@]}") MiB (goal <= 200 ms, <= 100 MiB)"
