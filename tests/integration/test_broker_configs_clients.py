"""Dynamic broker configs (KIP-226) through confluent-kafka's AdminClient on loopback: the
sources a live broker reports for ConfigResource('BROKER', '0'), a changed message.max.bytes
refusing a produce at once, and the values surviving a restart.  librdkafka cannot name the
cluster default (resource name ""): `kavka configs --broker-default` covers it."""

from __future__ import annotations

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka import KafkaError, KafkaException, Producer  # noqa: E402
from confluent_kafka import admin as ck  # noqa: E402

TIMEOUT = 15
SET, DELETE = ck.AlterConfigOpType.SET, ck.AlterConfigOpType.DELETE


def _admin(broker) -> ck.AdminClient:
    return ck.AdminClient({"bootstrap.servers": broker.bootstrap_servers, "socket.timeout.ms": 10000})


def _describe(admin: ck.AdminClient, name: str) -> dict:
    resource = ck.ConfigResource("BROKER", name)
    return admin.describe_configs([resource])[resource].result(TIMEOUT)


def _alter(admin: ck.AdminClient, name: str, *ops):
    resource = ck.ConfigResource("BROKER", name, incremental_configs=[
        ck.ConfigEntry(key, value, incremental_operation=op) for key, op, value in ops])
    return admin.incremental_alter_configs([resource])[resource].result(TIMEOUT)


def _send(broker, topic: str, size: int) -> KafkaError | None:
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "message.max.bytes": 10_000_000,
                         "retries": 0, "linger.ms": 0})
    outcome = []
    producer.produce(topic, b"x" * size, on_delivery=lambda err, msg: outcome.append(err))
    producer.flush(TIMEOUT)
    (error,) = outcome
    return error


def test_sources_and_a_change_taking_effect(kavka_broker_factory):
    broker = kavka_broker_factory({"log.retention.hours": "24"})
    admin = _admin(broker)
    admin.create_topics([ck.NewTopic("sized", 1, 1)])["sized"].result(TIMEOUT)
    assert _send(broker, "sized", 50_000) is None

    _alter(admin, "0", ("log.retention.ms", SET, "7200000"), ("message.max.bytes", SET, "20000"))
    configs = _describe(admin, "0")
    size = configs["message.max.bytes"]
    assert (size.value, size.source, size.is_read_only) == ("20000", ck.ConfigSource.DYNAMIC_BROKER_CONFIG.value, False)
    retention = configs["log.retention.ms"]
    assert (retention.value, retention.source) == ("7200000", ck.ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    # librdkafka keys synonyms by name: the dynamic value first, then the file's .hours
    assert list(retention.synonyms) == ["log.retention.ms", "log.retention.hours"]
    assert retention.synonyms["log.retention.ms"].source == ck.ConfigSource.DYNAMIC_BROKER_CONFIG.value
    hours = configs["log.retention.hours"]
    assert (hours.value, hours.source) == ("24", ck.ConfigSource.STATIC_BROKER_CONFIG.value)
    assert configs["num.partitions"].source == ck.ConfigSource.DEFAULT_CONFIG.value
    assert configs["broker.id"].is_read_only

    topic = ck.ConfigResource("TOPIC", "sized")
    retention_ms = admin.describe_configs([topic])[topic].result(TIMEOUT)["retention.ms"]
    assert (retention_ms.value, retention_ms.source) == ("7200000", ck.ConfigSource.DYNAMIC_BROKER_CONFIG.value)

    error = _send(broker, "sized", 50_000)
    assert error is not None and error.code() == KafkaError.MSG_SIZE_TOO_LARGE
    _alter(admin, "0", ("message.max.bytes", DELETE, None))
    assert _send(broker, "sized", 50_000) is None


def test_refusals(kavka_broker):
    admin = _admin(kavka_broker)
    with pytest.raises(KafkaException) as caught:
        _alter(admin, "0", ("listeners", SET, "PLAINTEXT://:9999"))
    error = caught.value.args[0]
    assert error.code() == KafkaError.INVALID_REQUEST
    assert "Cannot update these configs dynamically: Set(listeners)" in error.str()


def test_dynamic_configs_survive_a_restart(kavka_broker_factory, tmp_path):
    data_dir = tmp_path / "data"
    first = kavka_broker_factory(data_dir=data_dir)
    _alter(_admin(first), "0", ("message.max.bytes", SET, "30000"))
    first.stop()
    second = kavka_broker_factory(data_dir=data_dir)
    configs = _describe(_admin(second), "0")
    assert (configs["message.max.bytes"].value, configs["message.max.bytes"].source) == (
        "30000", ck.ConfigSource.DYNAMIC_BROKER_CONFIG.value)
