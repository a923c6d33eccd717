#!/usr/bin/env bash
# Benchmark: gatehouse-proxy vs nginx vs HAProxy in front of one fast upstream (nginx).
#
# Usage: bench/run.sh            (from anywhere; needs nginx, haproxy, wrk, taskset, python3)
#   DURATION=10 REPEATS=3 CONNECTIONS=50 bench/run.sh
#   SKIP_BUILD=1 bench/run.sh    (reuse the release binary)
#
# Each proxy gets 1 worker/thread and keepalive connections to the upstream. The proxy under
# test runs on PROXY_CPU; wrk and the upstream share LOAD_CPU (a 2-core machine has no third
# core). Prints req/s, p50 and p99 per proxy (median of REPEATS runs) and the ratio to nginx,
# then the same for gatehouse-proxy with a 10,000-route table. Also prints the proxy's CPU time
# per request (user+system of the proxy process and its children): with wrk and the upstream
# sharing one core, req/s can be capped by the load side; CPU per request is not.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
DURATION="${DURATION:-10}"
REPEATS="${REPEATS:-3}"
CONNECTIONS="${CONNECTIONS:-50}"
PROXY_CPU="${PROXY_CPU:-1}"
LOAD_CPU="${LOAD_CPU:-0}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
WORK="$(mktemp -d /tmp/gatehouse-bench.XXXXXX)"
UPSTREAM_PORT=18101 NGINX_PORT=18102 HAPROXY_PORT=18103 GATEHOUSE_PORT=18104 ADMIN_PORT=18105
PIDS=()

# shellcheck source=/dev/null
source "$HERE/lib.sh"
require_tools "apt-get install -y nginx haproxy wrk util-linux python3 curl" nginx haproxy wrk taskset python3 curl
trap cleanup EXIT

build_release "$ROOT" gatehouse-proxy
BIN="$TARGET_DIR/release/gatehouse-proxy"

# --- the upstream: nginx answering a small fixed body ---
start_fixed_upstream "$LOAD_CPU" "$UPSTREAM_PORT"

# --- nginx as the proxy ---
write_nginx_proxy "$WORK/nginx" "$UPSTREAM_PORT" "listen 127.0.0.1:$NGINX_PORT;"

# --- HAProxy ---
cat >"$WORK/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
  option forwardfor
  http-reuse always
frontend bench
  bind 127.0.0.1:$HAPROXY_PORT
  default_backend upstream
backend upstream
  http-request set-path %[path,regsub(^/v1,)]
  server up 127.0.0.1:$UPSTREAM_PORT
CONF

python3 "$HERE/make_table.py" 10 "$UPSTREAM_PORT" >"$WORK/routes-10.json"
python3 "$HERE/make_table.py" 10000 "$UPSTREAM_PORT" >"$WORK/routes-10000.json"

RESULTS="$WORK/results.tsv"
: >"$RESULTS"

warm_up() { # URL
  taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d2s "$1" >/dev/null
}

measure_once() { # NAME URL RUN PID — one wrk run, appended to RESULTS with the proxy's CPU time
  local name="$1" url="$2" run="$3" pid="$4" before after
  before=$(cpu_ticks "$pid")
  taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$url" >"$WORK/wrk-$name-$run.txt"
  after=$(cpu_ticks "$pid")
  wrk_row "$name" "$WORK/wrk-$name-$run.txt" $(( after - before )) >>"$RESULTS"
}

measure() { # NAME URL — against the proxy started last
  local run
  warm_up "$2"
  for run in $(seq 1 "$REPEATS"); do measure_once "$1" "$2" "$run" "${PIDS[-1]}"; done
}

stop_last() { kill "${PIDS[-1]}" 2>/dev/null || true; wait "${PIDS[-1]}" 2>/dev/null || true; unset 'PIDS[-1]'; }

start "$PROXY_CPU" "$WORK/nginx.log" nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g "daemon off;"
wait_http "http://127.0.0.1:$NGINX_PORT/v1/res0/42"
measure nginx "http://127.0.0.1:$NGINX_PORT/v1/res0/42"
stop_last

