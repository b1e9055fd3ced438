"""The admin contract (see test_admin_contract.py), each request sent to one broker alone.

Client libraries send CreateTopics, DeleteTopics, CreatePartitions and config changes to
the controller they learn from Metadata, so the other contract modules reach only the
controller.  Here kavka's own one-connection client sends each request to one broker, as
a client that picked any broker (Kafka forwards to the controller since KIP-590) would;
codes are named with kafka-python's table.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import uuid

import pytest
from confluent_kafka import TopicCollection
from confluent_kafka.admin import ConfigSource, NewTopic
from kio.schema.alter_configs.v2.request import AlterableConfig as LegacyConfig
from kio.schema.alter_configs.v2.request import AlterConfigsRequest
from kio.schema.alter_configs.v2.request import AlterConfigsResource as LegacyResource
from kio.schema.create_partitions.v3.request import CreatePartitionsRequest, CreatePartitionsTopic
from kio.schema.delete_topics.v6.request import DeleteTopicsRequest, DeleteTopicState
from kio.schema.incremental_alter_configs.v1.request import (
    AlterableConfig,
    AlterConfigsResource,
    IncrementalAlterConfigsRequest,
)

from admin_contract_helpers import (
    TIMEOUT,
    admin,
    ask_broker,
    code_name,
    codes,
    creatable_config,
    create,
    create_request,
    describe,
    described_everywhere,
    listed_nowhere,
    ready_everywhere,
    topic_metadata,
    uuid_of,
)

pytestmark = pytest.mark.timeout(120)


def test_every_broker_answers_create_partitions_and_delete_itself(admin_target):
    target = admin_target
    wait = datetime.timedelta(seconds=10)
    n = target.broker_count
    for broker_id in target.broker_ids:
        name = f"door-{broker_id}"
        answer = ask_broker(target, broker_id, create_request((name, 1, -1), (name, 1, 1), ("door too", 1, 1)))
        assert [(t.name, code_name(t.error_code)) for t in answer.topics] == [
            (name, "InvalidRequestError"), ("door too", "InvalidTopicError")]
        answer = ask_broker(target, broker_id, create_request((name, 1, -1), (f"wide-{broker_id}", 1, n + 1)))
        assert [(code_name(t.error_code), t.num_partitions, t.replication_factor) for t in answer.topics] == [
            ("NoError", 1, n), ("InvalidReplicationFactorError", -1, -1)]
        dry = ask_broker(target, broker_id, create_request((f"dry-{broker_id}", 2, n), validate_only=True))
        assert (code_name(dry.topics[0].error_code), dry.topics[0].num_partitions) == ("NoError", 2)
        ready_everywhere(target, name, 1)
        assert topic_metadata(target, broker_id, f"dry-{broker_id}") is None
        again = ask_broker(target, broker_id, create_request((name, 1, 1)))
        assert code_name(again.topics[0].error_code) == "TopicAlreadyExistsError"

        grown = ask_broker(target, broker_id, CreatePartitionsRequest(timeout=wait, validate_only=False, topics=(
            CreatePartitionsTopic(name=name, count=3, assignments=None),
            CreatePartitionsTopic(name=f"nowhere-{broker_id}", count=3, assignments=None))))
        assert [code_name(r.error_code) for r in grown.results] == ["NoError", "UnknownTopicOrPartitionError"]
        ready_everywhere(target, name, 3)

        altered = ask_broker(target, broker_id, IncrementalAlterConfigsRequest(validate_only=False, resources=(
            AlterConfigsResource(resource_type=2, resource_name=name, configs=(
                AlterableConfig(name="retention.ms", config_operation=0, value="5000"),)),)))
        assert code_name(altered.responses[0].error_code) == "NoError"
        described_everywhere(target, name, {"retention.ms": ("5000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)})

        deleted = ask_broker(target, broker_id, DeleteTopicsRequest(timeout=wait, topics=(
            DeleteTopicState(name=name, topic_id=None),
            DeleteTopicState(name=f"nowhere-{broker_id}", topic_id=None))))
        assert [code_name(r.error_code) for r in deleted.responses] == ["NoError", "UnknownTopicOrPartitionError"]
        listed_nowhere(target, name)


def test_every_broker_applies_validate_only_and_refusals_itself(admin_target):
    """validate_only and the refusals, sent to each broker alone (forwarded in a cluster)."""
    target = admin_target
    wait = datetime.timedelta(seconds=10)
    create(admin(target), NewTopic("guarded", 2, target.broker_count, config={"retention.ms": "60000"}))
    ready_everywhere(target, "guarded", 2)

    def incremental(value: str, validate_only: bool):
        return IncrementalAlterConfigsRequest(validate_only=validate_only, resources=(AlterConfigsResource(
            resource_type=2, resource_name="guarded", configs=(
                AlterableConfig(name="retention.ms", config_operation=0, value=value),)),))

    def partitions(count: int, validate_only: bool):
        return CreatePartitionsRequest(timeout=wait, validate_only=validate_only, topics=(
            CreatePartitionsTopic(name="guarded", count=count, assignments=None),))

    for broker_id in target.broker_ids:
        ask = functools.partial(ask_broker, target, broker_id)
        assert codes(ask(incremental("1000", True)), "responses") == ["NoError"]
        assert codes(ask(incremental("soon", False)), "responses") == ["InvalidConfigurationError"]
        legacy = ask(AlterConfigsRequest(validate_only=True, resources=(LegacyResource(
            resource_type=2, resource_name="guarded", configs=(LegacyConfig(name="segment.bytes", value="2000000"),)),)))
        assert codes(legacy, "responses") == ["NoError"]
        assert codes(ask(partitions(5, True)), "results") == ["NoError"]
        assert codes(ask(partitions(1, False)), "results") == ["InvalidPartitionsError"]
        bad_config = create_request(("guarded-bad", 1, 1))
        bad_config = dataclasses.replace(bad_config, topics=(dataclasses.replace(
            bad_config.topics[0], configs=(creatable_config("cleanup.policy", "shred"),)),))
        assert codes(ask(bad_config), "topics") == ["InvalidConfigurationError"]
        deleted = ask(DeleteTopicsRequest(timeout=wait, topics=(DeleteTopicState(name=None, topic_id=uuid.uuid4()),)))
        assert codes(deleted, "responses") == ["UnknownTopicIdError"]
    for broker_id in target.broker_ids:   # nothing of the dry runs or refusals took effect
        configs = describe(admin(target, broker_id), "guarded")
        assert (configs["retention.ms"].value, configs["segment.bytes"].value) == ("60000", "1073741824")
        assert len(topic_metadata(target, broker_id, "guarded").partitions) == 2
        assert topic_metadata(target, broker_id, "guarded-bad") is None


def test_every_broker_deletes_by_topic_id(admin_target):
    target = admin_target
    for broker_id in target.broker_ids:
        name = f"by-id-{broker_id}"
        client = admin(target)
        create(client, NewTopic(name, 1, 1))
        ready_everywhere(target, name, 1)
        (future,) = client.describe_topics(TopicCollection([name])).values()
        topic_id = uuid_of(future.result(TIMEOUT).topic_id)
        answer = ask_broker(target, broker_id, DeleteTopicsRequest(timeout=datetime.timedelta(seconds=10), topics=(
            DeleteTopicState(name=None, topic_id=topic_id),)))
        (result,) = answer.responses
        assert (code_name(result.error_code), result.name, result.topic_id) == ("NoError", name, topic_id)
        listed_nowhere(target, name)
