"""Partition reassignment under load: a scale-out onto a new broker that drains another.

Three broker processes hold an RF=3 topic (three partitions, min.insync.replicas=2), each
written by its own idempotent acks=all confluent-kafka producer.  While they write, a fourth,
empty broker joins and ``kavka cluster rebalance --brokers 2,3,4 --wait`` (a subprocess)
moves every partition off broker 1 onto broker 4; broker 1 led one of them, so that
leadership moves too.  What must hold: no send fails; every acknowledged record is read back
exactly once, at the offset its ack named, in order; the moves finish (kafka-python's
ListPartitionReassignments is empty, Metadata names brokers 2-4 as replicas and ISR); broker
1 keeps no copy; the new replicas end identical.  Producers and waits are bounded in count
and time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from cluster_process import (SeqProducer, Timeline, check_replicas_identical, check_sequence_log,
                             process_cluster, read_partition, wait_for)  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow   # four broker processes and three producers (~30 s)

TOPIC = "moving"
LAYOUT = [[1, 2, 3], [2, 3, 1], [3, 1, 2]]
RATE = 250               # records/s per producer
BEFORE = 1500            # acks per partition before the move: there is a log to copy
AFTER = 300              # acks per partition after it: writes go on at the new replicas
MOVE_TIMEOUT_S = 90


def rebalance(cluster) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kavka", "cluster", "rebalance", "-b", cluster.bootstrap,
                           "--topic", TOPIC, "--brokers", "2,3,4", "--wait", "--timeout", str(MOVE_TIMEOUT_S)],
                          capture_output=True, text=True, timeout=MOVE_TIMEOUT_S + 30,
                          env=dict(os.environ, KAVKA_BOOTSTRAP=""))


def listed_reassignments(cluster) -> dict:
    from kafka.admin import KafkaAdminClient
    client = KafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=10_000)
    try:
        return client.list_partition_reassignments()
    finally:
        client.close()


def acked(producers, at_least: int) -> bool:
    return all(len(p.acked) >= at_least for p in producers)


@pytest.mark.timeout(300)
def test_partitions_move_onto_a_new_broker_and_off_another_under_acks_all(process_cluster):  # noqa: F811
    cluster = process_cluster(3)
    cluster.create_topic(TOPIC, config={"min.insync.replicas": "2"}, assignment=LAYOUT)
    for p in range(len(LAYOUT)):
        cluster.wait_isr(TOPIC, p, size=3)
    producers = [SeqProducer(cluster.bootstrap, TOPIC, p, rate=RATE) for p in range(len(LAYOUT))]
    t = Timeline()
    try:
        for producer in producers:
            producer.start()
        wait_for(lambda: acked(producers, BEFORE), 60, f"{BEFORE} acks per partition")
        cluster.add_broker(4)
        t.note("broker 4 joined")
        started = time.monotonic()
        moved = rebalance(cluster)
        assert moved.returncode == 0, (moved.stdout, moved.stderr)
        t.note(f"rebalance --wait done in {time.monotonic() - started:.1f} s:\n{moved.stdout}")
        base = [len(p.acked) for p in producers]
        wait_for(lambda: all(len(p.acked) - b >= AFTER for p, b in zip(producers, base)), 60,
                 f"{AFTER} more acks per partition at the new replicas")
    except BaseException:
        for producer in producers:
            producer.finish(flush_timeout=5, check=False)
        raise
    for producer in producers:
        producer.finish(flush_timeout=60)
        assert not producer.failed, f"sends to partition {producer.partition} failed: {producer.failed[:3]}"

    assert listed_reassignments(cluster) == {}
    for p in range(len(LAYOUT)):
        view = cluster.wait_isr(TOPIC, p, size=3, timeout=30)
        assert 1 not in view.replicas and sorted(view.replicas) == sorted(view.isr) and len(view.replicas) == 3
        assert view.leader != 1
    broker1 = cluster.brokers[1].data_dir
    wait_for(lambda: not list(broker1.glob(f"{TOPIC}-*")), 20, "broker 1 to delete its copies")
    for p, producer in enumerate(producers):
        figures = check_sequence_log(read_partition(cluster.bootstrap, TOPIC, p), producer)
        t.note(f"{TOPIC}-{p}: {figures}")
    for p in range(len(LAYOUT)):
        check_replicas_identical(cluster, TOPIC, p, replicas=[2, 3, 4])
