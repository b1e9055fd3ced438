"""send_offsets_to_transaction (TxnOffsetCommit) on three in-process brokers in cluster mode.

The group's coordinator (the leader of its ``__consumer_offsets`` partition) is either the
transaction coordinator of the producer's id or another broker.  In the second case the
TxnOffsetCommit is verified with the id's coordinator over AddPartitionsToTxn
(kavka.cluster.txn_verifier) and the commit marker reaches the group's partition over
WriteTxnMarkers; in the first,
the coordinator's own marker writer appends it.  Either way the group's committed offsets
change with a committed transaction only, as librdkafka's committed() shows.
"""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from admin_targets import wait_until
from kavka.internal_topics import OFFSETS_TOPIC, coordinator_partition
from test_cluster_transactions import bootstrap, cluster, leaders, producer, txn_leader  # noqa: F401 (fixture)

pytestmark = pytest.mark.timeout(120)

IN, OUT = "cto-in", "cto-out"
PARTITIONS = 3
PER_PARTITION = 10
OFFSETS_PARTITIONS = 4   # admin_targets.contract_settings


def offsets_leaders(brokers) -> dict[int, int]:
    """Leaders of the __consumer_offsets partitions, created by the first group lookup."""
    Consumer({"bootstrap.servers": bootstrap(brokers), "group.id": "lookup"}).committed(
        [TopicPartition(IN, 0)], timeout=30)
    wait_until(lambda: len(leaders(brokers, OFFSETS_TOPIC)) == OFFSETS_PARTITIONS, 20, "__consumer_offsets led")
    return leaders(brokers, OFFSETS_TOPIC)


def group_led(by_leader: dict[int, int], colocated: bool, coordinator: int) -> str:
    for n in range(200):
        group = f"cto-{n}"
        if (by_leader[coordinator_partition(group, OFFSETS_PARTITIONS)] == coordinator) == colocated:
            return group
    raise AssertionError(f"no group led {'by' if colocated else 'away from'} broker {coordinator}")


def committed(brokers, group: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap(brokers), "group.id": group, "enable.auto.commit": False})
    try:
        return {tp.partition: tp.offset for tp in consumer.committed(
            [TopicPartition(IN, p) for p in range(PARTITIONS)], timeout=30)}
    finally:
        consumer.close()


def seed(brokers, start: int, count: int) -> None:
    plain = Producer({"bootstrap.servers": bootstrap(brokers)})
    for n in range(start, start + count):
        plain.produce(IN, value=b"%d" % n, partition=n % PARTITIONS)
    assert plain.flush(20) == 0


def transaction(p: Producer, consumer: Consumer, commit: bool, expected: int) -> int:
    """Consume ``expected`` records, produce them to OUT and send the positions; the count read."""
    messages = []
    for _ in range(40):
        messages += [m for m in consumer.consume(num_messages=100, timeout=0.5) if not m.error()]
        if len(messages) >= expected:
            break
    p.begin_transaction()
    for msg in messages:
        p.produce(OUT, value=msg.value(), partition=msg.partition())
    p.send_offsets_to_transaction(consumer.position(consumer.assignment()), consumer.consumer_group_metadata(), 30)
    if commit:
        p.commit_transaction(30)
    else:
        p.abort_transaction(30)
    return len(messages)


@pytest.mark.parametrize("colocated", [False, True], ids=["remote-group", "colocated-group"])
def test_offsets_commit_with_the_transaction(cluster, colocated):  # noqa: F811
    brokers = cluster
    admin = AdminClient({"bootstrap.servers": bootstrap(brokers)})
    for name in (IN, OUT):
        admin.create_topics([NewTopic(name, PARTITIONS, 3)])[name].result(10)
    seed(brokers, 0, PARTITIONS * PER_PARTITION)
    p = producer(brokers, "cto-tx")
    group = group_led(offsets_leaders(brokers), colocated, txn_leader(brokers, "cto-tx"))
    consumer = Consumer({"bootstrap.servers": bootstrap(brokers), "group.id": group, "enable.auto.commit": False})
    consumer.assign([TopicPartition(IN, part, 0) for part in range(PARTITIONS)])
    try:
        assert transaction(p, consumer, True, PARTITIONS * PER_PARTITION) == PARTITIONS * PER_PARTITION
        assert committed(brokers, group) == {part: PER_PARTITION for part in range(PARTITIONS)}
        seed(brokers, PARTITIONS * PER_PARTITION, PARTITIONS)
        assert transaction(p, consumer, False, PARTITIONS) == PARTITIONS
    finally:
        consumer.close()
    assert committed(brokers, group) == {part: PER_PARTITION for part in range(PARTITIONS)}, "aborted: unchanged"
