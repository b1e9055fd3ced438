"""AlterConfigs and IncrementalAlterConfigs through the dispatcher with wire bytes,
against a real LogManager: replace vs. incremental semantics, validation,
per-resource errors, running partitions and persistence."""

from __future__ import annotations

import datetime

import pytest

from kavka.config import BrokerConfig
from kavka.log.log_manager import LogManager
from kavka.protocol.errors import ErrorCode
from kavka.protocol.record_codec import encode_batch

ALTER, INCREMENTAL, DESCRIBE, CREATE, PRODUCE = 33, 44, 32, 19, 0
TOPIC, BROKER, BROKER_LOGGER = 2, 4, 8
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
DYNAMIC_TOPIC, DEFAULT = 1, 5


@pytest.fixture
def h(admin):
    harness = admin({"num.partitions": "2"})
    for name in ("t", "u"):
        q = harness.req(CREATE, 7)
        result = harness.call(q.CreateTopicsRequest(
            topics=(q.CreatableTopic(name=name, num_partitions=-1, replication_factor=-1, assignments=(),
                                     configs=()),),
            timeout=datetime.timedelta(seconds=5), validate_only=False)).topics[0]
        assert result.error_code == ErrorCode.none
    return harness


def alter(h, *resources, version=2, validate_only=False):
    """resources: (type, name, {config: value})."""
    q = h.req(ALTER, version)
    items = tuple(q.AlterConfigsResource(
        resource_type=t, resource_name=n,
        configs=tuple(q.AlterableConfig(name=k, value=v) for k, v in configs.items()))
        for t, n, configs in resources)
    return h.call(q.AlterConfigsRequest(resources=items, validate_only=validate_only)).responses


def incremental(h, *resources, version=1, validate_only=False):
    """resources: (type, name, [(config, operation, value)])."""
    q = h.req(INCREMENTAL, version)
    items = tuple(q.AlterConfigsResource(
        resource_type=t, resource_name=n,
        configs=tuple(q.AlterableConfig(name=k, config_operation=op, value=v) for k, op, v in ops))
        for t, n, ops in resources)
    return h.call(q.IncrementalAlterConfigsRequest(resources=items, validate_only=validate_only)).responses


def one(responses):
    (response,) = responses
    return response


def ok(response):
    assert (response.error_code, response.error_message) == (ErrorCode.none, None)
    return response


def described(h, name):
    q = h.req(DESCRIBE, 4)
    (result,) = h.call(q.DescribeConfigsRequest(
        resources=(q.DescribeConfigsResource(resource_type=TOPIC, resource_name=name, configuration_keys=None),),
        include_synonyms=False, include_documentation=False)).results
    return {c.name: (c.value, c.config_source) for c in result.configs}


def produce(h, topic, value_size):
    q = h.req(PRODUCE, 9)
    batch = encode_batch([(b"k", b"x" * value_size, h.context.clock.now_ms(), ())])
    response = h.call(q.ProduceRequest(
        transactional_id=None, acks=1, timeout=datetime.timedelta(seconds=5),
        topic_data=(q.TopicProduceData(name=topic, partition_data=(
            q.PartitionProduceData(index=0, records=batch),)),)))
    return response.responses[0].partition_responses[0].error_code


# -- AlterConfigs: the whole set -----------------------------------------------------------

@pytest.mark.parametrize("version", range(0, 3))
def test_alter_configs_replaces_every_override(h, version):
    ok(one(alter(h, (TOPIC, "t", {"retention.ms": "1000", "cleanup.policy": "compact,delete"}), version=version)))
    assert dict(h.logs.topic("t").overrides) == {"retention.ms": "1000", "cleanup.policy": "compact,delete"}
    assert described(h, "t")["retention.ms"] == ("1000", DYNAMIC_TOPIC)
    response = ok(one(alter(h, (TOPIC, "t", {"segment.bytes": "1048576"}), version=version)))
    assert (response.resource_type, response.resource_name) == (TOPIC, "t")
    assert dict(h.logs.topic("t").overrides) == {"segment.bytes": "1048576"}
    configs = described(h, "t")
    assert configs["retention.ms"] == ("604800000", DEFAULT)
    assert configs["cleanup.policy"] == ("delete", DEFAULT)
    assert configs["segment.bytes"] == ("1048576", DYNAMIC_TOPIC)


