# Helpers shared by the benchmark scripts (sourced, not run).

# Waits until URL answers 2xx (about 10 s at most), or exits.
wait_http() { # URL
  for _ in $(seq 1 500); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.02
  done
  echo "not answering: $1" >&2; exit 1
}

# Starts COMMAND in the background pinned to CPU, logging to LOG; its pid joins PIDS. A script
# may set PRIORITY (e.g. `chrt -f 10`) to prefix the command.
start() { # CPU LOG COMMAND...
  local cpu="$1" log="$2"; shift 2
  ${PRIORITY[@]+"${PRIORITY[@]}"} taskset -c "$cpu" "$@" >"$log" 2>&1 &
  PIDS+=("$!")
}
