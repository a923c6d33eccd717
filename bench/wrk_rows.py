"""The rows `wrk_row` (bench/lib.sh) writes, read back for a summary: imported by the
benchmark scripts' summaries (`PYTHONPATH=bench`)."""
import statistics


def runs(path):
    """NAME -> [(req/s, p50 ms, p99 ms, non-2xx, CPU us/req)], one tuple per run, in order."""
    by = {}
    for line in open(path):
        if not line.strip():
            continue
        name, rps, p50, p99, errors, cpu = line.rstrip("\n").split("\t")
        by.setdefault(name, []).append((float(rps), float(p50), float(p99), int(errors), float(cpu)))
    return by


def median(by, name, i):
    """The median of field `i` over NAME's runs."""
    return statistics.median(r[i] for r in by[name])
