"""Micro-benchmark of the storage hot path: PartitionLog.append and read.

Appends ``--size-mib`` (default 1 GiB) of 64 KiB and of 1 MiB batches (100-byte
records) to a fresh partition in a temp dir, then reads everything back with
1 MiB fetches.  Prints MB/s, batches/s and records/s, and the same volume written
with bare ``os.write`` calls as the ceiling, so the ratio shows our overhead.
A last run appends 1 KiB batches to expose the fixed per-append cost in µs.

    python benchmarks/log_append.py [--size-mib 1024] [--dir /path/on/the/disk/to/test]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from kavka.clock import Clock
from kavka.config import BrokerConfig
from kavka.log.partition_log import PartitionLog
from kavka.protocol.record_codec import encode_batch

RECORD_VALUE = 100


def make_batch(target_bytes: int) -> tuple[bytearray, int]:
    count = max(1, target_bytes // (RECORD_VALUE + 10))
    now = Clock().now_ms()
    batch = encode_batch([(None, os.urandom(RECORD_VALUE), now, ()) for _ in range(count)])
    return bytearray(batch), count


def bench_append(directory: Path, batch: bytearray, total: int) -> tuple[PartitionLog, float, int]:
    log = PartitionLog.open(directory, "bench", 0, BrokerConfig().topic_config(), Clock(), recover=False)
    n = max(1, total // len(batch))
    append = log.append
    start = time.perf_counter()
    for _ in range(n):
        append(batch)
    return log, time.perf_counter() - start, n


def bench_read(log: PartitionLog, fetch_bytes: int, batch_size: int, count: int) -> tuple[float, int, int]:
    """Consume the whole log with ``fetch_bytes`` fetches, copying the bytes out with pread
    (the server would sendfile them instead).  All batches are alike, so the next
    offset is arithmetic rather than a parse of every header."""
    offset, nbytes, fetches = 0, 0, 0
    start = time.perf_counter()
    while offset < log.log_end_offset:
        size = 0
        for piece in log.read(offset, fetch_bytes).slices:
            size += len(piece.read())
        nbytes += size
        offset += size // batch_size * count
        fetches += 1
    return time.perf_counter() - start, nbytes, fetches


def bench_raw_write(directory: Path, batch: bytearray, n: int) -> float:
    fd = os.open(directory / "raw", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    start = time.perf_counter()
    for _ in range(n):
        os.write(fd, batch)
    elapsed = time.perf_counter() - start
    os.close(fd)
    os.unlink(directory / "raw")
    return elapsed


def run(root: Path, batch_bytes: int, total: int) -> None:
    batch, count = make_batch(batch_bytes)
    directory = root / f"bench-{batch_bytes}"
    n = max(1, total // len(batch))
    os.sync()  # each timed phase starts without someone else's dirty pages to write back
    raw = bench_raw_write(root, batch, n)
    os.sync()
    log, seconds, n = bench_append(directory, batch, total)
    mb = n * len(batch) / 1e6
    print(f"append {len(batch) / 1024:6.0f} KiB batches: {mb / seconds:6.0f} MB/s {n / seconds:8.0f} batches/s "
          f"{n * count / seconds / 1e6:5.2f} M records/s | bare os.write {mb / raw:5.0f} MB/s, "
          f"ours/bare {raw / seconds:.2f}, overhead {(seconds - raw) / n * 1e6:+.1f} µs/batch")
    os.sync()
    read_s, nbytes, fetches = bench_read(log, 1 << 20, len(batch), count)
    step = max(1, log.log_end_offset // 20000)
    start = time.perf_counter()
    for offset in range(0, log.log_end_offset, step):
        log.read(offset, 1 << 20)
    lookup_us = (time.perf_counter() - start) / len(range(0, log.log_end_offset, step)) * 1e6
    print(f"read   1 MiB fetches (pread copy): {nbytes / read_s / 1e6:6.0f} MB/s {fetches / read_s:8.0f} fetches/s"
          f" | slice lookup only (sendfile path): {lookup_us:.1f} µs/fetch")
    log.close()
    shutil.rmtree(directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="kavka-bench-", dir=args.dir))
    try:
        total = args.size_mib << 20
        for batch_bytes in (64 << 10, 1 << 20):
            run(root, batch_bytes, total)
        run(root, 1 << 10, min(total, 64 << 20))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