def test_alter_configs_with_no_configs_clears_overrides(h):
    ok(one(alter(h, (TOPIC, "t", {"retention.ms": "1000"}))))
    ok(one(alter(h, (TOPIC, "t", {}))))
    assert dict(h.logs.topic("t").overrides) == {}


def test_alter_configs_validate_only_changes_nothing(h):
    ok(one(alter(h, (TOPIC, "t", {"retention.ms": "1000"}), validate_only=True)))
    assert dict(h.logs.topic("t").overrides) == {}
    bad = one(alter(h, (TOPIC, "t", {"retention.ms": "soon"}), validate_only=True))
    assert bad.error_code == ErrorCode.invalid_config and "retention.ms" in bad.error_message


@pytest.mark.parametrize("configs, setting", [
    ({"retention.ms": "soon"}, "retention.ms"),
    ({"cleanup.policy": "shred"}, "cleanup.policy"),
    ({"min.cleanable.dirty.ratio": "2"}, "min.cleanable.dirty.ratio"),
    ({"segment.bytes": "1"}, "segment.bytes"),
    ({"no.such.setting": "1"}, "no.such.setting"),
    ({"retention.ms": "1000", "message.timestamp.type": "Whenever"}, "message.timestamp.type"),
])
def test_alter_configs_invalid_values_change_nothing(h, configs, setting):
    ok(one(alter(h, (TOPIC, "t", {"retention.bytes": "1000"}))))
    response = one(alter(h, (TOPIC, "t", configs)))
    assert response.error_code == ErrorCode.invalid_config
    assert setting in response.error_message
    assert dict(h.logs.topic("t").overrides) == {"retention.bytes": "1000"}


def test_alter_configs_per_resource_errors(h):
    responses = alter(h, (TOPIC, "t", {"retention.ms": "5"}), (TOPIC, "missing", {"retention.ms": "5"}),
                      (TOPIC, "", {"retention.ms": "5"}), (TOPIC, "u", {"retention.ms": "x"}))
    assert [(r.resource_name, r.error_code) for r in responses] == [
        ("t", ErrorCode.none), ("missing", ErrorCode.unknown_topic_or_partition),
        ("", ErrorCode.invalid_request), ("u", ErrorCode.invalid_config)]
    assert "missing" in responses[1].error_message
    assert h.logs.topic("t").overrides == {"retention.ms": "5"}


def test_alter_configs_duplicate_resource_is_answered_once(h):
    responses = alter(h, (TOPIC, "t", {"retention.ms": "5"}), (TOPIC, "u", {}), (TOPIC, "t", {"retention.ms": "6"}))
    assert [(r.resource_name, r.error_code) for r in responses] == [
        ("t", ErrorCode.invalid_request), ("u", ErrorCode.none)]
    assert responses[0].error_message == "Duplicate resource."
    assert dict(h.logs.topic("t").overrides) == {}


def test_alter_configs_null_value_and_duplicate_keys(h):
    q = h.req(ALTER, 2)
    twice = q.AlterConfigsResource(resource_type=TOPIC, resource_name="t", configs=(
        q.AlterableConfig(name="retention.ms", value="1"), q.AlterableConfig(name="retention.ms", value="2")))
    null = q.AlterConfigsResource(resource_type=TOPIC, resource_name="u", configs=(
        q.AlterableConfig(name="retention.ms", value=None),))
    responses = h.call(q.AlterConfigsRequest(resources=(twice, null), validate_only=False)).responses
    assert [r.error_code for r in responses] == [ErrorCode.invalid_request] * 2
    assert "duplicate config keys: retention.ms" in responses[0].error_message
    assert "Null value" in responses[1].error_message and "retention.ms" in responses[1].error_message


