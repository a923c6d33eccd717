#!/usr/bin/env python3
"""Writes a RouteTable JSON with N routes, all proxying to one upstream.

Usage: make_table.py N UPSTREAM_PORT > routes.json
       VERSION_STATE=published make_table.py N UPSTREAM_PORT   (routes of a published version,
       whose calls the proxy records per client: what strict versioning adds to a request)

Routes come in families of ten per resource (`/v1/resK`, `/v1/resK/{id}`, `/v1/resK/{id}/sub`
prefix, seven exact leaves), the shape of a real API. The benchmark requests
`/v1/res{N/20}/{id}`, a template route in the middle of the table.
"""
import json
import os
import sys


def route(route_id, kind, path, port):
    return {
        "id": route_id,
        "contract": "v1",
        "pathKind": kind,
        "path": path,
        "methods": [],
        "headers": [],
        "query": [],
        "action": {
            "type": "proxy",
            "upstreams": [
                {"service": "upstream", "host": "127.0.0.1", "port": port, "weight": 1}
            ],
        },
        "timeoutMs": 5000,
        **({"state": os.environ["VERSION_STATE"]} if os.environ.get("VERSION_STATE") else {}),
    }


def main():
    count, port = int(sys.argv[1]), int(sys.argv[2])
    routes = []
    family = 0
    while len(routes) < count:
        base = f"/v1/res{family}"
        candidates = [
            (f"v1/list-{family}", "exact", base),
            (f"v1/get-{family}", "template", base + "/{id}"),
            (f"v1/sub-{family}", "prefix", base + "/{id}/sub"),
        ] + [(f"v1/leaf-{family}-{k}", "exact", f"{base}/fixed/leaf{k}") for k in range(7)]
        for route_id, kind, path in candidates:
            if len(routes) < count:
                routes.append(route(route_id, kind, path, port))
        family += 1
    routes.sort(key=lambda r: r["id"])
    table = {
        "format": "gatehouse.dev/route-table/v1",
        "source": {"kind": "Gateway", "namespace": "bench", "name": "bench"},
        "clients": [],
        "routes": routes,
    }
    json.dump(table, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
