"""Transactions on three in-process brokers in cluster mode, driven by confluent-kafka.

The data topic has one partition led by each broker, so every transaction's markers go to
two other brokers over WriteTxnMarkers and to one partition of the coordinator's own.  The
coordinator of a transactional id is the leader of its ``__transaction_state`` partition
(FindCoordinator from every broker must say so); when that broker stops, the new leader of
the partition loads the id's state and finishes what the old one left: an ongoing
transaction the producer then commits, or a commit whose markers the old coordinator never
wrote (its marker writer is made to hang), which the new one writes after replaying
PrepareCommit.  A read_committed consumer must see exactly the committed records, and a
marker carrying the deposed coordinator's epoch is refused by every partition leader.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from admin_targets import start_cluster, wait_until
from kavka.internal_topics import TRANSACTION_STATE_TOPIC, coordinator_partition
from kavka.protocol.errors import ErrorCode
from kavka.txn.coordinator import MarkerJob

pytestmark = pytest.mark.timeout(120)

TOPIC = "txn-data"
PARTITIONS = 3
TXN_PARTITIONS = 3


@pytest.fixture
def cluster(etcd, tmp_path):
    """Three brokers (admin_targets.start_cluster) and TOPIC, one partition led by each."""
    target = start_cluster(etcd.endpoint, tmp_path, 3, {
        "transaction.state.log.num.partitions": str(TXN_PARTITIONS), "auto.leader.rebalance.enable": "false"})
    try:
        admin = AdminClient({"bootstrap.servers": target.bootstrap()})
        admin.create_topics([NewTopic(TOPIC, PARTITIONS, 3, config={"min.insync.replicas": "2"})])[TOPIC].result(10)
        yield target.brokers
    finally:
        target.stop()


def bootstrap(brokers, *ids):
    return ",".join(brokers[i].bootstrap_servers for i in ids or brokers)


def producer(brokers, transactional_id, *ids) -> Producer:
    p = Producer({"bootstrap.servers": bootstrap(brokers, *ids), "transactional.id": transactional_id,
                  "transaction.timeout.ms": 60000, "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500})
    p.init_transactions(30)
    return p


def send(p: Producer, prefix: str, count: int) -> list[bytes]:
    values = [f"{prefix}-{i}".encode() for i in range(count)]
    for i, value in enumerate(values):
        p.produce(TOPIC, value, partition=i % PARTITIONS)
    assert p.flush(20) == 0
    return values


def read_all(brokers, isolation: str, expected: int, *ids, settle: float = 1.5) -> list[bytes]:
    """Every record of TOPIC from the start, read until ``expected`` arrived and ``settle``
    seconds brought nothing more (bounded)."""
    c = Consumer({"bootstrap.servers": bootstrap(brokers, *ids), "group.id": "reader-" + uuid.uuid4().hex[:6],
                  "isolation.level": isolation, "enable.auto.commit": False})
    c.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    got: list[bytes] = []
    deadline = time.monotonic() + 30
    quiet_since = None
    try:
        while time.monotonic() < deadline:
            msgs = [m for m in c.consume(100, 0.3) if not m.error()]
            got += [m.value() for m in msgs]
            if msgs or len(got) < expected:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= settle:
                break
    finally:
        c.close()
    return got


def leaders(brokers, topic, *ids) -> dict[int, int]:
    admin = AdminClient({"bootstrap.servers": bootstrap(brokers, *ids)})
    parts = admin.list_topics(topic, timeout=5).topics[topic].partitions
    return {p: parts[p].leader for p in parts}


def find_coordinator(brokers, transactional_id, *ids) -> int | None:
    """FindCoordinator (v4, key type 1) asked of every broker: their common answer."""
    from kio.schema.find_coordinator.v4 import request as q

    from kavka.api.responses import make
    from kavka.client import Client
    answers = set()
    for i in ids or brokers:
        with Client(brokers[i].bootstrap_servers, timeout=5) as client:
            r = client.request(make(q.FindCoordinatorRequest, key_type=1, coordinator_keys=(transactional_id,)))
        c = r.coordinators[0]
        answers.add(c.node_id if c.error_code == 0 else None)
    return answers.pop() if len(answers) == 1 else None


def txn_leader(brokers, transactional_id, *ids) -> int:
    return leaders(brokers, TRANSACTION_STATE_TOPIC, *ids)[coordinator_partition(transactional_id, TXN_PARTITIONS)]


def test_commit_and_abort_across_three_leaders(cluster):
    brokers = cluster
    assert sorted(leaders(brokers, TOPIC).values()) == [1, 2, 3]
    p = producer(brokers, "tx-commit-abort")
    coordinator = find_coordinator(brokers, "tx-commit-abort")
    assert coordinator == txn_leader(brokers, "tx-commit-abort")
    state = brokers[1].node.metadata.partition(TRANSACTION_STATE_TOPIC, 0)
    assert len(state.replicas) == 3
    assert brokers[coordinator].logs.partition(TRANSACTION_STATE_TOPIC, 0).config["min.insync.replicas"] == 2

    committed = []
    p.begin_transaction()
    committed += send(p, "first", 30)
    p.commit_transaction(30)
    p.begin_transaction()
    aborted = send(p, "aborted", 30)
    p.abort_transaction(30)
    p.begin_transaction()
    committed += send(p, "second", 12)
    p.commit_transaction(30)

    assert sorted(read_all(brokers, "read_committed", len(committed))) == sorted(committed)
    assert sorted(read_all(brokers, "read_uncommitted", len(committed) + len(aborted))) == \
        sorted(committed + aborted)
    for b in brokers.values():   # no marker job left behind on the coordinator
        wait_until(lambda b=b: b.call(lambda: b.transactions.pending_markers) == 0, 10, "marker jobs done")


def test_new_coordinator_takes_over_an_ongoing_transaction(cluster):
    brokers = cluster
    tid = "tx-failover-ongoing"
    p = producer(brokers, tid)
    p.begin_transaction()
    before = send(p, "before", 15)
    coordinator = find_coordinator(brokers, tid)
    assert coordinator is not None
    brokers[coordinator].stop()   # controlled shutdown: leaderships move, then it stops
    survivors = [i for i in brokers if i != coordinator]
    wait_until(lambda: find_coordinator(brokers, tid, *survivors) in survivors, 20, "a new coordinator")
    p.commit_transaction(30)      # the producer finds the new coordinator, which commits
    p.begin_transaction()
    after = send(p, "after", 9)
    p.commit_transaction(30)
    assert sorted(read_all(brokers, "read_committed", 24, *survivors)) == sorted(before + after)


def test_new_coordinator_writes_the_markers_of_a_prepared_commit(cluster):
    brokers = cluster
    tid = "tx-failover-prepared"
    p = producer(brokers, tid)
    coordinator = find_coordinator(brokers, tid)
    old = brokers[coordinator]
    hung = asyncio.Event()

    async def never(job):     # the old coordinator never gets its markers out
        await hung.wait()
        return {}

    old.call(lambda: setattr(old.transactions, "write_markers", never))
    index = coordinator_partition(tid, TXN_PARTITIONS)
    old_epoch = old.call(lambda: old.node.txn_coordinator_epoch(index))
    p.begin_transaction()
    values = send(p, "prepared", 15)
    p.commit_transaction(30)      # answered once PrepareCommit is replicated
    assert read_all(brokers, "read_committed", 0, settle=1.0) == []   # no marker: nothing is stable yet
    old.stop()
    survivors = [i for i in brokers if i != coordinator]
    assert sorted(read_all(brokers, "read_committed", len(values), *survivors)) == sorted(values)
    new = brokers[find_coordinator(brokers, tid, *survivors)]
    described = new.call(lambda: new.transactions.query(lambda c: c.describe(tid)))
    assert described[1].state.kafka_name == "CompleteCommit"
    p.begin_transaction()         # the producer goes on with the new coordinator
    more = send(p, "more", 6)
    p.commit_transaction(30)
    assert sorted(read_all(brokers, "read_committed", 21, *survivors)) == sorted(values + more)

    # The deposed coordinator's epoch is refused by every partition leader, here and remote.
    assert new.call(lambda: new.node.txn_coordinator_epoch(index)) > old_epoch
    meta = new.call(lambda: new.transactions.query(lambda c: c.describe(tid)))[1]
    stale = MarkerJob(tid, meta.producer_id, meta.producer_epoch, False, old_epoch,
                      frozenset((TOPIC, p) for p in range(PARTITIONS)))
    answers = new.call(lambda: new.node.txn_markers.write_markers(stale))
    assert answers == {(TOPIC, p): ErrorCode.transaction_coordinator_fenced for p in range(PARTITIONS)}
