"""Redis Streams workloads: pipelined XADD, XREAD COUNT in batches.

Redis has no acks setting, so one produce run serves as both the acks=1 and the
acks=all figure (the report says so).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time

import redis

from _common import LAT_HEADER, WorkloadError, latency_payload, latency_summary, paced, rate_result

FIELD = b"d"
READ_BATCH = 10_000


def client(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=60, socket_connect_timeout=10)


def pipeline_depth(size: int) -> int:
    """Records per pipelined round trip: the Kafka batch.size (1 MiB) worth, 100..10,000."""
    return max(100, min(10_000, 1048576 // max(1, size)))


def delete_stream(port: int, key: str) -> None:
    try:
        r = client(port)
        r.delete(key)
        r.close()
    except Exception:
        pass


def produce(port: int, key: str, n: int, size: int, timeout: float) -> dict:
    r = client(port)
    r.delete(key)
    payload = os.urandom(size)
    depth = pipeline_depth(size)
    pipe = r.pipeline(transaction=False)
    cmd = pipe.execute_command
    t0 = time.perf_counter()
    deadline = t0 + timeout
    sent = 0
    while sent < n:
        k = min(depth, n - sent)
        for _ in range(k):
            cmd("XADD", key, "*", FIELD, payload)
        pipe.execute()  # raises on any command error
        sent += k
        if time.perf_counter() > deadline:
            raise WorkloadError(f"XADD timed out after {timeout:.0f}s ({sent}/{n})")
    dt = time.perf_counter() - t0
    length = r.xlen(key)
    r.close()
    if length != n:
        raise WorkloadError(f"stream has {length} entries, expected {n}")
    return rate_result(n, n * size, dt, pipeline_depth=depth)


def consume(port: int, key: str, n: int, size: int, timeout: float) -> dict:
    r = client(port)
    t0 = time.perf_counter()
    deadline = t0 + timeout
    last = b"0-0"
    got = 0
    nbytes = 0
    while got < n:
        resp = r.xread({key: last}, count=READ_BATCH)
        if not resp:
            raise WorkloadError(f"XREAD returned nothing after {got}/{n} entries")
        entries = resp[0][1]
        got += len(entries)
        last = entries[-1][0]
        nbytes += len(entries[-1][1][FIELD]) * len(entries)
        if time.perf_counter() > deadline:
            raise WorkloadError(f"XREAD timed out after {timeout:.0f}s ({got}/{n})")
    dt = time.perf_counter() - t0
    r.close()
    if nbytes != got * size:
        raise WorkloadError("XREAD entries have unexpected size")
    return rate_result(got, nbytes, dt, read_batch=READ_BATCH)


def _latency_consumer(port: int, key: str, total: int, warmup: int, ready, out_q, timeout: float) -> None:
    try:
        r = client(port)
        r.ping()
        ready.set()
        unpack = LAT_HEADER.unpack_from
        now_ns = time.perf_counter_ns
        lat: list[int] = []
        seen = bytearray(total)
        dup = 0
        got = 0
        last = b"0-0"
        deadline = time.monotonic() + timeout
        while got < total and time.monotonic() < deadline:
            resp = r.xread({key: last}, count=1000, block=100)
            if not resp:
                continue
            t = now_ns()
            entries = resp[0][1]
            last = entries[-1][0]
            for _id, fields in entries:
                seq, sent_ns = unpack(fields[FIELD])
                if seq >= total or seen[seq]:
                    dup += 1
                    continue
                seen[seq] = 1
                got += 1
                if seq >= warmup:
                    lat.append(t - sent_ns)
        r.close()
        out_q.put({"ok": True, **latency_summary(lat, total - warmup, dup)})
    except Exception as e:
        ready.set()
        out_q.put({"ok": False, "error": f"{type(e).__name__}: {e}"})


def latency(port: int, key: str, rate: int, seconds: float, size: int, timeout: float) -> dict:
    delete_stream(port, key)
    ctx = mp.get_context("spawn")
    warmup = max(1, int(rate * 0.5))
    total = warmup + int(rate * seconds)
    ready, out_q = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=_latency_consumer,
                       args=(port, key, total, warmup, ready, out_q, seconds + timeout), daemon=True)
    proc.start()
    try:
        if not ready.wait(timeout):
            raise WorkloadError("latency consumer did not get ready")
        r = client(port)
        pipe = r.pipeline(transaction=False)
        pad = os.urandom(max(0, size - LAT_HEADER.size))
        state = {"sent": 0}

        def send_upto(k: int) -> None:
            for seq in range(state["sent"], k):
                pipe.execute_command("XADD", key, "*", FIELD, latency_payload(seq, size, pad))
            pipe.execute()
            state["sent"] = k

        achieved = paced(rate, total, send_upto, timeout=seconds * 3 + 10)
        r.close()
        try:
            res = out_q.get(timeout=timeout + seconds)
        except Exception:
            raise WorkloadError("latency consumer returned no result") from None
        if not res.pop("ok"):
            raise WorkloadError(f"latency consumer: {res['error']}")
        res.update({"rate": rate, "achieved_rate": achieved, "seconds": seconds, "size": size,
                    "acks": "n/a", "warmup_records": warmup})
        return res
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
        delete_stream(port, key)
