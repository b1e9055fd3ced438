"""A transaction survives the SIGKILL of its coordinator in a 3-broker cluster.

3 broker processes, a data topic of 3 partitions (RF=3, min ISR 2) and
``__transaction_state`` with 3 partitions (RF=3, min ISR 2).  A confluent-kafka
transactional producer writes to every partition, flushes, and then the broker leading the
id's ``__transaction_state`` partition (the coordinator, found with FindCoordinator key
type 1) is SIGKILLed: no controlled shutdown, its leaderships move when its etcd session
expires.  The producer then commits; the new coordinator, which replayed the Ongoing
transaction, must complete it (markers to the partitions' new leaders), and a read_committed
consumer must see exactly the committed records.  Done twice, the victim restarted in between;
the producer goes on after each failover without re-initialising.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from cluster_process import Timeline, find_coordinator, process_cluster, wait_for  # noqa: F401 (fixture)
from kavka.internal_topics import TRANSACTION_STATE_TOPIC, coordinator_partition

pytestmark = pytest.mark.slow  # a 3-process cluster, two coordinator kill -9s (~16 s, more on a loaded machine)

TOPIC = "txn-kill9"
PARTITIONS = 3
TXN_ID = "kill9-producer"
TXN_PARTITIONS = 3


def read_committed(cluster) -> list[bytes]:
    """What a read_committed consumer gets from the start up to every partition's end (its
    last stable offset, where librdkafka reports the end of a read_committed partition)."""
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": f"reader-{time.monotonic_ns()}",
                  "isolation.level": "read_committed", "enable.auto.commit": False, "enable.partition.eof": True})
    c.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    got: list[bytes] = []
    ended: set[int] = set()
    deadline = time.monotonic() + 20
    try:
        while len(ended) < PARTITIONS and time.monotonic() < deadline:
            for m in c.consume(100, 0.3):
                if m.error() is None:
                    got.append(m.value())
                elif m.error().code() == KafkaError._PARTITION_EOF:
                    ended.add(m.partition())
    finally:
        c.close()
    return sorted(got)


def until_committed(cluster, expected: list[bytes], what: str) -> None:
    """read_committed shows exactly ``expected`` (the last markers may still be on their way)."""
    last: list[bytes] = []

    def matches() -> bool:
        last[:] = read_committed(cluster)
        return last == sorted(expected)

    try:
        wait_for(matches, 30, what)
    except AssertionError:
        raise AssertionError(f"{what}: read_committed saw {len(last)} records, expected {len(expected)}; "
                             f"unexpected {sorted(set(last) - set(expected))[:5]}") from None


@pytest.mark.timeout(240)
def test_the_new_coordinator_completes_a_transaction_after_kill9(process_cluster):  # noqa: F811
    cluster = process_cluster(3, overrides={"transaction.state.log.num.partitions": TXN_PARTITIONS})
    cluster.create_topic(TOPIC, PARTITIONS, 3, {"min.insync.replicas": "2"})
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": TXN_ID,
                         "transaction.timeout.ms": 60000, "socket.timeout.ms": 5000,
                         "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500})
    producer.init_transactions(30)
    t = Timeline()
    state_partition = coordinator_partition(TXN_ID, TXN_PARTITIONS)
    committed: list[bytes] = []
    for round_ in range(2):
        producer.begin_transaction()
        values = [f"r{round_}-{i}".encode() for i in range(30)]
        for i, value in enumerate(values):
            producer.produce(TOPIC, value, partition=i % PARTITIONS)
        assert producer.flush(30) == 0
        coordinator = wait_for(lambda: find_coordinator(cluster, TXN_ID, 1), 20, "the transaction coordinator")
        state = cluster.agreed(TRANSACTION_STATE_TOPIC, state_partition)
        victim = cluster.brokers[coordinator]
        victim.kill9()
        t_kill = time.monotonic()
        producer.commit_transaction(60)
        committed += values
        t.note(f"round {round_ + 1}: coordinator {coordinator} ({TRANSACTION_STATE_TOPIC}-{state_partition}: "
               f"{state}) killed with the transaction ongoing; committed {time.monotonic() - t_kill:.2f}s later")
        until_committed(cluster, committed, f"round {round_ + 1}")
        victim.restart()
        cluster.wait_isr(TRANSACTION_STATE_TOPIC, state_partition, size=3, timeout=30)
    producer.begin_transaction()        # and on once more, with every broker back
    producer.produce(TOPIC, b"last", partition=0)
    producer.commit_transaction(30)
    until_committed(cluster, committed + [b"last"], "after both failovers")
