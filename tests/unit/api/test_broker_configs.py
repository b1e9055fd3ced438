"""Dynamic broker configs (KIP-226) through the dispatcher with wire bytes: DescribeConfigs of
BROKER resources with every source and synonym order, IncrementalAlterConfigs and AlterConfigs
at this broker's and the cluster-default scope, their effect on running topics, and their
persistence across a restart."""

from __future__ import annotations

import datetime

import pytest

from kavka.config import BrokerConfig
from kavka.log.log_manager import LogManager
from kavka.protocol.errors import ErrorCode
from kavka.protocol.record_codec import encode_batch

DESCRIBE, ALTER, INCREMENTAL, CREATE, PRODUCE = 32, 33, 44, 19, 0
TOPIC, BROKER = 2, 4
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
DYNAMIC_TOPIC, DYNAMIC_BROKER, DYNAMIC_DEFAULT, STATIC, DEFAULT = 1, 2, 3, 4, 5
LONG, INT, LIST = 5, 3, 7


@pytest.fixture
def h(admin):
    harness = admin({"log.retention.hours": "24", "broker.id": "0"})
    q = harness.req(CREATE, 7)
    for name, configs in (("t", ()), ("own", (q.CreatableTopicConfig(name="max.message.bytes", value="100000"),))):
        result = harness.call(q.CreateTopicsRequest(
            topics=(q.CreatableTopic(name=name, num_partitions=1, replication_factor=1, assignments=(),
                                     configs=configs),),
            timeout=datetime.timedelta(seconds=5), validate_only=False)).topics[0]
        assert result.error_code == ErrorCode.none
    return harness


def describe(h, resource_type, name, keys=None, version=4, synonyms=True, docs=False):
    q = h.req(DESCRIBE, version)
    (result,) = h.call(q.DescribeConfigsRequest(
        resources=(q.DescribeConfigsResource(resource_type=resource_type, resource_name=name,
                                             configuration_keys=keys),),
        include_synonyms=synonyms, include_documentation=docs)).results
    return result


def configs(h, name="0", **kwargs):
    result = describe(h, BROKER, name, **kwargs)
    assert result.error_code == ErrorCode.none, result.error_message
    return {c.name: c for c in result.configs}


def chain(entry):
    return [(s.name, s.value, s.source) for s in entry.synonyms]


def incremental(h, name, ops, validate_only=False, resource_type=BROKER):
    q = h.req(INCREMENTAL, 1)
    (response,) = h.call(q.IncrementalAlterConfigsRequest(resources=(q.AlterConfigsResource(
        resource_type=resource_type, resource_name=name,
        configs=tuple(q.AlterableConfig(name=k, config_operation=op, value=v) for k, op, v in ops)),),
        validate_only=validate_only)).responses
    return response.error_code, response.error_message


def alter(h, name, values):
    q = h.req(ALTER, 2)
    (response,) = h.call(q.AlterConfigsRequest(resources=(q.AlterConfigsResource(
        resource_type=BROKER, resource_name=name,
        configs=tuple(q.AlterableConfig(name=k, value=v) for k, v in values.items())),), validate_only=False)).responses
    return response.error_code, response.error_message


OK = (ErrorCode.none, None)


def produce(h, topic, value_size):
    q = h.req(PRODUCE, 9)
    batch = encode_batch([(b"k", b"x" * value_size, h.context.clock.now_ms(), ())])
    response = h.call(q.ProduceRequest(
        transactional_id=None, acks=1, timeout=datetime.timedelta(seconds=5),
        topic_data=(q.TopicProduceData(name=topic, partition_data=(q.PartitionProduceData(index=0, records=batch),)),)))
    return response.responses[0].partition_responses[0].error_code


def topic_config(h, topic, name):
    result = describe(h, TOPIC, topic, keys=(name,))
    (entry,) = result.configs
    return entry.value, entry.config_source, chain(entry)


# -- DescribeConfigs ------------------------------------------------------------------------

def test_every_source_in_kafka_order(h):
    assert incremental(h, "", [("log.retention.ms", SET, "7200000"), ("message.max.bytes", SET, "50000")]) == OK
    assert incremental(h, "0", [("message.max.bytes", SET, "60000")]) == OK
    c = configs(h)
    assert (c["message.max.bytes"].value, c["message.max.bytes"].config_source) == ("60000", DYNAMIC_BROKER)
    assert chain(c["message.max.bytes"]) == [
        ("message.max.bytes", "60000", DYNAMIC_BROKER), ("message.max.bytes", "50000", DYNAMIC_DEFAULT),
        ("message.max.bytes", "1048588", DEFAULT)]
    # log.retention.ms is set as a cluster default; .hours in the file: layers first, then synonyms
    assert (c["log.retention.ms"].value, c["log.retention.ms"].config_source) == ("7200000", DYNAMIC_DEFAULT)
    assert chain(c["log.retention.ms"]) == [
        ("log.retention.ms", "7200000", DYNAMIC_DEFAULT), ("log.retention.hours", "24", STATIC),
        ("log.retention.hours", "168", DEFAULT)]
    assert chain(c["log.retention.hours"]) == [("log.retention.hours", "24", STATIC),
                                               ("log.retention.hours", "168", DEFAULT)]
    assert (c["num.partitions"].config_source, chain(c["num.partitions"])) == (
        DEFAULT, [("num.partitions", "1", DEFAULT)])


