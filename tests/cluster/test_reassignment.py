"""Partition reassignment (KIP-455): AlterPartitionReassignments and ListPartitionReassignments.

A lone broker answers as Kafka's single node does. In a cluster of three brokers a fourth
joins and every partition moves off broker 1 onto it, with kafka-python's admin client: the
new replicas catch up, leadership leaves broker 1, broker 1 deletes its copies, and every
acknowledged record is still there. A reassignment that cannot complete (its target holds a
registered broker that never fetches) is listed and can be cancelled. The refusals are
checked through a broker that is not the controller, so they hold after forwarding too.
"""

from __future__ import annotations

import datetime
import time

import pytest
from confluent_kafka.admin import NewTopic
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import InvalidReplicationAssignmentError, NoReassignmentInProgressError, UnknownTopicOrPartitionError
from kio.schema.alter_partition_reassignments.v0.request import (AlterPartitionReassignmentsRequest,
                                                                 ReassignablePartition, ReassignableTopic)
from kio.schema.list_partition_reassignments.v0.request import (ListPartitionReassignmentsRequest,
                                                                ListPartitionReassignmentsTopics)

from admin_contract_helpers import (TIMEOUT, admin, ask_broker, code_name, create, eventually, kafka_python_admin,
                                    ready_everywhere, topic_metadata)
from admin_targets import register_fake_broker, revoke_lease, start_lone
from cluster_helpers import run

pytestmark = [pytest.mark.timeout(240)]

RECORDS = 300
PARTITIONS = 3
FAKE_BROKER = 9       # registered in etcd, never fetches: a reassignment onto it cannot complete
FAKE_LEASE_S = 120


@pytest.fixture(scope="module")
def lone(tmp_path_factory):
    target = start_lone(tmp_path_factory.mktemp("reassign-lone"))
    yield target
    target.stop()


def alter(target, broker_id: int, topic: str, targets: dict[int, list[int] | None]):
    answer = ask_broker(target, broker_id, AlterPartitionReassignmentsRequest(
        timeout=datetime.timedelta(seconds=10), topics=(ReassignableTopic(name=topic, partitions=tuple(
            ReassignablePartition(partition_index=p, replicas=None if r is None else tuple(r))
            for p, r in targets.items())),)))
    assert code_name(answer.error_code) == "NoError"
    return {(t.name, p.partition_index): code_name(p.error_code) for t in answer.responses for p in t.partitions}


def listed(target, broker_id: int, topics: dict[str, list[int]] | None = None):
    answer = ask_broker(target, broker_id, ListPartitionReassignmentsRequest(
        timeout=datetime.timedelta(seconds=10), topics=None if topics is None else tuple(
            ListPartitionReassignmentsTopics(name=n, partition_indexes=tuple(ps)) for n, ps in topics.items())))
    assert code_name(answer.error_code) == "NoError"
    return {(t.name, p.partition_index): (list(p.replicas), list(p.adding_replicas), list(p.removing_replicas))
            for t in answer.topics for p in t.partitions}


def not_controller(target) -> int:
    controller = target.brokers[1].node.controller_id()
    return next(b for b in target.broker_ids if b != controller)


# -- a lone broker --------------------------------------------------------------------------

def test_lone_broker_answers_as_a_single_kafka_node(lone):
    create(admin(lone), NewTopic("lone-moves", 2, 1))
    ready_everywhere(lone, "lone-moves", 2)
    me = lone.broker_ids[0]
    client = kafka_python_admin(lone)
    try:
        answers = client.alter_partition_reassignments({
            TopicPartition("lone-moves", 0): [me], TopicPartition("lone-moves", 1): [me, 7],
            TopicPartition("lone-none", 0): [me]})
        assert answers == {TopicPartition("lone-moves", 0): None,
                           TopicPartition("lone-moves", 1): InvalidReplicationAssignmentError,
                           TopicPartition("lone-none", 0): UnknownTopicOrPartitionError}
        assert client.alter_partition_reassignments({TopicPartition("lone-moves", 0): None}) == {
            TopicPartition("lone-moves", 0): NoReassignmentInProgressError}
        assert client.list_partition_reassignments() == {}
    finally:
        client.close()
    assert alter(lone, me, "lone-moves", {5: [me], 0: [me, me]}) == {
        ("lone-moves", 5): "UnknownTopicOrPartitionError", ("lone-moves", 0): "InvalidReplicationAssignmentError"}


# -- a cluster ------------------------------------------------------------------------------

