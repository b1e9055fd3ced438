"""The admin contract (see test_admin_contract.py) for the cluster as a whole and its
groups: DescribeCluster, FindCoordinator, group listing, deletion and commits,
DeleteRecords and ListOffsets, internal topics in DescribeTopics."""

from __future__ import annotations

import pytest
from admin_contract_helpers import (
    OFFSETS,
    TIMEOUT,
    admin,
    commit_offset,
    consume,
    create,
    error_name,
    kafka_python_admin,
    produce,
    ready_everywhere,
)
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import NewTopic

pytestmark = pytest.mark.timeout(120)


def test_describe_cluster_lists_every_broker_and_a_controller(admin_target):
    target = admin_target
    seen_ids = set()
    for broker_id in target.broker_ids:
        client = admin(target, broker_id)   # kept referenced: a collected client fails its futures
        description = client.describe_cluster(request_timeout=TIMEOUT).result(TIMEOUT)
        assert sorted(node.id for node in description.nodes) == target.broker_ids
        assert description.controller.id in target.broker_ids
        seen_ids.add(description.cluster_id)
        metadata = client.list_topics(timeout=TIMEOUT)
        assert sorted(metadata.brokers) == target.broker_ids
        assert metadata.controller_id == description.controller.id
        assert metadata.cluster_id == description.cluster_id
    assert len(seen_ids) == 1 and all(seen_ids), "one cluster id, whichever broker answers"

    client = kafka_python_admin(target)
    try:
        cluster = client.describe_cluster()
    finally:
        client.close()
    assert cluster["cluster_id"] in seen_ids
    assert cluster["controller_id"] in target.broker_ids
    assert sorted((b["broker_id"], b["is_fenced"]) for b in cluster["brokers"]) == [
        (i, False) for i in target.broker_ids]


def test_describe_cluster_authorized_operations_agree(admin_target):
    target = admin_target
    found = []
    for broker_id in target.broker_ids:
        client = kafka_python_admin(target, broker_id)
        try:
            cluster = client.describe_cluster()
        finally:
            client.close()
        found.append((sorted(cluster["authorized_operations"]), cluster["cluster_id"], cluster["controller_id"]))
    assert "DESCRIBE" in found[0][0]
    assert all(f == found[0] for f in found), found


def test_a_group_commits_through_a_live_coordinator(admin_target):
    target = admin_target
    create(admin(target), NewTopic("grouped", 1, target.broker_count))
    ready_everywhere(target, "grouped", 1)
    commit_offset(target, "ledger", "grouped", 3)
    for broker_id in target.broker_ids:            # FindCoordinator through each broker
        client = admin(target, broker_id)
        group = client.describe_consumer_groups(["ledger"], request_timeout=TIMEOUT)["ledger"].result(TIMEOUT)
        assert group.coordinator.id in target.broker_ids
        consumer = Consumer({"bootstrap.servers": target.bootstrap(broker_id), "group.id": "ledger"})
        try:
            assert consumer.committed([TopicPartition("grouped", 0)], timeout=TIMEOUT)[0].offset == 3
        finally:
            consumer.close()
    client = kafka_python_admin(target)
    try:
        offsets = client.list_group_offsets("ledger")
    finally:
        client.close()
    from kafka.structs import TopicPartition as KafkaPythonPartition
    assert offsets["ledger"][KafkaPythonPartition("grouped", 0)].offset == 3


def test_groups_are_listed_and_deleted(admin_target):
    target = admin_target
    client = admin(target)
    create(client, NewTopic("listed-groups", 1, 1))
    ready_everywhere(target, "listed-groups", 1)
    for group in ("census-a", "census-b"):
        commit_offset(target, group, "listed-groups", 2)
    listed = client.list_consumer_groups(request_timeout=TIMEOUT).result(TIMEOUT)
    assert not listed.errors, listed.errors
    assert {"census-a", "census-b"} <= {g.group_id for g in listed.valid}
    client.delete_consumer_groups(["census-a"], request_timeout=TIMEOUT)["census-a"].result(TIMEOUT)
    assert error_name(client.delete_consumer_groups(["census-a"])["census-a"]) == "GROUP_ID_NOT_FOUND"
    listed = client.list_consumer_groups(request_timeout=TIMEOUT).result(TIMEOUT)
    assert "census-a" not in {g.group_id for g in listed.valid}
    consumer = Consumer({"bootstrap.servers": target.bootstrap(), "group.id": "census-a"})
    try:
        assert consumer.committed([TopicPartition("listed-groups", 0)], timeout=TIMEOUT)[0].offset < 0
    finally:
        consumer.close()


@pytest.mark.slow
def test_delete_records_moves_the_low_watermark(admin_target):
    from confluent_kafka.admin import OffsetSpec

    target = admin_target
    client = admin(target)
    create(client, NewTopic("trimmed", 1, target.broker_count))
    ready_everywhere(target, "trimmed", 1)
    produce(target, "trimmed", [f"r{i}".encode() for i in range(5)])
    tp = TopicPartition("trimmed", 0, 3)
    assert client.delete_records([tp])[tp].result(TIMEOUT).low_watermark == 3
    spec = TopicPartition("trimmed", 0)
    for offset_spec, expected in ((OffsetSpec.earliest(), 3), (OffsetSpec.latest(), 5)):
        (future,) = client.list_offsets({spec: offset_spec}).values()
        assert future.result(TIMEOUT).offset == expected
    beyond = TopicPartition("trimmed", 0, 9)
    assert error_name(client.delete_records([beyond])[beyond]) == "OFFSET_OUT_OF_RANGE"
    assert consume(target, "trimmed", 2) == [b"r3", b"r4"]


def test_the_offsets_topic_is_described_as_internal(admin_target):
    from confluent_kafka import TopicCollection

    target = admin_target
    create(admin(target), NewTopic("internal-flag", 1, 1))
    commit_offset(target, "flagger", "internal-flag", 1)
    for broker_id in target.broker_ids:
        client = admin(target, broker_id)
        futures = client.describe_topics(TopicCollection([OFFSETS, "internal-flag"]))
        flags = {name: f.result(TIMEOUT).is_internal for name, f in futures.items()}
        assert flags == {OFFSETS: True, "internal-flag": False}, f"at broker {broker_id}"
