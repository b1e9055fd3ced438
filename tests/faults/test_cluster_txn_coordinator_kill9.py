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
from confluent_kafka import Consumer, Producer, TopicPartition

from cluster_process import Timeline, process_cluster, wait_for  # noqa: F401 (fixture)
from kavka.internal_topics import TRANSACTION_STATE_TOPIC, coordinator_partition

pytestmark = pytest.mark.slow  # a 3-process cluster, two coordinator kill -9s (~16 s, more on a loaded machine)

TOPIC = "txn-kill9"
PARTITIONS = 3
TXN_ID = "kill9-producer"
TXN_PARTITIONS = 3


def find_coordinator(cluster) -> int | None:
    """FindCoordinator (v4, key type 1) answered alike by every reachable broker: its node id."""
    from kio.schema.find_coordinator.v4 import request as q

    from kavka.api.responses import make
    from kavka.client import Client
    answers = set()
    for b in cluster.reachable():
        try:
            with Client(b.address, timeout=3) as client:
                r = client.request(make(q.FindCoordinatorRequest, key_type=1, coordinator_keys=(TXN_ID,)))
        except Exception:
            return None
        c = r.coordinators[0]
        answers.add(c.node_id if c.error_code == 0 else None)
    node = answers.pop() if len(answers) == 1 else None
    return node if node in cluster.brokers and cluster.brokers[node].reachable else None


def committed_values(cluster, expected: int, timeout: float = 30.0) -> list[bytes]:
    """Every record a read_committed consumer gets from the start, read until ``expected``
    arrived and 1.5 s brought nothing more."""
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": f"reader-{time.monotonic_ns()}",
                  "isolation.level": "read_committed", "enable.auto.commit": False})
    c.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    got: list[bytes] = []
    deadline, quiet = time.monotonic() + timeout, None
    try:
        while time.monotonic() < deadline:
            msgs = [m for m in c.consume(100, 0.3) if not m.error()]
            got += [m.value() for m in msgs]
            if msgs or len(got) < expected:
                quiet = None
            elif quiet is None:
                quiet = time.monotonic()
            elif time.monotonic() - quiet >= 1.5:
                break
    finally:
        c.close()
    return got


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
        coordinator = wait_for(lambda: find_coordinator(cluster), 20, "the transaction coordinator")
        state = cluster.agreed(TRANSACTION_STATE_TOPIC, state_partition)
        victim = cluster.brokers[coordinator]
        victim.kill9()
        t_kill = time.monotonic()
        producer.commit_transaction(60)
        committed += values
        t.note(f"round {round_ + 1}: coordinator {coordinator} ({TRANSACTION_STATE_TOPIC}-{state_partition}: "
               f"{state}) killed with the transaction ongoing; committed {time.monotonic() - t_kill:.2f}s later")
        got = committed_values(cluster, len(committed))
        assert sorted(got) == sorted(committed), f"round {round_ + 1}: read_committed saw {len(got)} records"
        victim.restart()
        cluster.wait_isr(TRANSACTION_STATE_TOPIC, state_partition, size=3, timeout=30)
    producer.begin_transaction()        # and on once more, with every broker back
    producer.produce(TOPIC, b"last", partition=0)
    producer.commit_transaction(30)
    assert sorted(committed_values(cluster, len(committed) + 1)) == sorted(committed + [b"last"])