def test_read_only_types_and_documentation(h):
    c = configs(h, docs=True)
    assert (c["message.max.bytes"].read_only, c["broker.id"].read_only, c["listeners"].read_only) == (
        False, True, True)
    assert (c["log.retention.ms"].config_type, c["message.max.bytes"].config_type,
            c["log.cleanup.policy"].config_type) == (LONG, INT, LIST)
    assert c["message.max.bytes"].documentation
    sensitive = {name for name, e in c.items() if e.is_sensitive}
    assert sensitive == {"ssl.keystore.password", "ssl.key.password", "ssl.keystore.certificate.chain",
                         "ssl.keystore.key", "ssl.truststore.password", "ssl.truststore.certificates",
                         "sasl.jaas.config"}
    assert all(c[name].value is None for name in sensitive)
    assert configs(h, version=3)["message.max.bytes"].documentation is None  # not asked for
    assert all(e.synonyms == () for e in configs(h, synonyms=False).values())


def test_cluster_default_resource_lists_only_what_is_set(h):
    assert configs(h, "") == {}
    assert incremental(h, "", [("log.retention.ms", SET, "7200000")]) == OK
    assert incremental(h, "0", [("log.retention.ms", SET, "3600000"), ("message.max.bytes", SET, "60000")]) == OK
    c = configs(h, "")
    assert list(c) == ["log.retention.ms"]
    entry = c["log.retention.ms"]
    assert (entry.value, entry.config_source, chain(entry)) == (
        "7200000", DYNAMIC_DEFAULT, [("log.retention.ms", "7200000", DYNAMIC_DEFAULT)])


def test_other_broker_ids_are_refused(h):
    other = describe(h, BROKER, "7")
    assert (other.error_code, other.error_message) == (
        ErrorCode.invalid_request, "Unexpected broker id, expected 0 or empty string, but received 7")
    assert incremental(h, "7", [("message.max.bytes", SET, "1")]) == (
        ErrorCode.invalid_request, "Unexpected broker id, expected 0, but received 7")
    assert incremental(h, "x", [("message.max.bytes", SET, "1")]) == (
        ErrorCode.invalid_request, "Node id must be an integer, but it is: x")


# -- changes and their effect -----------------------------------------------------------------

def test_message_max_bytes_takes_effect_on_topics_without_an_override(h):
    assert produce(h, "t", 20000) == ErrorCode.none
    assert incremental(h, "0", [("message.max.bytes", SET, "10000")]) == OK
    assert produce(h, "t", 20000) == ErrorCode.message_too_large
    assert produce(h, "own", 20000) == ErrorCode.none          # its override stays
    assert topic_config(h, "t", "max.message.bytes") == (
        "10000", DYNAMIC_BROKER, [("message.max.bytes", "10000", DYNAMIC_BROKER),
                                  ("message.max.bytes", "1048588", DEFAULT)])
    assert incremental(h, "0", [("message.max.bytes", DELETE, None)]) == OK
    assert produce(h, "t", 20000) == ErrorCode.none


def test_per_broker_value_wins_over_the_cluster_default(h):
    assert incremental(h, "", [("log.retention.ms", SET, "7200000")]) == OK
    value, source, _ = topic_config(h, "t", "retention.ms")
    assert (value, source) == ("7200000", DYNAMIC_DEFAULT)
    assert h.logs.partition("t", 0).log.config["retention.ms"] == 7200000
    assert incremental(h, "0", [("log.retention.ms", SET, "3600000")]) == OK
    assert h.logs.partition("t", 0).log.config["retention.ms"] == 3600000
    assert incremental(h, "0", [("log.retention.ms", DELETE, None)]) == OK
    assert h.logs.partition("t", 0).log.config["retention.ms"] == 7200000
    assert incremental(h, "", [("log.retention.ms", DELETE, None)]) == OK
    assert topic_config(h, "t", "retention.ms")[:2] == (str(24 * 3600 * 1000), STATIC)


