# Helpers shared by the benchmark scripts (sourced, not run).

# Waits until URL answers 2xx (about 10 s at most), or exits.
wait_http() { # URL [CURL OPTION...]
  for _ in $(seq 1 500); do
    curl -fsS -o /dev/null "$@" 2>/dev/null && return 0
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

# Writes DIR/nginx.conf: one worker, logs under DIR, no access log, long keep-alive, and HTTP
# (the inside of the `http` block).
write_nginx_conf() { # DIR HTTP
  mkdir -p "$1/logs"
  cat >"$1/nginx.conf" <<CONF
worker_processes 1;
error_log $1/logs/error.log warn;
pid $1/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
$2
}
CONF
}

# Writes DIR/nginx.conf for an upstream: one nginx worker on 127.0.0.1:PORT answering every
# request with a small fixed body.
write_fixed_upstream() { # DIR PORT
  write_nginx_conf "$1" "  server {
    listen 127.0.0.1:$2 reuseport;
    location / { default_type text/plain; return 200 \"hello from the upstream\\n\"; }
  }"
}

# Starts the fixed upstream (write_fixed_upstream) from WORK/upstream, pinned to CPU, and waits
# until it answers.
start_fixed_upstream() { # CPU PORT
  write_fixed_upstream "$WORK/upstream" "$2"
  start "$1" "$WORK/upstream.log" nginx -p "$WORK/upstream" -c "$WORK/upstream/nginx.conf" -g "daemon off;"
  wait_http "http://127.0.0.1:$2/"
}

# Writes DIR/nginx.conf for nginx as the proxy under test: one worker, keepalive connections to
# the upstream on 127.0.0.1:UPSTREAM_PORT, `/v1/X` proxied to `/X`; SERVER holds the `listen`
# (and TLS) directives of its server block.
write_nginx_proxy() { # DIR UPSTREAM_PORT SERVER
  write_nginx_conf "$1" "  upstream backend { server 127.0.0.1:$2; keepalive 256; keepalive_requests 1000000; }
  server {
    $3
    location /v1/ {
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_pass http://backend/;
    }
  }"
}

# User+system clock ticks of process PID and its children (nginx workers).
cpu_ticks() { # PID
  local total=0 pid
  for pid in "$1" $(pgrep -P "$1" || true); do
    total=$(( total + $(awk '{print $14 + $15}' "/proc/$pid/stat") ))
  done
  echo "$total"
}

# One tab-separated row from a `wrk --latency` report: NAME, req/s, p50 ms, p99 ms, non-2xx
# responses, the proxy's CPU microseconds per request (TICKS of CPU over the run).
wrk_row() { # NAME FILE TICKS
  python3 - "$1" "$2" "$3" "$(getconf CLK_TCK)" <<'PY'
import re, sys
name, path, ticks, hz = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
text = open(path).read()
def ms(value):
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p50 = ms(re.search(r"\s50%\s+(\S+)", text).group(1))
p99 = ms(re.search(r"\s99%\s+(\S+)", text).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
requests = int(re.search(r"(\d+) requests in", text).group(1))
cpu_us = ticks / hz * 1e6 / max(requests, 1)
print(f"{name}\t{rps}\t{p50}\t{p99}\t{errors.group(1) if errors else 0}\t{cpu_us}")
PY
}
