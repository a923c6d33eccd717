#!/usr/bin/env python3
"""Open-loop load at a fixed rate, spread round-robin over several proxies, counting what each
admits: the accuracy of a global rate limit.

Usage: accuracy.py RATE WARMUP_S SECONDS KEY URL...

Sends RATE requests per second in all (request i at start + i/RATE, whether or not earlier ones
have been answered), each with `x-api-key: KEY`, over kept-alive connections. Requests sent
during the first WARMUP_S seconds (while the burst is spent) are not counted; of the next
SECONDS, prints the 200s per second in all and per proxy, and the other statuses.
"""
import asyncio
import collections
import sys
import time
from urllib.parse import urlsplit


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


class Pool:
    """Idle kept-alive connections to one proxy."""

    def __init__(self, url, key):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.request = (
            f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"x-api-key: {key}\r\n\r\n"
        ).encode()
        self.idle = []

    async def send(self):
        if self.idle:
            reader, writer = self.idle.pop()
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        writer.write(self.request)
        await writer.drain()
        status = await read_response(reader)
        self.idle.append((reader, writer))
        return status


async def main():
    rate, warmup, seconds, key = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    pools = [Pool(url, key) for url in sys.argv[5:]]
    counted = collections.Counter()
    per_proxy = collections.Counter()
    late = 0
    tasks = []

    async def one(i, pool_index, count):
        status = await pools[pool_index].send()
        if count:
            counted[status] += 1
            if status == 200:
                per_proxy[pool_index] += 1

    total = int(rate * (warmup + seconds))
    start = time.monotonic() + 0.1
    for i in range(total):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.05:
            late += 1
        tasks.append(asyncio.create_task(one(i, i % len(pools), i / rate >= warmup)))
    await asyncio.gather(*tasks)
    admitted = counted[200]
    print(f"offered {rate:.0f}/s over {len(pools)} proxies for {seconds:.0f} s (after {warmup:.0f} s of warm-up): "
          f"admitted {admitted / seconds:.1f}/s in all; per proxy "
          + ", ".join(f"{per_proxy[p] / seconds:.1f}" for p in range(len(pools)))
          + "; statuses " + ", ".join(f"{s}: {n}" for s, n in sorted(counted.items()))
          + (f"; {late} requests sent over 50 ms late" if late else ""))


asyncio.run(main())
