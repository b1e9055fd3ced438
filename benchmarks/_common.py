"""Helpers shared by the Kafka and Redis workloads: results, pacing, percentiles."""

from __future__ import annotations

import math
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

# Latency payload header: sequence number, send time (time.perf_counter_ns(),
# CLOCK_MONOTONIC on Linux, so comparable between processes on one machine).
LAT_HEADER = struct.Struct(">QQ")

# Settle time after a broker accepts connections before "idle RSS" is read.
IDLE_SETTLE_S = 1.0


class WorkloadError(RuntimeError):
    """A workload failed or timed out."""


def rate_result(records: int, nbytes: int, seconds: float, **extra) -> dict:
    seconds = max(seconds, 1e-9)
    out = {
        "records": records,
        "bytes": nbytes,
        "seconds": round(seconds, 4),
        "records_per_s": records / seconds,
        "mb_per_s": nbytes / seconds / 1e6,
    }
    out.update(extra)
    return out


def percentile(sorted_vals: list[int], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, math.ceil(q * len(sorted_vals)) - 1))
    return sorted_vals[k]


def latency_summary(lat_ns: list[int], expected: int, dup: int = 0) -> dict:
    lat_ns.sort()
    n = len(lat_ns)
    ms = 1e6
    return {
        "count": n,
        "expected": expected,
        "missing": expected - n,
        "duplicates": dup,
        "p50_ms": percentile(lat_ns, 0.50) / ms,
        "p99_ms": percentile(lat_ns, 0.99) / ms,
        "p999_ms": percentile(lat_ns, 0.999) / ms,
        "max_ms": (lat_ns[-1] / ms) if n else float("nan"),
        "mean_ms": (sum(lat_ns) / n / ms) if n else float("nan"),
    }


def latency_payload(seq: int, size: int, pad: bytes) -> bytes:
    """Payload of `size` bytes carrying (seq, send time) in its first 16 bytes."""
    return LAT_HEADER.pack(seq, time.perf_counter_ns()) + pad


def paced(rate: float, total: int, send_upto, wait=time.sleep, timeout: float = 60.0) -> float:
    """Call ``send_upto(k)`` so that record k is sent at t0 + k/rate.

    ``send_upto(k)`` must send every record with seq < k that is not sent yet.
    ``wait(seconds)`` waits until the next record is due; it may return early
    (e.g. ``producer.poll``, which serves delivery reports while it waits).
    Returns the achieved send rate (records/s).
    """
    t0 = time.perf_counter_ns()
    deadline = t0 + int(timeout * 1e9)
    step_ns = 1e9 / rate
    sent = 0
    while sent < total:
        now = time.perf_counter_ns()
        if now > deadline:
            raise WorkloadError(f"paced sender fell behind: {sent}/{total} sent in {timeout:.0f}s")
        due = min(total, int((now - t0) / step_ns) + 1)
        if due > sent:
            send_upto(due)
            sent = due
        if sent < total:
            next_ns = t0 + sent * step_ns
            delay = (next_ns - time.perf_counter_ns()) / 1e9
            wait(max(0.0, delay))
    elapsed = (time.perf_counter_ns() - t0) / 1e9
    return total / max(elapsed, 1e-9)


REPO_SRC = Path(__file__).resolve().parent.parent / "src"


def free_port() -> int:
    """Ask the kernel for a free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_kavka(argv: list[str], port: int, timeout: float = 20.0) -> tuple[subprocess.Popen, str]:
    """Run ``python <argv>`` with this checkout's kavka importable; wait until ``port`` accepts."""
    env = dict(os.environ, PYTHONPATH=str(REPO_SRC))
    proc = subprocess.Popen([sys.executable, *argv], env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.01)
    proc.kill()
    raise SystemExit("broker did not start")


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM a child we started; SIGKILL it if it has not exited within ``timeout``."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
