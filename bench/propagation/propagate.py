#!/usr/bin/env python3
"""Propagation driver: how long from the API server accepting a Gateway change to the first
request the new route answers, measured on a real API server and a proxy watching it.

Usage: [MODE=settled|back-to-back] propagate.py KUBECONFIG_JSON NAMESPACE PROXY_ADDR ROUTES CHANGES [PROXY_LOG]
       propagate.py manifest NAMESPACE ROUTES     (prints the first Gateway)

KUBECONFIG_JSON is `kubectl config view --raw --minify -o json` (token or client-certificate
users). The Gateway `bench` gets ROUTES routes (contracts `v1`, `v2`… of at most 128 routes,
paths `/vK/rJ`, all to the Service `upstream`); its last route is the probe. Each of the CHANGES
changes renames the probe (`/vK/probe/I`) with one server-side apply; the clock starts when the
apply's response arrives and stops at the first 200 from `/probe/I`, polled every millisecond on
one keep-alive connection. MODE `settled` (the default) measures each change on its own, as a
user applying one sees it: the next change waits until the Gateway reads `Programmed=True` for
the previous one (its status written: for a large Gateway the API server spends about as long
on that write as on the apply). MODE `back-to-back` applies the next change 0.2 s after the
previous one is served, with the operator's status write of the previous change still running:
a stress figure. Prints one JSON line per change and a summary line. With the
proxy's JSON log, each change is split at the proxy's "route table loaded" line: `to_proxy_ms`
(the operator's reconcile, its ConfigMap write and the watch event, plus the proxy's parse),
`prepare_ms` (the proxy building the table, from the log line) and `to_served_ms` (the swap
and the next probe).

LAYOUT=contracts puts the routes in Contract resources instead (issue #16): Contracts `c0`,
`c1`… of at most 50 routes (version `v1`, base paths `/v1`, `/v2`…, so the paths are the same
as inline), labelled `bench: propagation`, and a Gateway `bench` that exposes them by that label.
A change renames the probe in the last Contract only: one apply of a Contract of a few KB while
the Gateway stays as it is. Settled then means the Gateway's status reports the Contract's new
generation served and `Programmed=True`.
"""
import datetime
import base64
import os
import http.client
import json
import ssl
import sys
import tempfile
import time
import urllib.parse

ROUTES_PER_CONTRACT = 128
ROUTES_PER_CONTRACT_RESOURCE = 50
LABEL = {"bench": "propagation"}


def contracts_layout():
    layout = os.environ.get("LAYOUT", "inline")
    if layout not in ("inline", "contracts"):
        sys.exit(f"LAYOUT is inline or contracts, not {layout}")
    return layout == "contracts"


def per_contract():
    return ROUTES_PER_CONTRACT_RESOURCE if contracts_layout() else ROUTES_PER_CONTRACT