start "$PROXY_CPU" "$WORK/haproxy.log" haproxy -f "$WORK/haproxy.cfg" -db
wait_http "http://127.0.0.1:$HAPROXY_PORT/v1/res0/42"
measure haproxy "http://127.0.0.1:$HAPROXY_PORT/v1/res0/42"
stop_last

# Both tables at once, on two ports of the same core, measured in alternation (10, 10,000, 10,
# ...): on a shared host the ratio of the two is then not skewed by a slow minute for one of them.
declare -A GATEHOUSE_PID GATEHOUSE_URL
for routes in 10 10000; do
  port=$(( routes == 10 ? GATEHOUSE_PORT : GATEHOUSE_PORT + 10 ))
  admin=$(( routes == 10 ? ADMIN_PORT : ADMIN_PORT + 10 ))
  start "$PROXY_CPU" "$WORK/gatehouse-$routes.log" "$BIN" --routes "$WORK/routes-$routes.json" \
    --listen "127.0.0.1:$port" --admin "127.0.0.1:$admin" --threads 1 --log-format text
  wait_http "http://127.0.0.1:$admin/readyz"
  GATEHOUSE_PID[$routes]="${PIDS[-1]}"
  GATEHOUSE_URL[$routes]="http://127.0.0.1:$port/v1/res$(( routes == 10 ? 0 : routes / 20 ))/42"
  warm_up "${GATEHOUSE_URL[$routes]}"
done
for run in $(seq 1 "$REPEATS"); do
  for routes in 10 10000; do
    measure_once "gatehouse-$routes" "${GATEHOUSE_URL[$routes]}" "$run" "${GATEHOUSE_PID[$routes]}"
  done
done
stop_last
stop_last

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(uname -sr)"
echo "wrk: 1 thread, $CONNECTIONS connections, ${DURATION}s x $REPEATS (median shown); proxy on CPU $PROXY_CPU, wrk + upstream on CPU $LOAD_CPU"
PYTHONPATH="$HERE" python3 - "$RESULTS" <<'PY'
import statistics, sys
from wrk_rows import median, runs
by = runs(sys.argv[1])
def med(name, i):
    return median(by, name, i)
base_rps, base_p99 = med("nginx", 0), med("nginx", 2)
base_cpu = med("nginx", 4)
print(f"{'proxy':<16}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/req':>12}"
      f"{'req/s vs nginx':>16}{'p99 vs nginx':>14}{'req/CPU-s vs nginx':>20}  runs (req/s)")
for name in ["nginx", "haproxy", "gatehouse-10", "gatehouse-10000"]:
    if name not in by:
        continue
    rps, p50, p99 = med(name, 0), med(name, 1), med(name, 2)
    runs = " ".join(f"{r[0]:.0f}" for r in by[name])
    bad = sum(r[3] for r in by[name])
    note = f"  non-2xx: {bad}" if bad else ""
    cpu = med(name, 4)
    print(f"{name:<16}{rps:>10.0f}{p50:>9.3f}{p99:>9.3f}{cpu:>12.1f}"
          f"{rps / base_rps:>16.2f}{p99 / base_p99:>14.2f}{base_cpu / cpu:>20.2f}  {runs}{note}")
if "gatehouse-10" in by and "gatehouse-10000" in by:
    # Runs were taken in alternation: compare each 10,000-route run with the 10-route run just
    # before it, so a slow minute on a shared host weighs on both sides of a ratio.
    pairs = list(zip(by["gatehouse-10"], by["gatehouse-10000"]))
    rps_ratios = [big[0] / small[0] for small, big in pairs]
    cpu_ratios = [small[4] / big[4] for small, big in pairs]
    print(f"10,000-route table / 10-route table, median of {len(pairs)} back-to-back pairs: "
          f"req/s {statistics.median(rps_ratios):.2f}, requests per CPU-second {statistics.median(cpu_ratios):.2f} "
          f"(pairs: {' '.join(f'{r:.2f}' for r in rps_ratios)})")
PY
