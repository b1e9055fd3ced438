"""Consumer groups: how fast a 10-member group rebalances, how many commits per second.

Starts ``kavka serve`` in a child process (group.initial.rebalance.delay.ms=0)
and measures, with confluent-kafka (librdkafka) consumers on threads here:

1. **Rebalance**: 10 members subscribed to a 22-partition topic; an 11th
   subscribes; the time until all 11 report an assignment that covers every
   partition exactly once.  Then the 11th closes (LeaveGroup) and the time for
   the 10 to own everything again.  Existing members learn of a rebalance
   from their next heartbeat, so the figure is dominated by
   ``heartbeat.interval.ms``: runs at librdkafka's default (3000) and at 100.
   The same with the KIP-848 protocol (``group.protocol=consumer``), where the
   broker assigns and sets the heartbeat interval
   (``group.consumer.heartbeat.interval.ms``: Kafka's default 5000, and 100;
   one broker per setting).
2. **Offset commits**: synchronous OffsetCommit round trips of one partition
   from a raw protocol client (latency-bound), the same with 4 connections in
   parallel, and librdkafka's ``commit(asynchronous=False)`` from a group
   member (member and generation checked on every commit).

    python benchmarks/groups.py [--rounds 3] [--commits 5000]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import threading
import time

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.offset_commit.v8 import request as oc

from _common import free_port, launch_kavka, stop_process
from kavka.api.responses import make
from kavka.client import Client

PARTITIONS = 22


# -- the broker ---------------------------------------------------------------------------

def start_broker(data_dir: str, consumer_heartbeat_ms: int = 5000) -> tuple[subprocess.Popen, str]:
    port = free_port()
    return launch_kavka(["-m", "kavka", "serve", "--data-dir", data_dir, "--listen", f"127.0.0.1:{port}",
                         "--log-level", "WARNING", "--override", "group.initial.rebalance.delay.ms=0",
                         "--override", "offsets.topic.num.partitions=10",
                         "--override", f"group.consumer.heartbeat.interval.ms={consumer_heartbeat_ms}"], port)


# -- members ------------------------------------------------------------------------------

class Member:
    """A subscribed librdkafka consumer polling on its own thread."""

    def __init__(self, bootstrap: str, group: str, topic: str, heartbeat_ms: int | None) -> None:
        """``heartbeat_ms`` None: the KIP-848 protocol, where the broker sets it."""
        conf = {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
        if heartbeat_ms is None:
            conf["group.protocol"] = "consumer"
        else:
            conf.update({"session.timeout.ms": 10000, "heartbeat.interval.ms": heartbeat_ms})
        self.consumer = Consumer(conf)
        self.consumer.subscribe([topic])
        self.assignment: frozenset = frozenset()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.consumer.poll(0.01)
            self.assignment = frozenset(tp.partition for tp in self.consumer.assignment())
        self.consumer.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(30)


def settled(members: list[Member]) -> bool:
    sets = [m.assignment for m in members]
    return all(sets) and sum(map(len, sets)) == PARTITIONS and set().union(*sets) == set(range(PARTITIONS))


def wait_settled(members: list[Member], timeout: float = 60) -> float:
    start = time.perf_counter()
    while not settled(members):
        if time.perf_counter() - start > timeout:
            raise SystemExit(f"group did not settle within {timeout}s")
        time.sleep(0.002)
    return time.perf_counter() - start


def bench_rebalance(bootstrap: str, heartbeat_ms: int | None, rounds: int) -> dict:
    topic, group = f"rebalance-{heartbeat_ms or 'kip848'}", f"bench-{heartbeat_ms or 'kip848'}"
    create_topic(bootstrap, topic, PARTITIONS)
    members = [Member(bootstrap, group, topic, heartbeat_ms) for _ in range(10)]
    wait_settled(members)
    joins, leaves = [], []
    try:
        for _ in range(rounds):
            newcomer = Member(bootstrap, group, topic, heartbeat_ms)
            joins.append(wait_settled(members + [newcomer]))
            start = time.perf_counter()
            newcomer.close()
            leaves.append(time.perf_counter() - start + wait_settled(members))
    finally:
        for m in members:
            m.close()
    return {"join": joins, "leave": leaves}


# -- commits ------------------------------------------------------------------------------

def commit_request(group: str, partition: int, offset: int, generation: int = -1, member: str = ""):
    part = make(oc.OffsetCommitRequestPartition, partition_index=partition, committed_offset=offset,
                committed_leader_epoch=-1, committed_metadata="")
    return make(oc.OffsetCommitRequest, group_id=group, generation_id_or_member_epoch=generation,
                member_id=member, group_instance_id=None,
                topics=(make(oc.OffsetCommitRequestTopic, name="commits", partitions=(part,)),))


def raw_commits(bootstrap: str, group: str, count: int) -> float:
    requests = [commit_request(group, i % 4, i) for i in range(count)]
    with Client(bootstrap) as client:
        client.request(requests[0])
        start = time.perf_counter()
        for body in requests:
            assert client.request(body).topics[0].partitions[0].error_code == 0
        return count / (time.perf_counter() - start)


def parallel_commits(bootstrap: str, count: int, connections: int) -> float:
    rates: list[float] = []
    threads = [threading.Thread(target=lambda i=i: rates.append(raw_commits(bootstrap, f"par-{i}", count)))
               for i in range(connections)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return connections * count / (time.perf_counter() - start)


def librdkafka_commits(bootstrap: str, count: int) -> float:
    member = Consumer({"bootstrap.servers": bootstrap, "group.id": "member-commits", "enable.auto.commit": False})
    member.subscribe(["commits"])
    deadline = time.monotonic() + 30
    while not member.assignment() and time.monotonic() < deadline:
        member.poll(0.05)
    owned = member.assignment()
    start = time.perf_counter()
    for i in range(count):
        tp = owned[i % len(owned)]
        member.commit(offsets=[TopicPartition(tp.topic, tp.partition, i + 1)], asynchronous=False)
    rate = count / (time.perf_counter() - start)
    member.close()
    return rate


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(10)


# -- report -------------------------------------------------------------------------------

def summary(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    return f"median {statistics.median(ms):7.0f} ms   min {ms[0]:6.0f}   max {ms[-1]:6.0f}   (n={len(ms)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--commits", type=int, default=5000)
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="kavka-bench-groups-")
    proc, bootstrap = start_broker(data_dir)
    try:
        import confluent_kafka
        print(f"kavka at {bootstrap}; confluent-kafka {confluent_kafka.version()}, "
              f"librdkafka {confluent_kafka.libversion()[0]}")
        print(f"\n10-member group, {PARTITIONS} partitions, an 11th member joins then leaves:")
        for heartbeat_ms in (3000, 100):
            result = bench_rebalance(bootstrap, heartbeat_ms, args.rounds)
            print(f"  classic, heartbeat.interval.ms={heartbeat_ms:<5} join  -> stable: {summary(result['join'])}")
            print(f"  {'':34} leave -> stable: {summary(result['leave'])}")
        result = bench_rebalance(bootstrap, None, args.rounds)
        print(f"  KIP-848, heartbeat interval 5000    join  -> stable: {summary(result['join'])}")
        print(f"  {'':34} leave -> stable: {summary(result['leave'])}")
        fast_dir = tempfile.mkdtemp(prefix="kavka-bench-groups-")
        fast, fast_bootstrap = start_broker(fast_dir, consumer_heartbeat_ms=100)
        try:
            result = bench_rebalance(fast_bootstrap, None, args.rounds)
        finally:
            stop_process(fast)
            shutil.rmtree(fast_dir, ignore_errors=True)
        print(f"  KIP-848, heartbeat interval 100     join  -> stable: {summary(result['join'])}")
        print(f"  {'':34} leave -> stable: {summary(result['leave'])}")
        create_topic(bootstrap, "commits", 4)
        print(f"\nOffset commits (one partition per OffsetCommit v8, {args.commits} each):")
        print(f"  raw client, 1 connection, synchronous  {raw_commits(bootstrap, 'raw', args.commits):8.0f} commits/s")
        print(f"  raw client, 4 connections in parallel  {parallel_commits(bootstrap, args.commits, 4):8.0f} commits/s")
        rate = librdkafka_commits(bootstrap, max(1, args.commits // 5))
        print(f"  librdkafka group member, sync commit   {rate:8.0f} commits/s")
    finally:
        stop_process(proc)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
