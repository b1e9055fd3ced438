"""Machine info and the result tables of produce_consume.py."""

from __future__ import annotations

import math
import os
import platform
import sys

MB = 1e6  # throughput and RSS figures use MB = 10**6 bytes


def machine_info() -> dict:
    info: dict = {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
    }
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info["mem_total_gib"] = round(int(line.split()[1]) / 1048576, 1)
                    break
    except OSError:
        pass
    libs: dict = {}
    try:
        import confluent_kafka

        libs["confluent-kafka"] = getattr(confluent_kafka, "__version__", None) or confluent_kafka.version()[0]
        libs["librdkafka"] = confluent_kafka.libversion()[0]
    except ImportError:
        libs["confluent-kafka"] = "missing"
    try:
        import redis

        libs["redis-py"] = redis.__version__
        try:
            from redis.utils import HIREDIS_AVAILABLE
        except ImportError:
            HIREDIS_AVAILABLE = False
        if HIREDIS_AVAILABLE:
            import hiredis

            libs["hiredis"] = hiredis.__version__
        else:
            libs["hiredis"] = "not used"
    except ImportError:
        libs["redis-py"] = "missing"
    try:
        import psutil

        libs["psutil"] = psutil.__version__
    except ImportError:
        libs["psutil"] = "missing (using /proc)"
    info["libraries"] = libs
    try:
        info["loadavg_at_start"] = os.getloadavg()
    except OSError:
        pass
    return info


def print_machine_info(info: dict, versions: dict, config: dict) -> None:
    print("== machine")
    print(f"  cpu: {info.get('cpu', '?')}  nproc={info['nproc']} usable={info['usable_cpus']}"
          f"  mem={info.get('mem_total_gib', '?')} GiB")
    print(f"  {info['platform']}  python {info['python']} ({info['implementation']})")
    if "loadavg_at_start" in info:
        la = info["loadavg_at_start"]
        now = os.getloadavg()
        print(f"  load average at start {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}, now {now[0]:.2f} {now[1]:.2f} {now[2]:.2f}"
              "  (other work on the machine skews every figure)")
    print("  clients: " + ", ".join(f"{k} {v}" for k, v in info["libraries"].items()))
    if versions:
        print("  targets: " + ", ".join(f"{k}: {v}" for k, v in versions.items()))
    print("== configuration")
    for k, v in config.items():
        print(f"  {k}: {v}")
    print()


# ---------------------------------------------------------------------------
# issue targets (for kavka): metric key -> (description, predicate)


def _ge(x):
    return lambda v: v >= x


def _le(x):
    return lambda v: v <= x


def fmt(v, digits=1) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, float) and math.isnan(v):
        return "nan"
    if isinstance(v, int):
        return f"{v:,}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.{digits}f}"
    return f"{v:.{digits + 1}f}"


def ratio(a, b) -> str:
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or not b:
        return "-"
    if math.isnan(a) or math.isnan(b):
        return "-"
    return f"{a / b:.2f}x"


def _get(res: dict, path: tuple):
    cur = res
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return cur


def build_rows(sizes: list[int], lat_size: int) -> list[tuple]:
    """(table title, lower_is_better, [(row label, value path, target text, predicate)])."""
    tables = []
    rows = []
    for size in sizes:
        for acks in ("1", "all"):
            tgt, pred = ("", None)
            if size == 100:
                tgt, pred = ">= 500,000", _ge(500_000)
            rows.append((f"{size} B acks={acks}", ("produce", str(size), acks, "records_per_s"), tgt, pred))
    tables.append(("Produce throughput, records/s (higher is better)", False, rows))
    rows = []
    for size in sizes:
        for acks in ("1", "all"):
            tgt, pred = ("", None)
            if size == 1024:
                tgt, pred = ">= 200", _ge(200)
            rows.append((f"{size} B acks={acks}", ("produce", str(size), acks, "mb_per_s"), tgt, pred))
    tables.append(("Produce throughput, MB/s of payload (higher is better)", False, rows))
    rows = []
    for size in sizes:
        rows.append((f"{size} B records/s", ("consume", str(size), "records_per_s"), ">= 1,000,000",
                     _ge(1_000_000)))
    for size in sizes:
        rows.append((f"{size} B MB/s", ("consume", str(size), "mb_per_s"), "", None))
    tables.append(("Consume throughput from offset 0 (higher is better)", False, rows))
    rows = [
        ("p50 ms", ("latency", "p50_ms"), "", None),
        ("p99 ms", ("latency", "p99_ms"), "<= 10", _le(10)),
        ("p99.9 ms", ("latency", "p999_ms"), "", None),
        ("max ms", ("latency", "max_ms"), "", None),
        ("produce ack p50 ms", ("latency", "ack_p50_ms"), "", None),
        ("produce ack p99 ms", ("latency", "ack_p99_ms"), "", None),
        ("achieved rate/s", ("latency", "achieved_rate"), "", None),
        ("records missing", ("latency", "missing"), "0", lambda v: v == 0),
    ]
    tables.append((f"End-to-end latency at a fixed rate, {lat_size} B records (lower is better)", True, rows))
    rows = [
        ("startup ms", ("broker", "startup_ms"), "", None),
        ("idle RSS MB after start", ("broker", "rss_idle_mb"), "<= 60", _le(60)),
        ("peak RSS MB (sampled)", ("broker", "rss_peak_mb"), "", None),
        ("RSS MB after workload", ("broker", "rss_after_mb"), "", None),
    ]
    tables.append(("Broker process (lower is better)", True, rows))
    return tables


def print_table(title: str, header: list[str], body: list[list[str]]) -> None:
    """A text table: first column left-aligned, the others right-aligned."""
    widths = [max(len(str(row[i])) for row in [header] + body) for i in range(len(header))]
    print(f"== {title}")
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths)))
    print(line)
    print("-" * len(line))
    for row in body:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
    print()


def print_tables(results: dict, names: list[str], sizes: list[int], lat_size: int) -> None:
    subject = names[0] if names else None
    others = names[1:]
    ratio_cols = [f"{subject}/{o}" for o in others]
    verdict_col = f"{subject} vs target"
    for title, _lower, rows in build_rows(sizes, lat_size):
        header = ["metric"] + names + ratio_cols + ["issue target", verdict_col]
        body = []
        for label, path, tgt, pred in rows:
            vals = []
            for n in names:
                r = results.get(n, {})
                v = _get(r, path)
                if v is None and (r.get("error") or r.get("_errors")):
                    v = "ERR"
                vals.append(v)
            cells = [label] + [fmt(v) for v in vals]
            cells += [ratio(vals[0], vals[i]) for i in range(1, len(names))]
            verdict = ""
            if pred is not None and subject == "kavka":
                v0 = vals[0]
                if isinstance(v0, (int, float)) and not (isinstance(v0, float) and math.isnan(v0)):
                    verdict = "PASS" if pred(v0) else "MISS"
                else:
                    verdict = "n/a"
            cells += [tgt, verdict]
            body.append(cells)
        print_table(title, header, body)
    notes = []
    for n in names:
        r = results.get(n, {})
        if r.get("error"):
            notes.append(f"{n}: FAILED: {r['error']}")
        for phase, errs in (r.get("_errors") or {}).items():
            notes.append(f"{n}: {phase}: {errs}")
    if "redis" in names:
        notes.append("redis: no acks setting; one pipelined-XADD run is shown in both the acks=1 and acks=all rows.")
    if notes:
        print("== notes")
        for n in notes:
            print("  " + n)
        print()
