#!/usr/bin/env bash
# Aggregation benchmark: one aggregate endpoint fanning out to three upstreams that each answer
# a small JSON body after a fixed 20 ms, against calling the slowest upstream directly, in the
# same run. Goal (issue 4): aggregated p50 and p99 <= 1.05x the direct call's, at 50 clients.
#
# Usage: bench/aggregate/run.sh           (from anywhere; needs nginx + libnginx-mod-http-echo,
#                                          wrk, taskset, python3 with PyYAML, curl)
#   DURATION=10 REPEATS=3 CONNECTIONS=50 DELAY=0.020 THREADS=1 bench/aggregate/run.sh
#   SKIP_BUILD=1 bench/aggregate/run.sh     (reuse the release binaries in CARGO_TARGET_DIR)
#   REALTIME=1 bench/aggregate/run.sh       (diagnostic: benchmark processes under SCHED_FIFO)
#   CAPTURE=3 bench/aggregate/run.sh        (diagnostic: per-hop times from a packet capture)
#
# Upstreams: nginx with the echo module (`echo_sleep`, a timer in nginx's event loop: no thread
# or process is blocked while a request waits), one single-worker nginx per upstream on its own
# port, each with `stub_status` so the script can count the connections the proxy opened.
# The route table is compiled from fanout.yaml (an Aggregator) by `gatehouse-operator render`;
# the script adds one plain proxy route (`/plain/{id}` -> upstream c) to the same table as a
# diagnostic: it separates the cost of the proxy hop from the cost of the fan-out.
#
# Per repeat, in this order (interleaved, so machine load hits all of them alike):
#   aggregated  wrk -> gatehouse-proxy /fanout/{id} -> a, b, c in parallel
#   direct      wrk -> upstream c   (the "slowest step": all three have the same delay)
#   proxied     wrk -> gatehouse-proxy /plain/{id} -> c   (diagnostic)
# The proxy runs on PROXY_CPU; wrk and the upstreams share LOAD_CPU (2-core machine), as in
# bench/run.sh. Prints p50/p99 (median of the repeats) and the ratios to the direct call, and
# per request: the proxy's CPU time, the time the proxy's and the upstreams' threads waited
# for a CPU (schedstat), and the connections the upstreams accepted (stub_status).
# nginx timers tick in whole milliseconds, so "20 ms" lands between ~20.0 and ~21.0 ms
# depending on when a request arrives within nginx's millisecond (see decompose.py output).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DURATION="${DURATION:-10}"
REPEATS="${REPEATS:-3}"
CONNECTIONS="${CONNECTIONS:-50}"
DELAY="${DELAY:-0.020}"
THREADS="${THREADS:-1}"
PROXY_CPU="${PROXY_CPU:-1}"
LOAD_CPU="${LOAD_CPU:-0}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# REALTIME=1: run wrk, the upstreams and the proxy under SCHED_FIFO (chrt -f 10) so that other
# work on a shared machine cannot preempt them (diagnostic: separates CPU contention from the
# proxy's own cost; needs root; the kernel's RT throttling still leaves 5 % to everything else).
REALTIME="${REALTIME:-}"
ECHO_MODULE="${ECHO_MODULE:-/usr/lib/nginx/modules/ngx_http_echo_module.so}"
WORK="$(mktemp -d /tmp/gatehouse-bench-aggregate.XXXXXX)"
PORT_A=18201 PORT_B=18202 PORT_C=18203 GATEHOUSE_PORT=18210 ADMIN_PORT=18211
STATUS_PORT_BASE=18220
PIDS=()
PRIORITY=()
[[ -n "$REALTIME" ]] && PRIORITY=(chrt -f 10)

# shellcheck source=/dev/null
source "$HERE/../lib.sh"
require_tools "apt-get install -y nginx libnginx-mod-http-echo wrk util-linux python3 python3-yaml curl" nginx wrk taskset python3 curl
[[ -f "$ECHO_MODULE" ]] || { echo "missing $ECHO_MODULE (apt-get install -y libnginx-mod-http-echo)" >&2; exit 1; }
python3 -c 'import yaml' 2>/dev/null || { echo "missing PyYAML (apt-get install -y python3-yaml)" >&2; exit 1; }
trap cleanup EXIT
trap "exit 130" INT TERM HUP

