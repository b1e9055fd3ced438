"""The admin contract (see test_admin_contract.py) for configs: DescribeConfigs,
IncrementalAlterConfigs and AlterConfigs on topics and brokers, and configs that change
what Produce answers."""

from __future__ import annotations

import warnings
from contextlib import closing

import pytest
from admin_contract_helpers import (
    TIMEOUT,
    admin,
    create,
    describe,
    described_everywhere,
    error_name,
    eventually,
    kafka_python_admin,
    ready_everywhere,
    round_trip,
)
from confluent_kafka import Producer
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
)

pytestmark = pytest.mark.timeout(120)


def test_altered_configs_are_described_by_every_broker(admin_target):
    target = admin_target
    client = admin(target)
    dynamic, default = ConfigSource.DYNAMIC_TOPIC_CONFIG.value, ConfigSource.DEFAULT_CONFIG.value
    create(client, NewTopic("tuned", 1, target.broker_count, config={"retention.ms": "60000"}))
    ready_everywhere(target, "tuned", 1)

    resource = ConfigResource("TOPIC", "tuned", incremental_configs=[
        ConfigEntry("max.message.bytes", "300000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)])
    client.incremental_alter_configs([resource])[resource].result(TIMEOUT)
    described_everywhere(target, "tuned", {"max.message.bytes": ("300000", dynamic),
                                            "retention.ms": ("604800000", default)})

    bad = ConfigResource("TOPIC", "tuned", incremental_configs=[
        ConfigEntry("retention.ms", "soon", incremental_operation=AlterConfigOpType.SET)])
    assert error_name(client.incremental_alter_configs([bad])[bad]) == "INVALID_CONFIG"
    missing = ConfigResource("TOPIC", "untuned", incremental_configs=[
        ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)])
    assert error_name(client.incremental_alter_configs([missing])[missing]) == "UNKNOWN_TOPIC_OR_PART"

    legacy = ConfigResource("TOPIC", "tuned", set_config={"retention.bytes": "90000000"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)       # confluent-kafka deprecates the old API
        client.alter_configs([legacy])[legacy].result(TIMEOUT)    # replaces the whole set of overrides
        bad_legacy = ConfigResource("TOPIC", "tuned", set_config={"segment.bytes": "tiny"})
        assert error_name(client.alter_configs([bad_legacy])[bad_legacy]) == "INVALID_CONFIG"
    described_everywhere(target, "tuned", {"retention.bytes": ("90000000", dynamic),
                                            "max.message.bytes": ("1048588", default)})
    round_trip(target, "tuned")


def test_kafka_python_alters_and_describes_configs(admin_target):
    from kafka.admin import ConfigResource as KafkaPythonResource
    from kafka.admin import ConfigResourceType

    target = admin_target
    create(admin(target), NewTopic("kp-configs", 1, 1))
    client = kafka_python_admin(target)
    try:
        resource = KafkaPythonResource(ConfigResourceType.TOPIC, "kp-configs", configs={"retention.ms": "7000"})
        assert client.alter_configs([resource], incremental=True) == {"topic": {"kp-configs": "OK"}}
    finally:
        client.close()
    for broker_id in target.broker_ids:
        def modified(broker_id=broker_id):
            one = kafka_python_admin(target, broker_id)
            try:
                described = one.describe_configs([KafkaPythonResource(ConfigResourceType.TOPIC, "kp-configs")])
            finally:
                one.close()
            return {k: (e["value"], e["config_source"]) for k, e in described["topic"]["kp-configs"].items()}
        eventually(lambda: modified() == {"retention.ms": ("7000", "DYNAMIC_TOPIC_CONFIG")},
                   f"kp-configs' overrides at broker {broker_id}")


def test_config_validate_only_and_unknown_topics(admin_target):
    target = admin_target
    client = admin(target)
    create(client, NewTopic("checked", 1, 1))
    dry = ConfigResource("TOPIC", "checked", incremental_configs=[
        ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)])
    client.incremental_alter_configs([dry], validate_only=True)[dry].result(TIMEOUT)
    append = ConfigResource("TOPIC", "checked", incremental_configs=[
        ConfigEntry("segment.ms", "5", incremental_operation=AlterConfigOpType.APPEND)])
    assert error_name(client.incremental_alter_configs([append])[append]) == "INVALID_CONFIG"
    for broker_id in target.broker_ids:
        one = admin(target, broker_id)
        assert describe(one, "checked")["retention.ms"].value == "604800000"
        missing = ConfigResource("TOPIC", "unchecked")
        assert error_name(one.describe_configs([missing])[missing]) == "UNKNOWN_TOPIC_OR_PART"


def test_configs_altered_through_each_broker(admin_target):
    """Any broker takes an alteration (in a cluster: also one holding no replica)."""
    target = admin_target
    create(admin(target), NewTopic("any-door", 1, 1))
    ready_everywhere(target, "any-door", 1)
    for broker_id in target.broker_ids:
        value = str(100000 + broker_id)
        client = admin(target, broker_id)
        resource = ConfigResource("TOPIC", "any-door", incremental_configs=[
            ConfigEntry("retention.bytes", value, incremental_operation=AlterConfigOpType.SET)])
        client.incremental_alter_configs([resource])[resource].result(TIMEOUT)
        described_everywhere(target, "any-door",
                              {"retention.bytes": (value, ConfigSource.DYNAMIC_TOPIC_CONFIG.value)})


def test_created_configs_are_the_described_ones(admin_target):
    """CreateTopics v5+ answers every resolved config; DescribeConfigs then says the same."""
    target = admin_target
    client = kafka_python_admin(target)
    try:
        answer = client.create_topics({"described-as-made": {"configs": {"retention.ms": "60000",
                                                                         "cleanup.policy": "compact"}}})
    finally:
        client.close()
    (made,) = answer["topics"]
    answered = {k: v["value"] for k, v in made["configs"].items()}
    ready_everywhere(target, "described-as-made", 2)
    for broker_id in target.broker_ids:
        described = describe(admin(target, broker_id), "described-as-made")
        assert {k: e.value for k, e in described.items()} == answered, f"at broker {broker_id}"


def test_describe_configs_synonyms_agree(admin_target):
    target = admin_target
    client = admin(target)
    create(client, NewTopic("synonyms", 1, 1, config={"retention.ms": "60000"}))
    resource = ConfigResource("TOPIC", "synonyms")
    for broker_id in target.broker_ids:
        one = admin(target, broker_id)
        entry = one.describe_configs([resource])[resource].result(TIMEOUT)["retention.ms"]
        assert [(s.name, s.value, s.source) for s in entry.synonyms.values()] == [
            ("retention.ms", "60000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value),
            ("log.retention.hours", "168", ConfigSource.DEFAULT_CONFIG.value)], f"at broker {broker_id}"


def test_each_broker_describes_its_own_configs(admin_target):
    target = admin_target
    client = admin(target)
    for broker_id in target.broker_ids:   # librdkafka sends a BROKER resource to that broker
        resource = ConfigResource("BROKER", str(broker_id))
        configs = client.describe_configs([resource])[resource].result(TIMEOUT)
        assert configs["broker.id"].value == str(broker_id)
        entry = configs["num.partitions"]
        assert (entry.value, entry.source) == ("2", ConfigSource.STATIC_BROKER_CONFIG.value)
        assert configs["default.replication.factor"].value == str(target.broker_count)


def _broker_alter(client, broker_id: int, op, value: str | None, name: str = "log.cleaner.threads"):
    resource = ConfigResource("BROKER", str(broker_id), incremental_configs=[
        ConfigEntry(name, value, incremental_operation=op)])
    return client.incremental_alter_configs([resource])[resource]


def test_dynamic_broker_configs_are_per_broker_and_static_ones_refused(admin_target):
    target = admin_target
    client = admin(target)
    try:
        for broker_id in target.broker_ids:
            assert _broker_alter(client, broker_id, AlterConfigOpType.SET, str(broker_id + 2)).result(TIMEOUT) is None
        for broker_id in target.broker_ids:
            resource = ConfigResource("BROKER", str(broker_id))
            threads = client.describe_configs([resource])[resource].result(TIMEOUT)["log.cleaner.threads"]
            assert (threads.value, threads.source, threads.is_read_only) == (
                str(broker_id + 2), ConfigSource.DYNAMIC_BROKER_CONFIG.value, False)
        for broker_id in target.broker_ids:
            refused = _broker_alter(client, broker_id, AlterConfigOpType.SET, "5", name="broker.id")
            assert error_name(refused) == "INVALID_REQUEST"
    finally:
        for broker_id in target.broker_ids:
            _broker_alter(client, broker_id, AlterConfigOpType.DELETE, None).result(TIMEOUT)


def _produce_error(target, topic: str, acks: str) -> str | None:
    """The delivery error's name of one record (None: delivered)."""
    producer = Producer({"bootstrap.servers": target.bootstrap(), "acks": acks, "message.timeout.ms": 5000,
                         "retries": 0})
    errors = []
    producer.produce(topic, b"x", partition=0, on_delivery=lambda e, m: errors.append(e))
    producer.flush(10)
    assert len(errors) == 1
    return None if errors[0] is None else errors[0].name()


def test_min_insync_replicas_above_the_isr_refuses_acks_all_only(admin_target):
    target = admin_target
    n = target.broker_count
    create(admin(target), NewTopic("strict-isr", 1, n, config={"min.insync.replicas": str(n + 1)}),
           NewTopic("full-isr", 1, n, config={"min.insync.replicas": str(n)}))
    ready_everywhere(target, "strict-isr", 1)
    ready_everywhere(target, "full-isr", 1)
    assert _produce_error(target, "strict-isr", "all") == "NOT_ENOUGH_REPLICAS"
    assert _produce_error(target, "strict-isr", "1") is None
    assert _produce_error(target, "full-isr", "all") is None


def test_a_group_config_set_at_one_broker_is_described_and_applied_by_every_broker(admin_target):
    """GROUP resources (KIP-848): in a cluster the configs live in etcd, so any broker answers
    them and whichever broker coordinates the group, now or after a failover, applies them."""
    from kafka.admin import AlterConfigOp, ConfigResource, ConfigResourceType

    target = admin_target
    first = target.broker_ids[0]

    def resource(configs=None):
        return ConfigResource(ConfigResourceType.GROUP, "tuned-group", configs)

    def interval_at(broker_id):
        with closing(kafka_python_admin(target, broker_id)) as reader:
            described = reader.describe_configs(
                [resource()], config_filter="all")["group"]["tuned-group"]["consumer.heartbeat.interval.ms"]
        return described["value"], described["config_source"]

    def applied_at(broker_id):
        broker = target.brokers[broker_id]
        return broker.call(lambda b=broker: b.groups.coordinator.config_of("tuned-group").consumer_heartbeat_interval_ms)

    def alter(configs):
        with closing(kafka_python_admin(target, first)) as client:
            return client.alter_configs([resource(configs)])

    assert alter({"consumer.heartbeat.interval.ms": "6000"}) == {"group": {"tuned-group": "OK"}}
    for broker_id in target.broker_ids:
        eventually(lambda b=broker_id: interval_at(b) == ("6000", "DYNAMIC_GROUP_CONFIG"),
                   f"the group's config described by broker {broker_id}")
        eventually(lambda b=broker_id: applied_at(b) == 6000, f"the group's config applied by broker {broker_id}")
    assert alter({"consumer.heartbeat.interval.ms": (AlterConfigOp.DELETE, None)}) == {"group": {"tuned-group": "OK"}}
    for broker_id in target.broker_ids:
        eventually(lambda b=broker_id: interval_at(b) == ("5000", "DEFAULT_CONFIG"),
                   f"the group's default described by broker {broker_id}")
        eventually(lambda b=broker_id: applied_at(b) == 5000, f"the broker's default applied by broker {broker_id}")
