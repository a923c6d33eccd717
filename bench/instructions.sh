#!/usr/bin/env bash
# Instructions per request: gatehouse-proxy's user-space instructions per proxied request, counted
# by valgrind (callgrind) for a 10-route and a 10,000-route table. Unlike req/s and CPU time it
# does not move when other processes share the machine, so it is the figure to compare tables
# (or two builds) with. Kernel work (the socket calls, the same for any proxy) is not counted.
#
# Usage: bench/instructions.sh              (needs valgrind, nginx, wrk, curl, python3)
#   SECONDS_MEASURED=8 SKIP_BUILD=1 bench/instructions.sh
#   FUNCTIONS='normalize_path|admit' bench/instructions.sh   also prints, per request, the
#     instructions spent inside the functions whose names match (inclusive, 10-route table)
#   KEEP=1 bench/instructions.sh   keeps the callgrind files (callgrind_annotate them) and says where
#
# The proxy starts uninstrumented (table load and start-up are not counted), takes 3 s of warm-up
# traffic, then callgrind counts every instruction of every thread during SECONDS_MEASURED s of
# traffic from wrk (1 thread, 20 connections); the count is divided by the requests wrk completed.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
SECONDS_MEASURED="${SECONDS_MEASURED:-8}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
WORK="$(mktemp -d /tmp/gatehouse-instructions.XXXXXX)"
UPSTREAM_PORT=18301 PROXY_PORT=18302 ADMIN_PORT=18303
PIDS=()

# shellcheck source=/dev/null
source "$HERE/lib.sh"
require_tools "apt-get install -y valgrind nginx wrk curl python3" valgrind callgrind_control nginx wrk curl python3
trap cleanup EXIT

build_release "$ROOT" gatehouse-proxy
# What the proxy would set for itself by starting again (allocator/src/lib.rs): set here, the
# process valgrind starts is the one that serves.
export MIMALLOC_ARENA_EAGER_COMMIT=0
BIN="$TARGET_DIR/release/gatehouse-proxy"

write_fixed_upstream "$WORK/upstream" "$UPSTREAM_PORT"
nginx -p "$WORK/upstream" -c "$WORK/upstream/nginx.conf" -g "daemon off;" >"$WORK/upstream.log" 2>&1 &
PIDS+=("$!")
wait_http "http://127.0.0.1:$UPSTREAM_PORT/"

echo "command: valgrind --tool=callgrind --instr-atstart=no $BIN --routes TABLE --threads 1"
for routes in 10 10000; do
  python3 "$HERE/make_table.py" "$routes" "$UPSTREAM_PORT" >"$WORK/routes-$routes.json"
  path="/v1/res$(( routes == 10 ? 0 : routes / 20 ))/42"
  url="http://127.0.0.1:$PROXY_PORT$path"
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/callgrind.$routes" \
    "$BIN" --routes "$WORK/routes-$routes.json" --listen "127.0.0.1:$PROXY_PORT" \
    --admin "127.0.0.1:$ADMIN_PORT" --threads 1 --log-format text >"$WORK/proxy-$routes.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 600); do curl -fsS -o /dev/null "http://127.0.0.1:$ADMIN_PORT/readyz" 2>/dev/null && break; sleep 0.1; done
  wrk -t1 -c20 -d3s "$url" >/dev/null
  callgrind_control -i on "$pid" >/dev/null 2>&1
  requests=$(wrk -t1 -c20 -d"${SECONDS_MEASURED}s" "$url" | awk '/requests in/ {print $1}')
  callgrind_control -d "$pid" >/dev/null 2>&1  # writes callgrind.$routes.1: the counts so far
  kill "$pid"; wait "$pid" 2>/dev/null || true
  unset 'PIDS[-1]'
  instructions=$(awk '/^(summary|totals):/ {print $2; exit}' "$WORK/callgrind.$routes.1")
  echo "$routes routes: $requests requests, $instructions instructions, $(( instructions / requests )) per request" | tee -a "$WORK/summary"
  if [[ -n "${FUNCTIONS:-}" && "$routes" == 10 ]]; then
    callgrind_annotate --inclusive=yes --threshold=100 "$WORK/callgrind.$routes.1" 2>/dev/null |
      grep -E "$FUNCTIONS" | awk -v n="$requests" '{gsub(",", "", $1); printf "  %8.1f per request  %s\n", $1 / n, $0}' |
      cut -c1-200 | head -20
  fi
done
python3 - "$WORK/summary" <<'PY'
import re, sys
per = [int(re.search(r"(\d+) per request", line).group(1)) for line in open(sys.argv[1])]
print(f"10,000-route table / 10-route table, instructions per request: {per[1] / per[0]:.3f}")
PY
