#!/usr/bin/env bash
# Proxy memory across reloads: the release gatehouse-proxy serving a table of ROUTES routes
# (bench/make_table.py) is made to reload it RELOADS times (the file rewritten, a timeout
# changed), and VmRSS / VmHWM (/proc) are printed at start and after each reload. What a proxy
# keeps of the tables it replaced is the difference between the first and the last line.
#
# Usage: bench/reload-memory/run.sh [BINARY...]     (default: target/release/gatehouse-proxy)
#   ROUTES=10000 RELOADS=8 SKIP_BUILD=1 bench/reload-memory/run.sh /tmp/before/gatehouse-proxy target/release/gatehouse-proxy
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
ROUTES="${ROUTES:-10000}"
RELOADS="${RELOADS:-8}"
WORK="$(mktemp -d /tmp/gatehouse-reload-memory.XXXXXX)"
PROXY_PORT=18412 ADMIN_PORT=18413
PIDS=()

# shellcheck source=/dev/null
source "$ROOT/bench/lib.sh"
require_tools "apt-get install -y curl python3" curl python3
trap cleanup EXIT

if [[ $# -eq 0 ]]; then
  build_release "$ROOT" gatehouse-proxy
  set -- "${CARGO_TARGET_DIR:-$ROOT/target}/release/gatehouse-proxy"
fi

memory() { # PID
  awk '/^VmRSS|^VmHWM/ {printf "%s %d MiB  ", $1, $2 / 1024}' "/proc/$1/status"
}

for binary in "$@"; do
  echo "== $binary: $ROUTES routes, $RELOADS reloads"
  python3 "$ROOT/bench/make_table.py" "$ROUTES" 18411 >"$WORK/routes.json"
  "$binary" --routes "$WORK/routes.json" --listen "127.0.0.1:$PROXY_PORT" \
    --admin "127.0.0.1:$ADMIN_PORT" --log-format text >"$WORK/proxy.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 600); do curl -fsS -o /dev/null "http://127.0.0.1:$ADMIN_PORT/readyz" 2>/dev/null && break; sleep 0.1; done
  echo "loaded:      $(memory "$pid")"
  for reload in $(seq 1 "$RELOADS"); do
    sed -i "s/\"timeoutMs\": [0-9]*/\"timeoutMs\": $((5000 + reload))/" "$WORK/routes.json"
    generation=$((reload + 1))
    for _ in $(seq 1 600); do
      curl -fsS "http://127.0.0.1:$ADMIN_PORT/config" 2>/dev/null | grep -q "\"generation\": $generation," && break
      sleep 0.05
    done
    sleep 0.5
    echo "reload $reload:    $(memory "$pid")"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
  unset 'PIDS[-1]'
done
