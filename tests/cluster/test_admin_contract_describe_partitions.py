"""The admin contract (see test_admin_contract.py) of DescribeTopicPartitions (KIP-966):
every broker describes a topic's partitions as Metadata does, paginated by Kafka's cursor.

librdkafka's describe_topics uses Metadata, so kavka's one-connection client sends the
request to each broker; Kafka 4's Java AdminClient (``kafka-topics --describe``) sends
this one.
"""

from __future__ import annotations

import pytest
from confluent_kafka.admin import NewTopic
from kio.schema.describe_topic_partitions.v0.request import Cursor, DescribeTopicPartitionsRequest, TopicRequest

from admin_contract_helpers import admin, ask_broker, code_name, create, ready_everywhere

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


def describe(target, broker_id: int, names=(), limit: int = 2000, cursor=None):
    return ask_broker(target, broker_id, DescribeTopicPartitionsRequest(
        topics=tuple(TopicRequest(name=n) for n in names), response_partition_limit=limit,
        cursor=None if cursor is None else Cursor(topic_name=cursor[0], partition_index=cursor[1])))


def test_every_broker_describes_partitions_like_metadata(admin_target):
    target = admin_target
    create(admin(target), NewTopic("dtp-five", 5, target.broker_count), NewTopic("dtp-one", 1, target.broker_count))
    five = ready_everywhere(target, "dtp-five", 5)
    ready_everywhere(target, "dtp-one", 1)
    for broker_id in target.broker_ids:
        answer = describe(target, broker_id, ["dtp-one", "dtp-five", "dtp-none"])
        assert [(t.name, code_name(t.error_code), len(t.partitions)) for t in answer.topics] == [
            ("dtp-five", "NoError", 5), ("dtp-none", "UnknownTopicOrPartitionError", 0), ("dtp-one", "NoError", 1)]
        for p in answer.topics[0].partitions:
            expected = five.partitions[p.partition_index]
            assert (p.leader_id, list(p.replica_nodes), sorted(p.isr_nodes)) == (
                expected.leader, expected.replicas, sorted(expected.isrs))
            assert (p.eligible_leader_replicas, p.offline_replicas) == ((), ())
        assert answer.next_cursor is None


def test_every_broker_pages_with_the_cursor(admin_target):
    target = admin_target
    create(admin(target), NewTopic("dtq-a", 3, target.broker_count), NewTopic("dtq-b", 2, target.broker_count))
    ready_everywhere(target, "dtq-a", 3)
    ready_everywhere(target, "dtq-b", 2)
    for broker_id in target.broker_ids:
        seen, cursor = [], None
        for _ in range(10):
            answer = describe(target, broker_id, ["dtq-b", "dtq-a"], limit=2, cursor=cursor)
            seen += [(t.name, p.partition_index) for t in answer.topics for p in t.partitions]
            if answer.next_cursor is None:
                break
            cursor = (answer.next_cursor.topic_name, answer.next_cursor.partition_index)
        assert seen == [("dtq-a", 0), ("dtq-a", 1), ("dtq-a", 2), ("dtq-b", 0), ("dtq-b", 1)]
