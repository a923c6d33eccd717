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

# Exits unless every TOOL is installed; HINT says how to install them.
require_tools() { # HINT TOOL...
  local hint="$1" tool; shift
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "missing $tool ($hint)" >&2; exit 1; }
  done
}

# Stops every process in PIDS and removes WORK: each script's EXIT trap.
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ -n "${KEEP:-}" ]]; then echo "kept: $WORK"; else rm -rf "$WORK"; fi
}

# Builds the release binaries of the PACKAGEs in ROOT, unless SKIP_BUILD is set.
build_release() { # ROOT PACKAGE...
  local root="$1" package args=(); shift
  for package in "$@"; do args+=(-p "$package"); done
  [[ -n "${SKIP_BUILD:-}" ]] || (cd "$root" && cargo build --release "${args[@]}")
}

# Writes DIR/nginx.conf for an upstream: one nginx worker on 127.0.0.1:PORT answering every
# request with a small fixed body.
write_fixed_upstream() { # DIR PORT
  mkdir -p "$1/logs"
  cat >"$1/nginx.conf" <<CONF
worker_processes 1;
error_log $1/logs/error.log warn;
pid $1/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$2 reuseport;
    location / { default_type text/plain; return 200 "hello from the upstream\n"; }
  }
}
CONF
}
