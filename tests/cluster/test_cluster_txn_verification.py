"""KIP-890 in a cluster: a partition leader that does not coordinate the transactional id asks
the broker that does (kavka.cluster.txn_verifier), with raw requests so each step is seen.

Three in-process brokers (test_cluster_transactions.py's); the data topic has one partition led
by each, and every test writes to a partition whose leader is not the id's coordinator:

* part 1: a transactional write before AddPartitionsToTxn, and a zombie write after the
  transaction aborted, are refused by the leader (INVALID_TXN_STATE for Produce v9) after it
  asked the coordinator; the partition's last stable offset is not held back, and a
  read_committed reader sees nothing of the transaction;
* part 2: Produce v12 (transactions V2, finalized at 2 in a cluster too) adds the partition to
  the transaction on the remote coordinator, which then commits it with its marker;
* TxnOffsetCommit to a group coordinator that is not the id's coordinator is verified there
  too: refused before AddOffsetsToTxn, committed with the transaction after it.
"""

from __future__ import annotations

import datetime
import time
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition
from kio.index import load_entity_module
from kio.schema.index import api_key_map
from kio.static.constants import EntityType

from admin_targets import wait_until
from kavka.api.responses import make
from kavka.client import Client
from kavka.internal_topics import TRANSACTION_STATE_TOPIC, coordinator_partition
from kavka.metadata.features import TRANSACTION_VERSION
from kavka.protocol.errors import ErrorCode as E
from kavka.protocol.record_codec import encode_batch
from test_cluster_transactions import PARTITIONS, TOPIC, TXN_PARTITIONS, cluster  # noqa: F401 (the fixture)

pytestmark = pytest.mark.timeout(120)

PRODUCE, INIT, ADD_PARTITIONS, ADD_OFFSETS, END, TXN_COMMIT = 0, 22, 24, 25, 26, 28
MS = datetime.timedelta(milliseconds=1)


def req(api_key: int, version: int, class_name: str, /, **values):
    module = load_entity_module(api_key_map[api_key], version, EntityType.request)
    return make(getattr(module, class_name), **values)


def call(broker, request):
    with Client(broker.bootstrap_servers, timeout=30) as client:
        return client.request(request)


def coordinator_of(brokers, tid: str) -> int:
    """The leader of the id's __transaction_state partition, once the topic exists (FindCoordinator creates it)."""
    from kio.schema.find_coordinator.v4 import request as q
    call(brokers[1], make(q.FindCoordinatorRequest, key_type=1, coordinator_keys=(tid,)))
    index = coordinator_partition(tid, TXN_PARTITIONS)

    def leader():
        state = brokers[1].node.metadata.partition(TRANSACTION_STATE_TOPIC, index)
        return None if state is None or state.leader < 0 else state.leader
    wait_until(lambda: leader() is not None and brokers[leader()].call(
        lambda: brokers[leader()].node.leads_txn_partition(index)), 20, "a loaded coordinator")
    return leader()


def remote_partition(brokers, coordinator: int) -> tuple[int, int]:
    """(partition, its leader) of a TOPIC partition that another broker than ``coordinator`` leads."""
    wait_until(lambda: all(brokers[1].node.metadata.partition(TOPIC, p) is not None for p in range(PARTITIONS)),
               10, "the topic's leaders")
    for p in range(PARTITIONS):
        leader = brokers[1].node.metadata.partition(TOPIC, p).leader
        if leader != coordinator:
            return p, leader
    raise AssertionError("every partition led by the coordinator")


def init(broker, tid: str, version: int = 4):
    r = call(broker, req(INIT, version, "InitProducerIdRequest", transactional_id=tid,
                         transaction_timeout=60_000 * MS, producer_id=-1, producer_epoch=-1))
    assert r.error_code == E.none
    return r.producer_id, r.producer_epoch


