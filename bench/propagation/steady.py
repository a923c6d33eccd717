#!/usr/bin/env python3
"""Steady request load: GET URL at RATE requests per second on CONNECTIONS keep-alive
connections (one thread each) until SIGTERM/SIGINT, then prints one JSON line: requests sent,
non-200 answers and transport errors (a failed request is either).

Usage: steady.py URL RATE CONNECTIONS
"""
import http.client
import json
import signal
import sys
import threading
import time
import urllib.parse

stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())


def run(url, rate, counts, lock):
    target = urllib.parse.urlparse(url)
    connection = None
    interval = 1.0 / rate
    next_at = time.monotonic()
    while not stop.is_set():
        status = 0
        try:
            if connection is None:
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=5)
            connection.request("GET", target.path)
            response = connection.getresponse()
            response.read()
            status = response.status
        except (http.client.HTTPException, OSError):
            connection = None
        with lock:
            counts["requests"] += 1
            if status == 0:
                counts["errors"] += 1
            elif status != 200:
                counts["non_200"] += 1
                counts.setdefault("statuses", {}).setdefault(str(status), 0)
                counts["statuses"][str(status)] += 1
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        else:
            next_at = time.monotonic()


def main():
    url, rate, connections = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    counts, lock = {"requests": 0, "non_200": 0, "errors": 0}, threading.Lock()
    started = time.monotonic()
    threads = [threading.Thread(target=run, args=(url, rate / connections, counts, lock))
               for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
