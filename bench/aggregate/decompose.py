#!/usr/bin/env python3
"""Where an aggregated call's time goes, from a loopback packet capture (tcpdump -w).

Usage: decompose.py CAPTURE.pcap PROXY_PORT UPSTREAM_PORT...

Every HTTP message is timed by its first and last packet on the wire. A downstream call (client
-> PROXY_PORT) is tied to its step calls (proxy -> UPSTREAM_PORTs) by the X-Request-Id the proxy
returns to the client and sends to every step. Requests and responses on one connection pair up
in order (HTTP/1.1 keepalive, no pipelining). Without the proxy port in the capture (a direct
run), only the upstream times are printed.

Printed (milliseconds, p50 / p90 / p99 / max over the calls seen):
  at proxy        downstream request in -> downstream response out (what the proxy adds + the
                  slowest step)
  ingress         downstream request in -> first step request out
  step spread     first -> last step request out
  upstream STEP   step request out -> step response complete, per upstream port
  slowest step    the largest of a call's three upstream times
  egress          last step response complete -> downstream response out
  proxy own time  at proxy - slowest step
"""
import struct
import sys
from collections import defaultdict

METHODS = (b"GET ", b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"PATCH ", b"OPTIONS ")


def packets(path):
    """(time, src_port, dst_port, payload) for every TCP packet with a payload."""
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        endian = "<"
    else:
        endian = ">"
        magic = struct.unpack(">I", data[:4])[0]
    nanos = magic == 0xA1B23C4D
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    link_header = {1: 14, 113: 16, 276: 20, 0: 4}.get(linktype)
    if link_header is None:
        sys.exit(f"unsupported link type {linktype}")
    offset = 24
    while offset + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack(endian + "IIII", data[offset:offset + 16])
        offset += 16
        frame = data[offset:offset + caplen]
        offset += caplen
        t = sec + frac / (1e9 if nanos else 1e6)
        ip = frame[link_header:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
            continue
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        tcp = ip[ihl:]
        src, dst = struct.unpack(">HH", tcp[:4])
        doff = (tcp[12] >> 4) * 4
        payload_len = total - ihl - doff
        if payload_len <= 0:
            continue
        yield t, src, dst, tcp[doff:doff + payload_len]


def messages(path):
    """Messages per direction: {(src, dst): [[start, end, first_payload], ...]}."""
    flows = defaultdict(list)
    for t, src, dst, payload in packets(path):
        flow = flows[(src, dst)]
        if payload.startswith(b"HTTP/1.") or payload.startswith(METHODS) or not flow:
            flow.append([t, t, payload])
        else:
            flow[-1][1] = t
    return flows


def request_id(payload):
    for line in payload.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"x-request-id":
            return value.strip().decode()
    return None


def exchanges(flows, port):
    """(request_start, response_end, request_payload, response_payload) for calls to `port`."""
    out = []
    for (src, dst), requests in flows.items():
        if dst != port:
            continue
        responses = flows.get((dst, src), [])
        i = 0
        for req in requests:
            while i < len(responses) and responses[i][0] < req[0]:
                i += 1  # a response to a request sent before the capture started
            if i == len(responses):
                break
            resp = responses[i]
            out.append((req[0], resp[1], req[2], resp[2]))
            i += 1
    return out


def stats(name, values):
    if not values:
        print(f"  {name:<22} (none)")
        return
    values = sorted(values)
    pick = lambda q: values[min(len(values) - 1, int(q * len(values)))] * 1000
    print(f"  {name:<22}{pick(0.5):>8.3f}{pick(0.9):>8.3f}{pick(0.99):>8.3f}{values[-1] * 1000:>8.3f}"
          f"   n={len(values)}")


def arrivals(times):
    """How bunched the client requests arrive: requests per 1 ms window that saw any."""
    per_ms = defaultdict(int)
    for t in times:
        per_ms[int(t * 1000)] += 1
    counts = sorted(per_ms.values())
    mean = len(times) / max((times[-1] - times[0]) * 1000, 1e-9)
    share = lambda q: counts[min(len(counts) - 1, int(q * len(counts)))]
    in_busy = sorted((c for c in counts for _ in range(c)))
    print(f"  arrivals: {mean:.2f} per ms on average; windows with any: {len(counts)} of "
          f"{int((times[-1] - times[0]) * 1000) + 1}; requests per such window p50 {share(0.5)}, "
          f"max {counts[-1]}; half of all requests arrive in a 1 ms window holding >= "
          f"{in_busy[len(in_busy) // 2]} requests")


def main():
    path, proxy_port = sys.argv[1], int(sys.argv[2])
    upstream_ports = [int(p) for p in sys.argv[3:]]
    flows = messages(path)
    print(f"  {'ms':<22}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}")
    steps_by_id = defaultdict(list)
    for port in upstream_ports:
        calls = exchanges(flows, port)
        stats(f"upstream :{port}", [end - start for start, end, _, _ in calls])
        for start, end, req, _ in calls:
            rid = request_id(req)
            if rid:
                steps_by_id[rid].append((start, end))
    downstream = exchanges(flows, proxy_port)
    if not downstream:
        return
    arrivals(sorted(start for start, _, _, _ in downstream))
    at_proxy, ingress, spread, slowest, egress, own = [], [], [], [], [], []
    for start, end, _, resp in downstream:
        steps = steps_by_id.get(request_id(resp) or "", [])
        if len(steps) != len(upstream_ports):
            continue
        first_out = min(s for s, _ in steps)
        last_out = max(s for s, _ in steps)
        last_in = max(e for _, e in steps)
        slow = max(e - s for s, e in steps)
        at_proxy.append(end - start)
        ingress.append(first_out - start)
        spread.append(last_out - first_out)
        slowest.append(slow)
        egress.append(end - last_in)
        own.append((end - start) - slow)
    stats("at proxy", at_proxy)
    stats("ingress", ingress)
    stats("step spread", spread)
    stats("slowest step", slowest)
    stats("egress", egress)
    stats("proxy own time", own)


if __name__ == "__main__":
    main()
