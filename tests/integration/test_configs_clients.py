"""Topic configs through real admin clients on loopback: confluent-kafka (librdkafka)
and kafka-python alter and describe them, errors come back with their codes and
messages, and the overrides survive a broker restart."""

from __future__ import annotations

import warnings

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")
kafka = pytest.importorskip("kafka")
from confluent_kafka import KafkaError, KafkaException  # noqa: E402
from confluent_kafka.admin import (  # noqa: E402
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
)
from kafka.admin import ConfigResource as KafkaPythonResource  # noqa: E402
from kafka.admin import ConfigResourceType, KafkaAdminClient  # noqa: E402

TIMEOUT = 15


def _confluent(broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap_servers, "socket.timeout.ms": 10000})


def _create(admin: AdminClient, name: str, partitions: int = 1, config: dict | None = None) -> None:
    admin.create_topics([NewTopic(name, partitions, 1, config=config or {})])[name].result(TIMEOUT)


def _describe(admin: AdminClient, name: str) -> dict:
    resource = ConfigResource("TOPIC", name)
    return admin.describe_configs([resource])[resource].result(TIMEOUT)


def _incremental(admin: AdminClient, name: str, *ops, validate_only: bool = False):
    resource = ConfigResource("TOPIC", name, incremental_configs=[
        ConfigEntry(key, value, incremental_operation=op) for key, op, value in ops])
    return admin.incremental_alter_configs([resource], validate_only=validate_only)[resource]


def _error(future) -> KafkaError:
    with pytest.raises(KafkaException) as caught:
        future.result(TIMEOUT)
    return caught.value.args[0]


def _kafka_python(broker) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers, request_timeout_ms=10000)


def _modified(client: KafkaAdminClient, name: str) -> dict[str, str]:
    described = client.describe_configs([KafkaPythonResource(ConfigResourceType.TOPIC, name)])
    return {key: entry["value"] for key, entry in described["topic"][name].items()}


# -- confluent-kafka -----------------------------------------------------------------------

def test_confluent_incremental_alter_round_trip(kavka_broker):
    admin = _confluent(kavka_broker)
    _create(admin, "orders", 3)
    assert _incremental(admin, "orders",
                        ("retention.ms", AlterConfigOpType.SET, "60000"),
                        ("cleanup.policy", AlterConfigOpType.APPEND, "compact")).result(TIMEOUT) is None
    configs = _describe(admin, "orders")
    assert configs["retention.ms"].value == "60000"
    assert configs["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["cleanup.policy"].value == "delete,compact"

    _incremental(admin, "orders", ("cleanup.policy", AlterConfigOpType.SUBTRACT, "delete"),
                 ("retention.ms", AlterConfigOpType.DELETE, None)).result(TIMEOUT)
    configs = _describe(admin, "orders")
    assert configs["cleanup.policy"].value == "compact"
    assert configs["retention.ms"].value == "604800000"
    assert configs["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value


def test_confluent_incremental_validate_only(kavka_broker):
    admin = _confluent(kavka_broker)
    _create(admin, "dry")
    _incremental(admin, "dry", ("retention.ms", AlterConfigOpType.SET, "1000"), validate_only=True).result(TIMEOUT)
    assert _describe(admin, "dry")["retention.ms"].value == "604800000"


def test_confluent_legacy_alter_configs_replaces_the_set(kavka_broker):
    admin = _confluent(kavka_broker)
    _create(admin, "legacy", config={"retention.ms": "1000"})
    resource = ConfigResource("TOPIC", "legacy", set_config={"segment.bytes": "1048576"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # confluent-kafka deprecates the old API
        admin.alter_configs([resource])[resource].result(TIMEOUT)
    configs = _describe(admin, "legacy")
    assert configs["segment.bytes"].value == "1048576"
    assert configs["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value


def test_confluent_alter_errors(kavka_broker):
    admin = _confluent(kavka_broker)
    _create(admin, "strict")
    error = _error(_incremental(admin, "strict", ("retention.ms", AlterConfigOpType.SET, "soon")))
    assert error.code() == KafkaError.INVALID_CONFIG and "retention.ms" in error.str()
    error = _error(_incremental(admin, "strict", ("segment.ms", AlterConfigOpType.APPEND, "5")))
    assert error.code() == KafkaError.INVALID_CONFIG and "not LIST" in error.str()
    error = _error(_incremental(admin, "missing", ("retention.ms", AlterConfigOpType.SET, "5")))
    assert error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    broker = ConfigResource("BROKER", "0", incremental_configs=[
        ConfigEntry("num.partitions", "5", incremental_operation=AlterConfigOpType.SET)])
    error = _error(admin.incremental_alter_configs([broker])[broker])
    assert error.code() == KafkaError.INVALID_REQUEST
    assert "Cannot update these configs dynamically: Set(num.partitions)" in error.str()


# -- kafka-python --------------------------------------------------------------------------

def test_kafka_python_alter_and_describe(kavka_broker):
    _create(_confluent(kavka_broker), "events")
    client = _kafka_python(kavka_broker)
    try:
        resource = KafkaPythonResource(ConfigResourceType.TOPIC, "events", configs={"retention.ms": "7000"})
        assert client.alter_configs([resource], incremental=False) == {"topic": {"events": "OK"}}
        resource = KafkaPythonResource(ConfigResourceType.TOPIC, "events", configs={"retention.bytes": "9000"})
        assert client.alter_configs([resource], incremental=True) == {"topic": {"events": "OK"}}
        assert _modified(client, "events") == {"retention.ms": "7000", "retention.bytes": "9000"}
        bad = KafkaPythonResource(ConfigResourceType.TOPIC, "events", configs={"segment.bytes": "tiny"})
        result = client.alter_configs([bad], incremental=False)["topic"]["events"]
        assert "InvalidConfiguration" in result and "segment.bytes" in result
        assert _modified(client, "events") == {"retention.ms": "7000", "retention.bytes": "9000"}
    finally:
        client.close()


# -- restart -------------------------------------------------------------------------------

def test_configs_survive_a_restart(kavka_broker_factory, tmp_path):
    data_dir = tmp_path / "data"
    first = kavka_broker_factory({"num.partitions": 2}, data_dir=data_dir)
    admin = _confluent(first)
    _create(admin, "kept")
    _incremental(admin, "kept", ("retention.ms", AlterConfigOpType.SET, "3600000"),
                 ("cleanup.policy", AlterConfigOpType.SET, "compact")).result(TIMEOUT)
    client = _kafka_python(first)
    try:
        client.alter_configs([KafkaPythonResource(ConfigResourceType.TOPIC, "kept",
                                                  configs={"max.message.bytes": "2000000"})])
    finally:
        client.close()
    first.stop()

    second = kavka_broker_factory({"num.partitions": 2}, data_dir=data_dir)
    configs = _describe(_confluent(second), "kept")
    assert {k: configs[k].value for k in ("retention.ms", "cleanup.policy", "max.message.bytes")} == {
        "retention.ms": "3600000", "cleanup.policy": "compact", "max.message.bytes": "2000000"}
    client = _kafka_python(second)
    try:
        assert _modified(client, "kept") == {"retention.ms": "3600000", "cleanup.policy": "compact",
                                             "max.message.bytes": "2000000"}
    finally:
        client.close()