def test_static_unknown_and_bad_values_change_nothing(h):
    code, message = incremental(h, "0", [("message.max.bytes", SET, "5000"), ("num.partitions", SET, "3"),
                                         ("broker.id", SET, "4")])
    assert (code, message) == (ErrorCode.invalid_request,
                               "Cannot update these configs dynamically: Set(broker.id, num.partitions)")
    assert incremental(h, "", [("no.such.thing", SET, "1")])[0] == ErrorCode.invalid_request
    code, message = incremental(h, "0", [("message.max.bytes", SET, "lots")])
    assert code == ErrorCode.invalid_request and "message.max.bytes" in message
    assert incremental(h, "0", [("message.max.bytes", APPEND, "1")]) == (
        ErrorCode.invalid_config, "Config value append is not allowed for config key: message.max.bytes")
    assert incremental(h, "0", [("message.max.bytes", SET, "5000")], validate_only=True) == OK
    assert configs(h)["message.max.bytes"].config_source == DEFAULT
    assert h.logs.partition("t", 0).config.max_message_bytes == 1048588


def test_list_operations_start_from_the_scope_value(h):
    assert incremental(h, "", [("log.cleanup.policy", APPEND, "compact")]) == OK
    assert configs(h, "")["log.cleanup.policy"].value == "delete,compact"
    assert h.logs.partition("t", 0).config.compacted
    assert incremental(h, "", [("log.cleanup.policy", SUBTRACT, "delete")]) == OK
    assert configs(h, "")["log.cleanup.policy"].value == "compact"


def test_alter_configs_replaces_the_scope(h):
    assert incremental(h, "0", [("message.max.bytes", SET, "60000"), ("log.retention.ms", SET, "1000")]) == OK
    assert alter(h, "0", {"log.retention.bytes": "123456"}) == OK
    c = configs(h)
    assert [n for n, e in c.items() if e.config_source == DYNAMIC_BROKER] == ["log.retention.bytes"]
    assert alter(h, "0", {"broker.id": "1"}) == (
        ErrorCode.invalid_request, "Cannot update these configs dynamically: Set(broker.id)")


def test_dynamic_configs_survive_a_restart(h):
    assert incremental(h, "", [("log.retention.ms", SET, "7200000")]) == OK
    assert incremental(h, "0", [("message.max.bytes", SET, "10000")]) == OK
    directory = h.logs.data_dir
    h.logs.close()
    config = BrokerConfig.from_strings({"log.retention.hours": "24"})
    reopened = LogManager(directory, config, h.context.clock)
    reopened.load()
    try:
        assert config.get("message.max.bytes") == 10000
        assert reopened.partition("t", 0).config.max_message_bytes == 10000
        assert reopened.partition("t", 0).config["retention.ms"] == 7200000
        assert reopened.broker_config_texts("default") == {"log.retention.ms": "7200000"}
    finally:
        reopened.close()


def test_thread_counts_are_dynamic_as_kafka_marks_them_and_listeners_are_not(admin):
    h = admin({"listeners": "PLAINTEXT://127.0.0.1:9092", "num.io.threads": "4", "broker.id": "0"})
    before = configs(h)
    listeners = before["listeners"]
    assert (listeners.value, listeners.config_source, listeners.read_only) == (
        "PLAINTEXT://127.0.0.1:9092", STATIC, True)
    advertised = before["advertised.listeners"]
    assert (advertised.value, advertised.config_source, advertised.read_only) == (None, DEFAULT, True)
    for name in ("num.io.threads", "num.network.threads", "num.replica.fetchers",
                 "num.recovery.threads.per.data.dir", "background.threads"):
        assert before[name].read_only is False, name
    assert (before["num.io.threads"].value, before["num.io.threads"].config_source) == ("4", STATIC)

    assert incremental(h, "0", [("num.io.threads", SET, "16")]) == OK
    assert incremental(h, "", [("background.threads", SET, "20")]) == OK
    after = configs(h)
    assert (after["num.io.threads"].value, after["num.io.threads"].config_source) == ("16", DYNAMIC_BROKER)
    assert chain(after["num.io.threads"]) == [("num.io.threads", "16", DYNAMIC_BROKER),
                                              ("num.io.threads", "4", STATIC), ("num.io.threads", "8", DEFAULT)]
    assert (after["background.threads"].value, after["background.threads"].config_source) == ("20", DYNAMIC_DEFAULT)

    code, message = incremental(h, "0", [("num.io.threads", SET, "0")])
    assert (code, message) == (ErrorCode.invalid_request, "num.io.threads: 0 is below the minimum 1")
    code, message = incremental(h, "0", [("advertised.listeners", SET, "PLAINTEXT://elsewhere:9092")])
    assert (code, message) == (ErrorCode.invalid_request,
                               "Cannot update these configs dynamically: Set(advertised.listeners)")
