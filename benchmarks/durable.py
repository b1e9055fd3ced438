"""What ``kavka serve --durable`` costs: produce throughput and ack latency with and
without it, in the same run, for 1 and several concurrent producers (confluent-kafka).

Two brokers run as ``kavka serve`` processes on a real disk (``--dir``, default a
temp dir; tmpfs would make fsync free), one of them with ``--durable``.  The runs
alternate (plain, durable, plain, durable, ...) so that the disk's fast and slow
phases hit both; medians of the rounds are printed with the ratio durable/plain.

    PYTHONPATH=src python3 benchmarks/durable.py [--records 20000] [--producers 1,4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from _common import free_port, launch_kavka, stop_process


def start_broker(data_dir: Path, durable: bool) -> tuple[subprocess.Popen, str]:
    port = free_port()
    return launch_kavka(["-m", "kavka", "serve", "--data-dir", str(data_dir), "--listen", f"127.0.0.1:{port}",
                         "--log-level", "WARNING"] + (["--durable"] if durable else []), port)


def one_producer(bootstrap: str, topic: str, records: int, size: int, latencies: list) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 1,
                         "enable.idempotence": True})
    payload = b"x" * size

    def report(err, _msg, sent=None):
        if err is None:
            latencies.append(time.perf_counter() - sent)

    for _ in range(records):
        sent = time.perf_counter()
        while True:
            try:
                producer.produce(topic, payload, on_delivery=lambda e, m, s=sent: report(e, m, s))
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    if producer.flush(120):
        raise RuntimeError("records left unacknowledged")


def one_at_a_time(bootstrap: str, topic: str, records: int, size: int, latencies: list) -> None:
    """Ack latency without queueing: each record waits for its ack before the next."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    payload = b"x" * size
    producer.produce(topic, payload)
    producer.flush(10)  # connected and warm
    for _ in range(records):
        sent = time.perf_counter()
        producer.produce(topic, payload)
        if producer.flush(10):
            raise RuntimeError("record left unacknowledged")
        latencies.append(time.perf_counter() - sent)


def _threads(target, producers: int, *args) -> float:
    threads = [threading.Thread(target=target, args=args) for _ in range(producers)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - began


def run(bootstrap: str, topic: str, producers: int, records: int, size: int) -> tuple[float, float, float]:
    """(records/s of ``producers`` threads sending ``records`` each as fast as they can,
    p50 and p99 ms of acks when each of them sends one record at a time)."""
    elapsed = _threads(one_producer, producers, bootstrap, topic, records, size, [])
    latencies: list[float] = []
    _threads(one_at_a_time, producers, bootstrap, topic, max(200, records // 50), size, latencies)
    latencies.sort()
    return (producers * records / elapsed, latencies[len(latencies) // 2] * 1000,
            latencies[int(len(latencies) * 0.99)] * 1000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=20000, help="records per producer per round")
    ap.add_argument("--size", type=int, default=100, help="record value bytes")
    ap.add_argument("--producers", default="1,4", help="producer counts to measure")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", help="where the data dirs go (a real disk)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="kavka-durable-", dir=args.dir))
    brokers = {}
    try:
        for durable in (False, True):
            brokers[durable] = start_broker(root / ("durable" if durable else "plain"), durable)
            admin = AdminClient({"bootstrap.servers": brokers[durable][1]})
            admin.create_topics([NewTopic("bench", 1, 1)])["bench"].result(15)
        print(f"{'producers':>9} {'mode':>8} {'records/s':>10} {'ack p50 ms':>10} {'ack p99 ms':>10}")
        for count in (int(n) for n in args.producers.split(",")):
            figures = {False: [], True: []}
            for _ in range(args.rounds):
                for durable in (False, True):
                    figures[durable].append(run(brokers[durable][1], "bench", count, args.records, args.size))
            med = {d: [statistics.median(f[i] for f in figures[d]) for i in range(3)] for d in figures}
            for durable in (False, True):
                rate, p50, p99 = med[durable]
                print(f"{count:>9} {'durable' if durable else 'plain':>8} {rate:>10.0f} {p50:>10.2f} {p99:>10.2f}")
            print(f"{count:>9} {'ratio':>8} {med[True][0] / med[False][0]:>10.2f} "
                  f"{med[True][1] / med[False][1]:>10.2f} {med[True][2] / med[False][2]:>10.2f}")
    finally:
        for proc, _ in brokers.values():
            stop_process(proc, 15)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
