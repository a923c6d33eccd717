#!/usr/bin/env python3
"""Writes the rate-limit benchmark's RouteTable: one route `/v1/res` proxying to the upstream and
one client, `acme`, recognised by an API key (Secret `acme-keys`).

Usage: table.py UPSTREAM_PORT (none | global RATE BURST) > routes.json

`none`: acme has no rate limit. `global RATE BURST`: acme's limit is global (budget
`bench/acme`, refused when Redis cannot decide), drawn from the proxy's `--redis`.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from make_table import route  # noqa: E402


def main():
    port, mode = int(sys.argv[1]), sys.argv[2]
    client = {"name": "acme", "apiKey": {"secret": "acme-keys", "header": "x-api-key"}}
    if mode == "global":
        client["rateLimit"] = {
            "requestsPerSecond": int(sys.argv[3]),
            "burst": int(sys.argv[4]),
            "global": {"budget": "bench/acme", "onRedisFailure": "refuse"},
        }
    table = {
        "format": "gatehouse.dev/route-table/v1",
        "source": {"kind": "Gateway", "namespace": "bench", "name": "ratelimit"},
        "clients": [client],
        "routes": [route("v1/res", "prefix", "/v1/res", port)],
    }
    json.dump(table, sys.stdout)


if __name__ == "__main__":
    main()