build_release "$ROOT" gatehouse-proxy gatehouse-operator
PROXY_BIN="$TARGET_DIR/release/gatehouse-proxy"
OPERATOR_BIN="$TARGET_DIR/release/gatehouse-operator"

# --- three upstreams: nginx + echo_sleep, small JSON body after DELAY seconds ---
i=0
for name in a b c; do
  port_var="PORT_${name^^}"; port="${!port_var}"; status_port=$(( STATUS_PORT_BASE + i ))
  mkdir -p "$WORK/up-$name/logs"
  cat >"$WORK/up-$name/nginx.conf" <<CONF
load_module $ECHO_MODULE;
worker_processes 1;
error_log $WORK/up-$name/logs/error.log warn;
pid $WORK/up-$name/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  server {
    listen 127.0.0.1:$port backlog=4096;
    location / {
      default_type application/json;
      echo_sleep $DELAY;
      echo '{"upstream":"$name","value":$(( i + 1 )),"delayMs":20}';
    }
  }
  server {
    listen 127.0.0.1:$status_port;
    location = /status { stub_status; }
  }
}
CONF
  start "$LOAD_CPU" "$WORK/up-$name.log" nginx -p "$WORK/up-$name" -c "$WORK/up-$name/nginx.conf" -g "daemon off;"
  wait_http "http://127.0.0.1:$port/$name/1"
  i=$(( i + 1 ))
done

# --- the route table: the Aggregator rendered by the operator, plus the diagnostic route ---
"$OPERATOR_BIN" render -f "$HERE/fanout.yaml" >"$WORK/rendered.yaml"
python3 - "$WORK/rendered.yaml" >"$WORK/routes.json" <<'PY'
import copy, json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
maps = [d for d in docs if d.get("kind") == "ConfigMap" and "routes.json" in d.get("data", {})]
assert len(maps) == 1, f"expected one route ConfigMap, found {len(maps)}"
table = json.loads(maps[0]["data"]["routes.json"])
(fanout,) = [r for r in table["routes"] if r["action"]["type"] == "aggregate"]
step_c = [s for s in fanout["action"]["steps"] if s["name"] == "c"][0]
plain = copy.deepcopy(fanout)
plain["id"] = "bench-plain-c"
plain["path"] = "/plain/{id}"
upstream = dict(step_c["upstream"], path="/c/{id}", weight=1)
plain["action"] = {"type": "proxy", "upstreams": [upstream]}
table["routes"].append(plain)
json.dump(table, sys.stdout, indent=1)
PY

start "$PROXY_CPU" "$WORK/gatehouse.log" "$PROXY_BIN" --routes "$WORK/routes.json" \
  --listen "127.0.0.1:$GATEHOUSE_PORT" --admin "127.0.0.1:$ADMIN_PORT" --threads "$THREADS" \
  --log-format text --resolve "up-a=127.0.0.1:$PORT_A" --resolve "up-b=127.0.0.1:$PORT_B" \
  --resolve "up-c=127.0.0.1:$PORT_C"
PROXY_PID="${PIDS[-1]}"
wait_http "http://127.0.0.1:$ADMIN_PORT/readyz"

AGGREGATED_URL="http://127.0.0.1:$GATEHOUSE_PORT/fanout/42"
DIRECT_URL="http://127.0.0.1:$PORT_C/c/42"
PROXIED_URL="http://127.0.0.1:$GATEHOUSE_PORT/plain/42"
echo "aggregated answer: $(curl -fsS "$AGGREGATED_URL")"
echo "direct answer:     $(curl -fsS "$DIRECT_URL")"
echo "proxied answer:    $(curl -fsS "$PROXIED_URL")"
for url in "$AGGREGATED_URL" "$DIRECT_URL" "$PROXIED_URL"; do
  curl -s -o /dev/null -w '%{time_total}s  ' "$url"
done
echo " (single request times: aggregated, direct, proxied)"