def test_alter_configs_broker_resources_are_refused_clearly(h):
    responses = alter(h, (BROKER, "0", {"log.retention.ms": "1000"}), (BROKER, "", {"num.partitions": "3"}),
                      (BROKER, "7", {"log.retention.ms": "1000"}), (BROKER, "0", {}),
                      (BROKER_LOGGER, "0", {"kavka": "DEBUG"}), (99, "x", {}))
    codes = [(r.resource_type, r.resource_name, r.error_code) for r in responses]
    assert codes == [
        (BROKER, "0", ErrorCode.invalid_request), (BROKER, "", ErrorCode.invalid_request),
        (BROKER, "7", ErrorCode.invalid_request),
        (BROKER_LOGGER, "0", ErrorCode.invalid_request), (99, "x", ErrorCode.invalid_request)]
    # the two BROKER "0" resources are one resource named twice: answered once
    assert responses[0].error_message == "Duplicate resource."
    assert responses[1].error_message == "Cannot update these configs dynamically: Set(num.partitions)"
    assert responses[2].error_message == "Unexpected broker id, expected 0, but received 7"
    assert "log levels" in responses[3].error_message
    assert "resource type" in responses[4].error_message


def test_alter_configs_broker_with_nothing_to_change(h):
    ok(one(alter(h, (BROKER, "0", {}))))
    ok(one(alter(h, (BROKER, "", {}))))


# -- IncrementalAlterConfigs ---------------------------------------------------------------

@pytest.mark.parametrize("version", range(0, 2))
def test_incremental_set_and_delete_leave_other_overrides(h, version):
    ok(one(alter(h, (TOPIC, "t", {"retention.bytes": "1000"}))))
    ok(one(incremental(h, (TOPIC, "t", [("retention.ms", SET, "5000"), ("segment.ms", SET, "60000")]),
                       version=version)))
    assert dict(h.logs.topic("t").overrides) == {"retention.bytes": "1000", "retention.ms": "5000",
                                                 "segment.ms": "60000"}
    ok(one(incremental(h, (TOPIC, "t", [("retention.ms", DELETE, None), ("flush.ms", DELETE, "ignored")]),
                       version=version)))
    assert dict(h.logs.topic("t").overrides) == {"retention.bytes": "1000", "segment.ms": "60000"}
    assert described(h, "t")["retention.ms"] == ("604800000", DEFAULT)


def test_incremental_append_and_subtract_on_a_list(h):
    ok(one(incremental(h, (TOPIC, "t", [("cleanup.policy", APPEND, "compact")]))))
    assert h.logs.topic("t").overrides["cleanup.policy"] == "delete,compact"  # from the default
    ok(one(incremental(h, (TOPIC, "t", [("cleanup.policy", APPEND, "compact,delete")]))))
    assert h.logs.topic("t").overrides["cleanup.policy"] == "delete,compact"  # no duplicates
    ok(one(incremental(h, (TOPIC, "t", [("cleanup.policy", SUBTRACT, "delete")]))))
    assert h.logs.topic("t").overrides["cleanup.policy"] == "compact"
    assert h.logs.topic("t").config.compacted
    ok(one(incremental(h, (TOPIC, "t", [("cleanup.policy", SUBTRACT, "delete")]))))  # absent: no change
    assert h.logs.topic("t").overrides["cleanup.policy"] == "compact"
    bad = one(incremental(h, (TOPIC, "t", [("cleanup.policy", APPEND, "shred")])))
    assert bad.error_code == ErrorCode.invalid_config and "cleanup.policy" in bad.error_message


def test_incremental_append_starts_from_the_broker_default(admin):
    h = admin({"log.cleanup.policy": "compact"})
    q = h.req(CREATE, 7)
    h.call(q.CreateTopicsRequest(topics=(q.CreatableTopic(
        name="t", num_partitions=1, replication_factor=1, assignments=(), configs=()),),
        timeout=datetime.timedelta(seconds=5), validate_only=False))
    ok(one(incremental(h, (TOPIC, "t", [("cleanup.policy", APPEND, "delete")]))))
    assert h.logs.topic("t").overrides["cleanup.policy"] == "compact,delete"