def api_connection(config):
    context_name = config["current-context"]
    context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
    tls = ssl.create_default_context()
    if "certificate-authority-data" in cluster:
        tls.load_verify_locations(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    elif "certificate-authority" in cluster:
        tls.load_verify_locations(cafile=cluster["certificate-authority"])
    headers = {}
    if "token" in user:
        headers["Authorization"] = "Bearer " + user["token"]
    if "client-certificate-data" in user:
        cert = tempfile.NamedTemporaryFile("wb", delete=False)
        cert.write(base64.b64decode(user["client-certificate-data"]))
        cert.write(base64.b64decode(user["client-key-data"]))
        cert.close()
        tls.load_cert_chain(cert.name)
    server = urllib.parse.urlparse(cluster["server"])
    return lambda: http.client.HTTPSConnection(
        server.hostname, server.port or 443, context=tls), headers


def entries(routes, probe):
    """ROUTES routes in lists of one contract each, the last route the probe `/probe/PROBE`."""
    entries = [
        {"name": f"r{i}", "match": {"path": f"/r{i}"},
         "backend": {"service": "upstream", "port": 8080}}
        for i in range(routes - 1)
    ]
    entries.append({"name": "probe", "match": {"path": f"/probe/{probe}"},
                    "backend": {"service": "upstream", "port": 8080}})
    size = per_contract()
    return [entries[k * size:(k + 1) * size] for k in range((len(entries) + size - 1) // size)]


def gateway(namespace, routes, probe):
    """The Gateway `bench`: with ROUTES inline routes, or exposing the Contracts by label."""
    spec = {"deployment": {"networkPolicy": False}}
    if contracts_layout():
        spec["expose"] = [{"selector": {"matchLabels": LABEL}}]
    else:
        spec["contracts"] = [{"version": f"v{k + 1}", "routes": chunk}
                             for k, chunk in enumerate(entries(routes, probe))]
    return {
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "Gateway",
        "metadata": {"name": "bench", "namespace": namespace}, "spec": spec,
    }


def contracts(namespace, routes, probe):
    """The Contracts `c0`, `c1`… of the contracts layout (none inline)."""
    if not contracts_layout():
        return []
    return [{
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "Contract",
        "metadata": {"name": f"c{k}", "namespace": namespace, "labels": LABEL},
        "spec": {"versions": [{"version": "v1", "basePath": f"/v{k + 1}", "routes": chunk}]},
    } for k, chunk in enumerate(entries(routes, probe))]


def probe_path(routes, probe):
    """Where the probe route is served: its contract's base path, then its path."""
    return f"/v{(routes - 1) // per_contract() + 1}/probe/{probe}"


def apply(connect, headers, namespace, body):
    """Server-side applies `body` (a Gateway or a Contract); its new generation."""
    plural = {"Gateway": "gateways", "Contract": "contracts"}[body["kind"]]
    path = (f"/apis/gatehouse.dev/v1alpha1/namespaces/{namespace}/{plural}/"
            f"{body['metadata']['name']}?fieldManager=gatehouse-bench&force=true")
    connection = connect()
    connection.request("PATCH", path, body=json.dumps(body), headers={
        **headers, "Content-Type": "application/apply-patch+yaml"})
    response = connection.getresponse()
    text = response.read()
    connection.close()
    if response.status not in (200, 201):
        sys.exit(f"apply refused: {response.status} {text[:500]!r}")
    return json.loads(text)["metadata"]["generation"]


def apply_all(connect, headers, namespace, routes, probe):
    """Applies the Contracts, then the Gateway; the Gateway's generation."""
    for contract in contracts(namespace, routes, probe):
        apply(connect, headers, namespace, contract)
    return apply(connect, headers, namespace, gateway(namespace, routes, probe))


def change(connect, headers, namespace, routes, probe):
    """Renames the probe with one apply: of the Gateway, or of the last Contract. Returns what
    `programmed` waits for: the Gateway's generation, or (Contract name, its generation)."""
    if contracts_layout():
        last = contracts(namespace, routes, probe)[-1]
        return last["metadata"]["name"], apply(connect, headers, namespace, last)
    return apply(connect, headers, namespace, gateway(namespace, routes, probe))


class Prober:
    """GETs every millisecond on one keep-alive connection to the proxy. Not back to back: on
    a small machine a busy loop here would take a core from the API server, the operator and
    the proxy it is timing."""

    def __init__(self, address):
        host, port = address.rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.connection = None

    def status(self, path):
        for _ in range(2):
            try:
                if self.connection is None:
                    self.connection = http.client.HTTPConnection(self.host, self.port, timeout=5)
                self.connection.request("GET", path)
                response = self.connection.getresponse()
                response.read()
                return response.status
            except (http.client.HTTPException, OSError):
                self.connection = None
        return 0

    def wait_for(self, path, status, timeout):
        deadline = time.monotonic() + timeout
        polls = 0
        while time.monotonic() < deadline:
            polls += 1
            if self.status(path) == status:
                return polls
            time.sleep(0.001)
        return None


def programmed(connect, headers, namespace, expected, timeout):
    """Waits until the Gateway reads `Programmed=True` for `expected`: its own generation, or
    (Contract, generation) for a Contract it must also report served at that generation."""
    path = f"/apis/gatehouse.dev/v1alpha1/namespaces/{namespace}/gateways/bench"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        connection = connect()
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        gateway = json.loads(response.read())
        connection.close()
        status = gateway.get("status", {})
        generation = expected
        if isinstance(expected, tuple):
            name, served = expected
            generation = gateway["metadata"]["generation"]
            if not any(e["name"] == name and e.get("state") == "Served"
                       and e.get("servedGeneration") == served
                       for e in status.get("exposedContracts", [])):
                generation = None
        for condition in status.get("conditions", []):
            if (generation is not None and condition["type"] == "Programmed"
                    and condition["status"] == "True"
                    and condition.get("observedGeneration") == generation):
                return True
        time.sleep(0.2)
    return False


def percentile(values, q):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def main():
    if sys.argv[1] == "manifest":
        namespace, routes = sys.argv[2], int(sys.argv[3])
        items = contracts(namespace, routes, 0) + [gateway(namespace, routes, 0)]
        print(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
        return
    config = json.load(open(sys.argv[1]))
    namespace, proxy, routes, changes = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    connect, headers = api_connection(config)
    mode = os.environ.get("MODE", "settled")
    if mode not in ("settled", "back-to-back"):
        sys.exit(f"MODE is settled or back-to-back, not {mode}")
    prober = Prober(proxy)
    first = apply_all(connect, headers, namespace, routes, 0)
    if prober.wait_for(probe_path(routes, 0), 200, 120) is None:
        sys.exit("the proxy never served the first table; see the logs")
    if mode == "settled" and not programmed(connect, headers, namespace, first, 60):
        sys.exit("the first table never read Programmed=True")
    times, walls = [], []
    for i in range(1, changes + 1):
        path = probe_path(routes, i)
        if prober.status(path) != 404:
            sys.exit(f"{path} answers before its change")
        generation = change(connect, headers, namespace, routes, i)
        accepted = time.monotonic()
        accepted_wall = time.time()
        polls = prober.wait_for(path, 200, 30)
        elapsed = time.monotonic() - accepted
        walls.append((accepted_wall, accepted_wall + elapsed))
        if polls is None:
            sys.exit(f"change {i} (generation {generation}) was not served within 30 s")
        times.append(elapsed * 1000)
        print(json.dumps({"routes": routes, "change": i, "generation": generation,
                          "ms": round(elapsed * 1000, 2), "polls": polls,
                          "accepted_at": round(accepted_wall, 4)}))
        if mode == "settled":
            if not programmed(connect, headers, namespace, generation, 60):
                sys.exit(f"change {i} (generation {generation}) never read Programmed=True")
        else:
            time.sleep(0.2)
    summary = {
        "routes": routes, "layout": os.environ.get("LAYOUT", "inline"), "mode": mode,
        "changes": len(times),
        "p50_ms": round(percentile(times, 50), 1), "p99_ms": round(percentile(times, 99), 1),
        "max_ms": round(max(times), 1),
    }
    if len(sys.argv) > 6:
        summary.update(split(sys.argv[6], walls))
    print(json.dumps(summary))


def split(log, walls):
    """Medians of the parts of each change, from the proxy's "route table loaded" lines."""
    loads = []
    for line in open(log):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        fields = entry.get("fields", {})
        if fields.get("message") == "route table loaded":
            at = datetime.datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00"))
            loads.append((at.timestamp(), float(fields.get("prepare_ms", 0))))
    parts = {"to_proxy_ms": [], "prepare_ms": [], "to_served_ms": []}
    for accepted, served in walls:
        inside = [l for l in loads if accepted <= l[0] <= served]
        if not inside:
            continue
        loaded, prepare = inside[-1]
        parts["to_proxy_ms"].append((loaded - accepted) * 1000 - prepare)
        parts["prepare_ms"].append(prepare)
        parts["to_served_ms"].append((served - loaded) * 1000)
    return {f"median_{k}": round(percentile(v, 50), 1) for k, v in parts.items() if v}


if __name__ == "__main__":
    main()