def produce(broker, tid: str, pid: int, epoch: int, sequence: int, partition: int, value: bytes,
            version: int = 9) -> E:
    batch = encode_batch([(b"k", value, int(time.time() * 1000), ())], producer_id=pid, producer_epoch=epoch,
                         base_sequence=sequence, transactional=True)
    r = call(broker, req(PRODUCE, version, "ProduceRequest", transactional_id=tid, acks=-1, timeout=10_000 * MS,
                         topic_data=(req(PRODUCE, version, "TopicProduceData", name=TOPIC, partition_data=(
                             req(PRODUCE, version, "PartitionProduceData", index=partition, records=batch),)),)))
    return E(r.responses[0].partition_responses[0].error_code)


def add_partitions(broker, tid: str, pid: int, epoch: int, partition: int) -> E:
    r = call(broker, req(ADD_PARTITIONS, 3, "AddPartitionsToTxnRequest", v3_and_below_transactional_id=tid,
                         v3_and_below_producer_id=pid, v3_and_below_producer_epoch=epoch, v3_and_below_topics=(
                             req(ADD_PARTITIONS, 3, "AddPartitionsToTxnTopic", name=TOPIC, partitions=(partition,)),)))
    return E(r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code)


def end(broker, tid: str, pid: int, epoch: int, commit: bool, version: int = 3) -> E:
    r = call(broker, req(END, version, "EndTxnRequest", transactional_id=tid, producer_id=pid, producer_epoch=epoch,
                         committed=commit))
    return E(r.error_code)


def markers_done(broker) -> None:
    wait_until(lambda: broker.call(lambda: broker.transactions.pending_markers) == 0, 20, "marker jobs done")


def offsets(broker, partition: int) -> tuple[int, int, int]:
    """(log end, high watermark, last stable offset) of TOPIC ``partition`` on its leader."""
    def read():
        p = broker.logs.partition(TOPIC, partition)
        return p.log.log_end_offset, p.log.high_watermark, p.last_stable_offset
    return broker.call(read)


def read(brokers, partition: int, isolation: str, expected: int) -> list[bytes]:
    c = Consumer({"bootstrap.servers": ",".join(b.bootstrap_servers for b in brokers.values()),
                  "group.id": "reader-" + uuid.uuid4().hex[:6], "isolation.level": isolation,
                  "enable.auto.commit": False})
    c.assign([TopicPartition(TOPIC, partition, 0)])
    got: list[bytes] = []
    deadline = time.monotonic() + (10 if expected else 3)
    try:
        while time.monotonic() < deadline and len(got) <= expected:
            got += [m.value() for m in c.consume(10, 0.3) if not m.error()]
            if expected and len(got) >= expected:
                time.sleep(0.5)
                got += [m.value() for m in c.consume(10, 0.3) if not m.error()]
                break
    finally:
        c.close()
    return got


def asked_remotely(brokers, leader: int, coordinator: int) -> bool:
    """Whether the leader's verifier opened a channel to the coordinator's broker."""
    node = brokers[leader].node
    return brokers[leader].call(lambda: coordinator in node.txn_verifier._channels)


def test_a_remote_coordinator_verifies_and_a_zombie_write_after_an_abort_is_refused(cluster):  # noqa: F811 (the fixture)
    brokers = cluster
    tid = "tx-remote-verify"
    coordinator = coordinator_of(brokers, tid)
    partition, leader = remote_partition(brokers, coordinator)
    pid, epoch = init(brokers[coordinator], tid)

    assert produce(brokers[leader], tid, pid, epoch, 0, partition, b"unadded") == E.invalid_txn_state
    assert asked_remotely(brokers, leader, coordinator)
    assert add_partitions(brokers[coordinator], tid, pid, epoch, partition) == E.none
    assert produce(brokers[leader], tid, pid, epoch, 0, partition, b"in-txn") == E.none
    assert end(brokers[coordinator], tid, pid, epoch, commit=False) == E.none
    markers_done(brokers[coordinator])

    assert produce(brokers[leader], tid, pid, epoch, 1, partition, b"zombie") == E.invalid_txn_state
    wait_until(lambda: offsets(brokers[leader], partition)[1] == 2, 10, "the high watermark past the marker")
    assert offsets(brokers[leader], partition) == (2, 2, 2), "the record and its abort marker; nothing open"
    assert read(brokers, partition, "read_committed", 0) == []
    assert read(brokers, partition, "read_uncommitted", 1) == [b"in-txn"]


