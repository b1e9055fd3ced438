#!/usr/bin/env python3
"""Partition reassignment: how fast replicas move onto a new broker, with and without a throttle.

For each of two runs (no throttle; ``leader.replication.throttled.rate`` and
``follower.replication.throttled.rate`` at ``--throttle-mb`` MB/s) this starts, as child
processes (``kavka.cli.cluster.LocalCluster``: what ``kavka cluster up 4`` runs), one etcd
and four brokers (ids 0-3) on free loopback ports in a temporary directory, creates a topic
of ``--partitions`` partitions with two replicas each on brokers 0-2, fills it with
``--mb`` MB of 1000 B records (acks=1), and moves every partition's replica off broker 0
onto broker 3 with ``kavka cluster reassign --plan FILE --wait`` (a subprocess).  The
figure is the bytes of log segments broker 3 holds for the topic afterwards, over the time
from the start of the command to the end of its wait: MB/s moved.

The throttles measure their rate over ``replication.quota.window.num`` samples of one
second; Kafka's 11 allow a burst of about ten seconds' worth, which would hide the throttle
on a small data set, so this uses ``--window-num`` (default 2).

Every wait is bounded (``--move-timeout``); the clusters are stopped by PID.

    python benchmarks/reassignment.py --quick
    python benchmarks/reassignment.py --mb 100 --throttle-mb 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import REPO_SRC, WorkloadError  # noqa: E402
from _report import machine_info, print_machine_info  # noqa: E402

sys.path.insert(0, str(REPO_SRC))
os.environ["PYTHONPATH"] = str(REPO_SRC) + (os.pathsep + os.environ["PYTHONPATH"]
                                            if os.environ.get("PYTHONPATH") else "")

from kavka.cluster.etcd_server import free_port_range  # noqa: E402

BROKERS = 4
NEW_BROKER, DRAINED = 3, 0
TOPIC = "bench-move"
RECORD = 1000


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def layout(partitions: int) -> list[list[int]]:
    return [[p % 3, (p + 1) % 3] for p in range(partitions)]


def create_topic(bootstrap: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    future = admin.create_topics([NewTopic(TOPIC, partitions, replica_assignment=layout(partitions))],
                                 operation_timeout=30)[TOPIC]
    future.result(60)


def fill(bootstrap: str, partitions: int, megabytes: float, timeout: float) -> int:
    """acks=1 records round-robin over the partitions until ``megabytes`` MB; the bytes sent."""
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 20, "batch.size": 1 << 20,
                         "queue.buffering.max.kbytes": 65536})
    value = os.urandom(RECORD)     # incompressible, so the bytes moved are the bytes written
    count = int(megabytes * 1e6 / RECORD)
    deadline = time.monotonic() + timeout
    for i in range(count):
        while True:
            try:
                producer.produce(TOPIC, value, partition=i % partitions)
                break
            except BufferError:
                producer.poll(0.05)
            if time.monotonic() > deadline:
                raise WorkloadError("filling the topic took too long")
        producer.poll(0)
    if producer.flush(max(1.0, deadline - time.monotonic())):
        raise WorkloadError("records without a delivery report")
    return count * RECORD


def move(bootstrap: str, partitions: int, plan_path: Path, timeout: float) -> float:
    """Every partition off broker 0 onto broker 3, waited for; the seconds it took."""
    plan = {"version": 1, "partitions": [
        {"topic": TOPIC, "partition": p, "replicas": [NEW_BROKER if b == DRAINED else b for b in replicas]}
        for p, replicas in enumerate(layout(partitions))]}
    plan_path.write_text(json.dumps(plan))
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "kavka", "cluster", "reassign", "-b", bootstrap, "--plan",
                             str(plan_path), "--wait", "--timeout", str(timeout)],
                            capture_output=True, text=True, timeout=timeout + 60)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise WorkloadError(f"kavka cluster reassign failed: {result.stdout[-500:]} {result.stderr[-500:]}")
    return elapsed


def moved_bytes(data_dir: Path) -> int:
    return sum(f.stat().st_size for f in data_dir.glob(f"{TOPIC}-*/*.log"))


def one_run(args, throttle_bytes: int | None) -> dict:
    from kavka.cli.cluster import LocalCluster

    root = Path(tempfile.mkdtemp(prefix="kavka-bench-move-"))
    overrides = [f"replication.quota.window.num={args.window_num}"]
    if throttle_bytes is not None:
        overrides += [f"leader.replication.throttled.rate={throttle_bytes}",
                      f"follower.replication.throttled.rate={throttle_bytes}"]
    cluster = LocalCluster(root, BROKERS, base_port=free_port_range(BROKERS), overrides=overrides,
                           log_level="WARNING", say=lambda text: log(f"cluster: {text}"))
    try:
        cluster.start(timeout=60)
        bs = cluster.bootstrap
        create_topic(bs, args.partitions)
        written = fill(bs, args.partitions, args.mb, args.move_timeout)
        log(f"wrote {written / 1e6:.1f} MB to {args.partitions} partitions")
        seconds = move(bs, args.partitions, root / "plan.json", args.move_timeout)
        nbytes = moved_bytes(cluster.brokers[NEW_BROKER].data_dir)
    finally:
        cluster.stop(grace=10.0)
        shutil.rmtree(root, ignore_errors=True)
    return {"throttle_bytes_per_s": throttle_bytes, "bytes_moved": nbytes, "seconds": round(seconds, 3),
            "mb_per_s": nbytes / seconds / 1e6}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=40.0, help="MB written to the topic (default 40)")
    parser.add_argument("--partitions", type=int, default=4, help="partitions of the topic (default 4)")
    parser.add_argument("--throttle-mb", type=float, default=4.0,
                        help="the throttled run's rates, MB/s (default 4)")
    parser.add_argument("--window-num", type=int, default=2, help="replication.quota.window.num (default 2)")
    parser.add_argument("--move-timeout", type=float, default=300.0, help="seconds a move may take (default 300)")
    parser.add_argument("--quick", action="store_true", help="10 MB, 2 MB/s throttle")
    parser.add_argument("--json", metavar="FILE", help="also write the results there")
    args = parser.parse_args()
    if args.quick:
        args.mb, args.throttle_mb = 10.0, 2.0
    info = machine_info()
    print_machine_info(info, {}, {
        "cluster": f"etcd + {BROKERS} kavka brokers (cluster mode, child processes, loopback)",
        "move": f"{args.mb:g} MB of {RECORD} B records in {args.partitions} partitions (RF=2), each partition's "
                f"replica on broker {DRAINED} moved to broker {NEW_BROKER}; throttled run at {args.throttle_mb:g} MB/s"})
    runs = {}
    for name, rate in (("unthrottled", None), ("throttled", int(args.throttle_mb * 1e6))):
        log(f"run: {name}")
        runs[name] = one_run(args, rate)
        log(f"{name}: {runs[name]['bytes_moved'] / 1e6:.1f} MB moved in {runs[name]['seconds']:.2f} s")
    print(f"\n{'run':<12}  {'throttle MB/s':>13}  {'MB moved':>9}  {'seconds':>8}  {'MB/s moved':>10}")
    for name, r in runs.items():
        throttle = "-" if r["throttle_bytes_per_s"] is None else f"{r['throttle_bytes_per_s'] / 1e6:.1f}"
        print(f"{name:<12}  {throttle:>13}  {r['bytes_moved'] / 1e6:>9.1f}  {r['seconds']:>8.2f}  "
              f"{r['mb_per_s']:>10.1f}")
    print(f"(RF=2, {args.partitions} partitions off broker 0 onto broker 3; the throttle applies to the leader's "
          f"sends and the new replica's fetches, replication.quota.window.num={args.window_num})")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "runs": runs}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
