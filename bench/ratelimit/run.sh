#!/usr/bin/env bash
# Benchmark: what a global rate limit (Redis on loopback) costs a request, and how exactly it
# holds across replicas.
#
# Usage: bench/ratelimit/run.sh   (needs nginx, redis-server, wrk, taskset, python3, curl)
#   DURATION=10 REPEATS=3 CONNECTIONS=50 SKIP_BUILD=1 bench/ratelimit/run.sh
#
# 1. Cost: the same route and API-key client on three gatehouse-proxy processes (one worker
#    each, on PROXY_CPU), measured in alternation with wrk: without a rate limit; with a global
#    limit that is never reached (1,000,000/s, burst 1,000,000: one Redis call grants the
#    largest lease, 16 requests); and with one never reached whose burst of 3 allows no lease
#    (every request runs the GCRA script in Redis, as every request does near a limit). Prints
#    req/s, p50, p99 and the proxy's CPU per request, and the ratios to the unlimited one. wrk,
#    the upstream (nginx) and redis-server share LOAD_CPU.
# 2. Accuracy: three proxies, one client limited globally to RATE/s (burst RATE), an open-loop
#    load of OFFERED/s spread round-robin over them (bench/ratelimit/accuracy.py) for SECONDS
#    after a 3 s warm-up; prints the admitted rate in all and per proxy.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DURATION="${DURATION:-10}"
REPEATS="${REPEATS:-3}"
CONNECTIONS="${CONNECTIONS:-50}"
RATE="${RATE:-100}"
OFFERED="${OFFERED:-400}"
SECONDS_MEASURED="${SECONDS_MEASURED:-30}"
PROXY_CPU="${PROXY_CPU:-1}"
LOAD_CPU="${LOAD_CPU:-0}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
WORK="$(mktemp -d /tmp/gatehouse-ratelimit.XXXXXX)"
UPSTREAM_PORT=18401 REDIS_PORT=18402 PORT=18410 ADMIN=18420
KEY=bench-key
PIDS=()

# shellcheck source=/dev/null
source "$HERE/../lib.sh"
require_tools "apt-get install -y nginx redis-server wrk util-linux python3 curl" nginx redis-server wrk taskset python3 curl
trap cleanup EXIT

build_release "$ROOT" gatehouse-proxy
BIN="$TARGET_DIR/release/gatehouse-proxy"

start_fixed_upstream "$LOAD_CPU" "$UPSTREAM_PORT"
start "$LOAD_CPU" "$WORK/redis.log" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK"
for _ in $(seq 1 500); do
  (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null && break
  sleep 0.02
done

mkdir -p "$WORK/secrets/acme-keys"
printf '%s' "$KEY" >"$WORK/secrets/acme-keys/key"
python3 "$HERE/table.py" "$UPSTREAM_PORT" none >"$WORK/none.json"
python3 "$HERE/table.py" "$UPSTREAM_PORT" global 1000000 1000000 >"$WORK/global.json"
python3 "$HERE/table.py" "$UPSTREAM_PORT" global 1000000 3 >"$WORK/each.json"
python3 "$HERE/table.py" "$UPSTREAM_PORT" global "$RATE" "$RATE" >"$WORK/accuracy.json"

proxy() { # N TABLE
  start "$PROXY_CPU" "$WORK/proxy-$1.log" "$BIN" --routes "$WORK/$2.json" --secrets-dir "$WORK/secrets" \
    --redis "redis://127.0.0.1:$REDIS_PORT" --listen "127.0.0.1:$(( PORT + $1 ))" \
    --admin "127.0.0.1:$(( ADMIN + $1 ))" --threads 1 --log-format text
  wait_http "http://127.0.0.1:$(( ADMIN + $1 ))/readyz"
}

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
declare -A PID URL
MODES=(none global each)
for n in 0 1 2; do
  mode="${MODES[$n]}"
  proxy "$n" "$mode"
  PID[$mode]="${PIDS[-1]}"
  URL[$mode]="http://127.0.0.1:$(( PORT + n ))/v1/res/42"
  wait_http "${URL[$mode]}" -H "x-api-key: $KEY"
  taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d2s -H "x-api-key: $KEY" "${URL[$mode]}" >/dev/null
done
for run in $(seq 1 "$REPEATS"); do
  for mode in "${MODES[@]}"; do
    before=$(cpu_ticks "${PID[$mode]}")
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "x-api-key: $KEY" \
      "${URL[$mode]}" >"$WORK/wrk-$mode-$run.txt"
    after=$(cpu_ticks "${PID[$mode]}")
    wrk_row "$mode" "$WORK/wrk-$mode-$run.txt" $(( after - before )) >>"$RESULTS"
  done
done
for mode in "${MODES[@]}"; do kill "${PID[$mode]}"; done

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(uname -sr); $(redis-server --version | cut -d' ' -f1-3)"
echo "wrk: 1 thread, $CONNECTIONS connections, ${DURATION}s x $REPEATS in alternation (median shown); proxy on CPU $PROXY_CPU, wrk + upstream + redis on CPU $LOAD_CPU"
PYTHONPATH="$HERE/.." python3 - "$RESULTS" <<'PY'
import sys
from wrk_rows import median, runs
by = runs(sys.argv[1])
med = lambda name, i: median(by, name, i)
print(f"{'limit':<28}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/req':>12}  runs (req/s)")
labels = {"none": "none", "global": "global, leases of 16", "each": "global, a call per request"}
for name in ["none", "global", "each"]:
    bad = sum(r[3] for r in by[name])
    note = f"  non-2xx: {bad}" if bad else ""
    print(f"{labels[name]:<28}{med(name, 0):>10.0f}{med(name, 1):>9.3f}{med(name, 2):>9.3f}{med(name, 4):>12.1f}  "
          + " ".join(f"{r[0]:.0f}" for r in by[name]) + note)
for name in ["global", "each"]:
    print(f"{labels[name]} / none: req/s {med(name, 0) / med('none', 0):.2f}, "
          f"p99 {med(name, 2) - med('none', 2):+.3f} ms, CPU per request {med(name, 4) / med('none', 4):.2f}x")
PY

echo
for n in 3 4 5; do proxy "$n" accuracy; done
URLS=()
for n in 3 4 5; do URLS+=("http://127.0.0.1:$(( PORT + n ))/v1/res/42"); done
# Every replica announces itself once a second; give them time to count each other.
sleep 2
taskset -c "$LOAD_CPU" python3 "$HERE/accuracy.py" "$OFFERED" 3 "$SECONDS_MEASURED" "$KEY" "${URLS[@]}"
echo "goal: $RATE ± 5 /s"
