#!/usr/bin/env bash
# Propagation benchmark (#13): on a real API server, the release operator and a release proxy
# as a local process watching its route ConfigMap through the API with its own ServiceAccount's
# token (so exactly the Role the operator made), a steady paced load on one route, and CHANGES
# changes per size: time from the API server's acceptance of a Gateway change (the apply's
# response) to the first request answered by the new route, p50/p99, and failed requests.
#
# Usage: KUBECONFIG=/tmp/k8s-cp/kubeconfig bench/propagation/run.sh
#   SIZES="10 500 2000" CHANGES=50 RATE=500 MODE=settled SKIP_BUILD=1 KEEP=1 bench/propagation/run.sh
# MODE=settled (default): each change is applied once the previous one reads Programmed=True.
# MODE=back-to-back: 0.2 s after the previous one is served (see propagate.py).
# LAYOUT=contracts: the routes in Contract resources of 50 routes that the Gateway exposes by
# label; a change is one Contract's apply (issue #16; SIZES may go to 10000 = 200 Contracts).
# After each size: the operator's and the proxy's memory (VmRSS now, VmHWM the peak so far).
#
# Needs a cluster (../shared/tools/kube-control-plane/ starts one on loopback: WITH_KCM=1 up.sh),
# nginx, kubectl, python3. Goal: p99 <= 100 ms at 2,000
# routes, 0 failed requests.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=../lib.sh
source "$ROOT/bench/lib.sh"
SIZES="${SIZES:-10 500 2000}"
CHANGES="${CHANGES:-50}"
# The steady load is paced, not saturating: on one small machine a saturating load would starve
# the API server and the operator sharing its cores, which a cluster does not do.
RATE="${RATE:-500}"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
: "${KUBECONFIG:?point KUBECONFIG at a cluster (e.g. /tmp/k8s-cp/kubeconfig)}"
require_tools "apt-get install nginx curl; kubectl" nginx curl kubectl python3
build_release "$ROOT" gatehouse-operator gatehouse-proxy

WORK="$(mktemp -d)"; PIDS=(); trap cleanup EXIT
NS="gatehouse-bench-$$"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UP_PORT="$(free_port)"; PROXY_PORT="$(free_port)"; ADMIN_PORT="$(free_port)"; OP_ADMIN="$(free_port)"

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
kubectl apply --server-side --force-conflicts -f "$ROOT/crds/" >/dev/null
kubectl create namespace "$NS" >/dev/null
trap 'kubectl delete namespace "$NS" --wait=false >/dev/null 2>&1 || true; cleanup' EXIT
kubectl -n "$NS" create service clusterip upstream --tcp=8080:8080 >/dev/null

write_fixed_upstream "$WORK/nginx" "$UP_PORT"
nginx -c "$WORK/nginx/nginx.conf" -g 'daemon off;' >"$WORK/nginx.log" 2>&1 & PIDS+=("$!")
"$BIN/gatehouse-operator" run --namespace "$NS" --lease-namespace "$NS" \
  --admin-listen "127.0.0.1:$OP_ADMIN" --leader-election false --log-format json \
  >"$WORK/operator.log" 2>&1 & PIDS+=("$!"); OPERATOR_PID=$!
wait_http "http://127.0.0.1:$OP_ADMIN/readyz"

# The driver applies with this field manager too: a second manager would keep owning the routes
# the driver later removes (server-side apply), and the API server would refuse what is left.
python3 "$HERE/propagate.py" manifest "$NS" 10 \
  | kubectl apply --server-side --field-manager=gatehouse-bench -f - >/dev/null
for _ in $(seq 1 300); do
  kubectl -n "$NS" get serviceaccount bench-gateway >/dev/null 2>&1 && break; sleep 0.1
done
# The proxy holds its own ServiceAccount's token: the Role the operator made is all it may do.
kubectl config view --raw --minify -o json >"$WORK/admin.json"
python3 - "$WORK/admin.json" "$(kubectl -n "$NS" create token bench-gateway --duration=2h)" "$NS" >"$WORK/proxy.kubeconfig" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["users"] = [{"name": "proxy", "user": {"token": sys.argv[2]}}]
config["contexts"][0]["context"].update({"user": "proxy", "namespace": sys.argv[3]})
print(json.dumps(config))
PY
"$BIN/gatehouse-proxy" --config-map bench-gateway --namespace "$NS" --kubeconfig "$WORK/proxy.kubeconfig" \
  --listen "127.0.0.1:$PROXY_PORT" --admin "127.0.0.1:$ADMIN_PORT" \
  --resolve "upstream=127.0.0.1:$UP_PORT" --secrets-dir "$WORK/no-secrets" --log-format json \
  >"$WORK/proxy.log" 2>&1 & PIDS+=("$!"); PROXY_PID=$!
wait_http "http://127.0.0.1:$ADMIN_PORT/readyz"
# The operator finds the proxy as it finds pods: an EndpointSlice of its Service (FQDN
# `NAME.localhost`, which it resolves to 127.0.0.1; the API server refuses loopback IPs), so
# `Programmed` follows what this proxy serves, as it does in a cluster.
kubectl apply --server-side -f - >/dev/null <<YAML
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: bench-gateway-local
  namespace: $NS
  labels:
    kubernetes.io/service-name: bench-gateway
    app.kubernetes.io/managed-by: gatehouse-operator
    endpointslice.kubernetes.io/managed-by: gatehouse-bench
addressType: FQDN
endpoints: [{addresses: [bench-gateway.localhost], conditions: {ready: true}}]
ports: [{name: admin, port: $ADMIN_PORT, protocol: TCP}]
YAML
# What the operator did per change: reconciles, and status writes ("status written" lines).
counter() { curl -fsS "http://127.0.0.1:$OP_ADMIN/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
statuses() { grep -c '"status written"' "$WORK/operator.log" || true; }
memory() { awk '/^VmRSS|^VmHWM/ {printf "%s %.1f MiB  ", $1, $2 / 1024}' "/proc/$1/status"; }

for size in $SIZES; do
  echo "--- $size routes, $CHANGES changes, ${MODE:-settled}, ${LAYOUT:-inline}"
  python3 "$HERE/steady.py" "http://127.0.0.1:$PROXY_PORT/v1/r0" "$RATE" 4 >"$WORK/steady-$size.json" &
  STEADY=$!
  reconciles_before="$(counter 'gatehouse_operator_reconciles_total{kind="Gateway"}')"
  statuses_before="$(statuses)"
  python3 "$HERE/propagate.py" "$WORK/admin.json" "$NS" "127.0.0.1:$PROXY_PORT" "$size" "$CHANGES" "$WORK/proxy.log" \
    | tee "$WORK/changes-$size.jsonl" | tail -1
  sleep 3 # the last change's status
  echo "operator, per change (and the first table): $(python3 -c "import sys; r, s, n = map(float, sys.argv[1:]); print(f'{r / n:.1f} reconciles, {s / n:.1f} status writes')" \
    "$(( $(counter 'gatehouse_operator_reconciles_total{kind="Gateway"}') - ${reconciles_before:-0} ))" \
    "$(( $(statuses) - statuses_before ))" "$(( CHANGES + 1 ))"); Programmed: $(kubectl -n "$NS" get gateway bench -o jsonpath='{.status.conditions[?(@.type=="Programmed")].message}')"
  kill -TERM "$STEADY"; wait "$STEADY" || true
  echo "steady load ($RATE requests/s on /v1/r0): $(cat "$WORK/steady-$size.json")"
  echo "memory: operator $(memory "$OPERATOR_PID"); proxy $(memory "$PROXY_PID")"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
