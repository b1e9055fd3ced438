"""A consumer group keeps its committed offsets when its coordinator dies.

3 brokers, ``__consumer_offsets`` with 3 partitions and RF=3.  A consumer commits an
offset (synchronously); right after the commit returns, the broker leading the group's
``__consumer_offsets`` partition (the coordinator, found with FindCoordinator) is SIGKILLed;
no extra wait: the coordinator answers a commit only once its records are replicated to the
ISR, so what it acknowledged must survive.  A new consumer of the same group must see that
committed offset (``committed``) and resume exactly after it.  Done twice (the killed broker
is restarted in between, so the second kill leaves two live brokers again).
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from cluster_process import Timeline, find_coordinator, process_cluster, wait_for  # noqa: F401 (fixture)
from kavka.group.log_format import partition_for

pytestmark = pytest.mark.slow  # a 3-process cluster, coordinator kill -9 (~20 s)

TOPIC = "grouped"
GROUP = "failover-group"
RECORDS = 300
OFFSETS_PARTITIONS = 3      # DEFAULT_OVERRIDES of the harness


def consumer(cluster) -> Consumer:
    return Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": GROUP, "enable.auto.commit": False,
                     "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                     "heartbeat.interval.ms": 500, "socket.timeout.ms": 5000,
                     "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500})


def consume(c: Consumer, count: int, timeout: float = 30.0) -> list[int]:
    """Offsets of the next ``count`` records (bounded)."""
    got: list[int] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        assert time.monotonic() < deadline, f"got {len(got)} of {count} records in {timeout}s"
        for msg in c.consume(num_messages=count - len(got), timeout=0.5):
            if msg.error():
                continue
            got.append(msg.offset())
    return got


@pytest.mark.timeout(180)
def test_committed_offsets_survive_coordinator_kill9(process_cluster):  # noqa: F811
    cluster = process_cluster(3)
    cluster.create_topic(TOPIC, 1, 3, {"min.insync.replicas": "2"})
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "enable.idempotence": True})
    for i in range(RECORDS):
        producer.produce(TOPIC, value=f"{i}".encode(), partition=0)
    assert producer.flush(30) == 0
    t = Timeline()
    offsets_partition = partition_for(GROUP, OFFSETS_PARTITIONS)

    position = 0
    for round_, take in enumerate((40, 70)):
        c = consumer(cluster)
        try:
            committed = c.committed([TopicPartition(TOPIC, 0)], timeout=20)[0].offset
            assert committed == (position if position else -1001), \
                f"round {round_}: committed offset {committed}, expected {position}"
            c.subscribe([TOPIC])
            got = consume(c, take)
            assert got == list(range(position, position + take)), \
                f"round {round_}: resumed at {got[0]}, expected {position}"
            position += take
            c.commit(offsets=[TopicPartition(TOPIC, 0, position)], asynchronous=False)
            coordinator = wait_for(lambda: find_coordinator(cluster, GROUP), 20, "the group's coordinator")
            state = cluster.agreed("__consumer_offsets", offsets_partition)
            victim = cluster.brokers[coordinator]
            victim.kill9()           # at once: the commit's answer promised replication
            t_kill = time.monotonic()
        finally:
            c.close()
        new = wait_for(lambda: (lambda n: n if n not in (None, coordinator) else None)(
            find_coordinator(cluster, GROUP)), 30, "a new coordinator")
        t.note(f"round {round_ + 1}: committed {position}; coordinator {coordinator} "
               f"(__consumer_offsets-{offsets_partition}: {state}) killed; broker {new} coordinates after "
               f"{time.monotonic() - t_kill:.2f}s")
        if round_ == 0:
            victim.restart()
            cluster.wait_isr("__consumer_offsets", offsets_partition, size=3, timeout=30)

    c = consumer(cluster)
    try:
        committed = c.committed([TopicPartition(TOPIC, 0)], timeout=20)[0].offset
        assert committed == position, f"after the last failover: committed {committed}, expected {position}"
        c.subscribe([TOPIC])
        got = consume(c, 10)
        assert got == list(range(position, position + 10)), f"resumed at {got[0]}, expected {position}"
    finally:
        c.close()
    t.note(f"a new consumer resumed at {position} after two coordinator failovers")