def test_produce_v12_adds_the_partition_on_the_remote_coordinator(cluster):  # noqa: F811 (the fixture)
    brokers = cluster
    tid = "tx-remote-v2"
    coordinator = coordinator_of(brokers, tid)
    partition, leader = remote_partition(brokers, coordinator)
    assert brokers[leader].node.metadata.finalized_features().level(TRANSACTION_VERSION) == 2
    pid, epoch = init(brokers[coordinator], tid, version=5)

    assert produce(brokers[leader], tid, pid, epoch, 0, partition, b"v2", version=12) == E.none
    assert asked_remotely(brokers, leader, coordinator)
    node = brokers[coordinator]
    error, meta = node.call(lambda: node.transactions.query(lambda c: c.describe(tid)))
    assert error == E.none and meta.state.kafka_name == "Ongoing"
    assert meta.partitions == frozenset({(TOPIC, partition)})
    assert end(node, tid, pid, epoch, commit=True, version=5) == E.none
    markers_done(node)
    assert read(brokers, partition, "read_committed", 1) == [b"v2"]



def group_away_from(brokers, coordinator: int) -> tuple[str, int]:
    """A group whose coordinator is another broker than ``coordinator``, loaded there."""
    from kio.schema.find_coordinator.v4 import request as q
    metadata = brokers[1].node.metadata
    for n in range(100):
        group = f"verify-group-{n}"
        r = call(brokers[1], make(q.FindCoordinatorRequest, key_type=0, coordinator_keys=(group,)))
        if r.coordinators[0].error_code != E.none:
            wait_until(lambda g=group: metadata.group_coordinator(g) is not None, 20, "__consumer_offsets led")
        found = metadata.group_coordinator(group)
        if found.broker_id != coordinator:
            node = brokers[found.broker_id]
            index = coordinator_partition(group, node.config.get("offsets.topic.num.partitions"))
            wait_until(lambda: node.call(lambda: node.node.leads_offsets_partition(index)), 20, "the group loaded")
            return group, found.broker_id
    raise AssertionError(f"every group coordinated by broker {coordinator}")


def txn_offset_commit(broker, tid: str, group: str, pid: int, epoch: int, offset: int) -> E:
    r = call(broker, req(TXN_COMMIT, 3, "TxnOffsetCommitRequest", transactional_id=tid, group_id=group,
                         producer_id=pid, producer_epoch=epoch, generation_id=-1, member_id="", topics=(
                             req(TXN_COMMIT, 3, "TxnOffsetCommitRequestTopic", name=TOPIC, partitions=(
                                 req(TXN_COMMIT, 3, "TxnOffsetCommitRequestPartition", partition_index=0,
                                     committed_offset=offset, committed_metadata=""),)),)))
    return E(r.topics[0].partitions[0].error_code)


def test_txn_offset_commit_is_verified_with_the_remote_coordinator(cluster):  # noqa: F811 (the fixture)
    brokers = cluster
    tid = "tx-remote-offsets"
    coordinator = coordinator_of(brokers, tid)
    group, group_coordinator = group_away_from(brokers, coordinator)
    pid, epoch = init(brokers[coordinator], tid)

    assert txn_offset_commit(brokers[group_coordinator], tid, group, pid, epoch, 5) == E.invalid_txn_state, \
        "no AddOffsetsToTxn: the group's partition is not in the transaction"
    assert asked_remotely(brokers, group_coordinator, coordinator)
    r = call(brokers[coordinator], req(ADD_OFFSETS, 3, "AddOffsetsToTxnRequest", transactional_id=tid,
                                       producer_id=pid, producer_epoch=epoch, group_id=group))
    assert r.error_code == E.none
    assert txn_offset_commit(brokers[group_coordinator], tid, group, pid, epoch, 7) == E.none
    assert end(brokers[coordinator], tid, pid, epoch, commit=True) == E.none
    markers_done(brokers[coordinator])
    c = Consumer({"bootstrap.servers": brokers[1].bootstrap_servers, "group.id": group})
    try:
        assert c.committed([TopicPartition(TOPIC, 0)], timeout=20)[0].offset == 7
    finally:
        c.close()