cpu_ticks() { # PID: user+system clock ticks of the process
  awk '{print $14 + $15}' "/proc/$1/stat"
}
run_queue_ns() { # PID...: time the processes' threads were runnable but waiting for a CPU
  local pid
  for pid in "$@"; do cat /proc/"$pid"/task/*/schedstat; done | awk '{s += $2} END {printf "%.0f\n", s}'
}
UPSTREAM_PIDS=()
for n in a b c; do UPSTREAM_PIDS+=("$(pgrep -P "$(cat "$WORK/up-$n/nginx.pid")")"); done
upstream_accepts() { # new connections accepted by the three upstreams so far
  local total=0 n
  for n in 0 1 2; do
    total=$(( total + $(curl -fsS "http://127.0.0.1:$(( STATUS_PORT_BASE + n ))/status" | awk 'NR==3 {print $1}') ))
  done
  echo "$total"
}

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
measure() { # NAME URL RUN
  local name="$1" url="$2" run="$3" before after accepts_before accepts_after load
  local proxy_wait_before proxy_wait_after upstream_wait_before upstream_wait_after
  proxy_wait_before=$(run_queue_ns "$PROXY_PID"); upstream_wait_before=$(run_queue_ns "${UPSTREAM_PIDS[@]}")
  before=$(cpu_ticks "$PROXY_PID"); accepts_before=$(upstream_accepts)
  load="$(cut -d' ' -f1 /proc/loadavg)"
  "${PRIORITY[@]}" taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$url" >"$WORK/wrk-$name-$run.txt"
  after=$(cpu_ticks "$PROXY_PID"); accepts_after=$(upstream_accepts)
  proxy_wait_after=$(run_queue_ns "$PROXY_PID"); upstream_wait_after=$(run_queue_ns "${UPSTREAM_PIDS[@]}")
  python3 - "$name" "$WORK/wrk-$name-$run.txt" $(( after - before )) "$(getconf CLK_TCK)" \
    $(( accepts_after - accepts_before )) "$load" $(( proxy_wait_after - proxy_wait_before )) \
    $(( upstream_wait_after - upstream_wait_before )) >>"$RESULTS" <<'PY'
import re, sys
name, path, ticks, hz, accepts, load = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
proxy_wait_ns, upstream_wait_ns = int(sys.argv[7]), int(sys.argv[8])
text = open(path).read()
def ms(value):
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
pct = {p: ms(re.search(rf"\s{p}%\s+(\S+)", text).group(1)) for p in (50, 90, 99)}
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
socket = re.search(r"Socket errors: (.*)", text)
requests = int(re.search(r"(\d+) requests in", text).group(1))
cpu_us = ticks / hz * 1e6 / max(requests, 1)
bad = (int(errors.group(1)) if errors else 0)
print("\t".join(map(str, [name, rps, pct[50], pct[90], pct[99], bad, socket.group(1).replace("\t", " ") if socket else "-",
                           cpu_us, accepts / max(requests, 1), load,
                           proxy_wait_ns / 1e3 / max(requests, 1), upstream_wait_ns / 1e3 / max(requests, 1)])))
PY
}

echo "warm-up..."
for url in "$AGGREGATED_URL" "$DIRECT_URL" "$PROXIED_URL"; do
  "${PRIORITY[@]}" taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d2s "$url" >/dev/null
done
for run in $(seq 1 "$REPEATS"); do
  echo "repeat $run/$REPEATS (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  measure aggregated "$AGGREGATED_URL" "$run"
  measure direct "$DIRECT_URL" "$run"
  measure proxied "$PROXIED_URL" "$run"
done

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(uname -sr); $(nginx -v 2>&1 | cut -d: -f2 | xargs); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
echo "load: wrk -t1 -c$CONNECTIONS -d${DURATION}s --latency, $REPEATS repeats (median shown), upstream delay ${DELAY}s; proxy --threads $THREADS on CPU $PROXY_CPU, wrk + 3 nginx upstreams on CPU $LOAD_CPU${REALTIME:+; all under SCHED_FIFO (REALTIME=1)}"
python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
by = {}
for name, rps, p50, p90, p99, bad, sock, cpu, conns, load, pwait, uwait in rows:
    by.setdefault(name, []).append(dict(rps=float(rps), p50=float(p50), p90=float(p90), p99=float(p99),
                                       bad=int(bad), sock=sock, cpu=float(cpu), conns=float(conns), load=float(load),
                                       pwait=float(pwait), uwait=float(uwait)))
med = lambda name, key: statistics.median(r[key] for r in by[name])
print(f"{'call':<12}{'req/s':>7}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}{'p50/direct':>11}{'p99/direct':>11}"
      f"{'proxy CPU':>11}{'proxy wait':>11}{'upstr wait':>11}{'new conns':>10}  runs p50 | p99 (ms)")
for name in ["aggregated", "direct", "proxied"]:
    runs = by[name]
    p50s = " ".join(f"{r['p50']:.2f}" for r in runs); p99s = " ".join(f"{r['p99']:.2f}" for r in runs)
    bad = sum(r["bad"] for r in runs)
    socks = {r["sock"] for r in runs if r["sock"] != "-"}
    note = (f"  non-2xx: {bad}" if bad else "") + (f"  socket errors: {'; '.join(socks)}" if socks else "")
    proxy = lambda key, fmt: fmt.format(med(name, key)) if name != "direct" else "-"
    print(f"{name:<12}{med(name, 'rps'):>7.0f}{med(name, 'p50'):>8.2f}{med(name, 'p90'):>8.2f}{med(name, 'p99'):>8.2f}"
          f"{med(name, 'p50') / med('direct', 'p50'):>11.3f}{med(name, 'p99') / med('direct', 'p99'):>11.3f}"
          f"{proxy('cpu', '{:.1f}'):>11}{proxy('pwait', '{:.1f}'):>11}{med(name, 'uwait'):>11.1f}"
          f"{med(name, 'conns'):>10.4f}  {p50s} | {p99s}{note}")
print("proxy CPU: user+system CPU time of gatehouse-proxy per request (us); proxy wait / upstr wait: time the")
print("proxy's / the three nginx workers' threads were runnable but waiting for a CPU, per request (us,")
print("/proc/PID/task/*/schedstat); new conns: connections the upstreams accepted per request.")
loads = [r["load"] for rs in by.values() for r in rs]
print(f"1-minute load average at the start of each measurement: {min(loads):.2f}-{max(loads):.2f}")
ok50 = med("aggregated", "p50") <= 1.05 * med("direct", "p50")
ok99 = med("aggregated", "p99") <= 1.05 * med("direct", "p99")
print(f"goal aggregated <= 1.05x direct: p50 {'met' if ok50 else 'NOT met'}, p99 {'met' if ok99 else 'NOT met'}")
PY
if [[ -n "${CAPTURE:-}" ]]; then
  # Where the time goes: capture CAPTURE seconds of loopback traffic under the same load and
  # time each hop from the packets (decompose.py). tcpdump perturbs the run a little: these
  # figures explain, the table above measures.
  command -v tcpdump >/dev/null || { echo "CAPTURE needs tcpdump (apt-get install -y tcpdump)" >&2; exit 1; }
  for call in aggregated proxied direct; do
    url="$AGGREGATED_URL"; [[ "$call" == direct ]] && url="$DIRECT_URL"; [[ "$call" == proxied ]] && url="$PROXIED_URL"
    "${PRIORITY[@]}" taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"$(( CAPTURE + 3 ))s" "$url" >/dev/null &
    WRK_PID=$!
    sleep 1
    timeout "$CAPTURE" taskset -c "$LOAD_CPU" tcpdump -i lo -n -s 600 -B 65536 -w "$WORK/$call.pcap" \
      "tcp and (port $GATEHOUSE_PORT or port $PORT_A or port $PORT_B or port $PORT_C)" 2>"$WORK/tcpdump-$call.log" || true
    wait "$WRK_PID"
    echo
    echo "$call, from ${CAPTURE}s of packets ($(grep -o '[0-9]* packets dropped by kernel' "$WORK/tcpdump-$call.log" || echo '? dropped')):"
    if [[ "$call" == aggregated ]]; then
      python3 "$HERE/decompose.py" "$WORK/$call.pcap" "$GATEHOUSE_PORT" "$PORT_A" "$PORT_B" "$PORT_C"
    else
      python3 "$HERE/decompose.py" "$WORK/$call.pcap" "$GATEHOUSE_PORT" "$PORT_C"
    fi
  done
fi
if [[ -n "${KEEP_METRICS:-}" ]]; then
  curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" >"$KEEP_METRICS"
fi