@pytest.mark.parametrize("operation, word", [(APPEND, "APPEND"), (SUBTRACT, "SUBTRACT")])
def test_incremental_list_operations_on_other_types(h, operation, word):
    response = one(incremental(h, (TOPIC, "t", [("retention.ms", operation, "5")])))
    assert response.error_code == ErrorCode.invalid_config
    assert response.error_message == f"Can't {word} to key retention.ms because its type is not LIST."


@pytest.mark.parametrize("ops, code, words", [
    ([("retention.ms", SET, None)], ErrorCode.invalid_request, "Null value"),
    ([("cleanup.policy", APPEND, None)], ErrorCode.invalid_request, "Null value"),
    ([("retention.ms", 7, "1")], ErrorCode.invalid_request, "Unknown config operation 7"),
    ([("retention.ms", SET, "1"), ("retention.ms", DELETE, None)], ErrorCode.invalid_request, "duplicate"),
    ([("no.such.setting", SET, "1")], ErrorCode.invalid_config, "no.such.setting"),
    ([("no.such.setting", DELETE, None)], ErrorCode.invalid_config, "no.such.setting"),
    ([("retention.ms", SET, "1"), ("max.message.bytes", SET, "-5")], ErrorCode.invalid_config,
     "max.message.bytes"),
])
def test_incremental_errors_change_nothing(h, ops, code, words):
    response = one(incremental(h, (TOPIC, "t", ops)))
    assert response.error_code == code
    assert words in response.error_message
    assert dict(h.logs.topic("t").overrides) == {}


def test_incremental_validate_only_and_resource_errors(h):
    responses = incremental(h, (TOPIC, "t", [("retention.ms", SET, "5")]), (TOPIC, "gone", []),
                            (BROKER, "0", [("log.retention.ms", SET, "5")]), validate_only=True)
    assert [r.error_code for r in responses] == [
        ErrorCode.none, ErrorCode.unknown_topic_or_partition, ErrorCode.none]
    assert dict(h.logs.topic("t").overrides) == {}
    assert h.context.config.get("log.retention.ms") is None


# -- effects -------------------------------------------------------------------------------

def test_running_partitions_follow_the_new_config(h):
    assert produce(h, "t", 5000) == ErrorCode.none
    ok(one(incremental(h, (TOPIC, "t", [("max.message.bytes", SET, "1000"), ("segment.bytes", SET, "65536")]))))
    for index in range(2):
        partition = h.logs.partition("t", index)
        assert partition.config.max_message_bytes == 1000
        assert partition.log.config.segment_bytes == 65536
    assert produce(h, "t", 5000) == ErrorCode.message_too_large
    ok(one(incremental(h, (TOPIC, "t", [("max.message.bytes", DELETE, None)]))))
    assert produce(h, "t", 5000) == ErrorCode.none
    ok(one(alter(h, (TOPIC, "t", {"max.message.bytes": "1000"}))))
    assert produce(h, "t", 5000) == ErrorCode.message_too_large


def test_overrides_survive_a_restart(h):
    ok(one(incremental(h, (TOPIC, "t", [("retention.ms", SET, "5000"), ("cleanup.policy", APPEND, "compact")]))))
    ok(one(alter(h, (TOPIC, "u", {"segment.bytes": "1048576"}))))
    directory = h.logs.data_dir
    h.logs.close()
    reopened = LogManager(directory, BrokerConfig(), h.context.clock)
    reopened.load()
    try:
        assert dict(reopened.topic("t").overrides) == {"retention.ms": "5000", "cleanup.policy": "delete,compact"}
        assert reopened.partition("t", 1).config["retention.ms"] == 5000
        assert reopened.partition("u", 0).config.segment_bytes == 1048576
    finally:
        reopened.close()


def test_alter_apis_are_advertised(h):
    q = h.req(18, 3)
    response = h.call(q.ApiVersionsRequest(client_software_name="t", client_software_version="1"))
    ranges = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
    assert ranges[ALTER] == (0, 2)
    assert ranges[INCREMENTAL] == (0, 1)
