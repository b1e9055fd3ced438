"""What many partitions cost a kavka broker: creation, startup, RSS, fds, throughput, shutdown.

For each partition count (topics of ``--per-topic`` partitions) a fresh
``kavka serve`` subprocess on a temp data dir is measured:

* CreateTopics: wall time to create every topic (one request per topic, confluent-kafka admin);
* RSS and open fds (/proc/PID) idle after creation, and after the produce/consume pass;
* produce/consume: ``--records`` records spread round-robin over every partition,
  then read back with one consumer (records/s);
* shutdown: SIGTERM -> exit;
* startup: process start -> accepting connections, after a clean shutdown and after kill -9.

    python benchmarks/many_partitions.py --counts 1000,10000,20000
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Serve:
    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir, self.port, self.proc = data_dir, port, None

    def start(self, timeout: float = 600) -> float:
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kavka", "serve", "--data-dir", str(self.data_dir),
             "--listen", f"127.0.0.1:{self.port}", "--log-level", "WARNING",
             "--override", "auto.create.topics.enable=false"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kavka serve exited with {self.proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return time.monotonic() - started
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("kavka serve did not start")

    def stop(self, sig=signal.SIGTERM, timeout: float = 600) -> float:
        started = time.monotonic()
        self.proc.send_signal(sig)
        self.proc.wait(timeout)
        return time.monotonic() - started

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return -1.0

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))


def create(bootstrap: str, topics: list[str], per_topic: int) -> float:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    started = time.monotonic()
    for name in topics:
        futures = admin.create_topics([NewTopic(name, per_topic, 1)], operation_timeout=120, request_timeout=300)
        futures[name].result(timeout=300)
    return time.monotonic() - started


def produce_consume(bootstrap: str, topics: list[str], per_topic: int, records: int) -> tuple[float, float]:
    targets = [(t, p) for t in topics for p in range(per_topic)]
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": 1,
                         "queue.buffering.max.messages": 1_000_000})
    value = b"x" * 100
    started = time.monotonic()
    for i in range(records):
        topic, partition = targets[i % len(targets)]
        while True:
            try:
                producer.produce(topic, value, partition=partition)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(300):
        raise RuntimeError("produce did not finish")
    produce_rate = records / (time.monotonic() - started)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench", "enable.auto.commit": False,
                         "fetch.wait.max.ms": 100})
    consumer.assign([TopicPartition(t, p, 0) for t, p in targets[:records]])
    got, started = 0, time.monotonic()
    deadline = started + 600
    while got < min(records, len(targets) * max(1, records // len(targets))) and time.monotonic() < deadline:
        for msg in consumer.consume(10_000, 0.5):
            if not msg.error():
                got += 1
    consume_rate = got / (time.monotonic() - started)
    consumer.close()
    return produce_rate, consume_rate


def measure(count: int, per_topic: int, records: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="kavka-many-") as tmp:
        serve = Serve(Path(tmp) / "data", free_port())
        serve.start()
        bootstrap = f"127.0.0.1:{serve.port}"
        topics = [f"t{i:05d}" for i in range(count // per_topic)]
        figures = {"partitions": count, "create_s": create(bootstrap, topics, per_topic)}
        time.sleep(1)
        figures.update(rss_idle_mb=serve.rss_mb(), fds_idle=serve.fds())
        figures["produce_rps"], figures["consume_rps"] = produce_consume(bootstrap, topics, per_topic, records)
        figures.update(rss_after_mb=serve.rss_mb(), fds_after=serve.fds())
        figures["shutdown_s"] = serve.stop()
        figures["startup_clean_s"] = serve.start()
        figures["fds_restarted"] = serve.fds()
        serve.stop(signal.SIGKILL)
        figures["startup_after_kill9_s"] = serve.start()
        figures["shutdown2_s"] = serve.stop()
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="1000,10000,20000", help="partition counts, comma-separated")
    parser.add_argument("--per-topic", type=int, default=100)
    parser.add_argument("--records", type=int, default=100_000, help="100-byte records per run")
    args = parser.parse_args()
    columns = ("partitions", "create_s", "rss_idle_mb", "fds_idle", "produce_rps", "consume_rps", "rss_after_mb",
               "fds_after", "shutdown_s", "startup_clean_s", "fds_restarted", "startup_after_kill9_s")
    print(" ".join(f"{c:>14}" for c in columns), flush=True)
    for count in (int(c) for c in args.counts.split(",")):
        figures = measure(count, args.per_topic, args.records)
        print(" ".join(f"{figures[c]:>14.1f}" if isinstance(figures[c], float) else f"{figures[c]:>14}"
                       for c in columns), flush=True)


if __name__ == "__main__":
    main()