@pytest.mark.slow
def test_refusals_through_a_broker_that_forwards(four):
    create(admin(four), NewTopic("refusals", 2, 3))
    ready_everywhere(four, "refusals", 2)
    via = not_controller(four)
    assert alter(four, via, "refusals", {0: [1, 2, 42], 1: [2, 2, 3], 7: [1, 2, 3]}) == {
        ("refusals", 0): "InvalidReplicationAssignmentError", ("refusals", 1): "InvalidReplicationAssignmentError",
        ("refusals", 7): "UnknownTopicOrPartitionError"}
    assert alter(four, via, "no-such-topic", {0: [1, 2, 3]}) == {("no-such-topic", 0): "UnknownTopicOrPartitionError"}
    assert alter(four, via, "refusals", {0: None}) == {("refusals", 0): "NoReassignmentInProgressError"}
    assert listed(four, via) == {}


@pytest.mark.slow
def test_a_stuck_reassignment_is_listed_and_cancelled(four):
    create(admin(four), NewTopic("stuck", 1, 3))
    before = ready_everywhere(four, "stuck", 1).partitions[0]
    original = list(before.replicas)
    lease = run(register_fake_broker(four, FAKE_BROKER, FAKE_LEASE_S))
    try:
        eventually(lambda: all(FAKE_BROKER in b.node.view.brokers for b in four.brokers.values()), "the fake broker")
        target = [original[0], original[1], FAKE_BROKER]
        via = not_controller(four)
        assert alter(four, via, "stuck", {0: target}) == {("stuck", 0): "NoError"}
        removing = sorted(set(original) - set(target))
        expected = (target + removing, [FAKE_BROKER], removing)
        for broker_id in four.broker_ids:
            assert listed(four, broker_id)[("stuck", 0)] == expected
            assert listed(four, broker_id, {"stuck": [0, 3], "nothing": [0]}) == {("stuck", 0): expected}
        time.sleep(1.0)   # it stays in progress: the fake broker never joins the ISR
        assert listed(four, via) == {("stuck", 0): expected}
        metadata = topic_metadata(four, via, "stuck").partitions[0]
        assert list(metadata.replicas) == target + removing and FAKE_BROKER not in metadata.isrs
        assert alter(four, via, "stuck", {0: None}) == {("stuck", 0): "NoError"}
        assert listed(four, via) == {}
        after = topic_metadata(four, via, "stuck").partitions[0]
        assert sorted(after.replicas) == sorted(original) and after.leader == before.leader
    finally:
        run(revoke_lease(four, lease))


@pytest.mark.slow
def test_every_partition_moves_off_broker_1_onto_broker_4(four):
    topic = "scale-out"
    create(admin(four), NewTopic(topic, PARTITIONS, replica_assignment=[[1, 2, 3], [2, 3, 1], [3, 1, 2]]))
    ready_everywhere(four, topic, PARTITIONS)
    values = _produce(four, topic)
    epochs = {p: four.brokers[2].node.view.partitions[(topic, p)].value.leader_epoch for p in range(PARTITIONS)}
    targets = {p: [4 if b == 1 else b for b in replicas]
               for p, replicas in enumerate([[1, 2, 3], [2, 3, 1], [3, 1, 2]])}
    client = kafka_python_admin(four)
    try:
        answers = client.alter_partition_reassignments({TopicPartition(topic, p): r for p, r in targets.items()})
        assert answers == {TopicPartition(topic, p): None for p in targets}
        eventually(lambda: client.list_partition_reassignments() == {}, "the moves to finish", timeout=60)
    finally:
        client.close()
    for broker_id in four.broker_ids:
        metadata = topic_metadata(four, broker_id, topic)
        for p, target in targets.items():
            got = metadata.partitions[p]
            assert list(got.replicas) == target and sorted(got.isrs) == sorted(target) and got.leader in target
    moved = four.brokers[2].node.view.partitions[(topic, 0)].value
    assert moved.leader != 1 and moved.leader_epoch == epochs[0] + 1   # broker 1 led partition 0
    data_dir = four.brokers[1].node.broker.logs.data_dir
    eventually(lambda: not [d for d in data_dir.iterdir() if d.name.startswith(f"{topic}-")],
               "broker 1 to delete its copies")
    assert four.brokers[1].node.broker.logs.topic(topic) is None
    assert sorted(_consume(four, topic)) == sorted(values)


def _produce(target, topic: str) -> list[bytes]:
    producer = KafkaProducer(bootstrap_servers=target.bootstrap(1, 2, 3), acks="all", linger_ms=5)
    try:
        values = [f"record-{i}".encode() for i in range(RECORDS)]
        futures = [producer.send(topic, v, partition=i % PARTITIONS) for i, v in enumerate(values)]
        for f in futures:
            f.get(timeout=TIMEOUT)
    finally:
        producer.close()
    return values


def _consume(target, topic: str) -> list[bytes]:
    consumer = KafkaConsumer(bootstrap_servers=target.bootstrap(2, 3, 4), auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=2000)
    consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
    out: list[bytes] = []
    deadline = time.monotonic() + TIMEOUT * 2
    try:
        while len(out) < RECORDS and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                out += [m.value for m in batch]
    finally:
        consumer.close()
    return out
