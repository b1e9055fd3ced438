"""Compaction cleaner: its throughput, and produce latency while it runs vs without it.

One embedded broker (``kavka.Broker``, cleaner switched off so nothing runs early):

1. preload: ``--mib`` MiB of keyed records (``--keys`` distinct keys, ``--value-size``
   byte values) into a compacted topic with ``--segment-mib`` MiB segments;
2. baseline: a producer sends 100 B records at a fixed ``--rate`` per second
   (acks=all, linger.ms=1) to another topic for ``--seconds``; send -> delivery
   report latency is recorded;
3. the same fixed-rate producer again, for exactly as long as a LogCleaner on the
   broker's event loop cleans the preloaded topic (copy in its worker thread, swaps
   on the loop), until nothing is cleanable or ``--max-seconds`` pass.

Prints the cleaner's throughput (MB of log read per second of cleaning, worker time
and wall time), how much the log shrank, and produce latency p50/p99/max for both
phases with their ratio.

    python benchmarks/compaction.py [--mib 64] [--keys 20000] [--rate 2000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from kavka.broker import Broker  # noqa: E402
from kavka.log.cleaner import LogCleaner  # noqa: E402

TABLE, LIVE = "bench-table", "bench-live"


def create(bootstrap: str, name: str, config: dict) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, 1, 1, config=config)], operation_timeout=10)[name].result(10)


def preload(bootstrap: str, mib: int, keys: int, value_size: int) -> int:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1 << 20,
                         "queue.buffering.max.messages": 1_000_000, "acks": "1"})
    value = os.urandom(value_size)
    count = (mib << 20) // (value_size + 20)
    for i in range(count):
        while True:
            try:
                producer.produce(TABLE, key=b"key-%08d" % (i % keys), value=value)
                break
            except BufferError:
                producer.poll(0.01)
        if i % 10000 == 0:
            producer.poll(0)
    assert producer.flush(120) == 0
    return count


def fixed_rate(producer: Producer, rate: int, seconds: float, keep_going=None) -> list[float]:
    """Send -> delivery latencies (ms) of 100 B records sent at ``rate``/s for ``seconds``,
    or, with ``keep_going``, for as long as it returns True."""
    latencies: list[float] = []
    payload = b"x" * 100

    def report(sent_at):
        return lambda err, _msg: latencies.append((time.perf_counter() - sent_at) * 1000) if err is None else None

    start = time.perf_counter()
    n = 0
    while True:
        elapsed = time.perf_counter() - start
        if (elapsed >= seconds) if keep_going is None else not keep_going():
            break
        due = int(elapsed * rate)
        while n < due:
            producer.produce(LIVE, value=payload, on_delivery=report(time.perf_counter()))
            n += 1
        producer.poll(0.0005)
    producer.flush(30)
    return sorted(latencies)


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, max(0, int(q * len(values)) - 1))] if values else float("nan")


def run_cleaner(broker: Broker, deadline: float, stats: dict, use_process: bool) -> None:
    """Clean until nothing is cleanable (or the deadline), on the broker's loop; fill ``stats``."""
    cleaner = LogCleaner(broker.logs, broker.config, broker._clock, use_process=use_process)

    async def loop():
        started = time.perf_counter()
        while time.perf_counter() < deadline:
            result = await cleaner.run_once()
            if result is None:
                break
            stats["read"] += result.bytes_read
            stats["cleaned"] += result.bytes_cleaned
            stats["written"] += result.bytes_written
            stats["worker_s"] += result.seconds
            stats["cleanings"] += 1
        stats["wall_s"] = time.perf_counter() - started
        await cleaner.close()

    stats["future"] = asyncio.run_coroutine_threadsafe(loop(), broker._loop)


def on_loop(broker: Broker, fn):
    async def call():
        return fn()
    return asyncio.run_coroutine_threadsafe(call(), broker._loop).result(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--keys", type=int, default=20000)
    ap.add_argument("--value-size", type=int, default=200)
    ap.add_argument("--segment-mib", type=int, default=8)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--max-seconds", type=float, default=120.0)
    ap.add_argument("--mode", choices=("process", "thread"), default="process",
                    help="where the copy runs: a child process (the broker's default) or a thread")
    ap.add_argument("--json")
    args = ap.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    with Broker(config={"log.cleaner.enable": "false", "num.partitions": "1"}) as broker:
        bootstrap = broker.bootstrap_servers
        create(bootstrap, TABLE, {"cleanup.policy": "compact", "segment.bytes": str(args.segment_mib << 20)})
        create(bootstrap, LIVE, {})
        t = time.perf_counter()
        records = preload(bootstrap, args.mib, args.keys, args.value_size)
        size_before = on_loop(broker, lambda: broker.logs.partition(TABLE, 0).log.size_bytes)
        print(f"preloaded {records:,} records, {size_before / 1e6:.1f} MB in {time.perf_counter() - t:.1f} s")

        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1, "acks": "all"})
        fixed_rate(producer, args.rate, 1.0)  # warm-up: connections and metadata
        base = fixed_rate(producer, args.rate, args.seconds)
        stats = {"read": 0, "cleaned": 0, "written": 0, "worker_s": 0.0, "cleanings": 0, "wall_s": 0.0}
        run_cleaner(broker, time.perf_counter() + args.max_seconds, stats, args.mode == "process")
        during = fixed_rate(producer, args.rate, 0, keep_going=lambda: not stats["future"].done())
        stats.pop("future").result(args.max_seconds + 30)
        del producer  # librdkafka closes its connections before the broker stops
        size_after = on_loop(broker, lambda: broker.logs.partition(TABLE, 0).log.size_bytes)

    mb = stats["cleaned"] / 1e6
    worker_rate = mb / stats["worker_s"] if stats["worker_s"] else float("nan")
    wall_rate = mb / stats["wall_s"] if stats["wall_s"] else float("nan")
    print(f"cleaner ({args.mode}): {stats['cleanings']} cleanings, {mb:.1f} MB of log compacted "
          f"({stats['read'] / 1e6:.1f} MB read incl. the offset-map scan), {stats['written'] / 1e6:.1f} MB written")
    print(f"cleaner throughput: {worker_rate:.1f} MB/s compacted (copy time {stats['worker_s']:.2f} s), "
          f"{wall_rate:.1f} MB/s (wall, incl. process start and swaps: {stats['wall_s']:.2f} s)")
    print(f"log size: {size_before / 1e6:.1f} MB -> {size_after / 1e6:.1f} MB")
    print(f"{'produce latency (ms)':24} {'p50':>8} {'p99':>8} {'max':>8} {'count':>8}")
    for name, values in (("without cleaner", base), ("while cleaning", during)):
        print(f"{name:24} {pct(values, .5):8.2f} {pct(values, .99):8.2f} {values[-1] if values else 0:8.2f} "
              f"{len(values):8d}")
    print(f"p99 ratio (cleaning / idle): {pct(during, .99) / pct(base, .99):.2f}x")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "args": vars(args), "cleaned_mb": mb, "cleaner_mb_per_s_worker": worker_rate, "cleaner_mb_per_s_wall": wall_rate,
            "log_mb_before": size_before / 1e6, "log_mb_after": size_after / 1e6,
            "p50_ms": [pct(base, .5), pct(during, .5)], "p99_ms": [pct(base, .99), pct(during, .99)]}, indent=1))


if __name__ == "__main__":
    main()
